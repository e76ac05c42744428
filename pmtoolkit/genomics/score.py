"""Variant-effect scoring: a sequence model on the reference and alternative windows of each
variant, both strands averaged; VCF in, annotated VCF or TSV out.

TSV columns (stable, in this order): ``chrom``, ``pos``, ``id``, ``ref``, ``alt``, then for each
model target ``T`` in the model's order: ``T_ref``, ``T_alt`` (model outputs), ``T_diff``
(alt - ref) and, for probability outputs, ``T_logodds`` (logit(alt) - logit(ref)).

VCF output keeps every record the input parsed, in order, with INFO fields
``<prefix>_<T>_diff`` (and ``_logodds``), ``Number=A`` (one value per ALT; ``.`` for an ALT
that was not scored), declared in the header. Records htslib cannot parse cannot be written
back; they, and every unscored allele, are in the rejects file with line and reason.
"""
from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Rejects

log = logging.getLogger(__name__)

_INFO_KEY = re.compile(r"[^0-9A-Za-z_.]")
#: the most bases one forward batch holds (one-hot, both strands: 32 bytes a base), so that
#: a large --batch-size or --scan with a long-window model keeps memory bounded
MAX_BATCH_BASES = 1 << 24


def info_key(*parts: str) -> str:
    """A valid VCF INFO key from name parts (other characters become ``_``)."""
    key = _INFO_KEY.sub("_", "_".join(parts))
    return key if re.match(r"[A-Za-z_]", key) else f"_{key}"


@dataclass
class Scores:
    """Model outputs for the reference and alternative allele windows, ``(n, T)`` each."""

    ref: np.ndarray
    alt: np.ndarray
    probabilities: bool

    @property
    def diff(self) -> np.ndarray:
        return self.alt - self.ref

    @property
    def logodds(self) -> np.ndarray:
        eps = 1e-6
        r = np.clip(self.ref, eps, 1 - eps)
        a = np.clip(self.alt, eps, 1 - eps)
        return np.log(a / (1 - a)) - np.log(r / (1 - r))


