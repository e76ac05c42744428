"""Virtual-screening throughput and memory: ``pmt dti screen`` over 10k and 100k molecules.

The library is the MOSES test set (drug-like molecules; the first 100,000 SMILES, and the
first 10,000) screened against the two example kinases (ABL1, EGFR) with the shipped DAVIS
model, through the command line, as a user runs it. The command's resident memory is sampled
every 0.1 s: streaming in chunks should keep the peak the same for 10x the molecules.

    python benchmarks/dti/screen.py        # about 10 min on one core

Results: docs/benchmarks/dti_screen.md, dti_screen.json, dti_screen.png.
"""
from __future__ import annotations

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
DOCS = ROOT / "docs" / "benchmarks"
SIZES = (10_000, 100_000)


def run_screen(library: Path, output: Path) -> dict:
    """Run the CLI, sampling its RSS; wall time, peak RSS, the RSS trace, its own rate."""
    import psutil

    cmd = [sys.executable, "-m", "pmtoolkit.cli", "dti", "screen", "--target",
           str(ROOT / "data" / "examples" / "kinases.fasta"), "--library", str(library),
           "--top", "100", "-o", str(output)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    trace = []
    while proc.poll() is None:
        try:
            trace.append((time.perf_counter() - t0, ps.memory_info().rss / 2**20))
        except psutil.Error:
            break
        time.sleep(0.1)
    err = proc.stderr.read()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"screen failed ({proc.returncode}): {err[-2000:]}")
    line = next(x for x in err.splitlines() if "molecules/s" in x)
    rate = float(re.search(r"\(([\d,.]+) molecules/s", line).group(1).replace(",", ""))
    return {"wall_seconds": seconds, "peak_rss_mib": max(m for _, m in trace),
            "molecules_per_second": rate, "message": line.strip(), "trace": trace}


def main() -> int:
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    if "--report-only" in sys.argv:
        return write(json.loads((DOCS / "dti_screen.json").read_text()))
    with gzip.open(MOSES, "rt") as fh:
        smiles = [line.split(",")[0].strip() for line in fh][1:]
    rows = []
    with tempfile.TemporaryDirectory(prefix="pmt-screen-") as tmp:
        for n in SIZES:
            lib = Path(tmp) / f"lib{n}.smi"
            lib.write_text("".join(f"{s}\tmoses{i}\n" for i, s in enumerate(smiles[:n])))
            r = run_screen(lib, Path(tmp) / f"hits{n}.csv")
            r["molecules"] = n
            rows.append(r)
            print(f"{n:,}: {r['molecules_per_second']:,.0f} molecules/s, peak RSS "
                  f"{r['peak_rss_mib']:.0f} MiB, {r['wall_seconds']:.0f} s wall",
                  file=sys.stderr, flush=True)
    result = {"date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": threads,
              "command": "python benchmarks/dti/screen.py", "rows": rows}
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "dti_screen.json").write_text(json.dumps(result, indent=1) + "\n")
    return write(result)


def write(result: dict) -> int:
    """docs/benchmarks/dti_screen.md and .png from the measured rows."""
    rows, threads = result["rows"], result["threads"]
    from pmtoolkit.core.plots import figure

    with figure(DOCS / "dti_screen.png", size=(6.0, 3.2)) as (_, ax):
        for r in rows:
            t, m = zip(*r["trace"])
            ax.plot(t, m, label=f"{r['molecules']:,} molecules")
        ax.set_xlabel("seconds")
        ax.set_ylabel("resident memory (MiB)")
        ax.set_ylim(bottom=0)
        ax.legend(frameon=False, fontsize=8)
    small, big = rows
    lines = ["# Virtual screening: throughput and memory", "",
             f"Measured {result['date']} on {result['machine']}, {threads} thread(s); "
             f"`{result['command']}`: `pmt dti screen` with the shipped `davis` model against "
             "the two example kinases (ABL1, EGFR), top 100 each, on the first 10,000 and "
             "100,000 SMILES of the MOSES test set (chunks of 5,000).", "",
             "| molecules | molecules/s (scoring) | wall time (s, incl. start-up) | "
             "peak memory (MiB) |", "|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['molecules']:,} | {r['molecules_per_second']:,.0f} | "
                     f"{r['wall_seconds']:.0f} | {r['peak_rss_mib']:.0f} |")
    settled = sorted(m for t, m in big["trace"] if t > big["wall_seconds"] / 2)
    lines += ["", f"Ten times the molecules, peak memory x{big['peak_rss_mib'] / small['peak_rss_mib']:.2f}: "
              "the library is read, featurised and scored a chunk at a time and only each "
              "target's best 100 are kept. Between chunks the process returns to "
              f"~{settled[len(settled) // 10]:.0f} MiB; each peak is one 5,000-molecule "
              "chunk's graph tensors going through the model, and the peaks do not grow "
              "over the run. (`--chunk-size 1000` on the 10,000: peak 768 MiB at 919 "
              "molecules/s, measured once by hand.)", "",
              "![memory over time](dti_screen.png)", ""]
    (DOCS / "dti_screen.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
