"""Typed variant records and VCF/BCF reading (through pysam / htslib).

Every input record ends up either as one :class:`Variant` per ALT allele (multi-allelic
records are split) or as a reject with its line number and reason: a malformed line, an
unknown contig, a symbolic or breakend allele, a REF that does not match the reference
(``ref_mismatch="skip"``), a position past the contig's end. Nothing is dropped silently.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import Rejects, check_choice, open_text, require_file

log = logging.getLogger(__name__)

REF_MISMATCH_CHOICES = ("error", "skip", "warn")
_BASES = re.compile(r"^[ACGTNacgtn]+$")
#: a run of this many unreadable records in a row means the file itself is broken
_MAX_CONSECUTIVE_ERRORS = 1000


@dataclass(frozen=True, slots=True)
class Variant:
    """One ALT allele of a VCF record. ``pos`` is VCF's 1-based position of the first REF base;
    ``line`` is the record's line in the file (1-based, header included)."""

    chrom: str
    pos: int
    ref: str
    alt: str
    id: str = "."
    line: int | None = None

    @property
    def start(self) -> int:
        """0-based start of the REF allele."""
        return self.pos - 1

    @property
    def end(self) -> int:
        """0-based, exclusive end of the REF allele."""
        return self.pos - 1 + len(self.ref)

    @property
    def kind(self) -> str:
        """``snv``, ``mnv`` (equal lengths > 1), ``insertion``, ``deletion`` (ALT a prefix or
        suffix of REF or the other way round), or ``indel`` (complex length change)."""
        r, a = self.ref, self.alt
        if len(r) == len(a):
            return "snv" if len(r) == 1 else "mnv"
        if len(r) < len(a):
            return "insertion" if a.startswith(r) or a.endswith(r) else "indel"
        return "deletion" if r.startswith(a) or r.endswith(a) else "indel"

    def __str__(self) -> str:
        return f"{self.chrom}:{self.pos}:{self.ref}>{self.alt}"


def check_allele(allele: str | None, what: str = "ALT") -> str | None:
    """The reason an allele cannot be scored, or ``None`` when it is plain bases."""
    if allele is None or allele in (".", ""):
        return f"missing {what} allele"
    if allele.startswith("<"):
        return f"symbolic {what} allele {allele} is not supported (sequence alleles only)"
    if "[" in allele or "]" in allele:
        return f"breakend {what} allele {allele} is not supported"
    if allele == "*":
        return f"spanning-deletion {what} allele '*' has no sequence of its own"
    if not _BASES.match(allele):
        bad = sorted(set(allele.upper()) - set("ACGTN"))
        return f"{what} allele {allele!r} has letters other than A, C, G, T, N ({''.join(bad)})"
    return None


def check_against_reference(v: Variant, reference) -> tuple[str | None, str]:
    """``(reason, kind)`` why ``v`` cannot be placed on ``reference``; ``kind`` is ``contig``,
    ``bounds`` or ``mismatch``. ``(None, "")`` when REF matches."""
    name = reference.resolve(v.chrom)
    if name is None:
        return f"contig {v.chrom!r} is not in the reference", "contig"
    n = reference.lengths[name]
    if v.pos < 1 or v.end > n:
        return f"position {v.pos} is outside contig {name} (length {n})", "bounds"
    actual = reference.fetch(name, v.start, v.end)
    if actual != v.ref.upper():
        return (f"REF {v.ref} does not match the reference ({actual}) at {name}:{v.pos}",
                "mismatch")
    return None, ""


@contextlib.contextmanager
def htslib_quiet():
    """htslib writes parse warnings to stderr; pmtoolkit reports them as rejects instead."""
    import pysam

    try:
        old = pysam.set_verbosity(0)
    except AttributeError:  # pragma: no cover - older pysam
        yield
        return
    try:
        yield
    finally:
        pysam.set_verbosity(old)


def open_vcf(path: str | os.PathLike):
    """A pysam ``VariantFile`` for a VCF/BCF, or a one-line error."""
    import errno

    import pysam

    path = require_file(path, "VCF")
    with htslib_quiet():
        try:
            return pysam.VariantFile(str(path))
        except NotImplementedError:  # htslib cannot seek in gzip that is not BGZF
            raise BadInputError(f"'{path}' is compressed with gzip, not bgzip; htslib reads "
                                "only bgzip-compressed VCF",
                                hint=f"recompress it: zcat {path} | bgzip > "
                                     f"{path.with_suffix('.bgz').name}") from None
        except (OSError, ValueError) as exc:
            if getattr(exc, "errno", None) == errno.ENOEXEC:  # htslib: unknown format
                raise BadInputError(f"'{path}' is not a VCF or BCF file (htslib does not "
                                    "recognise its format)",
                                    hint="give a VCF (plain or bgzipped) or a BCF file"
                                    ) from None
            problem = _header_problem(path)
            if problem:
                raise BadInputError(f"'{path}': {problem}",
                                    hint="a VCF starts with ##fileformat=VCFv4.x and the "
                                         "column line #CHROM POS ID REF ALT QUAL FILTER INFO "
                                         "before the records") from None
            raise BadInputError(f"'{path}': cannot read it as VCF/BCF ({exc})",
                                hint="give a VCF (plain or bgzipped) or a BCF file") from None


