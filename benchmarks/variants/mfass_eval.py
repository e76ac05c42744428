"""SpliceAI on measured splicing: MFASS (Cheung et al. 2019, Mol Cell 73:183), issue 25 item 3.

Each MFASS SNV is scored on its own 170-nt construct (upstream intron + exon + downstream
intron, as synthesised), given alone: the construct with 5,000 N either side (SpliceAI's full
context), the wild-type construct as the reference and the mutant as the alternative, both in
transcript orientation. No genome around it, no minigene/reporter flanks (the data set does not
give them), no annotation masking. Three scorers:

* ``pmt``: pmtoolkit's torch SpliceAI (``SpliceAI.predict_padded``: the exact padded forward);
* ``original``: the original SpliceAI 1.3.1 Keras models (tf_keras, in their own venv), fed the
  same N-padded one-hot input with spliceai's own ``one_hot_encode``, mean of the five models;
* ``splice``: pmtoolkit's old 60-nt UCI splice-junction CNN, scored exactly as ``pmt variants
  score -m splice`` does (its recommended --scan 20: windows centred within 20 nt of the
  variant, both strands averaged; per class the window where |alt - ref| is largest).

Data orientation (asserted in :func:`load`): ``original_seq`` is NOT the wild type. It is the
mutant construct in transcript orientation (the ALT allele, complemented on the minus strand,
sits at ``rel_position``; the exon starts after the upstream intron, which is ``intron1_len`` on
the plus strand and ``intron2_len`` on the minus strand, where the lengths are in genomic
order); ``sequence`` is the same mutant, reverse-complemented in ~28% of rows. The wild type is
the mutant with the REF allele put back; every mutant of an exon gives the same one.

    python benchmarks/variants/mfass_eval.py speed        # padded vs plain forward, 1 thread
    nice -n 10 python benchmarks/variants/mfass_eval.py pmt      # resumable, chunked cache
    python benchmarks/variants/mfass_eval.py splice       # old model, every variant
    python benchmarks/variants/mfass_eval.py export-original     # the original's subset
    nice -n 10 /tmp/spliceai-anchor/bin/python benchmarks/variants/mfass_eval.py original
    python benchmarks/variants/mfass_eval.py report       # docs/benchmarks/mfass.{md,json,png}

Cache: ``$MFASS_CACHE`` (default /tmp/mfass_cache); never committed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "variants" / "splice"
MFASS = DATA / "mfass" / "mfass_snv_mutants_hg19_hg38.tsv.gz"
VEXSEQ = DATA / "vexseq"
CACHE = Path(os.environ.get("MFASS_CACHE", "/tmp/mfass_cache"))
DOCS = ROOT / "docs" / "benchmarks"
FLANK = 5000
#: the pmt subset: uniform over variants, seeded, sized from the measured cost (see the doc):
#: the first N_PMT of a seeded draw of N_DRAW (first sized for a free core; cut to N_PMT, before
#: any score was computed, when the two cores turned out to be shared with other work)
SEED = 25
#: the cost measured before the draw (one exon's batch of 14 sequences, five models, one thread)
SIZING_S_PER_SEQUENCE = 0.177
N_DRAW = 14_000
N_PMT = 8_000
#: the original's subset, drawn from the N_DRAW draw (pmt scores it separately: pmt-raw)
N_ORIGINAL = 200
EXONS_PER_CHUNK = 40
DISTANCES = (50, None)  # SpliceAI's default +-50 nt, and the whole construct
CUTOFFS = (0.2, 0.5, 0.8)
N_BOOT = int(os.environ.get("MFASS_BOOT", "1000"))
_COMP = str.maketrans("ACGTN", "TGCAN")


def revcomp(s: str) -> str:
    return s.translate(_COMP)[::-1]


# ----------------------------------------------------------------------------- data

def load():
    """MFASS SNVs with ``wt`` and ``mut`` (170 nt, transcript orientation), ``pos0`` (0-based
    variant position in them), ``ref_t``/``alt_t`` (alleles in transcript orientation),
    ``up`` (upstream intron length: the exon is ``[up, up + exon_len)``) and ``y``
    (strong_lof as 0/1, NaN where NA). Asserts the orientation described in the module doc."""
    import pandas as pd

    d = pd.read_csv(MFASS, sep="\t")
    minus = (d.strand == "-").to_numpy()
    assert set(d.strand) == {"+", "-"} and (d.original_seq.str.len() == 170).all()
    assert (d.intron1_len + d.exon_len + d.intron2_len == 170).all()
    # rel_position is the 1-based position in transcript orientation
    tpos = np.where(minus, d.end - d.snp_position + 1, d.snp_position - d.start + 1)
    assert (tpos == d.rel_position).all()
    d["ref_t"] = np.where(minus, d.ref_allele.str.translate(_COMP), d.ref_allele)
    d["alt_t"] = np.where(minus, d.alt_allele.str.translate(_COMP), d.alt_allele)
    d["pos0"] = d.rel_position - 1
    d["mut"] = d.original_seq
    at = np.array([s[p] for s, p in zip(d.mut, d.pos0)])
    assert (at == d.alt_t).all(), "original_seq must carry the ALT at rel_position"
    # `sequence` is the same mutant, some rows reverse-complemented
    same = (d.sequence == d.mut).to_numpy()
    flipped = (d.sequence.map(revcomp) == d.mut).to_numpy()
    assert (same | flipped).all()
    d["wt"] = [s[:p] + r + s[p + 1:] for s, p, r in zip(d.mut, d.pos0, d.ref_t)]
    assert (d.groupby("ensembl_id").wt.nunique() == 1).all(), "one wild type per exon"
    d["up"] = np.where(minus, d.intron2_len, d.intron1_len)
    ag = np.array([s[u - 2:u] == "AG" for s, u in zip(d.wt, d.up)])
    gt = np.array([s[u + e:u + e + 2] == "GT" for s, u, e in zip(d.wt, d.up, d.exon_len)])
    assert ag.mean() > 0.98 and gt.mean() > 0.97, (ag.mean(), gt.mean())
    lab = np.where(d.pos0 < d.up, "upstr_intron",
                   np.where(d.pos0 < d.up + d.exon_len, "exon", "downstr_intron"))
    assert (lab == d.label).all()
    d["y"] = d.strong_lof.map({True: 1.0, False: 0.0, "True": 1.0, "False": 0.0})
    d.attrs["checks"] = {
        "rows": len(d), "exons": int(d.ensembl_id.nunique()),
        "original_seq_is_mutant_in_transcript_orientation": True,
        "sequence_equals_original_seq": int(same.sum()),
        "sequence_is_reverse_complement_of_original_seq": int(flipped.sum()),
        "wild_type_reconstructed_one_per_exon": True,
        "AG_before_exon_fraction": round(float(ag.mean()), 4),
        "GT_after_exon_fraction": round(float(gt.mean()), 4),
        "label_matches_position": True}
    return d


def _draw(d) -> np.ndarray:
    """A seeded uniform draw of N_DRAW variants (row indices), in the order drawn."""
    return np.random.default_rng(SEED).choice(len(d), size=min(N_DRAW, len(d)), replace=False)


def pmt_subset(d) -> np.ndarray:
    """Row indices of the pmt subset (sorted), drawn before any score was looked at."""
    return np.sort(_draw(d)[:N_PMT])


def pmt_rows(d, which: str) -> np.ndarray:
    """The variants pmt scores: ``all`` of them (the result), or the 8,000-variant ``subset``
    (the first, superseded result, kept reproducible)."""
    return np.arange(len(d)) if which == "all" else pmt_subset(d)


def pmt_dir(which: str) -> Path:
    """Chunk cache of a set; the chunks of ``all`` are its own (exons ordered by the same seeded
    permutation of all exons, so a stopped run resumes where it was)."""
    return CACHE / ("pmt_all" if which == "all" else "pmt")


def original_subset(d) -> np.ndarray:
    rng = np.random.default_rng(SEED + 1)
    return np.sort(rng.choice(np.sort(_draw(d)), size=N_ORIGINAL, replace=False))


def chunks(d, rows: np.ndarray) -> list[list[str]]:
    """The exons of ``rows`` in a seeded random order, EXONS_PER_CHUNK a chunk: the chunks
    done at any time are the subset's variants in a random set of exons."""
    exons = sorted(set(d.ensembl_id.iloc[rows]))
    order = np.random.default_rng(SEED + 2).permutation(len(exons))
    exons = [exons[i] for i in order]
    return [exons[i:i + EXONS_PER_CHUNK] for i in range(0, len(exons), EXONS_PER_CHUNK)]


