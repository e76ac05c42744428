"""Reference genome access: bgzipped FASTA with ``.fai``/``.gzi`` indexes (through pysam's
faidx), plain FASTA, and, for small files, plain-gzip FASTA read into memory.

Contig names match across naming styles: a VCF that says ``2`` finds ``chr2`` in the FASTA
and the other way round (``MT``, ``M`` and ``chrM`` are one contig). Windows that run past a
contig's ends are padded with ``N``, so a variant near a telomere still gets a full window.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import os
from pathlib import Path

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.core.io import require_file

log = logging.getLogger(__name__)

#: plain-gzip FASTA (not bgzip) is read into memory up to this many compressed bytes
IN_MEMORY_LIMIT = 200_000_000


def contig_aliases(name: str) -> list[str]:
    """The spellings of a contig name in the other common styles (UCSC ``chr2``, Ensembl
    ``2``; ``chrM`` / ``MT`` / ``M``)."""
    base = name[3:] if name.lower().startswith("chr") else name
    names = [base, f"chr{base}"]
    if base.upper() in ("M", "MT"):
        names += ["MT", "M", "chrM", "chrMT"]
    return [n for n in dict.fromkeys(names) if n != name]


def _is_bgzf(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(18)
    # gzip magic, FLG.FEXTRA, and the BGZF extra subfield "BC"
    return len(head) >= 14 and head[:2] == b"\x1f\x8b" and head[3] & 4 and head[12:14] == b"BC"


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "pmtoolkit" / "faidx"


class Reference:
    """A reference genome. ``fetch(chrom, start, end)`` takes 0-based, half-open coordinates
    and returns upper-case bases; ``resolve(chrom)`` gives the FASTA's name for a contig or
    ``None``."""

    def __init__(self, path: str | os.PathLike):
        self.path = require_file(path, "reference FASTA")
        self._fasta = None
        self._memory: dict[str, str] | None = None
        if _is_gzip(self.path) and not _is_bgzf(self.path):
            self._load_in_memory()
        else:
            self._open_indexed()
        self.lengths = dict(zip(self.contigs, self._lengths))
        self._alias: dict[str, str] = {}
        for name in self.contigs:
            for alt in contig_aliases(name):
                if alt not in self.lengths:
                    self._alias.setdefault(alt, name)

    # -- opening -------------------------------------------------------------------------
    def _open_indexed(self) -> None:
        import pysam

        p = self.path
        fai = p.with_name(p.name + ".fai")
        gzi = p.with_name(p.name + ".gzi")
        bgzf = _is_bgzf(p)
        kwargs = {}
        if not fai.exists() or (bgzf and not gzi.exists()):
            kwargs = self._build_index(bgzf)
        try:
            self._fasta = pysam.FastaFile(str(p), **kwargs)
        except (OSError, ValueError) as exc:
            raise BadInputError(f"{p}: cannot read it as FASTA ({exc})",
                                hint="give a FASTA file, plain or bgzip-compressed") from None
        if not self._fasta.references:
            raise BadInputError(f"{p}: the FASTA has no sequences")
        self.contigs = list(self._fasta.references)
        self._lengths = list(self._fasta.lengths)

    def _build_index(self, bgzf: bool) -> dict[str, str]:
        """Index a FASTA that has none, beside it when its folder is writable, else in the
        user's cache (keyed by path, size and mtime)."""
        import pysam

        p = self.path
        if os.access(p.parent, os.W_OK):
            fai, gzi = p.with_name(p.name + ".fai"), p.with_name(p.name + ".gzi")
        else:
            st = p.stat()
            key = hashlib.sha256(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
            folder = _cache_dir() / key.hexdigest()[:16]
            folder.mkdir(parents=True, exist_ok=True)
            fai, gzi = folder / (p.name + ".fai"), folder / (p.name + ".gzi")
        if not fai.exists() or (bgzf and not gzi.exists()):
            log.info("indexing %s", p)
            args = [str(p), "--fai-idx", str(fai)]
            if bgzf:
                args += ["--gzi-idx", str(gzi)]
            try:
                pysam.faidx(*args)
            except pysam.SamtoolsError as exc:
                raise BadInputError(f"{p}: cannot index the FASTA "
                                    f"({' '.join(str(exc).split())[:200]})") from None
        out = {"filepath_index": str(fai)}
        if bgzf:
            out["filepath_index_compressed"] = str(gzi)
        return out

    def _load_in_memory(self) -> None:
        size = self.path.stat().st_size
        if size > IN_MEMORY_LIMIT:
            raise BadInputError(
                f"{self.path}: a plain-gzip FASTA of {size / 1e9:.1f} GB cannot be indexed",
                hint="recompress it with bgzip (zcat ref.fa.gz | bgzip > ref.fa.bgz) or "
                     "give it uncompressed")
        log.info("%s is gzip, not bgzip: reading it into memory", self.path)
        seqs: dict[str, list[str]] = {}
        name = None
        with gzip.open(self.path, "rt") as fh:
            for line in fh:
                if line.startswith(">"):
                    name = line[1:].split(maxsplit=1)[0] if line[1:].strip() else ""
                    if not name:
                        raise BadInputError(f"{self.path}: a FASTA header without a name")
                    seqs[name] = []
                elif line.strip():
                    if name is None:
                        raise BadInputError(f"{self.path}: sequence before the first header",
                                            hint="a FASTA record starts with a '>name' line")
                    seqs[name].append(line.strip())
        if not seqs:
            raise BadInputError(f"{self.path}: the FASTA has no sequences")
        self._memory = {k: "".join(v).upper() for k, v in seqs.items()}
        self.contigs = list(self._memory)
        self._lengths = [len(v) for v in self._memory.values()]

    # -- access --------------------------------------------------------------------------
    def resolve(self, chrom: str) -> str | None:
        """The FASTA's name for ``chrom`` (exact or an alias), ``None`` if it has no such
        contig."""
        if chrom in self.lengths:
            return chrom
        return self._alias.get(chrom)

    def __contains__(self, chrom: str) -> bool:
        return self.resolve(chrom) is not None

    def length(self, chrom: str) -> int:
        name = self.resolve(chrom)
        if name is None:
            raise MissingInputError(f"contig {chrom!r} is not in the reference {self.path}")
        return self.lengths[name]

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Bases ``[start, end)`` (0-based) of ``chrom``, upper-case; positions outside the
        contig read as ``N``."""
        name = self.resolve(chrom)
        if name is None:
            raise MissingInputError(f"contig {chrom!r} is not in the reference {self.path}")
        if end < start:
            raise BadInputError(f"empty interval {chrom}:{start}-{end}")
        n = self.lengths[name]
        lo, hi = max(start, 0), min(end, n)
        if hi <= lo:
            return "N" * (end - start)
        if self._memory is not None:
            core = self._memory[name][lo:hi]
        else:
            core = self._fasta.fetch(name, lo, hi).upper()
        return "N" * (lo - start) + core + "N" * (end - hi)

    def close(self) -> None:
        if self._fasta is not None:
            self._fasta.close()
            self._fasta = None

    def __enter__(self) -> Reference:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Reference({str(self.path)!r}, {len(self.contigs)} contigs)"
