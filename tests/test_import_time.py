"""`pmt --help` and `import pmtoolkit` must not import the heavy libraries (STYLE #7)."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "rdkit", "scanpy", "deepchem", "lightning", "torch_geometric", "anndata",
         "pandas", "numpy", "matplotlib", "sklearn", "scipy")

PROBE = """
import sys
from pmtoolkit.cli.main import main
try:
    main({args!r})
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["demo", "--help"],
                                  ["info", "--help"]])
def test_help_imports_nothing_heavy(args):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
                          capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in proc.stderr, proc.stderr


def test_import_pmtoolkit_is_light():
    code = ("import sys, pmtoolkit, pmtoolkit.core; "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