# ----------------------------------------------------------------------------- scores

def delta_scores(y_ref: np.ndarray, y_alt: np.ndarray, pos0: int, distance: int | None):
    """DS_AG, DS_AL, DS_DG, DS_DL of (L, 3) predictions over the construct positions within
    ``distance`` of ``pos0`` (None: the whole construct)."""
    lo, hi = (0, len(y_ref)) if distance is None else \
        (max(pos0 - distance, 0), min(pos0 + distance + 1, len(y_ref)))
    da = y_alt[lo:hi, 1] - y_ref[lo:hi, 1]
    dd = y_alt[lo:hi, 2] - y_ref[lo:hi, 2]
    return float(da.max()), float(-da.min()), float(dd.max()), float(-dd.min())


def score_rows(y_ref: np.ndarray, y_alt: np.ndarray, pos0: int, up: int, exon_len: int) -> dict:
    """The numbers kept per variant: four delta scores at each distance, their maximum, and
    the change of the exon's own acceptor (first exon base) and donor (last exon base)."""
    out = {}
    for dist in DISTANCES:
        tag = "all" if dist is None else str(dist)
        ds = delta_scores(y_ref, y_alt, pos0, dist)
        out.update({f"{k}_{tag}": v for k, v in zip(("ag", "al", "dg", "dl"), ds)})
        out[f"max_{tag}"] = max(ds)
    out["d_acc_exon"] = float(y_alt[up, 1] - y_ref[up, 1])
    out["d_don_exon"] = float(y_alt[up + exon_len - 1, 2] - y_ref[up + exon_len - 1, 2])
    return out


# ----------------------------------------------------------------------------- pmt

def _onehot(seqs):
    from pmtoolkit.genomics.spliceai import one_hot

    return np.stack([one_hot(s) for s in seqs])


def cmd_speed(args) -> None:
    """predict_padded vs predict on the explicitly N-padded input, one thread, one exon's
    batch (a reference and 13 variants of 170 nt)."""
    import torch

    from pmtoolkit.genomics.spliceai import SpliceAI

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    wt = "".join(rng.choice(list("ACGT"), 170))
    seqs = [wt] + [wt[:p] + ("A" if wt[p] != "A" else "G") + wt[p + 1:]
                   for p in rng.choice(170, 13, replace=False)]
    model = SpliceAI()
    x = _onehot(seqs)
    xp = _onehot(["N" * FLANK + s + "N" * FLANK for s in seqs])
    model.predict_padded(x[:2])
    times = {"padded": [], "plain": []}
    for _ in range(args.repeats):
        t = time.perf_counter()
        a = model.predict_padded(x, batch_size=14)
        times["padded"].append(time.perf_counter() - t)
        t = time.perf_counter()
        b = model.predict(xp, batch_size=14)
        times["plain"].append(time.perf_counter() - t)
    res = {"sequences": len(seqs), "length": 170, "threads": 1, "repeats": args.repeats,
           "padded_s": round(min(times["padded"]), 3), "plain_s": round(min(times["plain"]), 3),
           "speedup": round(min(times["plain"]) / min(times["padded"]), 2),
           "padded_s_per_sequence_5_models": round(min(times["padded"]) / len(seqs), 4),
           "max_abs_difference": float(np.abs(a - b).max()),
           "work_ratio_multiply_adds": round(_work(170, padded=False) / _work(170, padded=True),
                                             2),
           "banded_snv_work_fraction": round(_work(170, True, snv_at=85)
                                             / _work(170, padded=True), 3)}
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "speed.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


def _work(length: int, padded: bool, snv_at: int | None = None) -> int:
    """Multiply-adds of the dilated convolutions of one model on one sequence: the plain
    unpadded network on length + 10000, or the padded forward's widths; with ``snv_at`` (a
    0-based position) only the positions of the padded forward that a substitution there
    changes (the least any banded substitution pass could compute)."""
    from pmtoolkit.genomics.spliceai import GROUPS, UNITS_PER_GROUP

    total, r = 0, 0
    for ks, dil in GROUPS:
        k = dil * (ks - 1) // 2
        for _ in range(2 * UNITS_PER_GROUP):
            r += k
            m = min(r, FLANK - r)
            width = length + 2 * m if padded else length + 2 * (FLANK - r)
            if snv_at is not None:
                width = min(snv_at + r, length - 1 + m) - max(snv_at - r, -m) + 1
            total += width * ks
    return total * 32 * 32


def cmd_pmt(args) -> None:
    """pmt SpliceAI on the pmt subset, one exon (wild type + its variants) per batch, chunks
    of exons to CACHE/pmt/chunk_NNN.tsv (skipped when present: resumable)."""
    import pandas as pd
    import torch

    from pmtoolkit.genomics.spliceai import SpliceAI

    torch.set_num_threads(args.threads)
    d = load()
    rows = pmt_rows(d, args.set)
    sub = d.iloc[rows]
    out = pmt_dir(args.set)
    out.mkdir(parents=True, exist_ok=True)
    model = SpliceAI()
    todo = list(enumerate(chunks(d, rows)))
    for c, exons in (todo[::-1] if args.reverse else todo):  # --reverse: a second worker
        path = out / f"chunk_{c:03d}.tsv"
        if path.exists():
            continue
        t0 = time.perf_counter()
        recs, n_seq = [], 0
        for eid in exons:
            e = sub[sub.ensembl_id == eid]
            y = model.predict_padded(_onehot([e.wt.iloc[0], *e.mut]), batch_size=32)
            n_seq += len(y)
            for (i, r), ya in zip(e.iterrows(), y[1:]):
                recs.append({"row": i, "id": r.id, **score_rows(y[0], ya, r.pos0, r.up,
                                                                r.exon_len)})
        secs = time.perf_counter() - t0
        frame = pd.DataFrame(recs)
        frame["chunk_s"], frame["chunk_sequences"] = secs, n_seq
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        frame.to_csv(tmp, sep="\t", index=False)
        tmp.rename(path)
        print(f"chunk {c}: {len(exons)} exons, {len(recs)} variants, {n_seq} sequences, "
              f"{secs:.1f} s ({secs / n_seq:.3f} s/sequence)", flush=True)


def cmd_pmt_raw(args) -> None:
    """pmt's raw predictions on the original's subset (for the difference table)."""
    import torch

    from pmtoolkit.genomics.spliceai import SpliceAI

    torch.set_num_threads(args.threads)
    d = load()
    rows = original_subset(d)
    model = SpliceAI()
    ref, alt = [], []
    for i in rows:
        r = d.iloc[i]
        y = model.predict_padded(_onehot([r.wt, r.mut]))
        ref.append(y[0])
        alt.append(y[1])
    np.savez(CACHE / "pmt_raw_original_subset.npz", rows=rows, ref=np.stack(ref),
             alt=np.stack(alt))


# ----------------------------------------------------------------------------- old model

