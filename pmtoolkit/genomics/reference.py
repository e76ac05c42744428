"""Reference genome access: bgzipped FASTA with ``.fai``/``.gzi`` indexes (through pysam's
faidx), plain FASTA, and, for small files, plain-gzip FASTA read into memory.

Contig names match across naming styles: a VCF that says ``2`` finds ``chr2`` in the FASTA
and the other way round (``MT``, ``M`` and ``chrM`` are one contig). Windows that run past a
contig's ends are padded with ``N``, so a variant near a telomere still gets a full window.

An index is checked against the FASTA before it is used: every record's header must sit where
the ``.fai`` says its sequence starts, and its lines must end where the ``.fai`` says, so a stale
index (the FASTA edited or replaced after indexing) is an error naming it instead of a stream of
wrong bases. Two records of one name are an error too (htslib would silently use the first).
"""
from __future__ import annotations

import bisect
import gzip
import hashlib
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.core.io import reading, require_file

log = logging.getLogger(__name__)

#: plain-gzip FASTA (not bgzip) is read into memory up to this many compressed bytes
IN_MEMORY_LIMIT = 200_000_000
#: the empty block that ends every complete BGZF file
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
#: the most bytes read between two records when checking an index (blank lines and headers)
HEADER_MAX = 1 << 16


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
        self._announced: set[str] = set()
        for name in self.contigs:
            for alt in contig_aliases(name):
                if alt not in self.lengths:
                    self._alias.setdefault(alt, name)

    # -- opening -------------------------------------------------------------------------
    def _open_indexed(self) -> None:
        import pysam

        from pmtoolkit.genomics.variants import htslib_quiet

        p = self.path
        fai = p.with_name(p.name + ".fai")
        gzi = p.with_name(p.name + ".gzi")
        bgzf = _is_bgzf(p)
        if bgzf and not _has_bgzf_eof(p):
            raise BadInputError(f"'{p}' is truncated (no BGZF end-of-file block)",
                                hint="check the download, or recompress it with bgzip")
        built = not fai.exists() or (bgzf and not gzi.exists())
        if built:
            fai, gzi = self._build_index(bgzf)
        check_index(p, fai, gzi if bgzf else None, built=built)
        kwargs = {"filepath_index": str(fai)}
        if bgzf:
            kwargs["filepath_index_compressed"] = str(gzi)
        try:
            with htslib_quiet():
                self._fasta = pysam.FastaFile(str(p), **kwargs)
        except (OSError, ValueError) as exc:
            raise BadInputError(f"{p}: cannot read it as FASTA ({exc})",
                                hint="give a FASTA file, plain or bgzip-compressed") from None
        if not self._fasta.references:
            raise BadInputError(f"{p}: the FASTA has no sequences")
        self.contigs = list(self._fasta.references)
        self._lengths = list(self._fasta.lengths)

    def _build_index(self, bgzf: bool) -> tuple[Path, Path]:
        """Index a FASTA that has none, beside it when its folder is writable, else in the
        user's cache (keyed by path, size and mtime); the paths of the ``.fai`` and ``.gzi``."""
        import pysam

        from pmtoolkit.genomics.variants import htslib_quiet

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
                with htslib_quiet():
                    pysam.faidx(*args)
            except pysam.SamtoolsError:
                raise BadInputError(f"'{p}': htslib cannot index it as FASTA "
                                    f"({_not_fasta_reason(p, bgzf)})") from None
        return fai, gzi

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
        with reading(self.path), gzip.open(self.path, "rt") as fh:
            for n, line in enumerate(fh, start=1):
                if line.startswith(">"):
                    name = line[1:].split(maxsplit=1)[0] if line[1:].strip() else ""
                    if not name:
                        raise BadInputError(f"{self.path}: line {n}: a FASTA header without "
                                            "a name")
                    if name in seqs:
                        raise BadInputError(_duplicate(self.path, name, f"line {n}"))
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
        name = self._alias.get(chrom)
        if name is not None and chrom not in self._announced:
            self._announced.add(chrom)  # say it once per name, not once per variant
            log.info("contig %s is %s in %s: mapped", chrom, name, self.path.name)
        return name

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
            try:
                core = self._fasta.fetch(name, lo, hi).upper()
            except (OSError, ValueError) as exc:  # a corrupt block htslib cannot inflate
                raise BadInputError(f"'{self.path}': cannot read {name}:{lo + 1}-{hi} ({exc})",
                                    hint="check the file is complete") from None
            if len(core) != hi - lo:
                raise BadInputError(f"'{self.path}': {name}:{lo + 1}-{hi} reads "
                                    f"{len(core)} bases", hint="check the file is complete")
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


