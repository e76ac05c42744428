"""How torch's OpenMP threads should wait: the setting pmtoolkit picks at import.

libgomp threads spin at every barrier before they sleep. Spinning long (libgomp's default,
300k spins) is fastest on an idle machine and 5-10x slower when another process shares the
cores; sleeping at once (OMP_WAIT_POLICY=PASSIVE) is robust but slow on an idle machine.
This measures D-MPNN training steps (Lipophilicity, batch 64) for each setting, alone and with
two identical processes sharing the cores, at two model sizes.

    python benchmarks/threads.py            # about 6 minutes on 2 cores

Results: docs/benchmarks/threads.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "molecules" / "Lipophilicity.csv"
DOCS = ROOT / "docs" / "benchmarks"

SETTINGS = {
    "libgomp default (300k spins)": {},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=1000 (pmtoolkit)": {"GOMP_SPINCOUNT": "1000"},
}

WORKER = r"""
import json, os, sys, time
import torch  # before pmtoolkit, so the environment given here is the one libgomp reads
from pmtoolkit.chem.featurizer import PackedGraphs
from pmtoolkit.property.config import PropertyConfig
from pmtoolkit.property.data import read_property_data
from pmtoolkit.property.model import Scaler, build_network, graph_loader

hidden, n_mols, epochs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data, _ = read_property_data(sys.argv[1], smiles_column="smiles", target_columns=["exp"])
data = data.subset(range(n_mols))
torch.manual_seed(0)
net = build_network(PropertyConfig(hidden_size=hidden, ffn_hidden_size=hidden), 1, 0)
loader = graph_loader(PackedGraphs(data.codes()), Scaler.fit(data.y).transform(data.y), None, 64,
                 True, 0)
opt = torch.optim.Adam(net.parameters(), 1e-3)
steps, t0 = 0, time.perf_counter()
for _ in range(epochs):
    for g, y, mask, _extra in loader:
        loss = (((net(g) - y) ** 2) * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
print(json.dumps({"ms_per_step": 1000 * (time.perf_counter() - t0) / steps}))
"""


def measure(env_extra: dict, hidden: int, copies: int, n_mols: int, epochs: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(env_extra)
    cmd = [sys.executable, "-c", WORKER, str(DATA), str(hidden), str(n_mols), str(epochs)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(copies)]
    times = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"worker failed ({p.returncode})")
        times.append(json.loads(out.strip().splitlines()[-1])["ms_per_step"])
    return sum(times) / len(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--molecules", type=int, default=1600)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for hidden in (300, 64):
        for name, env in SETTINGS.items():
            alone = measure(env, hidden, 1, args.molecules, args.epochs)
            shared = measure(env, hidden, 2, args.molecules, args.epochs)
            rows.append({"setting": name, "hidden": hidden, "alone_ms": alone,
                         "shared_ms": shared})
            print(f"hidden {hidden:3d}  {name:34s} alone {alone:6.1f} ms/step   "
                  f"two processes {shared:6.1f} ms/step", flush=True)
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "threads.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "# OpenMP waiting policy", "",
        f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores; "
        f"D-MPNN training steps on {args.molecules} Lipophilicity molecules, batch 64 "
        "(`python benchmarks/threads.py`). *Alone*: one training process; *two processes*: "
        "two identical ones at once on the same cores (mean of the two).", "",
        "| hidden size | setting | alone (ms/step) | two processes (ms/step) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['hidden']} | {r['setting']} | {r['alone_ms']:.1f} | "
                     f"{r['shared_ms']:.1f} |")
    lines += ["", "pmtoolkit sets `GOMP_SPINCOUNT=1000` at import unless `OMP_WAIT_POLICY` or "
              "`GOMP_SPINCOUNT` is already set.", ""]
    (DOCS / "threads.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