class _Constructs:
    """A reference whose contigs are the constructs; N beyond their ends (as pmt's Reference)."""

    def __init__(self, seqs: dict[str, str]):
        self.seqs = seqs

    def fetch(self, chrom: str, start: int, end: int) -> str:
        s = self.seqs[chrom]
        lo, hi = max(start, 0), min(end, len(s))
        core = s[lo:hi] if hi > lo else ""
        return "N" * (lo - start) + core + "N" * max(end - max(hi, start), 0)


def old_model_scores(wt: dict[str, str], variants: list[tuple[str, int, str, str]]):
    """(probability score, log-odds score, signed EI, signed IE) per variant with pmt's
    VariantScorer (the code behind pmt variants score) and the model's recommended scan."""
    from pmtoolkit.genomics.run import load as load_model
    from pmtoolkit.genomics.score import VariantScorer
    from pmtoolkit.genomics.variants import Variant

    model = load_model("splice")
    scan = int(model.recommended_scan)
    scorer = VariantScorer(model, _Constructs(wt), strands="both", scan=scan)
    vs = [Variant(c, p, r, a) for c, p, r, a in variants]
    s = scorer.score(vs)
    t = list(model.targets)
    cols = [t.index("EI"), t.index("IE")]  # donor (exon-intron), acceptor (intron-exon)
    prob = np.abs(s.diff[:, cols]).max(1)
    logodds = np.abs(s.logodds[:, cols]).max(1)
    return prob, logodds, s.diff[:, cols[0]], s.diff[:, cols[1]], scan


def cmd_splice(args) -> None:
    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    d = load()
    rows = np.arange(len(d))  # every variant (a superset of what the others score)
    sub = d.iloc[rows]
    wt = dict(zip(sub.ensembl_id, sub.wt))
    t0 = time.perf_counter()
    prob, lo, ei, ie, scan = old_model_scores(
        wt, list(zip(sub.ensembl_id, sub.pos0 + 1, sub.ref_t, sub.alt_t)))
    secs = time.perf_counter() - t0
    pd.DataFrame({"row": rows, "id": sub.id, "splice_prob": prob,
                  "splice_logodds": lo, "d_EI": ei, "d_IE": ie}).to_csv(
        CACHE / "splice.tsv", sep="\t", index=False)
    (CACHE / "splice_timing.json").write_text(json.dumps(
        {"variants": len(rows), "seconds": round(secs, 1), "scan": scan,
         "threads": args.threads}))
    print(f"old splice model: {len(rows)} variants in {secs:.1f} s")


# ----------------------------------------------------------------------------- original

def cmd_export_original(args) -> None:
    d = load()
    rows = original_subset(d)
    sub = d.iloc[rows][["ensembl_id", "id", "wt", "mut"]].assign(row=rows)
    CACHE.mkdir(parents=True, exist_ok=True)
    sub.to_csv(CACHE / "original_input.tsv", sep="\t", index=False)
    print(f"{len(sub)} variants of {sub.ensembl_id.nunique()} exons -> "
          f"{CACHE / 'original_input.tsv'}")


def cmd_original(args) -> None:
    """Run with the anchor venv's python: the original Keras models on the same N-padded
    constructs (spliceai's own one_hot_encode; mean of the five models as its
    get_delta_scores takes it), one exon's wild type + variants per batch, one thread."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import csv

    import tensorflow as tf
    import tf_keras
    from pkg_resources import resource_filename
    from spliceai.utils import one_hot_encode

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    models = [tf_keras.models.load_model(resource_filename(
        "spliceai", f"models/spliceai{i}.h5"), compile=False) for i in range(1, 6)]
    with open(CACHE / "original_input.tsv") as fh:
        items = list(csv.DictReader(fh, delimiter="\t"))
    out = CACHE / "original"
    out.mkdir(parents=True, exist_ok=True)
    by_exon: dict[str, list] = {}
    for it in items:
        by_exon.setdefault(it["ensembl_id"], []).append(it)
    pad = "N" * FLANK
    for eid, its in sorted(by_exon.items()):
        path = out / f"{eid}.npz"
        if path.exists():
            continue
        t0 = time.perf_counter()
        seqs = [its[0]["wt"]] + [it["mut"] for it in its]
        x = np.stack([one_hot_encode(pad + s + pad) for s in seqs])
        y = np.mean([m.predict(x, verbose=0) for m in models], axis=0)
        secs = time.perf_counter() - t0
        np.savez(path.with_suffix(".tmp.npz"), rows=np.array([int(it["row"]) for it in its]),
                 ref=y[0], alt=y[1:], seconds=secs, sequences=len(seqs))
        os.replace(path.with_suffix(".tmp.npz"), path)
        print(f"{eid}: {len(seqs)} sequences, {secs:.1f} s", flush=True)


# ----------------------------------------------------------------------------- Vex-seq

def vexseq(d) -> dict:
    """Vex-seq variants (GRCh37, no sequence) that fall inside an MFASS construct (whose hg19
    span and sequence MFASS gives): scored on that construct alone, as MFASS."""
    import pandas as pd
    from scipy.stats import spearmanr

    from pmtoolkit.genomics.spliceai import SpliceAI

    tr = pd.read_csv(VEXSEQ / "HepG2_delta_PSI_CAGI_training.csv")
    te = pd.read_csv(VEXSEQ / "HepG2_delta_PSI_CAGI_testing.csv").merge(
        pd.read_csv(VEXSEQ / "Vexseq_HepG2_delta_PSI_CAGI_test_true.tsv", sep="\t")[
            ["ID", "HepG2_delta_psi"]], on="ID")
    v = pd.concat([tr.assign(set="training"), te.assign(set="test")], ignore_index=True)
    ex = d.drop_duplicates("ensembl_id")
    hits, rejects = [], []
    for _, r in ex.iterrows():
        vv = v[(v.seqnames == r.chr) & (v.hg19_variant_position >= r.start)
               & (v.hg19_variant_position <= r.end)]
        for _, x in vv.iterrows():
            genomic = r.wt if r.strand == "+" else revcomp(r.wt)
            off = x.hg19_variant_position - r.start
            if len(x.reference) != 1 or len(x.variant) != 1:
                rejects.append((x.ID, "not an SNV"))
            elif genomic[off] != x.reference:
                why = f"REF {x.reference} but the MFASS construct has {genomic[off]} there"
                rejects.append((x.ID, why))
            else:
                pos0 = off if r.strand == "+" else 169 - off
                alt = x.variant if r.strand == "+" else x.variant.translate(_COMP)
                hits.append({"ID": x.ID, "set": x.set, "exon": r.ensembl_id, "pos0": pos0,
                             "alt": alt, "dpsi": x.HepG2_delta_psi,
                             "vex_exon": f"{x.seqnames}:{x.start}-{x.end}{x.strand}",
                             "mfass_exon_matches": bool(
                                 (x.start - r.start == (r.up if r.strand == "+" else
                                                        170 - r.up - r.exon_len))
                                 and x.end - x.start + 1 == r.exon_len)})
    h = pd.DataFrame(hits)
    model = SpliceAI()
    wt = dict(zip(ex.ensembl_id, ex.wt))
    info = ex.set_index("ensembl_id")
    rec = []
    for eid, e in h.groupby("exon"):
        muts = [wt[eid][:p] + a + wt[eid][p + 1:] for p, a in zip(e.pos0, e.alt)]
        y = model.predict_padded(_onehot([wt[eid], *muts]))
        for (_, x), ya in zip(e.iterrows(), y[1:]):
            rec.append({"ID": x.ID, **score_rows(y[0], ya, x.pos0, int(info.up[eid]),
                                                 int(info.exon_len[eid]))})
    h = h.merge(pd.DataFrame(rec), on="ID")
    ref_t = [wt[e][p] for e, p in zip(h.exon, h.pos0)]
    prob, _, ei, ie, _ = old_model_scores(wt, list(zip(h.exon, h.pos0 + 1, ref_t, h.alt)))
    h["splice_prob"], h["splice_signed"] = prob, (ei + ie) / 2
    h["pmt_signed"] = (h.d_acc_exon + h.d_don_exon) / 2

    def rho(a, b):
        r, p = spearmanr(a, b)
        return {"spearman": round(float(r), 3), "p": float(f"{p:.2g}")}

    res = {"variants_in_mfass_constructs": int(len(h) + len(rejects)),
           "abs_dpsi_ge_20": int((h.dpsi.abs() >= 20).sum()),
           "scored": len(h), "rejected": [list(x) for x in rejects],
           "exons": {k: {"vexseq_exon": g.vex_exon.iloc[0], "variants": len(g),
                         "same_exon_as_mfass": bool(g.mfass_exon_matches.all()),
                         "sets": g.set.value_counts().to_dict()}
                     for k, g in h.groupby("exon")},
           "pmt_max_all_vs_abs_dpsi": rho(h.max_all, h.dpsi.abs()),
           "pmt_exon_sites_vs_dpsi": rho(h.pmt_signed, h.dpsi),
           "splice_prob_vs_abs_dpsi": rho(h.splice_prob, h.dpsi.abs()),
           "splice_signed_vs_dpsi": rho(h.splice_signed, h.dpsi),
           "largest_effects": h.reindex(h.dpsi.abs().sort_values(ascending=False).index)[
               ["ID", "dpsi", "max_all", "pmt_signed", "splice_prob"]].head(5).round(3)
           .to_dict("records")}
    h.to_csv(CACHE / "vexseq_scores.tsv", sep="\t", index=False)
    return res


# ----------------------------------------------------------------------------- report

def _metrics(y, s, seed: int = 0, n_boot=N_BOOT):
    """ROC-AUC and PR-AUC with bootstrap intervals; the same ``seed`` draws the same
    resamples, so scorers of the same variants are resampled alike."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(seed)
    auc, ap = roc_auc_score(y, s), average_precision_score(y, s)
    boots = []
    n = len(y)
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        if y[i].min() == y[i].max():
            continue
        boots.append((roc_auc_score(y[i], s[i]), average_precision_score(y[i], s[i])))
    b = np.array(boots)

    def ci(a):
        return [round(float(np.quantile(a, q)), 3) for q in (0.025, 0.975)]

    return {"n": int(n), "positives": int(y.sum()), "roc_auc": round(float(auc), 3),
            "roc_auc_ci95": ci(b[:, 0]), "pr_auc": round(float(ap), 3),
            "pr_auc_ci95": ci(b[:, 1])}


