from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

TESTS = Path(__file__).parent
TEST_DATA = TESTS / "data"


@pytest.fixture
def pmt():
    """Run the pmt command line in-process: ``result = pmt("info", "--json")``."""
    from pmtoolkit.cli.main import cli

    runner = CliRunner()

    def run(*args, input=None):
        result = runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)
        # the CLI configures the pmtoolkit logger per run; leave no handler on a closed stream
        logging.getLogger("pmtoolkit").handlers.clear()
        return result

    return run


@pytest.fixture
def test_data() -> Path:
    return TEST_DATA
