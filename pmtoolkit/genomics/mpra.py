"""Saturation-mutagenesis MPRA data (Kircher et al. 2019, the CAGI5 regulation challenge) as
elements, variants and measured effects.

Every position of an element is mutated, so the table's ``Ref`` column spells each element's
reference sequence. Elements become contigs of their own (named by element; sequence beyond
an element is unknown, ``N``), variants are 1-based positions on them, and a 1-bp deletion
(``Alt = -``) is written VCF-style with the preceding base as anchor. Elements measured in
several cell types or time points share a locus (``TERT-GBM``, ``TERT-HEK``, ...): held-out
evaluation holds out a whole locus, never one element of it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import require_file
from pmtoolkit.genomics.variants import Variant


@dataclass
class MpraData:
    """``elements``: name -> reference sequence; ``variants`` with ``effects`` (log2 fold
    change of expression, alt vs ref), ``element`` and ``locus`` of each; ``offsets``: the
    genomic position of each element's first base (1-based) and its chromosome."""

    elements: dict[str, str]
    variants: list[Variant]
    effects: np.ndarray
    element: np.ndarray
    locus: np.ndarray
    pvalues: np.ndarray
    offsets: dict[str, tuple[str, int]]
    #: table rows left out: no coordinates in this release, or a deletion of an element's
    #: first base (no anchor base)
    dropped: int = 0

    def __len__(self) -> int:
        return len(self.variants)

    def subset(self, index) -> MpraData:
        index = np.asarray(index, dtype=np.int64)
        return MpraData(self.elements, [self.variants[i] for i in index], self.effects[index],
                        self.element[index], self.locus[index], self.pvalues[index],
                        self.offsets, self.dropped)

    def reference(self) -> ElementReference:
        return ElementReference(self.elements)

    def write(self, fasta: str | os.PathLike, vcf: str | os.PathLike) -> None:
        """The elements as FASTA and the variants as VCF (INFO: EFFECT, PVALUE), so the
        command line can score them: ``pmt variants score -i vcf -f fasta``."""
        from pmtoolkit.core.io import atomic_write

        with atomic_write(fasta) as fh:
            for name, seq in self.elements.items():
                fh.write(f">{name}\n")
                for s in range(0, len(seq), 60):
                    fh.write(seq[s:s + 60] + "\n")
        with atomic_write(vcf) as fh:
            fh.write("##fileformat=VCFv4.2\n")
            for name, seq in self.elements.items():
                fh.write(f"##contig=<ID={name},length={len(seq)}>\n")
            fh.write('##INFO=<ID=EFFECT,Number=1,Type=Float,Description="MPRA log2 '
                     'expression effect (Kircher et al. 2019)">\n')
            fh.write('##INFO=<ID=PVALUE,Number=1,Type=Float,Description="MPRA p-value">\n')
            fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
            for v, e, p in zip(self.variants, self.effects, self.pvalues):
                fh.write(f"{v.chrom}\t{v.pos}\t{v.id}\t{v.ref}\t{v.alt}\t.\t.\t"
                         f"EFFECT={e:.6g};PVALUE={p:.6g}\n")


class ElementReference:
    """A :class:`~pmtoolkit.genomics.reference.Reference` over in-memory sequences (the MPRA
    elements): same ``resolve``/``fetch``/``lengths`` interface, ``N`` beyond the ends."""

    def __init__(self, sequences: dict[str, str]):
        self._seqs = {k: v.upper() for k, v in sequences.items()}
        self.lengths = {k: len(v) for k, v in self._seqs.items()}
        self.contigs = list(self._seqs)

    def resolve(self, chrom: str) -> str | None:
        return chrom if chrom in self._seqs else None

    def fetch(self, chrom: str, start: int, end: int) -> str:
        seq = self._seqs[chrom]
        lo, hi = max(start, 0), min(end, len(seq))
        if hi <= lo:
            return "N" * (end - start)
        return "N" * (lo - start) + seq[lo:hi] + "N" * (end - hi)

    def close(self) -> None:
        pass

    def __enter__(self) -> ElementReference:
        return self

    def __exit__(self, *exc) -> None:
        pass