def _paired_diff(y, s1, s2, seed: int = 0, n_boot=N_BOOT):
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() == y[i].max():
            continue
        out.append((roc_auc_score(y[i], s1[i]) - roc_auc_score(y[i], s2[i]),
                    average_precision_score(y[i], s1[i]) - average_precision_score(y[i], s2[i])))
    b = np.array(out)
    return {"roc_auc_diff_ci95": [round(float(np.quantile(b[:, 0], q)), 3) for q in (.025, .975)],
            "pr_auc_diff_ci95": [round(float(np.quantile(b[:, 1], q)), 3) for q in (.025, .975)]}


def _at_cutoffs(y, s):
    res = []
    for c in CUTOFFS:
        called = s >= c
        tp = int((called & (y == 1)).sum())
        res.append({"threshold": c, "called": int(called.sum()), "true_positives": tp,
                    "precision": round(tp / called.sum(), 3) if called.sum() else None,
                    "recall": round(tp / int(y.sum()), 3)})
    return res


def cmd_report(args) -> None:
    import glob

    import pandas as pd

    d = load()
    rows = pmt_rows(d, args.set)
    files = sorted(glob.glob(str(pmt_dir(args.set) / "chunk_*.tsv")))
    pmt = pd.concat([pd.read_csv(f, sep="\t") for f in files])
    n_chunks = len(chunks(d, rows))
    complete = len(files) == n_chunks
    chunk_info = pmt.drop_duplicates("chunk_s")[["chunk_s", "chunk_sequences"]].sum()
    splice = pd.read_csv(CACHE / "splice.tsv", sep="\t")
    frame = d[["id", "label", "y", "v2_dpsi"]].copy()
    frame["row"] = np.arange(len(d))
    frame = frame.merge(splice.drop(columns="id"), on="row", how="left")
    sub = frame.merge(pmt.drop(columns=["id", "chunk_s", "chunk_sequences"]), on="row")
    assert len(sub) == len(pmt)
    labelled = sub[sub.y.notna()]
    y = labelled.y.to_numpy().astype(int)
    ends = np.minimum(np.abs(d.pos0 - d.up), np.abs(d.pos0 - (d.up + d.exon_len - 1)))
    sdv = d.y == 1
    sdv_distance = {lab: {"sdvs": int((sdv & (d.label == lab)).sum()),
                          "median_nt_to_nearest_exon_end": float(
                              np.median(ends[sdv & (d.label == lab)])),
                          "within_10_nt": round(float(
                              (ends[sdv & (d.label == lab)] <= 10).mean()), 3)}
                    for lab in ("exon", "upstr_intron", "downstr_intron")}
    scorers = {"pmt SpliceAI, max DS, whole construct": "max_all",
               "pmt SpliceAI, max DS, +-50 nt": "max_50",
               "old splice model, max |dP| EI/IE (scan 20)": "splice_prob",
               "old splice model, max |d log-odds| EI/IE (scan 20)": "splice_logodds"}
    groups = {"all": slice(None), "exon": labelled.label == "exon",
              "upstream intron": labelled.label == "upstr_intron",
              "downstream intron": labelled.label == "downstr_intron"}
    metrics = {}
    for name, col in scorers.items():
        metrics[name] = {}
        for g, m in groups.items():
            part = labelled[m] if g != "all" else labelled
            metrics[name][g] = _metrics(part.y.to_numpy().astype(int),
                                        part[col].to_numpy())
    paired = {
        "pmt whole construct - old splice (prob)": _paired_diff(
            y, labelled.max_all.to_numpy(), labelled.splice_prob.to_numpy()),
        "pmt whole construct - pmt +-50": _paired_diff(
            y, labelled.max_all.to_numpy(), labelled.max_50.to_numpy())}
    cutoffs = {k: _at_cutoffs(y, labelled[c].to_numpy())
               for k, c in (("pmt whole construct", "max_all"), ("pmt +-50 nt", "max_50"))}

    # the original on its subset
    orig_files = sorted(glob.glob(str(CACHE / "original" / "*.npz")))
    original = None
    if orig_files and (CACHE / "pmt_raw_original_subset.npz").exists():
        rec, o_secs, o_seqs, raw = [], 0.0, 0, {}
        pr = np.load(CACHE / "pmt_raw_original_subset.npz")
        prow = {int(r): (a, b) for r, a, b in zip(pr["rows"], pr["ref"], pr["alt"])}
        for f in orig_files:
            z = np.load(f)
            o_secs += float(z["seconds"])
            o_seqs += int(z["sequences"])
            for r, ya in zip(z["rows"], z["alt"]):
                x = d.iloc[int(r)]
                raw[int(r)] = (z["ref"], ya)
                mine = prow[int(r)]
                rec.append({"row": int(r),
                            **{f"orig_{k}": v for k, v in score_rows(
                                z["ref"], ya, x.pos0, x.up, x.exon_len).items()},
                            **{f"pmt_{k}": v for k, v in score_rows(
                                mine[0], mine[1], x.pos0, x.up, x.exon_len).items()}})
        o = pd.DataFrame(rec).merge(frame, on="row")
        prob_diff = max(max(float(np.abs(raw[r][0] - prow[r][0]).max()),
                            float(np.abs(raw[r][1] - prow[r][1]).max())) for r in raw)
        ds_cols = [f"{k}_{t}" for t in ("all", "50") for k in ("ag", "al", "dg", "dl")]
        ds_diff = float(max(np.abs(o[f"pmt_{c}"] - o[f"orig_{c}"]).max() for c in ds_cols))
        # the pmt-raw pass (one exon's wild type + one variant a batch) against the cached
        # run (the exon's whole batch) where the two subsets overlap
        both = o.merge(sub[["row", *ds_cols]], on="row")
        batch_diff = float(max(np.abs(both[f"pmt_{c}"] - both[c]).max() for c in ds_cols)) \
            if len(both) else None
        # the wild types of these exons as pmt predicts them: where SpliceAI puts the sites
        wt_rows = {d.ensembl_id.iloc[r]: r for r in prow}
        acc, don, on_site = [], [], []
        for r in wt_rows.values():
            x, yr = d.iloc[r], prow[r][0]
            a, b = int(x.up), int(x.up + x.exon_len - 1)
            acc.append(float(yr[a, 1]))
            don.append(float(yr[b, 2]))
            on_site.append(int(yr[:, 1].argmax()) == a and int(yr[:, 2].argmax()) == b)
        wild_type = {"exons": len(wt_rows),
                     "acceptor_at_exon_start_median": round(float(np.median(acc)), 3),
                     "donor_at_exon_end_median": round(float(np.median(don)), 3),
                     "strongest_sites_on_exon_ends": round(float(np.mean(on_site)), 3)}
        ol = o[o.y.notna()]
        yo = ol.y.to_numpy().astype(int)
        original = {
            "variants": len(o), "exons": int(d.iloc[o.row].ensembl_id.nunique()),
            "labelled": len(ol), "positives": int(yo.sum()),
            "excluded_na": int(len(o) - len(ol)),
            "max_abs_diff_probabilities": prob_diff,
            "max_abs_diff_delta_scores": ds_diff,
            "wild_type_sites_pmt": wild_type,
            "in_pmt_subset_too": len(both),
            "max_abs_diff_pmt_batch_vs_single": batch_diff,
            "seconds": round(o_secs, 1), "sequences": o_seqs,
            "s_per_sequence_5_models": round(o_secs / o_seqs, 3)}
        if 0 < yo.sum() < len(yo):
            for name, col in (("original SpliceAI, whole construct", "orig_max_all"),
                              ("original SpliceAI, +-50 nt", "orig_max_50"),
                              ("pmt SpliceAI, whole construct", "pmt_max_all"),
                              ("pmt SpliceAI, +-50 nt", "pmt_max_50"),
                              ("old splice model (prob)", "splice_prob")):
                original[name] = _metrics(yo, ol[col].to_numpy(), seed=1)
        o.to_csv(CACHE / "original_vs_pmt.tsv", sep="\t", index=False)

    # wild-type sanity: SpliceAI's strongest acceptor / donor sit on the exon's boundaries
    speed = json.loads((CACHE / "speed.json").read_text()) if (CACHE / "speed.json").exists() \
        else None
    vex = vexseq(d)
    splice_t = json.loads((CACHE / "splice_timing.json").read_text())
    res = {
        "protocol": {
            "context": "each 170-nt MFASS construct alone, 5,000 N either side (SpliceAI's "
                       "full context); no genomic sequence, no minigene/reporter flanks",
            "reference": "wild-type construct (mutant with REF put back; original_seq is the "
                         "mutant, see checks)",
            "alternative": "mutant construct", "orientation": "transcript (exon's strand)",
            "score": "max(DS_AG, DS_AL, DS_DG, DS_DL) over the construct positions within "
                     "+-50 nt of the variant, and over the whole construct; no masking",
            "label": "strong_lof (dPSI <= -0.5 in MFASS); NA rows excluded",
            "old_model": f"pmt variants score -m splice semantics: scan {splice_t['scan']}, "
                         "both strands averaged, max over EI/IE of |alt - ref| (probability; "
                         "log-odds also shown)",
            "subset": {"seed": SEED, "size": len(rows), "of": len(d),
                       "drawn": "uniform over variants, numpy default_rng(seed).choice "
                                "without replacement, fixed before any score was computed"},
            "bootstrap": f"{N_BOOT} resamples of variants, 2.5/97.5 percentiles"},
        "checks": d.attrs["checks"],
        "pmt_run": {"complete": complete, "chunks": len(files), "of_chunks": n_chunks,
                    "variants": len(sub), "sequences": int(chunk_info.chunk_sequences),
                    "seconds": round(float(chunk_info.chunk_s), 1),
                    "s_per_sequence_5_models": round(float(chunk_info.chunk_s
                                                           / chunk_info.chunk_sequences), 4),
                    "threads": 1},
        "labelled": {"subset": len(labelled), "positives": int(y.sum()),
                     "excluded_na": int(len(sub) - len(labelled))},
        "metrics": metrics, "paired_differences": paired, "cutoffs": cutoffs,
        "sdv_distance_all_28972": sdv_distance,
        "old_model_run": splice_t, "original": original, "speed": speed, "vexseq": vex}
    import platform

    res["set"] = args.set
    res["superseded"] = _superseded_subset() if args.set == "all" else None
    res["date"] = time.strftime("%Y-%m-%d")
    res["machine"] = (f"{platform.machine()}, {os.cpu_count()} cores shared with other work, "
                      "no GPU")
    res["prose"] = _prose(res)
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "mfass.json").write_text(json.dumps(res, indent=2) + "\n")
    (DOCS / "mfass.md").write_text(_markdown(res))
    _figure(labelled, o if original else None)
    print(json.dumps({k: res[k] for k in ("pmt_run", "labelled")}, indent=2))
    for name, m in metrics.items():
        print(name, {g: (v["roc_auc"], v["pr_auc"]) for g, v in m.items()})


