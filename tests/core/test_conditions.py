"""Row conditions: the closed grammar of pmtoolkit.core.conditions, operator by operator, with
missing values, and errors that point at the offending character."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pmtoolkit.core.conditions import MAX_DEPTH, MAX_LENGTH, parse_condition
from pmtoolkit.core.errors import BadInputError


@pytest.fixture
def frame():
    return pd.DataFrame({
        "x": [1.0, 2.0, 3.0, np.nan],
        "n": [10, 20, 30, 40],
        "name": ["a", "b's", None, 'say "hi"'],
        "ok": [True, False, True, False],
        "IC50 (nM)": [5.0, 50.0, 500.0, np.nan],
        "Int": pd.array([1, None, 3, 4], dtype="Int64"),
    })


def rows(cond: str, frame) -> list[int]:
    mask = parse_condition(cond).mask(frame)
    assert mask.dtype == bool and mask.shape == (len(frame),)
    return [i for i, m in enumerate(mask) if m]


@pytest.mark.parametrize("cond, expected", [
    ("x == 2", [1]), ("x != 2", [0, 2]), ("x < 2", [0]), ("x <= 2", [0, 1]),
    ("x > 2", [2]), ("x >= 2", [1, 2]),
    ("2 < x", [2]), ("1 < x <= 3", [1, 2]), ("1 < x < 3 < n", [1]),  # chained
    ("n >= 2e1", [1, 2, 3]), ("n > 1.5E+1", [1, 2, 3]), ("x > .5", [0, 1, 2]),
    ("x > -1", [0, 1, 2]), ("-x < -1", [1, 2]), ("- -x > 2", [2]), ("+x > 2", [2]),
    ("x * 10 == n", [0, 1, 2]), ("n / x > 10", []), ("n - x*9 >= 2", [1, 2]),
    ("n + 1 > 21", [2, 3]), ("(n - 10) / 10 == x - 1", [0, 1, 2]),
    ("x / 0 > 1", [0, 1, 2]),  # +inf compares as a number
    ("name == 'a'", [0]), ('name == "a"', [0]), ("name != 'a'", [1, 3]),
    ("name == 'b\\'s'", [1]), ("name == \"b's\"", [1]), ("name == 'say \"hi\"'", [3]),
    ("name == \"say \\\"hi\\\"\"", [3]),
    ("name in ['a', 'zzz']", [0]), ("name not in ['a']", [1, 3]),
    ("x in [1, 3, 'text']", [0, 2]), ("x not in [1]", [1, 2]), ("n in [-10, 10.0,]", [0]),
    ("x in []", []), ("x not in []", [0, 1, 2]),
    ("`IC50 (nM)` >= 50", [1, 2]), ("`x` == 1", [0]), ("`IC50 (nM)` / 5 < x * 10", [0, 1]),
    ("ok", [0, 2]), ("not ok", [1, 3]), ("ok == true", [0, 2]), ("ok == False", [1, 3]),
    ("ok and x > 1", [2]), ("ok or x > 1", [0, 1, 2]), ("ok & x > 1", [2]),
    ("ok | x > 1", [0, 1, 2]), ("~ok", [1, 3]), ("not not ok", [0, 2]),
    ("true", [0, 1, 2, 3]), ("false or n == 10", [0]),
    ("Int > 2", [2, 3]), ("Int in [1, 4]", [0, 3]), ("Int + x > 3", [2]),
])
def test_every_operator(frame, cond, expected):
    assert rows(cond, frame) == expected


@pytest.mark.parametrize("cond, expected", [
    ("x > 1 or n == 10 and ok", [0, 1, 2]),      # and binds tighter than or
    ("(x > 1 or n == 10) and ok", [0, 2]),
    ("not x > 1 and ok", [0]),                   # not binds tighter than and
    ("not (x > 1 and ok)", [0, 1, 3]),
    ("x > 1 & n < 40 | name == 'a'", [0, 1, 2]),  # & and | with and/or's precedence (pandas)
    ("n - 10 * 2 > 0", [2, 3]),                  # * before -
    ("(n - 10) * 2 > 20", [2, 3]),
    ("n / 10 / 2 == 1", [1]),                    # left to right
    ("n - 10 - 10 == 0", [1]),
])
def test_precedence(frame, cond, expected):
    assert rows(cond, frame) == expected


def test_a_comparison_with_a_missing_value_is_false(frame):
    # x is missing in row 3, name in row 2: no comparison holds there, != included
    assert 3 not in rows("x != 1", frame) and 3 not in rows("x > -1e300", frame)
    assert 2 not in rows("name != 'a'", frame) and 2 not in rows("name not in ['a']", frame)
    assert 3 not in rows("x + 1 > 0", frame)
    # so not (...) keeps them, while the opposite comparison does not
    assert 3 in rows("not x > 1", frame) and 3 not in rows("x <= 1", frame)
    nullable = pd.DataFrame({"flag": pd.array([True, None, False], dtype="boolean"),
                             "obj": [True, None, False]})
    assert rows("flag", nullable) == [0] and rows("not flag", nullable) == [1, 2]
    assert rows("obj", nullable) == [0]


def test_columns_and_empty_tables(frame):
    c = parse_condition("x > 1 and `IC50 (nM)` < x * 2 or name in ['a']")
    assert c.columns == ("x", "IC50 (nM)", "name")
    assert rows("x > 1", frame.iloc[:0]) == []


def error(cond: str, frame=None) -> str:
    with pytest.raises(BadInputError) as err:
        c = parse_condition(cond)
        if frame is not None:
            c.mask(frame)
    assert err.value.exit_code == 2
    text = err.value.one_line()
    assert "\n" not in text
    return text


@pytest.mark.parametrize("cond, message", [
    ("a > @x", "condition 'a > @x': unexpected '@' at column 5; no @variables"),
    ("a.b > 1", "unexpected '.' at column 2; no attribute access"),
    ("len(a) > 1", "unexpected '(' at column 4; no function calls"),
    ("a[0] > 1", "unexpected '[' at column 2; no subscripts"),
    ("a ** 2 > 1", "unexpected '**' at column 3; no powers"),
    ("a = 1", "unexpected '=' at column 3; compare with =="),
    ("a ! 1", "unexpected '!' at column 3"),
    ("a >", "unexpected end at column 4"),
    ("a > 1 b", "unexpected 'b' at column 7"),
    ("a and", "unexpected end at column 6"),
    ("(a > 1", "expected ')' at column 7"),
    ("a in (1, 2)", "unexpected '(' at column 6; 'in' needs a list"),
    ("a in [1, b]", "unexpected 'b' in a list at column 10"),
    ("a in [1, 2", "expected ',' or ']' in the list at column 11"),
    ("'abc", "unterminated string starting at column 1"),
    ("`abc > 1", "unterminated `backtick` name starting at column 1"),
    ("a == 'x\\n'", "a backslash in a string may only escape a quote or a backslash at column 8"),
    ("0x1f > a", "malformed number '0x1f' at column 1"),
    ("a > 1e999", "number '1e999' is out of range at column 5"),
    ("__class__ == 1", "unexpected name '__class__' at column 1; names beginning with '__'"),
    ("`__dict__` == 1", "unexpected name '__dict__' at column 1"),
    ("a == None", "unexpected 'None' at column 6; there is no missing-value literal"),
    ("a == nan", "unexpected 'nan' at column 6"),
    ("a is 1", "unexpected 'is' at column 3; not part of the condition language"),
    ("5", "a value where a condition is needed at column 1"),
    ("a + 1", "a value where a condition is needed at column 1"),
    ("'x' and a", "a value where a condition is needed at column 1"),
    ("not 5", "a value where a condition is needed at column 5"),
    ("a + 'x' > 1", "arithmetic works on numbers and columns only at column 5"),
    ("a + (b > 1) > 1", "arithmetic works on numbers and columns only at column 8"),
    ("(a > 1) == true", "a condition where a value is needed at column 4"),
    ("", "empty condition"), ("   ", "empty condition"),
])
def test_syntax_errors_point_at_the_offending_character(cond, message):
    text = error(cond)
    assert message in text, text
    assert "conditions may use column names" in text  # the grammar in one line


def test_evaluation_errors_name_the_column(frame):
    text = error("xx > 1", frame)
    assert "condition 'xx > 1': no column 'xx' at column 1" in text
    assert "did you mean 'x'?" in text and "columns: IC50 (nM), Int, n, name, ok, x" in text
    assert "cannot compare column 'name' > 1 at column 6" in error("name > 1", frame)
    assert "column 'name' does not hold numbers at column 1" in error("name * 2 > 1", frame)
    assert "column 'n' does not hold true/false values" in error("n and ok", frame)
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert "several columns named 'a'" in error("a > 1", twice)


def test_long_and_deep_input_is_a_clean_error():
    assert f"more than the {MAX_LENGTH:,} allowed" in error("(" * 100_000 + "a > 1")
    assert "condition '((((" in error("(" * 100_000)  # the condition is shortened
    deep = "(" * (MAX_DEPTH + 1) + "a > 1" + ")" * (MAX_DEPTH + 1)
    assert f"parentheses nested deeper than {MAX_DEPTH} levels at column {MAX_DEPTH + 1}" \
        in error(deep)
    ok = "(" * MAX_DEPTH + "x > 1" + ")" * MAX_DEPTH
    assert rows(ok, pd.DataFrame({"x": [1, 2]})) == [1]
    # prefixes and chains do not nest: parsed and evaluated without deep recursion
    many = " and ".join(["not not x > 1"] * 300) + " or " + "- " * 1000 + "x < 0"
    assert rows(many, pd.DataFrame({"x": [1, 2]})) == [1]
    assert rows("x" + " + 1" * 2000 + " > 2001", pd.DataFrame({"x": [1, 2]})) == [1]


def test_huge_integers_do_not_overflow():
    df = pd.DataFrame({"x": [1]})
    assert rows("99999999999999999999 * 99999999999999999999 > x", df) == [0]
    assert rows("9223372036854775807 * 9223372036854775807 > 0", df) == [0]


def test_importing_the_module_stays_light():
    code = ("import sys, pmtoolkit.core.conditions as c; c.parse_condition('a > 1'); "
            "print(any(m in sys.modules for m in ('pandas', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
