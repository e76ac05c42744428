"""Screening throughput in one process and on Dask: ``pmt dti screen`` as a user runs it, with
no flag (the anchor: what a user gets by default), ``--workers 1`` and ``--workers 2``, side by
side in one run on one machine, on the same library.

The library is the first ``--molecules`` SMILES of the MOSES test set (../shared/data), as
``.smi``, screened with the shipped ``davis`` model against the two example kinases, top 100
each. Each setting runs ``--repeats`` times, in turn (anchor, 1 worker, 2 workers, anchor, ...),
so a change in the machine's load hits all three alike; every run's wall time (start-up
included: what the user waits for), and the peak resident memory of the command and of its
worker processes, sampled every 0.1 s, are kept. The figures are ratios to the anchor of the
same repeat, and the hits of every run are checked to be the anchor's (at the workers' thread
count the bytes are the same; see docs/scale.md).

    python benchmarks/scale/screen.py --molecules 100000 --repeats 3   # about 30 min, 2 cores
    python benchmarks/scale/screen.py --report-only

Results: docs/benchmarks/scale.md and scale.json (``--out`` elsewhere, e.g. for a smoke run).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MOSES = ROOT.parent / "shared" / "data" / "generative" / "moses" / "test.csv.gz"
KINASES = ROOT / "data" / "examples" / "kinases.fasta"
DOCS = ROOT / "docs" / "benchmarks"
SETTINGS = {"single process": [], "--workers 1": ["--workers", "1"],
            "--workers 2": ["--workers", "2"]}


def run(library: Path, output: Path, extra: list[str]) -> dict:
    """One ``pmt dti screen``: wall seconds, and the peak memory of the command and of its
    children (the workers of a local cluster) sampled every 0.1 s."""
    import psutil

    cmd = [sys.executable, "-m", "pmtoolkit.cli", "dti", "screen", "--target", str(KINASES),
           "--library", str(library), "--top", "100", "-o", str(output), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    main = psutil.Process(proc.pid)
    peak_main = peak_worker = 0.0
    while proc.poll() is None:
        try:
            peak_main = max(peak_main, main.memory_info().rss / 2**20)
            for child in main.children(recursive=True):
                peak_worker = max(peak_worker, child.memory_info().rss / 2**20)
        except psutil.Error:
            pass
        time.sleep(0.1)
    err = proc.stderr.read()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"screen failed ({proc.returncode}): {err[-2000:]}")
    line = next(x for x in err.splitlines() if "molecules/s" in x)
    rate = float(re.search(r"\(([\d,.]+) molecules/s", line).group(1).replace(",", ""))
    return {"wall_seconds": seconds, "molecules_per_second_reported": rate,
            "peak_rss_mib": peak_main, "peak_worker_rss_mib": peak_worker or None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.report_only:
        return write(json.loads((args.out / "scale.json").read_text()), args.out)
    with gzip.open(MOSES, "rt") as fh:
        smiles = [line.split(",")[0].strip() for line in fh][1:args.molecules + 1]
    runs = []
    with tempfile.TemporaryDirectory(prefix="pmt-scale-") as tmp:
        library = Path(tmp) / "library.smi"
        library.write_text("".join(f"{s}\tmoses{i}\n" for i, s in enumerate(smiles)))
        for repeat in range(args.repeats):
            hits = {}
            for name, extra in SETTINGS.items():
                out = Path(tmp) / f"hits-{repeat}-{len(hits)}.csv"
                r = run(library, out, extra)
                hits[name] = out.read_bytes()
                runs.append({"setting": name, "repeat": repeat, **r})
                print(f"repeat {repeat} {name}: {r['wall_seconds']:.1f} s", file=sys.stderr,
                      flush=True)
            # the single-process anchor runs with every core, the workers with their share:
            # the hits may differ in a last digit (docs/scale.md); the molecules must not
            ranked = {k: [row.split(",")[:3] for row in v.decode().splitlines()]
                      for k, v in hits.items()}
            assert all(v == ranked["single process"] for v in ranked.values()), "hits differ"
    result = {"date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "molecules": len(smiles), "command": " ".join(sys.argv), "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(result, indent=1) + "\n")
    return write(result, args.out)


def write(result: dict, folder: Path) -> int:
    """scale.md: each setting's wall time and its ratio to the anchor of the same repeat."""
    import statistics

    anchor = {r["repeat"]: r["wall_seconds"] for r in result["runs"]
              if r["setting"] == "single process"}
    intro = (f"Measured {result['date']} on {result['machine']}: `{result['command']}`; "
             f"`pmt dti screen` (shipped `davis` model, two example kinases, top 100) over the "
             f"first {result['molecules']:,} SMILES of the MOSES test set. Wall time includes "
             "start-up (the local cluster's too); speed-up = the single-process run's wall "
             "time in the same repeat / this run's.")
    header = ("| setting | wall time (s), each repeat | speed-up vs single process | "
              "peak memory, command / each worker (MiB) |")
    lines = ["# Screening on Dask: one process, one worker, two workers", "", intro, "",
             header, "|---|---|---|---|"]
    for name in SETTINGS:
        runs = [r for r in result["runs"] if r["setting"] == name]
        ratios = [anchor[r["repeat"]] / r["wall_seconds"] for r in runs]
        spread = f" ± {statistics.stdev(ratios):.2f}" if len(ratios) > 1 else ""
        worker = max((r["peak_worker_rss_mib"] or 0) for r in runs)
        walls = ", ".join(f"{r['wall_seconds']:.0f}" for r in runs)
        lines.append(f"| {name} | {walls} | {statistics.mean(ratios):.2f}{spread} | "
                     f"{max(r['peak_rss_mib'] for r in runs):.0f} / "
                     f"{f'{worker:.0f}' if worker else '-'} |")
    (folder / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
