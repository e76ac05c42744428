"""Fixtures of the genomics tests."""
from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture(scope="session")
def spliceai_model():
    """SpliceAI's five models on CPU, loaded once for every test file that needs them;
    skipped where the optional extra is not installed (CI installs it)."""
    pytest.importorskip("h5py")
    if importlib.util.find_spec("spliceai") is None:
        pytest.skip("the spliceai extra is not installed (CI installs it)")
    from pmtoolkit.genomics.spliceai import SpliceAI

    return SpliceAI(device="cpu")