def _locus_names(frame: pd.DataFrame) -> dict[str, str]:
    """Element -> locus: elements whose spans overlap on a chromosome share a locus, named by
    the first element (alphabetically) in it."""
    spans = frame.groupby("Element").agg(chrom=("Chrom", "first"), lo=("Pos", "min"),
                                         hi=("Pos", "max")).sort_values(["chrom", "lo"])
    out: dict[str, str] = {}
    groups: list[list[str]] = []
    last_chrom, last_hi = None, -1
    for name, row in spans.iterrows():
        if row.chrom == last_chrom and row.lo <= last_hi:
            groups[-1].append(name)
            last_hi = max(last_hi, row.hi)
        else:
            groups.append([name])
            last_chrom, last_hi = row.chrom, row.hi
    for g in groups:
        for name in g:
            out[name] = sorted(g)[0].split("-")[0]
    return out


def load_mpra(path: str | os.PathLike, *, release: str = "GRCh38") -> MpraData:
    """Read the Kircher et al. table (``Chrom, Pos, Ref, Alt, ..., Coefficient, pValue,
    Element, Release``) for one genome release."""
    from pmtoolkit.core.io import reading

    path = require_file(path, "MPRA table")
    with reading(path):
        frame = pd.read_csv(path, sep="\t")
    need = {"Chrom", "Pos", "Ref", "Alt", "Coefficient", "pValue", "Element", "Release"}
    missing = sorted(need - set(frame.columns))
    if missing:
        raise BadInputError(f"{path}: not the MPRA table (missing columns {missing})")
    frame = frame[frame["Release"] == release].copy()
    if frame.empty:
        raise BadInputError(f"{path}: no rows for release {release!r}")
    located = frame[["Chrom", "Pos", "Ref", "Alt"]].notna().all(axis=1)
    dropped = int((~located).sum())  # rows without coordinates in this release
    frame = frame[located].copy()
    frame["Pos"] = frame["Pos"].astype(np.int64)
    frame["Chrom"] = frame["Chrom"].astype(str)
    loci = _locus_names(frame)
    elements, offsets = {}, {}
    for name, g in frame.groupby("Element", sort=True):
        lo, hi = int(g["Pos"].min()), int(g["Pos"].max())
        seq = ["N"] * (hi - lo + 1)
        for p, r in zip(g["Pos"], g["Ref"]):
            seq[p - lo] = str(r).upper()
        elements[name] = "".join(seq)
        offsets[name] = (str(g["Chrom"].iloc[0]), lo)
    variants, effects, element, pvalues = [], [], [], []
    for row in frame.sort_values(["Element", "Pos", "Alt"]).itertuples(index=False):
        name = row.Element
        seq = elements[name]
        pos = int(row.Pos) - offsets[name][1] + 1  # 1-based on the element
        ref = str(row.Ref).upper()
        alt = str(row.Alt).upper()
        vid = f"{name}:{pos}:{ref}>{alt}"
        if alt == "-":  # a 1-bp deletion: anchor on the preceding base (VCF style)
            if pos == 1:
                dropped += 1
                continue  # no anchor base inside the element
            anchor = seq[pos - 2]
            v = Variant(name, pos - 1, anchor + ref, anchor, vid)
        else:
            v = Variant(name, pos, ref, alt, vid)
        variants.append(v)
        effects.append(float(row.Coefficient))
        pvalues.append(float(row.pValue))
        element.append(name)
    element_arr = np.asarray(element)
    data = MpraData(elements, variants, np.asarray(effects), element_arr,
                    np.asarray([loci[e] for e in element_arr]), np.asarray(pvalues), offsets)
    data.dropped = dropped
    return data


