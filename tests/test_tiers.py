"""The test tiers of tests/conftest.py: a test is ``unit`` or ``integration`` by where it lives
or by running pmt, and ``slow`` tests stay out of a run whose ``-m`` does not name them."""
from __future__ import annotations

from tests.conftest import TESTS


def _tiers(node) -> set[str]:
    return {m.name for m in node.iter_markers() if m.name in ("unit", "integration")}


def test_a_library_test_is_unit(request):
    assert _tiers(request.node) == {"unit"}


def test_a_test_that_runs_pmt_is_integration(request, pmt):
    assert _tiers(request.node) == {"integration"}
    assert pmt("--version").exit_code == 0


def test_tiers_follow_the_folders(pytester):
    pytester.makeconftest((TESTS / "conftest.py").read_text().replace(
        "TESTS = Path(__file__).parent", "TESTS = Path(__file__).parent / 'tests'"))
    pytester.makeini("[pytest]\nmarkers =\n    slow: s\n    unit: u\n    integration: i\n")
    for path in ("tests/cli/test_a.py", "tests/chem/test_b.py", "tests/test_api_examples.py"):
        pytester.makepyfile(**{path.removesuffix(".py"): (
            "import pytest\n\ndef test_fast():\n    pass\n\n"
            "@pytest.mark.slow\ndef test_slow():\n    pass\n")})
    for expr, passed in [("unit", 1), ("integration", 2), ("unit or slow", 4), ("slow", 3),
                         ("not slow", 3)]:
        result = pytester.runpytest("-m", expr, "-p", "no:cacheprovider", "--strict-markers")
        result.assert_outcomes(passed=passed)