def _superseded_subset() -> dict | None:
    """The first version of this page (the seeded 8,000-variant subset), kept beside the
    full result that supersedes it: its headline figures, from the mfass.json it wrote."""
    path = DOCS / "mfass.json"
    if not path.is_file():
        return None
    old = json.loads(path.read_text())
    if old.get("set", "subset") != "subset":
        return old.get("superseded")  # already the full run's page: carry its record on
    m = old["metrics"]
    pick = ("pmt SpliceAI, max DS, whole construct",
            "old splice model, max |dP| EI/IE (scan 20)")
    return {"date": old["date"], "variants": old["pmt_run"]["variants"],
            "labelled": old["labelled"]["subset"], "positives": old["labelled"]["positives"],
            "metrics": {k: {g: {x: m[k][g][x] for x in ("roc_auc", "roc_auc_ci95", "pr_auc",
                                                          "pr_auc_ci95")}
                            for g in ("all", "exon", "upstream intron", "downstream intron")}
                        for k in pick}}


def _prose(res: dict) -> dict:
    """The doc's text around the numbers (written after the results were in)."""
    ck, vx = res["checks"], res["vexseq"]
    checks = [
        ("- **`original_seq` is not the wild type.** In every row it carries the ALT allele "
        "(complemented on the minus strand) at `rel_position`: it is the mutant construct, "
        "in transcript orientation. `sequence` is the same mutant, equal to `original_seq` in "
        f"{ck['sequence_equals_original_seq']:,} rows and its reverse complement in "
        f"{ck['sequence_is_reverse_complement_of_original_seq']:,} (on both strands alike), "
        "so neither column can be used as given for the reference."),
        ("- The wild type is the mutant with the REF allele put back at `rel_position`; every "
        "mutant of an exon gives the same wild type (all 2,198 exons), and for the two exons "
        "inside the staged GRCh38 chr2 fragment it equals the genome base for base."),
        ("- `rel_position` is the 1-based position in transcript orientation (end - pos + 1 "
        "on the minus strand); `intron1_len`/`intron2_len` are in genomic order, so the "
        "upstream intron is `intron2_len` on the minus strand; `label` agrees with the "
        "position in every row."),
        (f"- The wild type reads AG before the exon in {100 * ck['AG_before_exon_fraction']:.1f}% "
        f"and GT after it in {100 * ck['GT_after_exon_fraction']:.1f}% of rows, and "
        "in the wild-type constructs of the original's subset SpliceAI's strongest acceptor "
        "and donor sit on the exon's first and last base in "
        f"{100 * res['original']['wild_type_sites_pmt']['strongest_sites_on_exon_ends']:.1f}%"
        f" of {res['original']['wild_type_sites_pmt']['exons']} exons."),
    ]
    published = [
        "## How this differs from published MFASS evaluations",
        "",
        ("The evaluations of SpliceAI on MFASS found (below) score variants in their genomic "
         "context (the reference genome around the exon and the gene annotation), not the "
         "construct alone; MFASS itself measured each construct between the reporter's own "
         "exons, whose sequence the data set does not give. Here SpliceAI sees only the exon "
         "with its intron flanks (30-81 nt each, median 45) and N beyond: no partner exons, no "
         "real intron. Its wild-type acceptor probabilities are low"
         + (f" (median {res['original']['wild_type_sites_pmt']['acceptor_at_exon_start_median']}"
            f" at the exon's first base over {res['original']['wild_type_sites_pmt']['exons']} "
            f"exons; donors {res['original']['wild_type_sites_pmt']['donor_at_exon_end_median']})"
            if res["original"] else "")
         + ", so delta scores are compressed and the 0.2/0.5/0.8 cut-offs, set for genomic "
         "scoring, do not carry over as such. The ranking metrics (ROC-AUC, PR-AUC) are the "
         "comparable part."),
        "",
        ("No peer-reviewed figure for SpliceAI on MFASS was found with its protocol through "
        "the search tool (abstracts only). One public third-party benchmark file was found: "
        "rewire-bio/rewire-benchmarks, `benchmarks/mfass/results/spliceai-1.3.1.json` "
        "(not peer-reviewed): spliceai 1.3.1, five-model mean, **genomic context** (GRCh38 "
        "primary assembly, annotation grch38, -D 50, -M 0), max delta score against the "
        "same strong-loss label on their held-out split of 8,194 scored variants (308 SDVs): "
        "ROC-AUC 0.806, average precision 0.299. Its protocol differs from this one in "
        "context (genome vs construct alone) and variant set, so it is a reference point, "
        "not a like-for-like comparison."),
    ]
    vex = [
        "Vex-seq (Adamson et al. 2018, CAGI; `../shared/data/variants/splice/vexseq/`) gives "
        "GRCh37 coordinates and no sequence, and no GRCh37 reference is staged (only a "
        "GRCh38 chr2 fragment; no Vex-seq variant lies on chr2 below 2.4 Mb, and GRCh37 "
        "positions cannot be moved to GRCh38 without a chain file). The one source of "
        "GRCh37 sequence here is MFASS itself: its constructs carry hg19 spans. "
        f"{vx['variants_in_mfass_constructs']} Vex-seq variants fall inside an MFASS "
        f"construct ({len(vx['exons'])} exons, each the same exon in both assays: "
        + "; ".join(f"{k} = Vex-seq {v['vexseq_exon']}, {v['variants']} variants"
                    for k, v in vx["exons"].items())
        + f"); {vx['scored']} were scored"
        + (" (rejected: " + "; ".join(f"{a}: {b}" for a, b in vx["rejected"]) + ")"
           if vx["rejected"] else "")
        + ". They had the MFASS construct as context (hg19 sequence, 170 nt, N beyond), "
        "not Vex-seq's own minigene. Spearman correlations with HepG2 delta PSI:",
        "",
        (f"- pmt SpliceAI max delta score (whole construct) vs |dPSI|: "
        f"{vx['pmt_max_all_vs_abs_dpsi']['spearman']} (p {vx['pmt_max_all_vs_abs_dpsi']['p']})"),
        (f"- pmt SpliceAI change of the exon's own acceptor + donor probabilities (signed) vs "
        f"dPSI: {vx['pmt_exon_sites_vs_dpsi']['spearman']} "
        f"(p {vx['pmt_exon_sites_vs_dpsi']['p']})"),
        (f"- old splice model max |dP| vs |dPSI|: {vx['splice_prob_vs_abs_dpsi']['spearman']} "
        f"(p {vx['splice_prob_vs_abs_dpsi']['p']}); signed (EI + IE)/2 vs dPSI: "
        f"{vx['splice_signed_vs_dpsi']['spearman']} (p {vx['splice_signed_vs_dpsi']['p']})"),
        "",
        (f"With two exons and {vx['scored']} variants ({vx['abs_dpsi_ge_20']} with |dPSI| "
        ">= 20) this is a feasibility check, not an evaluation; the other ~2,000 Vex-seq variants need a GRCh37 reference (or a chain "
        "file and GRCh38), which is not staged and was not downloaded."),
    ]
    m = res["metrics"]
    pa, po = m["pmt SpliceAI, max DS, whole construct"], \
        m["old splice model, max |dP| EI/IE (scan 20)"]
    p50 = m["pmt SpliceAI, max DS, +-50 nt"]
    d_old = res["paired_differences"]["pmt whole construct - old splice (prob)"]
    d_50 = res["paired_differences"]["pmt whole construct - pmt +-50"]
    c02 = res["cutoffs"]["pmt whole construct"][0]
    o = res["original"]
    sd = res["sdv_distance_all_28972"]
    reading = [
        "## Reading",
        "",
        (f"- **SpliceAI ranks splice-disrupting variants far better than the old model**: "
        f"ROC-AUC {pa['all']['roc_auc']:.3f} against {po['all']['roc_auc']:.3f}, PR-AUC "
        f"{pa['all']['pr_auc']:.3f} against {po['all']['pr_auc']:.3f} (prevalence "
        f"{pa['all']['positives'] / pa['all']['n']:.3f}); paired bootstrap 95% CI of the "
        f"difference: ROC-AUC {d_old['roc_auc_diff_ci95']}, PR-AUC "
        f"{d_old['pr_auc_diff_ci95']}."),
        (f"- **Intronic variants are where it works; exonic ones are hard**: ROC-AUC "
        f"{pa['downstream intron']['roc_auc']:.3f} (downstream intron), "
        f"{pa['upstream intron']['roc_auc']:.3f} (upstream intron), "
        f"{pa['exon']['roc_auc']:.3f} (exon; PR-AUC {pa['exon']['pr_auc']:.3f} at prevalence "
        f"{pa['exon']['positives'] / pa['exon']['n']:.3f}; the old model's "
        f"{po['exon']['roc_auc']:.3f}). In all of MFASS, intronic SDVs sit close to the exon "
        f"({100 * sd['upstr_intron']['within_10_nt']:.0f}% of upstream- and "
        f"{100 * sd['downstr_intron']['within_10_nt']:.0f}% of downstream-intron SDVs within "
        "10 nt of its ends, where the splice-site motifs SpliceAI models lie), exonic ones "
        f"mostly away from them (median {sd['exon']['median_nt_to_nearest_exon_end']:.0f} nt "
        f"from the nearest exon end; {100 * sd['exon']['within_10_nt']:.0f}% within 10 nt), "
        "where splicing enhancers and silencers act, which a splice-site predictor captures "
        "less well."),
        (f"- **+-50 nt or the whole construct hardly matters** (ROC-AUC "
        f"{p50['all']['roc_auc']:.3f} vs {pa['all']['roc_auc']:.3f}; paired CI of the "
        f"difference {d_50['roc_auc_diff_ci95']}): the +-50 nt window already covers up to "
        "101 of the construct's 170 positions."),
        (f"- **SpliceAI's cut-offs are conservative here**: at >= 0.2, {c02['called']} calls, "
        f"precision {c02['precision']}, recall {c02['recall']}. With the construct alone the "
        "wild-type acceptors are weak, so acceptor losses are small numbers; a threshold for this protocol "
        "would have to be set on it, not taken from genomic scoring"
        + (f" (in the wild types of {o['wild_type_sites_pmt']['exons']} exons, median "
           f"acceptor probability {o['wild_type_sites_pmt']['acceptor_at_exon_start_median']} "
           f"at the exon's first base, donor "
           f"{o['wild_type_sites_pmt']['donor_at_exon_end_median']} at its last)."
           if o else ".")),
    ]
    if o:
        reading.append(
            f"- **pmt's SpliceAI is the original's on this protocol**: on {o['variants']} "
            f"variants the largest difference of any probability is "
            f"{o['max_abs_diff_probabilities']:.1e} and of any delta score "
            f"{o['max_abs_diff_delta_scores']:.1e}, so every metric is the same for both.")
    return {"checks": checks, "published": published, "vexseq": vex, "reading": reading}