def default_config(**overrides):
    """The sequence-model settings of the shipped MPRA model (and of the benchmark's CNN)."""
    from pmtoolkit.genomics.config import SequenceModelConfig

    settings = dict(architecture="basset", task="regression", window=200,
                    filters=(64, 96, 128), kernels=(15, 7, 5), pools=(4, 4, 2), hidden=128,
                    dropout=0.3, epochs=8, patience=0, lr=1e-3, batch_size=128,
                    augment_rc=True, device="cpu")
    settings.update(overrides)
    return SequenceModelConfig(**settings)


def effect_data(data: MpraData, window: int):
    """The REF and ALT windows (centred on each variant, ``N`` beyond the element) and
    effects, as :class:`~pmtoolkit.genomics.model.EffectData` grouped by element."""
    from pmtoolkit.genomics.model import EffectData
    from pmtoolkit.genomics.sequence import codes
    from pmtoolkit.genomics.variants import allele_windows

    ref = np.empty((len(data), window), dtype=np.uint8)
    alt = np.empty((len(data), window), dtype=np.uint8)
    reference = data.reference()
    for i, v in enumerate(data.variants):
        r, a = allele_windows(v, reference, window)
        ref[i], alt[i] = codes(r), codes(a)
    return EffectData(ref, alt, data.effects.astype(np.float64), data.element)


def normal_scores(effects: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each group's (element's) effects replaced by their normal scores: the standard normal
    quantile of each rank, ``(rank - 1/2) / n``. A fit to them weighs every element alike
    and no outlier more than its rank, as the per-element Spearman it is judged by does
    (ties share their mean rank)."""
    from scipy.stats import norm, rankdata

    out = np.empty(len(effects), dtype=np.float64)
    for g in np.unique(groups):
        k = groups == g
        out[k] = norm.ppf((rankdata(effects[k]) - 0.5) / k.sum())
    return out


def local_config(**overrides):
    """The settings of the benchmark's effect CNN (``local``: unpadded convolutions summed
    over positions) for MPRA effects: 64 filters of 15 bases, 32 of 7 on them, so a
    receptive field of 21 bases and REF/ALT windows of 41 (every position a variant can
    reach); reverse complements drawn in training and averaged in prediction."""
    from pmtoolkit.genomics.config import SequenceModelConfig

    settings = {"architecture": "local", "task": "regression", "window": 41,
                "filters": (64, 32), "kernels": (15, 7), "dropout": 0.1, "epochs": 12,
                "patience": 3, "lr": 2e-3, "weight_decay": 0.01, "batch_size": 256,
                "augment_rc": True, "device": "cpu"}
    settings.update(overrides)
    return SequenceModelConfig(**settings)


def motif_filters(base, weights: np.ndarray, strengths: np.ndarray, *, n: int, kernel: int,
                  scale: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """First-layer filters from the ``n`` JASPAR motifs of ``base`` (a
    :class:`~pmtoolkit.genomics.motifs.MotifModel`) that move a ridge fit most (``|weight|``
    x the spread of their strength changes ``strengths`` in its training data): each log-odds
    matrix centred in ``kernel`` columns (its central ``kernel`` if longer), the bias minus
    its threshold (cut in proportion), both times ``scale``. A CNN starting from them starts
    from what the motif ridge knows, for the filters to refine."""
    order = np.argsort(-np.abs(weights) * strengths.std(axis=0))[:n]
    w = np.zeros((n, 4, kernel), dtype=np.float32)
    b = np.zeros(n, dtype=np.float32)
    filters, thresholds = base.state_tensors()["filters"].numpy(), \
        base.state_tensors()["thresholds"].numpy()
    for j, m in enumerate(order):
        k = int(base.lengths[m])
        f = filters[m, :, :k]
        if k > kernel:
            f = f[:, (k - kernel) // 2:(k - kernel) // 2 + kernel]
        used = f.shape[1]
        w[j, :, (kernel - used) // 2:(kernel - used) // 2 + used] = f
        b[j] = -float(thresholds[m]) * used / k
    return w * scale, b * scale
