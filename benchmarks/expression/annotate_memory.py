"""Peak memory of ``pmt expr annotate`` on a large .h5ad: the partitioned path (cells read a
partition at a time; in this process, and with ``--workers 2``) beside the in-memory path it
replaced (``read`` the whole file, ``annotate``, ``write_h5ad``: what the command did before).

Inputs are simulated raw counts (CSR, float32): N cells × 3,000 genes, the shipped pbmc68k
classifier's 765 genes among them, about 800 non-zero genes a cell (Poisson 1 + a gamma
rate). Each measure is a fresh process, nice'd, its peak RSS from ``/usr/bin/time -v``
(``--workers 2``: the largest of the client and its workers; the client's own peak and the
largest worker's, ``ru_maxrss`` of itself and of its children, are read in the client after
the cluster stops). Results are appended to ``WORKDIR/journal.jsonl`` (a rerun skips
what is there) and written to docs/benchmarks/expression_annotate_memory.json.

    nice -n 10 python benchmarks/expression/annotate_memory.py --cells 20000 100000
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GENES = 3000
NNZ_FRACTION = 800 / GENES

IN_MEMORY = """
import sys
from pmtoolkit.expression.classify import load
from pmtoolkit.expression.io import read, write_h5ad
adata = read(sys.argv[1])
load("pbmc68k").annotate(adata)
write_h5ad(adata, sys.argv[2])
"""

WORKERS_PEAK = """
import resource, sys
from pmtoolkit.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc
print("CHILDREN_MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print("SELF_MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def simulate(path: Path, n_cells: int, seed: int = 0) -> None:
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    from pmtoolkit.expression.classify import load

    genes = list(load("pbmc68k").genes)
    genes += [f"FILLER{i}" for i in range(GENES - len(genes))]
    rng = np.random.default_rng(seed)
    blocks = []
    for start in range(0, n_cells, 10_000):
        n = min(10_000, n_cells - start)
        mask = rng.random((n, GENES), dtype=np.float32) < NNZ_FRACTION
        values = (1 + rng.poisson(rng.gamma(1.0, 1.0, mask.sum()))).astype(np.float32)
        block = sp.csr_matrix(mask, dtype=np.float32)
        block.data = values
        blocks.append(block)
    X = sp.vstack(blocks, format="csr")
    obs = pd.DataFrame(index=[f"cell{i}" for i in range(n_cells)])
    ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=genes)).write_h5ad(path)


def measure(cmd: list[str]) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(["nice", "-n", "10", "/usr/bin/time", "-v", *cmd], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)[1])
    out = {"peak_rss_gib": rss / 2**20, "seconds": seconds}
    children = re.search(r"CHILDREN_MAXRSS_KB (\d+)", proc.stdout)
    if children:  # time's figure is then the largest of the client and its workers
        out["worker_peak_rss_gib"] = int(children[1]) / 2**20
        out["client_peak_rss_gib"] = int(re.search(r"SELF_MAXRSS_KB (\d+)",
                                                   proc.stdout)[1]) / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, nargs="+", default=[20_000, 100_000])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/pmt_annotate_memory"))
    ap.add_argument("--modes", default="in-memory,partitioned,workers-2")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    journal = args.workdir / "journal.jsonl"
    done = [json.loads(line) for line in journal.read_text().splitlines()] \
        if journal.exists() else []
    for n in args.cells:
        data = args.workdir / f"cells{n}.h5ad"
        if not data.exists():
            simulate(data, n)
        for mode in args.modes.split(","):
            if any(r["cells"] == n and r["mode"] == mode and "superseded" not in r
                   for r in done):
                continue
            out = args.workdir / f"out{n}-{mode}.h5ad"
            out.unlink(missing_ok=True)
            pmt = ["expr", "annotate", "-i", str(data), "--reference", "pbmc68k", "-o", str(out)]
            cmd = {"in-memory": [sys.executable, "-c", IN_MEMORY, str(data), str(out)],
                   "partitioned": [sys.executable, "-m", "pmtoolkit.cli.main", *pmt],
                   "workers-2": [sys.executable, "-c", WORKERS_PEAK, *pmt, "--workers", "2"],
                   }[mode]
            record = {"cells": n, "genes": GENES, "mode": mode, "nnz_per_cell": 800,
                      "input_mib": data.stat().st_size / 2**20, **measure(cmd)}
            print(json.dumps(record), flush=True)
            with journal.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            done.append(record)
            out.unlink(missing_ok=True)
    target = ROOT / "docs" / "benchmarks" / "expression_annotate_memory.json"
    target.write_text(json.dumps({"machine": "2 shared CPU cores, nice 10, other jobs running",
                                  "records": done}, indent=2) + "\n")


if __name__ == "__main__":
    main()