def _sample_text(res: dict) -> list[str]:
    """The sample paragraph of the full run: every variant, and the subset it supersedes."""
    old = res.get("superseded")
    lines = ["### Sample: every variant", "",
             (f"All {res['protocol']['subset']['of']:,} MFASS SNVs were scored by pmt's SpliceAI "
              "and by the old model (`--set all`, the default). This supersedes the first "
              "version of this page, which reported a seeded uniform subset because the full "
              "run (~90 minutes of a free core) did not fit its session.")]
    if old:
        a = old["metrics"]["pmt SpliceAI, max DS, whole construct"]["all"]
        b = old["metrics"]["old splice model, max |dP| EI/IE (scan 20)"]["all"]
        lines.append(
            f"Superseded ({old['date']}, {old['variants']:,} variants drawn with numpy "
            f"`default_rng({SEED})` before any score, {old['labelled']:,} labelled, "
            f"{old['positives']} SDVs): SpliceAI ROC-AUC {_ci(a, 'roc_auc')}, PR-AUC "
            f"{_ci(a, 'pr_auc')}; old model ROC-AUC {_ci(b, 'roc_auc')}, PR-AUC "
            f"{_ci(b, 'pr_auc')}. `--set subset` reproduces it. Nothing was tuned between the "
            "two: the protocol, scores and metrics are the same code.")
    lines.append(
        f"The original SpliceAI's comparison below is on {res['original']['variants'] if res['original'] else 200}"
        " variants of the subset's draw (`default_rng(26)`), unchanged.")
    run = res["pmt_run"]
    lines += ["", (f"pmt run: {run['variants']:,} variants "
                   f"({'complete' if run['complete'] else 'INCOMPLETE: ' + str(run['chunks']) + ' of ' + str(run['of_chunks']) + ' chunks'}), "
                   f"{run['sequences']:,} sequences, {run['seconds'] / 60:.0f} min summed over "
                   f"its chunks ({run['s_per_sequence_5_models']:.3f} s/sequence, one thread, "
                   "two processes sharing the machine's two cores with other work)."), ""]
    return lines