class VariantScorer:
    """Scores variants with a sequence model on windows cut from a reference.

    ``scan`` > 0 also scores the windows centred up to ``scan`` bases either side of the
    variant and keeps, per target, the offset where the output changes most (SpliceAI's
    delta score: a variant that creates or breaks a splice site a few bases away)."""

    def __init__(self, model, reference, *, strands: str = "both", batch_size: int = 256,
                 scan: int = 0):
        if scan < 0:
            raise BadInputError("--scan must be 0 or more")
        if batch_size < 1:
            raise BadInputError("--batch-size must be at least 1")
        self.model, self.reference = model, reference
        self.strands, self.scan = strands, int(scan)
        self.batch_size = max(1, min(int(batch_size), MAX_BATCH_BASES // model.window))
        self.probabilities = model.config.task in ("binary", "multiclass")

    def columns(self) -> list[str]:
        stats = ["ref", "alt", "diff"] + (["logodds"] if self.probabilities else [])
        return [f"{t}_{s}" for t in self.model.targets for s in stats]

    def windows(self, variants: list) -> tuple[np.ndarray, np.ndarray]:
        """Base codes of the REF and ALT windows, ``(n, 2 scan + 1, window)`` each with
        ``scan``, else ``(n, window)``."""
        from pmtoolkit.genomics.sequence import codes
        from pmtoolkit.genomics.variants import allele_windows

        w, k = self.model.window, self.scan
        n_off = 2 * k + 1
        ref = np.empty((len(variants), n_off, w), dtype=np.uint8)
        alt = np.empty((len(variants), n_off, w), dtype=np.uint8)
        for i, v in enumerate(variants):
            r, a = allele_windows(v, self.reference, w + 2 * k)
            rc, ac = codes(r), codes(a)
            for o in range(n_off):
                ref[i, o], alt[i, o] = rc[o:o + w], ac[o:o + w]
        return (ref, alt) if k else (ref[:, 0], alt[:, 0])

    def score(self, variants: list) -> Scores:
        per = 2 * self.scan + 1  # windows per allele
        step = max(1, 4 * self.batch_size // per)
        if len(variants) > step:  # windows of a few variants at a time: flat memory
            parts = [self.score(variants[s:s + step]) for s in range(0, len(variants), step)]
            return Scores(np.concatenate([p.ref for p in parts]),
                          np.concatenate([p.alt for p in parts]), self.probabilities)
        ref, alt = self.windows(variants)
        n, w = len(variants), self.model.window
        out = self.model.predict_codes(np.concatenate([ref.reshape(-1, w), alt.reshape(-1, w)]),
                                       strands=self.strands, batch_size=self.batch_size)
        half = len(out) // 2
        r, a = out[:half], out[half:]
        if not self.scan:
            return Scores(r, a, self.probabilities)
        r = r.reshape(n, 2 * self.scan + 1, -1)
        a = a.reshape(n, 2 * self.scan + 1, -1)
        best = np.abs(a - r).argmax(axis=1)  # (n, T): the offset of the largest change
        rows = np.arange(n)[:, None]
        cols = np.arange(r.shape[2])[None, :]
        return Scores(r[rows, best, cols], a[rows, best, cols], self.probabilities)

    def rows(self, variants: list, scores: Scores) -> list[list]:
        parts = [scores.ref, scores.alt, scores.diff]
        if self.probabilities:
            parts.append(scores.logodds)
        stacked = np.stack(parts, axis=2).reshape(len(variants), -1)  # target-major
        return [[v.chrom, v.pos, v.id, v.ref, v.alt, *map(float, row)]
                for v, row in zip(variants, stacked)]


def _batched(records: Iterable, size: int, first_line: int = 1) -> Iterator[list]:
    """The records in blocks of ``size`` lines of the file, counted from its first record line
    ``first_line``: the record on line ``n`` is in block ``(n - first_line) // size`` (for a
    BCF, which has no lines, ``n - first_line`` counts the records). A block is what a model
    scores together, and it is the same whether the file is read whole or a distributed run's
    partition (whole blocks of lines) is read alone, so both give the same numbers to the last
    digit."""
    batch, block = [], None
    for n, r in enumerate(records):
        b = ((r.line - first_line) if r.line is not None else n) // size
        if batch and b != block:
            yield batch
            batch = []
        block = b
        batch.append(r)
    if batch:
        yield batch


def first_record_line(vcf: str | os.PathLike, is_bcf: bool, line_offset: int = 0) -> int:
    """The line number of the first record of a text VCF (1 for a BCF), for
    :func:`_batched`."""
    from pmtoolkit.genomics.variants import _count_header_lines

    return 1 if is_bcf else _count_header_lines(Path(vcf)) + 1 + line_offset


def _format(x: float) -> str:
    return "." if not math.isfinite(x) else f"{x:.4g}"


def _vcf_header(vf, scorer: VariantScorer, prefix: str, model_name: str) -> tuple[str, list]:
    """The input header with our INFO declarations added before ``#CHROM`` (and any
    earlier declarations of the same keys dropped); the fields as (key, description,
    statistic, target index)."""
    fields = []
    for j, t in enumerate(scorer.model.targets):
        fields.append((info_key(prefix, t, "diff"),
                       f"{model_name} {t}: alt - ref output (both strands averaged)",
                       "diff", j))
        if scorer.probabilities:
            fields.append((info_key(prefix, t, "logodds"),
                           f"{model_name} {t}: logit(alt) - logit(ref)", "logodds", j))
    keys = {f[0] for f in fields}
    lines = str(vf.header).rstrip("\n").split("\n")
    kept = [ln for ln in lines
            if not (ln.startswith("##INFO=<ID=") and ln[11:].split(",", 1)[0] in keys)]
    decl = [f'##INFO=<ID={k},Number=A,Type=Float,Description="{d}">' for k, d, _, _ in fields]
    chrom = next(i for i, ln in enumerate(kept) if ln.startswith("#CHROM"))
    return "\n".join(kept[:chrom] + decl + kept[chrom:]) + "\n", fields


def copy_header(fh, raw, declarations: list[str], keys: set[str]) -> None:
    """Write the input's header lines (``raw``: :func:`~pmtoolkit.genomics.variants.raw_lines`)
    as they are, without earlier ``##INFO`` declarations of ``keys``, and ``declarations``
    just before ``#CHROM``; ``raw`` is left at the first record."""
    for _, text in raw:
        if text.startswith("##INFO=<ID=") and text[11:].split(",", 1)[0] in keys:
            continue  # ours replaces it
        if text.startswith("#CHROM"):
            fh.write("".join(d + "\n" for d in declarations) + text)
            return
        fh.write(text)


def record_text(raw, record) -> str:
    """The input's own line of ``record`` (a :class:`~pmtoolkit.genomics.variants.VcfRecord`),
    passing over the lines htslib could not parse (each a listed reject)."""
    number, text = next(raw)
    while record.line is not None and number < record.line:
        number, text = next(raw)
    return text


def _annotate(line: str, values: dict[str, list[str]]) -> str:
    """``line`` with ``key=v1,v2,...`` INFO fields added last (earlier ones of the same keys
    replaced); every other byte of the line kept."""
    cols = line.rstrip("\r\n").split("\t")
    while len(cols) < 8:
        cols.append(".")
    old = [] if cols[7] in (".", "") else [f for f in cols[7].split(";")
                                           if f.split("=", 1)[0] not in values]
    cols[7] = ";".join(old + [f"{k}={','.join(v)}" for k, v in values.items()]) or "."
    return "\t".join(cols) + "\n"


def score_vcf(vcf: str | os.PathLike, reference, model, output: str | os.PathLike, *,
              fmt: str | None = None, ref_mismatch: str = "error", strands: str = "both",
              batch_size: int = 256, model_name: str = "model", info_prefix: str | None = None,
              scan: int = 0, show_progress: bool | None = None, source: str | None = None,
              line_offset: int = 0, rejects: Rejects | None = None) -> dict:
    """Score every variant of ``vcf`` and write ``output`` (``.vcf``, ``.vcf.gz`` or ``.tsv``
    / ``.tsv.gz`` / ``.csv``; ``fmt`` overrides the suffix), atomically. Rejects go beside
    the output (``<name>.rejected.csv``) and into ``rejects`` when given. Returns counts and
    variants/s. ``source``, ``line_offset``: ``vcf`` is a slice of that file (see
    :func:`~pmtoolkit.genomics.variants.iter_records`)."""
    from pmtoolkit.core.io import atomic_write
    from pmtoolkit.core.progress import progress_bar
    from pmtoolkit.genomics.variants import close_vcf, iter_records, open_vcf, raw_lines

    out = Path(output)
    fmt = fmt or _output_format(out)
    scorer = VariantScorer(model, reference, strands=strands, batch_size=batch_size,
                           scan=scan)
    own_rejects = rejects is None
    rejects = Rejects(source or str(vcf), "variant") if own_rejects else rejects
    vf = open_vcf(vcf)
    is_bcf = bool(getattr(vf, "is_bcf", str(vcf).lower().endswith(".bcf")))
    first = first_record_line(vcf, is_bcf, line_offset)
    prefix = info_prefix or info_key("pmt", model_name)
    n_records = n_scored = 0
    t0 = time.perf_counter()
    records = iter_records(vcf, reference=reference, ref_mismatch=ref_mismatch,
                           rejects=rejects, vcf=vf, source=source, line_offset=line_offset)
    bar = progress_bar(desc="score", unit="variant", enabled=show_progress)
    try:
        if fmt == "vcf":
            header, fields = _vcf_header(vf, scorer, prefix, model_name)
            # the input's own lines, byte for byte (pysam would rewrite values such as
            # PVALUE=2.94e-218 as PVALUE=0); a BCF has none, so its records are pysam's text
            raw = None if is_bcf else raw_lines(vcf, line_offset)
            with _atomic_bgzf(out) as fh:
                if raw is None:
                    fh.write(header)
                else:
                    keys = {f[0] for f in fields}
                    copy_header(fh, raw, [ln for ln in header.splitlines()
                                          if ln.startswith("##INFO=<ID=")
                                          and ln[11:].split(",", 1)[0] in keys], keys)
                for batch in _batched(records, 4 * batch_size, first):
                    flat = [v for r in batch for v in r.variants if v is not None]
                    sc = scorer.score(flat) if flat else None
                    stats = {"diff": sc.diff, "logodds": sc.logodds} if sc else {}
                    k = 0  # row of the next scored variant in the batch
                    for r in batch:
                        rows = []
                        for v in r.variants:
                            rows.append(None if v is None else k)
                            k += v is not None
                        line = str(r.record) if raw is None else record_text(raw, r)
                        if any(i is not None for i in rows):
                            values = {key: ["." if i is None else _format(stats[stat][i, j])
                                            for i in rows]
                                      for key, _, stat, j in fields}
                            line = _annotate(line, values)
                        fh.write(line)
                    n_records += len(batch)
                    n_scored += len(flat)
                    bar.update(len(flat))
            if out.name.lower().endswith((".gz", ".bgz")):
                tabix(out)
        else:
            sep = "\t" if fmt == "tsv" else ","
            with atomic_write(out) as fh:
                fh.write(sep.join(["chrom", "pos", "id", "ref", "alt", *scorer.columns()])
                         + "\n")
                for batch in _batched(records, 4 * batch_size, first):
                    flat = [v for r in batch for v in r.variants if v is not None]
                    if flat:
                        for row in scorer.rows(flat, scorer.score(flat)):
                            fh.write(sep.join(str(x) if i < 5 else _format(x)
                                              for i, x in enumerate(row)) + "\n")
                    n_records += len(batch)
                    n_scored += len(flat)
                    bar.update(len(flat))
    finally:
        bar.close()
        close_vcf(vf)
    return run_summary(rejects, out, fmt, records=n_records, scored=n_scored, started=t0,
                       write_rejects=own_rejects)


def run_summary(rejects: Rejects, out: Path, fmt: str, *, records: int, scored: int,
                started: float, write_rejects: bool = True) -> dict:
    """Write the rejects beside ``out`` (and say so; not when ``write_rejects`` is false: a
    partition's rejects go to its job) and return a scoring run's counts and variants/s
    (``started``: its ``time.perf_counter()``)."""
    from pmtoolkit.core.io import rejects_path

    seconds = time.perf_counter() - started
    rejected = None
    if rejects and write_rejects:
        rejected = rejects_path(out)
        rejects.write(rejected)
        log.warning("%d record(s) or allele(s) not scored; reasons in %s (first: %s)",
                    len(rejects), rejected, rejects.items[0].describe())
    return {"records": records, "variants_scored": scored, "rejected": len(rejects),
            "rejects_file": str(rejected) if rejected else None, "seconds": seconds,
            "variants_per_second": scored / seconds if seconds > 0 else 0.0,
            "output": str(out), "format": fmt}


def score_frame(vcf: str | os.PathLike, reference, model, *, ref_mismatch: str = "error",
                strands: str = "both", batch_size: int = 256, scan: int = 0):
    """The scores :func:`score_vcf` writes as TSV, as a pandas DataFrame: one row per scored
    variant and ALT allele (``chrom``, ``pos``, ``id``, ``ref``, ``alt``, then
    :meth:`VariantScorer.columns`), at full precision. Alleles not scored are left out and
    listed in ``frame.attrs["rejects"]`` (line and reason)."""
    import pandas as pd

    from pmtoolkit.genomics.variants import close_vcf, iter_records, open_vcf

    scorer = VariantScorer(model, reference, strands=strands, batch_size=batch_size,
                           scan=scan)
    rejects = Rejects(str(vcf), "variant")
    vf = open_vcf(vcf)
    first = first_record_line(vcf, bool(getattr(vf, "is_bcf", False)))
    rows: list[list] = []
    try:
        records = iter_records(vcf, reference=reference, ref_mismatch=ref_mismatch,
                               rejects=rejects, vcf=vf)
        for batch in _batched(records, 4 * batch_size, first):
            flat = [v for r in batch for v in r.variants if v is not None]
            if flat:
                rows.extend(scorer.rows(flat, scorer.score(flat)))
    finally:
        close_vcf(vf)
    frame = pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt", *scorer.columns()])
    frame.attrs["rejects"] = [{"line": r.line, "item": r.item, "reason": r.reason}
                              for r in rejects.items]
    if rejects:
        log.warning("%d record(s) or allele(s) not scored (first: %s)", len(rejects),
                    rejects.items[0].describe())
    return frame


def _output_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".vcf", ".vcf.gz", ".vcf.bgz")):
        return "vcf"
    if name.endswith((".tsv", ".tsv.gz", ".txt", ".txt.gz")):
        return "tsv"
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith(".bcf"):
        raise BadInputError(f"'{path}': BCF output is not supported",
                            hint="write .vcf.gz (bcftools view -Ob converts it)")
    raise BadInputError(f"cannot tell the output format of '{path}'",
                        hint="name it .vcf, .vcf.gz, .tsv or .csv, or give --format")


class _atomic_bgzf:
    """A text file written atomically; BGZF-compressed (tabix/bcftools-readable) when the name
    ends in ``.gz``/``.bgz``."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        import tempfile

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.pmt-tmp-", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        if self.path.name.lower().endswith((".gz", ".bgz")):
            import pysam

            self.fh = pysam.BGZFile(str(self.tmp), "wb")
            self._encode = True
        else:
            self.fh = open(self.tmp, "w", encoding="utf-8")
            self._encode = False
        return self

    def write(self, text: str) -> None:
        self.fh.write(text.encode() if self._encode else text)

    def __exit__(self, exc_type, *_):
        self.fh.close()
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return False
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(self.tmp, 0o666 & ~mask)
        os.replace(self.tmp, self.path)
        return False


def tabix(path: Path) -> None:
    """A tabix index beside a bgzipped VCF, written atomically."""
    import pysam

    from pmtoolkit.genomics.variants import htslib_quiet

    tmp = path.with_name(f".{path.name}.pmt-tmp-index.vcf.gz")
    try:
        os.link(path, tmp)
        with htslib_quiet():
            pysam.tabix_index(str(tmp), preset="vcf", force=True)
        os.replace(f"{tmp}.tbi", f"{path}.tbi")
    except OSError:
        Path(f"{path}.tbi").unlink(missing_ok=True)  # an older index would not fit
        log.warning("%s is written but not indexed: its records are not sorted by position "
                    "(bcftools sort -Oz -o sorted.vcf.gz %s && tabix -p vcf sorted.vcf.gz)",
                    path, path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.tbi").unlink(missing_ok=True)