def _header_problem(path: Path) -> str | None:
    """What is wrong with the header of a text VCF htslib refused, when its first lines
    tell (``None`` when they do not, e.g. a BCF or a damaged block)."""
    import gzip

    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        opener = gzip.open if magic == b"\x1f\x8b" else open
        with opener(path, "rt", errors="replace") as fh:
            for n, line in enumerate(fh, start=1):
                if line.startswith("#CHROM"):
                    return None
                if not line.startswith("#"):
                    if n == 1:
                        return "no VCF header (the first line is a record, not ##fileformat)"
                    return (f"no #CHROM column line before the first record (line {n})")
                if n > 100_000:
                    return None
    except (OSError, EOFError, UnicodeError):
        return None
    return "no #CHROM column line (the file has a header and no records)"


def close_vcf(vf) -> None:
    """Close a ``VariantFile``; htslib reports a damaged file again on closing, which must
    not hide the error already raised for it."""
    try:
        vf.close()
    except OSError:
        pass


def raw_lines(path: str | os.PathLike, line_offset: int = 0) -> Iterator[tuple[int, str]]:
    """The text lines of a plain or bgzipped VCF, as written, with their 1-based numbers
    (the ``line`` of :class:`VcfRecord`, so ``line_offset`` is added as in
    :func:`iter_records`), for outputs that keep the input byte for byte."""
    from pmtoolkit.core.io import open_text

    with open_text(path) as fh:
        yield from enumerate(fh, start=1 + line_offset)


@dataclass
class VcfRecord:
    """A VCF record as read (``record``: pysam's, ``None`` when htslib could not parse the
    line) and the variant of each ALT allele (``None`` where the allele was rejected)."""

    record: object
    line: int | None
    variants: list


def iter_records(path: str | os.PathLike, *, reference=None, ref_mismatch: str = "error",
                 rejects: Rejects | None = None, vcf=None, source: str | None = None,
                 line_offset: int = 0) -> Iterator[VcfRecord]:
    """Stream the records of a VCF or BCF (plain or bgzipped) with one :class:`Variant` per
    usable ALT allele; every unusable record or allele is added to ``rejects`` with its line
    and reason (malformed records are not yielded).

    With a ``reference`` (:class:`~pmtoolkit.genomics.reference.Reference`), contigs are
    resolved (``2`` finds ``chr2``) and REF is checked: ``ref_mismatch="error"`` raises
    :class:`BadInputError`, ``"skip"`` rejects the allele, ``"warn"`` logs it and keeps it.
    ``vcf``: an already opened ``VariantFile`` of ``path``. ``path`` may hold a slice of a
    larger VCF (its header, then some of its records: a partition of a distributed run);
    messages then name ``source``, and ``line_offset`` is added to every line number, so that
    they are the larger file's."""
    check_choice("ref_mismatch", ref_mismatch, REF_MISMATCH_CHOICES)
    path = require_file(path, "VCF")
    name = source or str(path)
    rejects = rejects if rejects is not None else Rejects(name, "variant")
    vf = vcf if vcf is not None else open_vcf(path)
    is_bcf = bool(getattr(vf, "is_bcf", str(path).endswith(".bcf")))
    header_lines = 0 if is_bcf else _count_header_lines(path) + line_offset
    malformed: list[int] = []  # positions in rejects.items whose text is filled in at the end
    warned = 0
    quiet = contextlib.ExitStack()
    quiet.enter_context(htslib_quiet())  # for the whole read, not toggled per record
    try:
        it = iter(vf)
        index = consecutive = 0
        while True:
            try:
                rec = next(it)
                consecutive = 0
            except StopIteration:
                break
            except (OSError, ValueError) as exc:
                index += 1
                consecutive += 1
                if consecutive > _MAX_CONSECUTIVE_ERRORS:
                    at = f"record {index}" if is_bcf else f"line {header_lines + index}"
                    raise BadInputError(f"{name}: unreadable at {at} ({exc})",
                                        hint="check the file is a complete VCF") from None
                malformed.append(len(rejects.items))
                rejects.add("", None if is_bcf else header_lines + index,
                            "malformed VCF record (htslib could not parse it)")
                continue
            index += 1
            line = None if is_bcf else header_lines + index
            ref = rec.ref
            alts = rec.alts or (None,)
            out = VcfRecord(rec, line, [None] * len(alts))
            reason = check_allele(ref, "REF")
            if reason:
                rejects.add(f"{rec.chrom}:{rec.pos}:{ref}>{','.join(a or '.' for a in alts)}",
                            line, reason)
                yield out
                continue
            for k, alt in enumerate(alts):
                item = f"{rec.chrom}:{rec.pos}:{ref}>{alt or '.'}"
                reason = check_allele(alt)
                if reason is None and alt.upper() == ref.upper():
                    reason = "ALT equals REF"
                if reason:
                    rejects.add(item, line, reason)
                    continue
                v = Variant(rec.chrom, int(rec.pos), ref.upper(), alt.upper(), rec.id or ".",
                            line)
                if reference is not None:
                    reason, kind = check_against_reference(v, reference)
                    if kind == "mismatch" and ref_mismatch == "error":
                        where = f"line {line}: " if line else ""
                        raise BadInputError(f"{name}: {where}{reason}",
                                            hint="check the VCF and FASTA are the same genome "
                                                 "build, or use --ref-mismatch skip|warn")
                    if kind == "mismatch" and ref_mismatch == "warn":
                        warned += 1
                        if warned <= 5:
                            log.warning("%s (kept)", reason)
                        reason = None
                    if reason:
                        rejects.add(item, line, reason)
                        continue
                out.variants[k] = v
            yield out
    finally:
        quiet.close()
        if vcf is None:
            close_vcf(vf)
        if warned > 5:
            log.warning("%d REF mismatches kept in all (--ref-mismatch warn)", warned)
        if malformed and not is_bcf:
            _fill_malformed(path, rejects, malformed, line_offset)


def iter_vcf(path: str | os.PathLike, *, reference=None, ref_mismatch: str = "error",
             rejects: Rejects | None = None) -> Iterator[Variant]:
    """Stream the variants of a VCF or BCF, one per usable ALT allele (multi-allelic
    records split); see :func:`iter_records` for the checks and rejects."""
    for r in iter_records(path, reference=reference, ref_mismatch=ref_mismatch,
                          rejects=rejects):
        yield from (v for v in r.variants if v is not None)


def _count_header_lines(path: Path) -> int:
    n = 0
    with open_text(path) as fh:
        for text in fh:
            if not text.startswith("#"):
                break
            n += 1
    return n


def _fill_malformed(path: Path, rejects: Rejects, positions: list[int],
                    line_offset: int = 0) -> None:
    """Put each malformed record's own text into its reject (one pass over the file)."""
    wanted = {rejects.items[i].line - line_offset: i for i in positions}
    try:
        with open_text(path) as fh:
            for n, text in enumerate(fh, start=1):
                if n in wanted:
                    r = rejects.items[wanted[n]]
                    rejects.items[wanted[n]] = type(r)(text.rstrip("\n")[:200], r.line,
                                                       r.reason)
    except (OSError, UnicodeDecodeError):  # the reason and line number still stand
        pass


def read_vcf(path: str | os.PathLike, *, reference=None, ref_mismatch: str = "error"
             ) -> tuple[list[Variant], Rejects]:
    """All variants of a VCF/BCF and the records that could not be used (see
    :func:`iter_vcf`)."""
    rejects = Rejects(str(path), "variant")
    variants = list(iter_vcf(path, reference=reference, ref_mismatch=ref_mismatch,
                             rejects=rejects))
    return variants, rejects


def _centred(left: str, allele: str, right: str, size: int) -> str:
    """``size`` bases with ``allele`` in the middle: ``left`` and ``right`` are flanks of at
    least ``size`` bases each."""
    a = (size - len(allele)) // 2
    if a < 0:  # an allele longer than the window: its middle
        cut = -a
        return allele[cut:cut + size]
    b = size - len(allele) - a
    return left[len(left) - a:] + allele + right[:b]


def allele_windows(v: Variant, reference, size: int) -> tuple[str, str]:
    """The reference and alternative sequences of ``size`` bases around ``v``, each with its
    own allele centred (so an indel's ALT window is full length too). Beyond the contig's ends
    the bases are ``N``."""
    if size < 1:
        raise BadInputError("the window size must be at least 1")
    left = reference.fetch(v.chrom, v.start - size, v.start)
    right = reference.fetch(v.chrom, v.end, v.end + size)
    return _centred(left, v.ref, right, size), _centred(left, v.alt, right, size)
