from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

import pmtoolkit  # noqa: F401  (before any test module imports torch: sets the OpenMP spin policy)

TESTS = Path(__file__).parent
TEST_DATA = TESTS / "data"
SHARED_DATA = TESTS.parent.parent / "shared" / "data"


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
