from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

import pmtoolkit  # noqa: F401  (before any test module imports torch: sets the OpenMP spin policy)

pytest_plugins = ("pytester",)  # tests/test_tiers.py runs pytest on a made-up tree

TESTS = Path(__file__).parent
TEST_DATA = TESTS / "data"
SHARED_DATA = TESTS.parent.parent / "shared" / "data"


#: Test tiers, as chemprop's tests/unit and tests/integration: ``integration`` tests run pmt
#: end to end (the command line, a wheel, a documented example) and ``unit`` tests call the
#: library. A test's tier follows from where it lives, or from its use of the ``pmt`` fixture.
INTEGRATION_FOLDERS = frozenset({"cli", "hostile"})
INTEGRATION_FILES = frozenset({"test_api_examples.py", "test_import_time.py",
                               "test_packaging.py"})


def tier(item: pytest.Item) -> str:
    """``integration`` or ``unit``: the tier of a collected test (see INTEGRATION_FOLDERS)."""
    parts = Path(item.path).relative_to(TESTS).parts
    if (parts[0] in INTEGRATION_FOLDERS or parts[-1] in INTEGRATION_FILES
            or "pmt" in getattr(item, "fixturenames", ())):
        return "integration"
    return "unit"


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test ``unit`` or ``integration``; and keep ``slow`` tests out of a run
    whose ``-m`` does not name them (``-m unit`` replaces the default ``-m 'not slow'``)."""
    for item in items:
        item.add_marker(tier(item))
    if "slow" in (config.getoption("markexpr") or ""):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def _reset_logging() -> None:
    """Undo what a CLI run configures (handlers on its captured streams, no propagation), so
    the next test sees the library's logging defaults (and caplog works)."""
    logger = logging.getLogger("pmtoolkit")
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
    logging.getLogger("py.warnings").propagate = True
    logging.captureWarnings(False)


@pytest.fixture(autouse=True)
def _fresh_logging():
    yield
    _reset_logging()


@pytest.fixture
def pmt():
    """Run the pmt command line in-process: ``result = pmt("info", "--json")``."""
    from pmtoolkit.cli.main import cli

    runner = CliRunner()

    def run(*args, input=None):
        result = runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
        _reset_logging()  # no handler left on the runner's closed streams
        return result

    return run


@pytest.fixture
def test_data() -> Path:
    return TEST_DATA


@pytest.fixture
def shared_data() -> Path:
    """The benchmark datasets beside the repository (../shared/data), as in CI."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA
