"""Score a VCF with the ORIGINAL SpliceAI 1.3.1 (the parity anchor of issue 25, item 2).

Run it with the anchor environment's python (benchmarks/variants/setup_spliceai_env.sh):

    /tmp/spliceai-anchor/bin/python benchmarks/variants/spliceai_runner.py \\
        -I in.vcf -O out.vcf -R ref.fa[.gz] -A grch38 -D 50 -M 0 [--tsv out.tsv] [--threads 2]

Same options and the same VCF as ``spliceai -I ... -O ... -R ... -A ... -D ... -M ...``: this
script is spliceai's own ``__main__`` loop (Annotator, get_delta_scores, the same header line,
record.info['SpliceAI'] = scores), with three differences that do not change a score:

* the models are loaded through ``tf_keras`` (Keras 2; Keras 3 cannot read spliceai's HDF5 files),
  by rebinding ``spliceai.utils.load_model`` (the installed package is not modified);
* ``get_delta_scores`` is spliceai's own function, re-compiled from its installed source with one
  change: its final ``"{}|{}|{:.2f}|...".format(...)`` call goes through a wrapper that formats the
  very same arguments with the very same format string (so the VCF strings are identical) and
  also keeps the unrounded floats, which go to the TSV (``--tsv``, default ``<O>.tsv``);
  ``--verify N`` re-runs the untouched original on the first N records and checks the strings match;
* TensorFlow runs on CPU with ``--threads`` intra-/inter-op threads (default 2), and the wall time,
  model-load time and variants/s go to ``<O>.timing.json`` (``--timing``).

TSV columns: CHROM POS ID REF ALT GENE STATUS DS_AG DS_AL DS_DG DS_DL DP_AG DP_AL DP_DG DP_DL
MAX_DS WARNING. STATUS is ``scored``, ``dot`` (REF and ALT both longer than 1: spliceai writes
``ALT|GENE|.|.|.|.|.|.|.|.``), ``skipped`` (spliceai logged a warning and wrote no field: the
WARNING column has its message, e.g. near chromosome end), ``no_gene`` (no annotated transcript
contains POS) or ``alt_ignored`` (symbolic/missing ALT, no entry). One row per record, ALT and gene.
"""
from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

FORMAT = '"{}|{}|{:.2f}|{:.2f}|{:.2f}|{:.2f}|{}|{}|{}|{}".format('


def get_options(argv=None):
    # spliceai 1.3.1's own options, plus the anchor's outputs
    p = argparse.ArgumentParser(description="Original SpliceAI 1.3.1 scoring, with unrounded scores and timing")
    p.add_argument("-I", metavar="input", required=True, help="input VCF")
    p.add_argument("-O", metavar="output", required=True, help="output VCF (spliceai's own format)")
    p.add_argument("-R", metavar="reference", required=True, help="reference FASTA (pyfaidx; bgzip needs biopython)")
    p.add_argument("-A", metavar="annotation", required=True, help='"grch37", "grch38" or an annotation file')
    p.add_argument("-D", metavar="distance", nargs="?", default=50, type=int, choices=range(5000))
    p.add_argument("-M", metavar="mask", nargs="?", default=0, type=int, choices=[0, 1])
    p.add_argument("--tsv", default=None, help="unrounded delta scores (default: <O without .vcf>.tsv)")
    p.add_argument("--timing", default=None, help="timing JSON (default: <O without .vcf>.timing.json)")
    p.add_argument("--threads", type=int, default=2, help="TensorFlow intra- and inter-op threads (default 2)")
    p.add_argument("--verify", type=int, default=0, metavar="N",
                   help="re-run the untouched original get_delta_scores on the first N records and compare")
    return p.parse_args(argv)


def stem(path: str) -> str:
    for ext in (".vcf.gz", ".vcf", ".bcf"):
        if path.endswith(ext):
            return path[: -len(ext)]
    return path


def main(argv=None) -> int:
    args = get_options(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CPU anchor, even on a GPU host
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    t_start = time.perf_counter()
    import pysam
    import tensorflow as tf
    import tf_keras

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from importlib.metadata import version

    import spliceai.utils as su

    # Keras 3 (what `from keras.models import load_model` gives) cannot read the HDF5 models
    su.load_model = lambda path: tf_keras.models.load_model(path, compile=False)

    # spliceai's own get_delta_scores, with its final format call routed through _format_raw
    src = inspect.getsource(su.get_delta_scores)
    if src.count(FORMAT) != 1:
        raise SystemExit("spliceai.utils.get_delta_scores is not the 1.3.1 source this runner expects")
    raw: list[tuple] = []

    def _format_raw(*vals):
        raw.append(vals)
        return "{}|{}|{:.2f}|{:.2f}|{:.2f}|{:.2f}|{}|{}|{}|{}".format(*vals)

    ns = dict(vars(su))
    ns["_format_raw"] = _format_raw
    exec(compile(src.replace(FORMAT, "_format_raw("), su.__file__, "exec"), ns)  # noqa: S102 (spliceai's own source)
    get_delta_scores_raw = ns["get_delta_scores"]

    # capture spliceai's warnings per record (it logs why it skips one)
    class Grab(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.msgs: list[str] = []

        def emit(self, rec):
            if rec.name != "root":  # spliceai logs through the root logger; TF/Keras use their own
                return
            msg = rec.getMessage()  # e.g. "Skipping record (fasta issue): <the record line>"
            self.msgs.append(msg.split("): ", 1)[0] + ")" if msg.startswith("Skipping record (") else
                             " ".join(msg.split()))

    grab = Grab()
    logging.getLogger().addHandler(grab)

    vcf = pysam.VariantFile(args.I)
    header = vcf.header
    header.add_line('##INFO=<ID=SpliceAI,Number=.,Type=String,Description="SpliceAIv1.3.1 variant '
                    'annotation. These include delta scores (DS) and delta positions (DP) for '
                    'acceptor gain (AG), acceptor loss (AL), donor gain (DG), and donor loss (DL). '
                    'Format: ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL">')
    output = pysam.VariantFile(args.O, mode="w", header=header)

    t_load = time.perf_counter()
    ann = su.Annotator(args.R, args.A)
    load_s = time.perf_counter() - t_load

    tsv_path = args.tsv or stem(args.O) + ".tsv"
    cols = ["CHROM", "POS", "ID", "REF", "ALT", "GENE", "STATUS", "DS_AG", "DS_AL", "DS_DG", "DS_DL",
            "DP_AG", "DP_AL", "DP_DG", "DP_DL", "MAX_DS", "WARNING"]
    rows = []
    n_records = n_with_field = n_predictions = 0
    mismatches = []
    scored_s = []  # seconds per record that ran the models
    t_score = time.perf_counter()
    for record in vcf:
        n_records += 1
        raw.clear()
        grab.msgs.clear()
        t0 = time.perf_counter()
        scores = get_delta_scores_raw(record, ann, args.D, args.M)
        if raw:
            scored_s.append(time.perf_counter() - t0)
        n_predictions += len(raw)
        if n_records <= args.verify:
            orig = su.get_delta_scores(record, ann, args.D, args.M)
            if orig != scores:
                mismatches.append((record.pos, orig, scores))
        if len(scores) > 0:
            record.info["SpliceAI"] = scores
            n_with_field += 1
        output.write(record)

        base = [record.chrom, record.pos, record.id or ".", record.ref]
        warn = "; ".join(dict.fromkeys(grab.msgs))  # --verify logs the same warning twice
        if not scores:
            genes = ann.get_name_and_strand(record.chrom, record.pos)[0]
            status = "skipped" if warn else ("no_gene" if len(genes) == 0 else "alt_ignored")
            for alt in record.alts or ["."]:
                rows.append(base + [alt, ",".join(genes) or ".", status] + ["."] * 9 + [warn or "."])
            continue
        raw_iter = iter(raw)
        for s in scores:
            alt, gene, rest = s.split("|", 2)
            if rest.startswith("."):
                rows.append(base + [alt, gene, "dot"] + ["."] * 9 + [warn or "."])
                continue
            vals = next(raw_iter)
            assert vals[0] == alt and vals[1] == gene, (vals[:2], s)
            ds = [float(v) for v in vals[2:6]]
            dp = [int(v) for v in vals[6:10]]
            rows.append(base + [alt, gene, "scored"] + [repr(v) for v in ds] + dp + [repr(max(ds)), warn or "."])
    score_s = time.perf_counter() - t_score
    vcf.close()
    output.close()
    logging.getLogger().removeHandler(grab)

    with open(tsv_path, "w") as fh:
        fh.write("\t".join(cols) + "\n")
        fh.writelines("\t".join(str(x) for x in r) + "\n" for r in rows)

    wall_s = time.perf_counter() - t_start
    timing = {
        "tool": "spliceai 1.3.1 (original), models via tf_keras, CPU",
        "command": " ".join([Path(sys.executable).as_posix(), *sys.argv]),
        "input": args.I, "distance": args.D, "mask": args.M,
        "records": n_records, "records_with_spliceai_field": n_with_field,
        "scored_allele_gene_pairs": n_predictions,
        "tf_intra_op_threads": args.threads, "tf_inter_op_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "model_load_s": round(load_s, 2),
        "scoring_s": round(score_s, 2),
        "wall_s_total": round(wall_s, 2),
        "variants_per_s": round(n_records / score_s, 4) if score_s else None,
        "scored_allele_gene_pairs_per_s": round(n_predictions / score_s, 4) if score_s else None,
        "seconds_per_scored_record_median": round(statistics.median(scored_s), 3) if scored_s else None,
        "versions": {p: version(p) for p in ("spliceai", "tensorflow-cpu", "tf-keras", "numpy", "pysam",
                                             "pyfaidx", "pandas")},
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "verified_against_untouched_original": {"records": min(args.verify, n_records),
                                                "mismatches": len(mismatches)},
    }
    timing_path = args.timing or stem(args.O) + ".timing.json"
    Path(timing_path).write_text(json.dumps(timing, indent=2) + "\n")
    print(json.dumps({k: timing[k] for k in ("records", "records_with_spliceai_field", "scoring_s",
                                             "variants_per_s", "model_load_s", "wall_s_total")}))
    if mismatches:
        for m in mismatches:
            print("MISMATCH", m, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