# ----------------------------------------------------------------------------- index checks

def _has_bgzf_eof(path: Path) -> bool:
    size = path.stat().st_size
    if size < len(BGZF_EOF):
        return False
    with open(path, "rb") as fh:
        fh.seek(size - len(BGZF_EOF))
        return fh.read() == BGZF_EOF


def _duplicate(path: Path, name: str, where: str) -> str:
    return (f"'{path}': contig {name!r} appears twice ({where}); a position on it would be "
            "ambiguous: rename or remove one of the two records")


@dataclass(frozen=True)
class _FaiEntry:
    name: str
    length: int
    offset: int
    linebases: int
    linewidth: int

    @property
    def end(self) -> int:
        """Offset just past the sequence's last line (and its line break)."""
        if self.length == 0:
            return self.offset
        full, rest = divmod(self.length, self.linebases)
        eol = self.linewidth - self.linebases
        return self.offset + full * self.linewidth + (rest + eol if rest else 0)


class _IndexMismatch(Exception):
    """An index that does not describe its FASTA (the reason is the message)."""


def read_fai(fai: Path) -> list[_FaiEntry]:
    """The records of a ``.fai`` index, in file order."""
    entries = []
    with reading(fai), open(fai, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            parts = line.rstrip("\r\n").split("\t")
            try:
                entry = _FaiEntry(parts[0], *(int(v) for v in parts[1:5]))
            except (IndexError, ValueError, TypeError):
                entry = None
            if (entry is None or not entry.name or entry.length < 0 or entry.offset < 0
                    or entry.linebases < (1 if entry.length else 0)
                    or entry.linewidth < entry.linebases):
                raise BadInputError(f"'{fai}': line {n} is not a FASTA index line",
                                    hint=f"delete '{fai}' to rebuild it")
            entries.append(entry)
    return entries


class _Bytes:
    """Random access to the uncompressed bytes of a plain or BGZF file (through its ``.gzi``:
    the compressed and uncompressed start of every block), a few blocks cached."""

    def __init__(self, path: Path, gzi: Path | None):
        self.fh = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.file_size = os.fstat(self.fh.fileno()).st_size
        self.cache: dict[int, bytes] = {}
        self.c = self.u = None
        if gzi is not None:
            raw = gzi.read_bytes()
            n = int.from_bytes(raw[:8], "little") if len(raw) >= 8 else -1
            if n < 0 or len(raw) != 8 + 16 * n:
                raise _IndexMismatch(f"'{gzi}' is not a BGZF block index")
            values = [int.from_bytes(raw[i:i + 8], "little") for i in range(8, len(raw), 8)]
            self.c, self.u = [0, *values[0::2]], [0, *values[1::2]]
            if any(b <= a for a, b in zip(self.c, self.c[1:])) or self.c[-1] >= self.file_size:
                raise _IndexMismatch(f"the block offsets of '{gzi}' do not fit the file")

    def close(self) -> None:
        self.fh.close()

    def _block(self, i: int) -> bytes:
        if i not in self.cache:
            if len(self.cache) > 8:
                self.cache.clear()
            stop = self.c[i + 1] if i + 1 < len(self.c) else self.file_size
            self.fh.seek(self.c[i])
            try:
                data = zlib.decompressobj(31).decompress(self.fh.read(stop - self.c[i]))
            except zlib.error:
                raise _IndexMismatch("its .gzi does not point at the file's blocks") from None
            if i + 1 < len(self.u) and len(data) != self.u[i + 1] - self.u[i]:
                raise _IndexMismatch("its .gzi does not point at the file's blocks")
            self.cache[i] = data
        return self.cache[i]

    @property
    def size(self) -> int:
        if self.c is None:
            return self.file_size
        return self.u[-1] + len(self._block(len(self.c) - 1))

    def read(self, start: int, n: int) -> bytes:
        if self.c is None:
            self.fh.seek(start)
            return self.fh.read(n)
        out = []
        while n > 0:
            i = bisect.bisect_right(self.u, start) - 1
            piece = self._block(i)[start - self.u[i]:start - self.u[i] + n]
            if not piece:
                break
            out.append(piece)
            start += len(piece)
            n -= len(piece)
        return b"".join(out)


def _header_name(line: bytes) -> str:
    fields = line[1:].split(maxsplit=1)
    return fields[0].decode("utf-8", "replace") if fields else ""


def _between(data: _Bytes, start: int, stop: int, expect: str | None, verified: set[str],
             names: set[str], path: Path) -> None:
    """Check the bytes between two indexed sequences (``expect=None``: after the last one):
    blank lines and headers of empty records (htslib indexes none), then the header of
    ``expect``. A header of a record already checked is a second record of that name."""
    length = stop - start
    if length < 0:
        raise _IndexMismatch(f"the records of {expect!r} and the one before overlap")
    text = data.read(start, min(length, HEADER_MAX))
    lines = text.split(b"\n")
    if length > HEADER_MAX:
        lines = lines[:-1]  # the last line may be cut
    headers, sequence = [], False
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if not line.startswith(b">"):
            sequence = True
            continue
        name = _header_name(line)
        if name in verified:  # htslib indexes the first record of a name and skips the rest
            raise BadInputError(_duplicate(path, name, f"the second after byte {start}"))
        headers.append(name)
    where = f"before {expect!r}" if expect else "after the last indexed record"
    if sequence or length > HEADER_MAX:
        raise _IndexMismatch(f"the file has sequence {where} (byte {start}) that the index "
                             "does not cover")
    empty = headers[:-1] if expect else headers
    moved = [n for n in empty if n in names]
    if moved:
        raise _IndexMismatch(f"record {moved[0]!r} is not where the index puts it")
    if expect is not None and (not headers or headers[-1] != expect
                               or not text.endswith(b"\n")):
        raise _IndexMismatch(f"the header of {expect!r} is not where the index puts it")


def _not_fasta_reason(path: Path, bgzf: bool) -> str:
    """Why htslib could not index ``path``, as far as its first bytes tell (damaged
    compressed data is a :class:`BadInputError` of its own)."""
    with reading(path), (gzip.open(path, "rb") if bgzf else open(path, "rb")) as fh:
        head = fh.read(4096)
        while bgzf and fh.read(1 << 20):
            pass
    if not head.lstrip().startswith(b">"):
        return "it does not start with a '>name' header; is it a FASTA file?"
    return ("the lines of a record must all be one length but the last, with no blank lines "
            "inside a record")


def check_index(path: Path, fai: Path, gzi: Path | None, *, built: bool = False) -> None:
    """Refuse an index that does not describe ``path`` (a stale ``.fai``/``.gzi``, or one
    written for another file) and a FASTA with two records of one name. Reads only the
    bytes around each record's ends, so it costs milliseconds even for a genome. ``built``:
    the index was made from ``path`` just now, so a disagreement means a damaged file."""
    entries = read_fai(fai)
    names = {e.name for e in entries}
    verified: set[str] = set()
    try:
        data = _Bytes(path, gzi)
        try:
            previous = 0
            for e in entries:
                _between(data, previous, e.offset, e.name, verified, names, path)
                verified.add(e.name)
                if e.length > e.linebases:  # the first line ends where the index says
                    eol = data.read(e.offset + e.linebases, e.linewidth - e.linebases)
                    if len(eol) != e.linewidth - e.linebases or eol.strip(b"\r\n"):
                        raise _IndexMismatch(f"the lines of {e.name!r} are not "
                                             f"{e.linebases} bases long")
                previous = e.end
            size = data.size
            if entries and size < previous - (entries[-1].linewidth - entries[-1].linebases):
                raise _IndexMismatch(f"the file ends before {entries[-1].name!r} does")
            _between(data, min(previous, size), size, None, verified, names, path)
        finally:
            data.close()
    except _IndexMismatch as exc:
        if built:
            raise BadInputError(f"'{path}' does not read back as the FASTA htslib indexed "
                                f"({exc})", hint="check the file is complete") from None
        older = fai.stat().st_mtime < path.stat().st_mtime
        also = f" (and '{gzi}')" if gzi is not None else ""
        raise BadInputError(
            f"the index '{fai}'{also} {'is older than and ' if older else ''}does not match "
            f"'{path}': {exc}; delete it to rebuild") from None
