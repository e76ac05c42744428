"""Throughput in one process and on Dask, as a user runs the commands: no flag (the anchor: what
a user gets by default), ``--workers 1`` and ``--workers 2``, side by side in one run on one
machine, on the same input.

* ``screen``: ``pmt dti screen`` (shipped ``davis`` model, the two example kinases, top 100) over
  the first ``--molecules`` SMILES of the MOSES test set (../shared/data), as ``.smi``;
* ``variants``: ``pmt variants score -m mpra`` over ``--snvs`` SNVs drawn (seeded, sorted) on
  the staged GRCh38 chr2 head (../shared/data/variants/reference), REF read from it, as VCF.

Each setting runs ``--repeats`` times, in turn (anchor, 1 worker, 2 workers, anchor, ...), so a
change in the machine's load hits all three alike; every run's wall time (start-up included:
what the user waits for) and the peak resident memory of the command and of each of its worker
processes, sampled every 0.1 s, are kept. The figures are ratios to the anchor of the same
repeat; every run's output is checked against the anchor's (molecules and ranks; variants: the
whole file). ``--memory-molecules M``: one more ``--workers 2`` screen of M molecules (the
MOSES SMILES repeated), for memory against input size. The client's own reading rate (the rows
it can hand out per second) is measured too, for the projection to many workers.

    python benchmarks/scale/scale.py --molecules 100000 --snvs 200000 --repeats 2 \
        --memory-molecules 1000000        # about 45 min on 2 cores
    python benchmarks/scale/scale.py --report-only

Results: docs/benchmarks/scale.md, scale.json and scale.png (``--out`` elsewhere, e.g. for a
smoke run).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MOSES = ROOT.parent / "shared" / "data" / "generative" / "moses" / "test.csv.gz"
CHR2 = ROOT.parent / "shared" / "data" / "variants" / "reference" / "chr2_1-2333275.fa.gz"
KINASES = ROOT / "data" / "examples" / "kinases.fasta"
DOCS = ROOT / "docs" / "benchmarks"
SETTINGS = {"single process": [], "single process, 1 core": [],
            "--workers 1": ["--workers", "1"], "--workers 2": ["--workers", "2"]}
#: "1 core": the single process pinned to one core (``taskset -c 0``, torch at one thread;
#: its featurizer pool then shares that core too), the compute one worker scores with
PINNED = {"single process, 1 core"}
JOBS = ("screen", "variants")


def run(cmd: list[str], pinned: bool = False) -> dict:
    """One command: wall seconds, its stderr, and the peak memory of the command and of each
    of its children (the workers of a local cluster) sampled every 0.1 s."""
    import psutil

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    pin = ["taskset", "-c", "0"] if pinned else []
    env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if pinned else {})}
    proc = subprocess.Popen([*pin, sys.executable, "-m", "pmtoolkit.cli", *cmd],
                            stderr=subprocess.PIPE, text=True, env=env)
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
        raise SystemExit(f"{' '.join(cmd[:2])} failed ({proc.returncode}): {err[-2000:]}")
    # the 1-minute load average before and after: other work on the machine shows here
    return {"wall_seconds": seconds, "load_before": load_before,
            "load_after": os.getloadavg()[0], "peak_rss_mib": peak_main,
            "peak_worker_rss_mib": peak_worker or None, "stderr_tail": err[-300:]}


def make_library(path: Path, n: int) -> int:
    """The first ``n`` MOSES test SMILES as .smi (repeated, with new ids, past its end)."""
    with gzip.open(MOSES, "rt") as fh:
        smiles = [line.split(",")[0].strip() for line in fh][1:]
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(f"{smiles[i % len(smiles)]}\tmoses{i}\n")
    return n


def make_vcf(path: Path, n: int, seed: int = 26) -> int:
    """``n`` SNVs at distinct random positions of the chr2 head, sorted, REF from the FASTA,
    ALT one of the other three bases (seeded)."""
    import numpy as np
    import pysam

    with pysam.FastaFile(str(CHR2)) as fa:
        chrom = fa.references[0]
        seq = fa.fetch(chrom).upper()
    rng = np.random.default_rng(seed)
    acgt = np.array([i for i, b in enumerate(seq) if b in "ACGT"])
    pos = np.sort(rng.choice(acgt, size=n, replace=False))
    shift = rng.integers(1, 4, size=n)
    bases = "ACGT"
    with open(path, "w") as fh:
        fh.write(f"##fileformat=VCFv4.2\n##contig=<ID={chrom},length={len(seq)}>\n"
                 "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for p, k in zip(pos, shift):
            ref = seq[p]
            alt = bases[(bases.index(ref) + k) % 4]
            fh.write(f"{chrom}\t{p + 1}\t.\t{ref}\t{alt}\t.\t.\t.\n")
    return n


def command(job: str, inputs: dict[str, Path], out: Path) -> list[str]:
    if job == "screen":
        return ["dti", "screen", "--target", str(KINASES), "--library",
                str(inputs["screen"]), "--top", "100", "-o", str(out)]
    return ["variants", "score", "-i", str(inputs["variants"]), "-f", str(CHR2), "-m", "mpra",
            "-o", str(out)]


def comparable(job: str, path: Path) -> list:
    """What must equal the anchor's: a screen's ranked molecules (the anchor runs with every
    core, the workers with their share, so a prediction's last digit may differ: see
    docs/scale.md), a scored VCF's every line."""
    text = path.read_text().splitlines()
    return [row.split(",")[:3] for row in text] if job == "screen" else text


def client_feed(inputs: dict[str, Path]) -> dict:
    """Rows per second the client reads and cuts into partitions (no scoring): the most one
    client can hand out, whatever the number of workers."""
    from pmtoolkit.chem.molecules import iter_molecule_rows
    from pmtoolkit.genomics.variants import raw_lines

    t0 = time.perf_counter()
    n = sum(len(c) for c in iter_molecule_rows(inputs["screen"], fmt="smi", chunksize=5000))
    mol = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    n = sum(1 for _ in raw_lines(inputs["variants"]))
    return {"screen_rows_per_second": mol, "variants_lines_per_second":
            n / (time.perf_counter() - t0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=100_000)
    parser.add_argument("--snvs", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-molecules", type=int, default=0)
    parser.add_argument("--jobs", nargs="+", choices=JOBS, default=list(JOBS))
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.report_only:
        return write(json.loads((args.out / "scale.json").read_text()), args.out)
    runs, memory = [], []
    with tempfile.TemporaryDirectory(prefix="pmt-scale-") as tmp:
        inputs = {"screen": Path(tmp) / "library.smi", "variants": Path(tmp) / "snvs.vcf"}
        sizes = {"screen": make_library(inputs["screen"], args.molecules),
                 "variants": make_vcf(inputs["variants"], args.snvs)}
        feed = client_feed(inputs)
        for job in args.jobs:
            for repeat in range(args.repeats):
                seen = {}
                for name, extra in SETTINGS.items():
                    suffix = "csv" if job == "screen" else "vcf"
                    out = Path(tmp) / f"{job}-{repeat}-{len(seen)}.{suffix}"
                    r = run(command(job, inputs, out) + extra, name in PINNED)
                    seen[name] = comparable(job, out)
                    runs.append({"job": job, "setting": name, "repeat": repeat,
                                 "rows": sizes[job], **r})
                    print(f"{job} repeat {repeat} {name}: {r['wall_seconds']:.1f} s, peak "
                          f"{r['peak_rss_mib']:.0f} / {r['peak_worker_rss_mib'] or 0:.0f} MiB",
                          file=sys.stderr, flush=True)
                assert all(v == seen["single process"] for v in seen.values()), \
                    f"{job}: outputs differ"
        if args.memory_molecules:
            big = Path(tmp) / "big.smi"
            for n, lib in ((args.molecules, inputs["screen"]),
                           (make_library(big, args.memory_molecules), big)):
                r = run(command("screen", {"screen": lib}, Path(tmp) / f"big-{n}.csv") +
                        SETTINGS["--workers 2"])
                memory.append({"molecules": n, **r})
                print(f"memory {n:,}: {r['wall_seconds']:.1f} s, peak {r['peak_rss_mib']:.0f}"
                      f" / {r['peak_worker_rss_mib'] or 0:.0f} MiB", file=sys.stderr,
                      flush=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M"),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "sizes": sizes, "command": " ".join(sys.argv), "client_feed": feed,
              "runs": runs, "memory": memory}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(result, indent=1) + "\n")
    return write(result, args.out)


def write(result: dict, folder: Path) -> int:
    """scale.md (+ scale.png): each setting's wall time, its ratio to the anchor of the same
    repeat, memory, and the projection."""
    import statistics

    what = {"screen": f"`pmt dti screen` (shipped `davis`, two kinases, top 100) over "
                      f"{result['sizes']['screen']:,} MOSES test SMILES",
            "variants": f"`pmt variants score -m mpra` over {result['sizes']['variants']:,} "
                        f"SNVs on the GRCh38 chr2 head (VCF out)"}
    lines = ["# Batch jobs on Dask: one process, one worker, two workers", "",
             f"Measured {result['date']} on {result['machine']} (no GPU): "
             f"`{result['command']}`. Wall time includes start-up (the local cluster's too); "
             "speed-up = the single-process run's wall time in the same repeat / this run's; "
             "every run's output was checked against the single-process run's (screen: the "
             "ranked molecules; variants: every line of the VCF). The single process is what "
             "a user gets by default (no flag; torch uses every core).", ""]
    summary = {}
    for job in ("screen", "variants"):
        runs_j = [r for r in result["runs"] if r["job"] == job]
        if not runs_j:
            continue
        anchor = {r["repeat"]: r["wall_seconds"] for r in runs_j
                  if r["setting"] == "single process"}
        lines += [f"## {job}: {what[job]}", "",
                  "| setting | wall time (s), each repeat | rows/s (mean) | speed-up vs single "
                  "process, mean ± sd (n) | peak memory, command / largest worker (MiB) |",
                  "|---|---|---:|---|---|"]
        summary[job] = {}
        for name in SETTINGS:
            rs = [r for r in runs_j if r["setting"] == name]
            ratios = [anchor[r["repeat"]] / r["wall_seconds"] for r in rs]
            spread = f" ± {statistics.stdev(ratios):.2f}" if len(ratios) > 1 else ""
            worker = max((r["peak_worker_rss_mib"] or 0) for r in rs)
            rate = statistics.mean(r["rows"] / r["wall_seconds"] for r in rs)
            summary[job][name] = {"ratio": statistics.mean(ratios), "rate": rate}
            walls = ", ".join(f"{r['wall_seconds']:.1f}" for r in rs)
            lines.append(f"| {name} | {walls}"
                         f" | {rate:,.0f} | {statistics.mean(ratios):.2f}{spread} ({len(rs)}) | "
                         f"{max(r['peak_rss_mib'] for r in rs):.0f} / "
                         f"{f'{worker:.0f}' if worker else '-'} |")
        one, two = summary[job]["--workers 1"], summary[job]["--workers 2"]
        alone = summary[job]["single process, 1 core"]
        lines += ["", f"From one worker to two: {two['rate'] / one['rate']:.2f}x (goal >= 1.8x). "
                  f"Dask's overhead at one worker: {100 * (1 - one['rate'] / alone['rate']):.0f}% "
                  "of the throughput of the single process pinned to one core (goal <= 10%; "
                  "the one worker scores on one core, with a second torch thread, while the "
                  "client reads on the other); against the default single process, which "
                  f"uses both cores: {100 * (1 - one['ratio']):.0f}%.", ""]
    if result.get("memory"):
        lines += ["## Memory against input size (`pmt dti screen --workers 2`)", "",
                  "| molecules | wall time (s) | peak memory, command / largest worker (MiB) | "
                  "1-min load before / after |",
                  "|---:|---:|---|---|"]
        for m in result["memory"]:
            lines.append(f"| {m['molecules']:,} | {m['wall_seconds']:.0f} | "
                         f"{m['peak_rss_mib']:.0f} / {m['peak_worker_rss_mib'] or 0:.0f} | "
                         f"{m['load_before']:.1f} / {m['load_after']:.1f} |")
        busy = max(m["load_after"] for m in result["memory"])
        if busy > 2.5:
            lines += ["", f"The load rose to {busy:.1f} on 2 cores during these runs: other "
                          "work shared the machine, so their wall times (and the per-worker "
                          "rate of the 1,000,000-molecule run below) are slower than an idle "
                          "machine's; the memory figures are unaffected."]
        lines.append("")
    if "screen" in summary:
        per_worker = summary["screen"]["--workers 2"]["rate"] / 2
        feed = result["client_feed"]["screen_rows_per_second"]
        lines += ["## Projection (not a measurement)", "",
                  f"At the measured {per_worker:,.0f} molecules/s per worker (one core each, "
                  "start-up included), 10^9 molecules take "
                  + ", ".join(f"{1e9 / (per_worker * n) / 3600:,.1f} h on {n} workers"
                              for n in (64, 256, 1024))
                  + f", if throughput stays linear in workers. One client reads and hands out "
                  f"{feed:,.0f} rows/s here (`.smi`, one core), so one client feeds about "
                  f"{feed / per_worker:,.0f} such workers before reading limits it; past that, "
                  "split the library into shards and run one command per shard group, or give "
                  "a Parquet folder (shards read in turn)."]
        if result.get("memory"):
            big = max(result["memory"], key=lambda m: m["molecules"])
            steady = big["molecules"] / big["wall_seconds"] / 2
            lines[-1] += (f" Over the {big['molecules']:,}-molecule run, where start-up weighs "
                          f"less, a worker scored {steady:,.0f} molecules/s: "
                          f"{1e9 / (steady * 256) / 3600:,.1f} h for 10^9 on 256 workers.")
        lines.append("")
    (folder / "scale.md").write_text("\n".join(lines) + "\n")
    _figure(result, summary, folder)
    print("\n".join(lines))
    return 0


def _figure(result: dict, summary: dict, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (job, marker), color in zip((("screen", "o"), ("variants", "s")), ("C0", "C1")):
        if job not in summary:
            continue
        one = summary[job]["--workers 1"]["rate"]
        ax.plot([1, 2], [summary[job][f"--workers {n}"]["rate"] / one for n in (1, 2)],
                marker=marker, color=color, label=f"{job}: --workers N")
        ax.axhline(summary[job]["single process"]["rate"] / one, color=color, ls=":", lw=1,
                   label=f"{job}: single process (default)")
    ax.plot([1, 2], [1, 2], color="0.6", ls="--", lw=0.8, label="linear in workers")
    ax.set(xlabel="Dask workers (one core each)", ylabel="throughput / one worker's",
           xticks=[1, 2], title=f"Throughput against workers ({result['machine']})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "scale.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
