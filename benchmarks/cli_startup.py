"""How long `pmt --help` takes, beside the floor (a bare Python start) and what an eager
import of torch alone would cost. Target: median <= 0.3 s.

Runs every command N times, interleaved so that machine noise hits all of them alike, and
writes docs/benchmarks/cli_startup.md and .json.

    python benchmarks/cli_startup.py [--runs 30]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "benchmarks"
TARGET_S = 0.3


def commands() -> dict[str, list[str]]:
    scripts = Path(sysconfig.get_path("scripts"))
    direct = scripts / "pmt"
    cmds = {
        "pmt --help": [str(direct if direct.exists() else shutil.which("pmt")), "--help"],
        "python -m pmtoolkit.cli --help": [sys.executable, "-m", "pmtoolkit.cli", "--help"],
        "floor: python -c pass": [sys.executable, "-c", "pass"],
        "anchor: python -c 'import click'": [sys.executable, "-c", "import click"],
        "eager: python -c 'import torch'": [sys.executable, "-c", "import torch"],
    }
    on_path = shutil.which("pmt")
    if on_path and Path(on_path).resolve() != direct.resolve():
        cmds["pmt --help (via PATH shim)"] = [on_path, "--help"]
    return cmds


def measure(runs: int) -> dict[str, list[float]]:
    cmds = commands()
    times: dict[str, list[float]] = {name: [] for name in cmds}
    env = dict(os.environ)
    for name, cmd in cmds.items():  # warm the file cache once
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    for _ in range(runs):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                           check=True)
            times[name].append(time.perf_counter() - t0)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    times = measure(args.runs)
    floor = statistics.median(times["floor: python -c pass"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append({"command": name, "median_s": med,
                     "p90_s": sorted(ts)[int(0.9 * (len(ts) - 1))],
                     "x_floor": med / floor})
    pmt_median = rows[0]["median_s"]
    result = {
        "runs": args.runs, "target_s": TARGET_S, "pmt_help_median_s": pmt_median,
        "meets_target": pmt_median <= TARGET_S, "rows": rows,
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Start-up time of `pmt --help`",
        "",
        f"Target: median ≤ {TARGET_S} s. Measured {result['date']} on {result['machine']}, "
        f"{args.runs} interleaved runs each (`python benchmarks/cli_startup.py`).",
        "",
        "| command | median (s) | p90 (s) | × bare Python start |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| `{r['command']}` | {r['median_s']:.3f} | {r['p90_s']:.3f} | "
                     f"{r['x_floor']:.1f} |")
    lines += [
        "",
        f"**Result: {pmt_median:.3f} s — {'meets' if result['meets_target'] else 'MISSES'} the "
        f"target.** Command groups load lazily, so `--help` imports click and pmtoolkit's own "
        "light modules only; the `import torch` row shows what a single eager heavy import "
        "would add. A test (`tests/test_import_time.py`) keeps torch, rdkit, scanpy, deepchem "
        "and lightning out of `--help`.",
        "",
    ]
    (OUT / "cli_startup.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
