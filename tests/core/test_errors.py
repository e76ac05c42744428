from pmtoolkit.core import errors


def test_exit_codes_split_user_mistakes_from_bugs():
    assert errors.BadInputError("x").exit_code == 2
    assert errors.MissingInputError("x").exit_code == 2
    assert errors.ConfigError("x").exit_code == 2
    assert errors.MissingResourceError("x").exit_code == 2
    assert errors.UnsafeFileError("x").exit_code == 2
    assert errors.InternalError("x").exit_code == 1


def test_messages_are_one_line_with_hint():
    e = errors.BadInputError("bad\n  value here", hint="do\nthis")
    assert e.one_line() == "bad value here (do this)"
    assert "\n" not in str(e)


def test_error_types_are_also_builtin_types():
    # callers that catch the standard exception types still catch ours
    assert isinstance(errors.MissingInputError("x"), FileNotFoundError)
    assert isinstance(errors.BadInputError("x"), ValueError)
    assert isinstance(errors.MissingResourceError("x"), LookupError)


def test_unknown_name_lists_valid_names_and_suggests():
    e = errors.unknown_name("model", "davsi", ["davis", "kiba"])
    assert "'davsi'" in e.one_line()
    assert "did you mean 'davis'" in e.one_line()
    assert "davis, kiba" in e.one_line()