def _ci(m: dict, key: str) -> str:
    lo, hi = m[f"{key}_ci95"]
    return f"{m[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def _markdown(res: dict) -> str:
    p, run, lab, _ck = res["protocol"], res["pmt_run"], res["labelled"], res["checks"]
    sp, o, _vx = res["speed"], res["original"], res["vexseq"]
    groups = ("all", "exon", "upstream intron", "downstream intron")
    lines = [
        "# SpliceAI on measured splicing: MFASS (and what Vex-seq allows)",
        "",
        (f"{res['date']}, {res['machine']}. `benchmarks/variants/mfass_eval.py` (issue 25, "
        "item 3). Data: MFASS (Cheung et al. 2019, Mol Cell 73:183), "
        "`../shared/data/variants/splice/mfass/mfass_snv_mutants_hg19_hg38.tsv.gz`: 28,972 "
        "SNVs in 2,198 exons, each tested in a 170-nt construct (upstream intron + exon + "
        "downstream intron) in a minigene reporter; `strong_lof` = splice-disrupting "
        "variant (exon inclusion index drop of 0.5 or more)."),
        "",
        "## Protocol",
        "",
        ("- **Context each variant had: its 170-nt construct alone**, with 5,000 N on each "
        "side (SpliceAI's full context, N = all-zero input, as SpliceAI pads beyond a "
        "contig). No genomic sequence, and no minigene/reporter flanks (the data set does not "
        "give the reporter's sequence). Every variant had exactly this context."),
        ("- Reference = the wild-type construct, alternative = the mutant construct, both in "
        "**transcript orientation** (the exon's strand; minus-strand constructs reverse-"
        "complemented, alleles complemented)."),
        ("- Score = max(DS_AG, DS_AL, DS_DG, DS_DL), the four SpliceAI delta scores (mean of "
        "the five models), taken over **the whole construct** (170 positions) and, as "
        "SpliceAI's default, over the construct positions **within +-50 nt** of the variant "
        "(positions in the N padding are not scored). No annotation masking."),
        (f"- Label: `strong_lof`; NA rows excluded ({lab['excluded_na']} of the "
        f"{run['variants']} scored here; 1,239 of all 28,972)."),
        (f"- The old `splice` model (60-nt UCI splice-junction CNN; outputs EI = donor, IE = "
        f"acceptor, N) scored as `pmt variants score -m splice` scores a VCF: "
        f"{p['old_model'].split(': ', 1)[1]}, on the same N-padded constructs "
        "(pmtoolkit's `VariantScorer` on an in-memory reference whose contigs are the "
        "wild-type constructs)."),
        ("- The original SpliceAI: spliceai 1.3.1's five Keras models through tf_keras "
        "(`/tmp/spliceai-anchor`, benchmarks/variants/setup_spliceai_env.sh), fed the same "
        "padded constructs encoded by spliceai's own `one_hot_encode`, mean of the five "
        "models; delta scores computed from its predictions by the same function."),
        (f"- Metrics: ROC-AUC and PR-AUC (average precision, sklearn) with "
        f"{p['bootstrap']} intervals; precision/recall at SpliceAI's cut-offs 0.2, 0.5, 0.8."),
        "",
        *(_sample_text(res) if res.get("set") == "all" else [
        "### Subset (cost first)",
        "",
        (f"Measured first, before the draw: pmt's `SpliceAI.predict_padded` cost "
         f"{SIZING_S_PER_SEQUENCE:.3f} s per 170-nt sequence (five models, one thread, one "
         "exon's batch of 14); all 28,972 variants plus their 2,198 wild types are 31,170 "
         f"sequences, about {31170 * SIZING_S_PER_SEQUENCE / 60:.0f} minutes of one core, more "
         "than the hour allowed. A seeded uniform random subset of variants was drawn (numpy "
         f"`default_rng({p['subset']['seed']}).choice`, without replacement), fixed before any "
         "variant score was computed: 14,000 variants were drawn for a free core; when the "
         "machine's two cores turned out to be shared with other work (2-4x slower per "
         f"sequence), the first {p['subset']['size']:,} of that draw were kept, again before any "
         "score; the old model scored those and the original's (not all 28,972), for the same "
         f"reason. The original SpliceAI scored a seeded subset of {o['variants'] if o else 200}"
         f" variants of the 14,000 draw (`default_rng({p['subset']['seed'] + 1})`)"
         + (f", {o['seconds'] / 60:.0f} minutes of one shared core." if o else ".")),
        "",
        (f"pmt run: {run['variants']:,} variants ({'complete' if run['complete'] else 'INCOMPLETE: ' + str(run['chunks']) + ' of ' + str(run['of_chunks']) + ' chunks'}), "
        f"{run['sequences']:,} sequences, {run['seconds'] / 60:.0f} min summed over its "
        f"chunks ({run['s_per_sequence_5_models']:.3f} s/sequence on the shared cores; a "
        "second worker, taking the chunks last first, joined after 18 chunks)."),
        ""]),
        "## Results",
        "",
        (f"{lab['subset']:,} labelled variants, {lab['positives']} splice-disrupting "
        f"({100 * lab['positives'] / lab['subset']:.1f}%)."),
        "",
        "| scorer | variants | n (SDVs) | ROC-AUC [95% CI] | PR-AUC [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for name, per in res["metrics"].items():
        for g in groups:
            m = per[g]
            lines.append(f"| {name} | {g} | {m['n']:,} ({m['positives']}) | "
                         f"{_ci(m, 'roc_auc')} | {_ci(m, 'pr_auc')} |")
    lines += ["", "Paired bootstrap of the difference (same resampled variants):", ""]
    for k, v in res["paired_differences"].items():
        lines.append(f"- {k}: ROC-AUC difference 95% CI {v['roc_auc_diff_ci95']}, PR-AUC "
                     f"difference 95% CI {v['pr_auc_diff_ci95']}")
    lines += ["", "At SpliceAI's usual cut-offs (all labelled variants of the subset):", "",
              "| pmt score | threshold | called | true positives | precision | recall |",
              "|---|---|---|---|---|---|"]
    for k, rows in res["cutoffs"].items():
        for r in rows:
            lines.append(f"| {k} | >= {r['threshold']} | {r['called']} | "
                         f"{r['true_positives']} | {r['precision']} | {r['recall']} |")
    lines += ["", "![ROC and PR curves](mfass_roc_pr.png)", ""]
    if o:
        lines += [
            "## pmt beside the original SpliceAI",
            "",
            (f"{o['variants']} variants ({o['exons']} exons; {o['labelled']} labelled, "
            f"{o['positives']} SDVs, {o['excluded_na']} NA), same protocol:"),
            "",
            (f"- largest |difference| of any predicted probability (wild type and mutant, "
            f"170 positions x 3 classes): {o['max_abs_diff_probabilities']:.1e}; of any delta "
            f"score (four scores, both distances): {o['max_abs_diff_delta_scores']:.1e}."),
            (f"- the original: {o['s_per_sequence_5_models']:.2f} s per sequence (five models, "
            f"TensorFlow CPU, one thread, the plain 10,170-nt input); pmt "
            f"{run['s_per_sequence_5_models']:.3f} s. Both on the shared machine under "
            "different loads: an indication, not a speed benchmark "
            "(docs/benchmarks/spliceai_parity.md has that)."),
            ""]
        if "original SpliceAI, whole construct" in o:
            lines += ["| scorer (this subset) | ROC-AUC [95% CI] | PR-AUC [95% CI] |",
                      "|---|---|---|"]
            for k, m in o.items():
                if isinstance(m, dict) and "roc_auc" in m:
                    lines.append(f"| {k} | {_ci(m, 'roc_auc')} | {_ci(m, 'pr_auc')} |")
            lines.append("")
    lines += res["prose"]["reading"] + [""]
    lines += res["prose"]["published"]
    lines += ["", "## Vex-seq", ""] + res["prose"]["vexseq"]
    lines += ["", "## The padded forward (`SpliceAI.predict_padded`)", "",
              (f"A layer whose receptive field reaches r nt is constant (its response to all-N "
              f"input) beyond r nt of the construct, and the output needs it only within "
              f"5,000 - r nt: so each layer is computed on the construct and min(r, 5,000 - r) "
              f"nt either side, the rest being that constant. On one exon's batch (a wild "
              f"type and 13 SNVs, 170 nt, five models, one thread, best of {sp['repeats']} on the "
              f"loaded machine): {sp['padded_s']} s against "
              f"{sp['plain_s']} s for the plain forward on the 10,170-nt padded input, "
              f"**{sp['speedup']}x**, largest difference {sp['max_abs_difference']:.1e} "
              f"(multiply-adds: {sp['work_ratio_multiply_adds']}x fewer). A banded "
              f"substitution pass (as `snv_forward` does for genomic windows) was considered "
              f"for the variants: at 170 nt the positions a substitution changes already cover "
              f"{100 * sp['banded_snv_work_fraction']:.0f}% of the padded forward's work (the "
              f"last group's dilation-25 layers reach the whole construct), so the variants "
              f"simply share the exon's batch. tests/genomics/test_spliceai_padded.py checks "
              f"equality (<= 1e-5) with the plain padded forward for lengths 1-401 on a "
              f"random-weight net and on the real weights."), ""]
    lines += ["## Data checks (asserted in `load()`)", ""] + res["prose"]["checks"]
    lines += ["", "## Reproduce", "", "```",
              "python benchmarks/variants/mfass_eval.py speed",
              ("nice -n 10 python benchmarks/variants/mfass_eval.py pmt      # resumable, "
              "$MFASS_CACHE (default /tmp/mfass_cache)"),
              "nice -n 10 python benchmarks/variants/mfass_eval.py splice",
              "python benchmarks/variants/mfass_eval.py export-original",
              ("nice -n 10 /tmp/spliceai-anchor/bin/python benchmarks/variants/mfass_eval.py "
              "original"),
              "python benchmarks/variants/mfass_eval.py pmt-raw",
              "python benchmarks/variants/mfass_eval.py report",
              "```", ""]
    return "\n".join(lines)


def _figure(labelled, o) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    y = labelled.y.to_numpy().astype(int)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.8))
    curves = [("pmt SpliceAI, whole construct", labelled.max_all, y, "C0", "-"),
              ("pmt SpliceAI, +-50 nt", labelled.max_50, y, "C1", "-"),
              ("old splice model (max |dP|)", labelled.splice_prob, y, "C2", "-")]
    if o is not None:
        ol = o[o.y.notna()]
        yo = ol.y.to_numpy().astype(int)
        if 0 < yo.sum() < len(yo):
            curves += [(f"original SpliceAI, whole construct (n={len(yo)})", ol.orig_max_all,
                        yo, "C3", "--"),
                       (f"pmt SpliceAI, whole construct, same {len(yo)}", ol.pmt_max_all, yo,
                        "C0", ":")]
    from sklearn.metrics import average_precision_score, roc_auc_score

    for name, s, yy, col, ls in curves:
        fpr, tpr, _ = roc_curve(yy, s)
        a1.plot(fpr, tpr, color=col, ls=ls, label=f"{name}: {roc_auc_score(yy, s):.3f}")
        p, r, _ = precision_recall_curve(yy, s)
        a2.plot(r, p, color=col, ls=ls, label=f"{name}: {average_precision_score(yy, s):.3f}")
    a1.plot([0, 1], [0, 1], color="0.7", lw=0.8)
    a2.axhline(y.mean(), color="0.7", lw=0.8)
    a1.set(xlabel="false positive rate", ylabel="true positive rate",
           title=f"MFASS strong loss of function, ROC (n={len(y)}, {y.sum()} SDVs)")
    a2.set(xlabel="recall", ylabel="precision", title="precision-recall (AUC = AP)")
    a1.legend(fontsize=7, loc="lower right")
    a2.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(DOCS / "mfass_roc_pr.png", dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["speed", "pmt", "pmt-raw", "splice", "export-original",
                                       "original", "report"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--reverse", action="store_true", help="pmt: take the chunks last first")
    p.add_argument("--set", choices=["all", "subset"], default="all",
                   help="pmt, report: every variant (default), or the superseded 8,000 subset")
    args = p.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    {"speed": cmd_speed, "pmt": cmd_pmt, "pmt-raw": cmd_pmt_raw, "splice": cmd_splice,
     "export-original": cmd_export_original, "original": cmd_original,
     "report": cmd_report}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
