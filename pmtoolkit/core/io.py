"""Files in and out: atomic writes, tables, ``-`` for stdin/stdout, and reject lists.

Writers never leave a half-written file: they write a hidden temporary file beside the target
and rename it into place only when everything was written. Readers return what they could read
and a :class:`Rejects` list of what they could not (line number and reason), so a caller can
stop on the first bad record (``on_invalid="error"``) or keep going and write the rejects
beside its output (``on_invalid="skip"``).
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import io
import logging
import os
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pmtoolkit.core.devices import secondary_process
from pmtoolkit.core.errors import BadInputError, MissingInputError

if TYPE_CHECKING:  # pandas is imported where tables are read or written
    import pandas as pd

log = logging.getLogger(__name__)

STDIO = "-"
OnInvalid = Literal["error", "skip"]
ON_INVALID_CHOICES: tuple[str, ...] = ("error", "skip")
TABLE_FORMATS: tuple[str, ...] = ("csv", "tsv", "parquet")
_OUTPUT_MARKER = ".pmtoolkit-output"


# --------------------------------------------------------------------------- paths


def is_stdio(path: str | os.PathLike | None) -> bool:
    return path is not None and str(path) == STDIO


def require_file(path: str | os.PathLike, what: str = "input file") -> Path:
    """``path`` as a Path if it is an existing file, else a one-line :class:`MissingInputError`."""
    p = Path(path)
    if not p.exists():
        raise MissingInputError(f"{what} '{p}' does not exist")
    if p.is_dir():
        raise BadInputError(f"{what} '{p}' is a directory, expected a file")
    return p


def _strip_gz(path: Path) -> tuple[Path, bool]:
    if path.suffix.lower() in (".gz", ".bgz"):
        return path.with_suffix(""), True
    return path, False


def table_format(path: str | os.PathLike, default: str | None = None) -> str:
    """The table format named by a file's suffix (``.csv``, ``.tsv``/``.tab``/``.txt``,
    ``.parquet``/``.pq``, each optionally ``.gz``); ``default`` for stdin/stdout."""
    if is_stdio(path):
        if default is None:
            raise BadInputError("reading or writing a table on '-' needs an explicit format",
                                hint=f"one of {', '.join(TABLE_FORMATS)}")
        return default
    base, _ = _strip_gz(Path(path))
    suffix = base.suffix.lower()
    formats = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv",
               ".parquet": "parquet", ".pq": "parquet"}
    if suffix in formats:
        return formats[suffix]
    if default is not None:
        return default
    raise BadInputError(f"cannot tell the table format of '{path}' from its suffix",
                        hint="use .csv, .tsv or .parquet, optionally with .gz")


# --------------------------------------------------------------------------- text in


@contextlib.contextmanager
def open_text(path: str | os.PathLike, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Open a text file for reading; ``.gz`` (gzip or bgzip) is decompressed; ``-`` is stdin.

    Whatever reads the stream inside the ``with`` block, a truncated or corrupt gzip file and
    bytes that are not text become one :class:`BadInputError` naming the file (see
    :func:`reading`)."""
    if is_stdio(path):
        with reading(STDIO):
            yield sys.stdin
        return
    p = require_file(path)
    with open(p, "rb") as fh:
        magic = fh.read(2)
    with reading(p):
        if magic == GZIP_MAGIC:
            with gzip.open(p, "rt", encoding=encoding, newline="") as fh:
                yield fh
        else:
            with open(p, encoding=encoding, newline="") as fh:
                yield fh


GZIP_MAGIC = b"\x1f\x8b"
#: what Python's decompressors raise for a truncated or corrupt stream (EOFError must never
#: escape: click would report it as "aborted")
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (EOFError, gzip.BadGzipFile, zlib.error)


@contextlib.contextmanager
def reading(path: str | os.PathLike) -> Iterator[None]:
    """Turn the decoding and decompression failures of reading ``path`` inside the block into
    a one-line :class:`BadInputError` naming the file, and the line where it can be found.

    The one place where a truncated ``.gz`` or a binary file given as text becomes an input
    error, for every reader (tables, SMILES, FASTA, VCF, JSON lines, config files)."""
    name = "stdin" if is_stdio(path) else str(path)
    try:
        try:
            yield
        except SystemError as exc:
            # a C++ reader (RDKit's SDF supplier) pulling from a Python stream reports the
            # stream's own error as its cause
            if isinstance(exc.__cause__, (UnicodeDecodeError, *DECOMPRESSION_ERRORS)):
                raise exc.__cause__ from None
            raise
    except UnicodeDecodeError as exc:
        where = "" if is_stdio(path) else _bad_utf8_line(Path(path))
        raise BadInputError(f"'{name}'{where} is not UTF-8 text (byte "
                            f"0x{exc.object[exc.start]:02x}); is it a binary file?") from None
    except DECOMPRESSION_ERRORS as exc:
        detail = str(exc) or type(exc).__name__
        raise BadInputError(f"'{name}' is truncated or not valid gzip ({detail})",
                            hint="check the download or re-compress the file") from None


def _bad_utf8_line(path: Path, limit: int = 1 << 30) -> str:
    """`` line N`` of the first byte of ``path`` (decompressed) that is not UTF-8, for an
    error message; empty when it cannot be told cheaply."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    newline = b"\n"
    line, seen = 1, 0
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == GZIP_MAGIC
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            while seen < limit:
                block = fh.read(1 << 20)
                if not block:
                    return ""
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    return f" line {line + block.count(newline, 0, exc.start)}"
                line += block.count(newline)
                seen += len(block)
    except (OSError, *DECOMPRESSION_ERRORS):
        return ""
    return ""


# --------------------------------------------------------------------------- atomic out


def _temp_name(target: Path) -> str:
    return f".{target.name}.pmt-tmp-"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO[Any]]:
    """Write ``path`` all at once: into a temporary file beside it, renamed into place on
    success and removed on failure, so readers never see a partial file. ``-`` is stdout.
    A path ending in ``.gz`` is gzip-compressed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    binary = mode == "wb"
    if is_stdio(path):
        yield sys.stdout.buffer if binary else sys.stdout
        return
    target = Path(path)
    if target.is_dir():
        raise BadInputError(f"output '{target}' is a directory, expected a file name")
    secondary = secondary_process()  # a DDP process after the first writes, then discards
    if not secondary:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_name(target), dir=None if secondary else target.parent)
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as raw:
            stream: IO[Any] = raw
            gz = None
            if target.suffix.lower() == ".gz":
                gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
                stream = gz
            text = None
            if not binary:
                text = io.TextIOWrapper(stream, encoding=encoding, newline=newline,
                                        write_through=True)
                yield text
                text.flush()
                text.detach()
            else:
                yield stream
            if gz is not None:
                gz.close()
            raw.flush()
            os.fsync(raw.fileno())
        if secondary:
            tmp_path.unlink()
            return
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name rather than a
    stream (h5py, pysam's BGZF): renamed onto ``path`` when the block succeeds, removed when
    it fails, with the permissions of an ordinary output (mkstemp's are private)."""
    target = Path(path)
    if target.is_dir():
        raise BadInputError(f"output '{target}' is a directory, expected a file name")
    secondary = secondary_process()  # a DDP process after the first writes, then discards
    if not secondary:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_temp_name(target), suffix=suffix,
                                dir=None if secondary else target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        if secondary:
            tmp.unlink(missing_ok=True)
            return
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The folder inside an output where a training run keeps what it needs to resume (its last
#: checkpoint). It survives an interrupted run and goes when the finished output replaces it.
WORK = "work"
_WORK_MARKER = ".pmtoolkit-work"


def work_dir(outdir: str | os.PathLike, settings: dict[str, Any] | None = None) -> Path:
    """Where a run writing ``outdir`` keeps its resume checkpoints: ``OUTDIR/work``, created on
    first use. An interrupted run leaves it there for ``--resume``; a finished run's output
    folder replaces it, so no checkpoint (a pickle) stays among the results.

    ``settings`` (plain JSON values: the resolved config and inputs) are recorded by the first
    run; a resumed run with other settings is refused, since its checkpoints would not fit."""
    import json

    work = Path(outdir) / WORK
    if secondary_process():  # the first DDP process owns the work folder
        return work
    work.mkdir(parents=True, exist_ok=True)
    (work / _WORK_MARKER).touch()
    if settings is not None:
        recorded = work / "settings.json"
        current = json.loads(json.dumps(json_safe(settings)))
        if recorded.is_file():
            before = json.loads(recorded.read_text(encoding="utf-8"))
            if before != current:
                key = _first_difference(before, current)
                raise BadInputError(f"the interrupted run in '{outdir}' was started with other "
                                    f"settings ({key})", hint="resume with the same options, "
                                    "or pass --overwrite instead of --resume to start over")
        else:
            write_json(recorded, current)
    return work


@contextlib.contextmanager
def work_beside(output: str | os.PathLike, settings: dict[str, Any], *,
                overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """The :func:`work_dir` of a command whose output is one file (a model, an ``.h5ad``):
    ``OUTPUT.work/work``, beside it. Like an output folder's, it is refused when foreign, and
    an interrupted run in it is continued with ``resume`` or started over with ``overwrite``;
    an interruption after the first checkpoint leaves it, success (or a failure with nothing
    to resume) removes it."""
    side = Path(f"{output}{WORK_SUFFIX}")
    if secondary_process():  # the first DDP process owns the work folder
        yield side / WORK
        return
    if side.exists():
        if not _interrupted_run(side):
            raise BadInputError(f"'{side}' exists and was not written by pmtoolkit",
                                hint="move it away, or write the output elsewhere")
        if not (resume or overwrite):
            raise BadInputError(f"'{side}' holds an interrupted run writing '{output}'",
                                hint="pass --resume to continue it, or --overwrite to start "
                                     "over")
        if overwrite and not resume:
            shutil.rmtree(side)
    elif resume:
        log.info("nothing to resume in %s; training from the start", side)
    work = work_dir(side, settings)
    try:
        yield work
    except BaseException:
        if not any(work.rglob("*.ckpt")):  # stopped before a checkpoint: nothing to resume
            shutil.rmtree(side, ignore_errors=True)
        raise
    shutil.rmtree(side, ignore_errors=True)


#: suffix of the folder beside a single-file output that holds its interrupted run
WORK_SUFFIX = ".work"


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
    return f"{path or 'value'}: {a!r} then, {b!r} now"


def _interrupted_run(target: Path) -> bool:
    return (target / WORK / _WORK_MARKER).is_file()


def check_output_dir(path: str | os.PathLike, *, overwrite: bool = False,
                     resume: bool = False) -> Path:
    """Whether :func:`atomic_dir` may write ``path``: call it before long work, so a run
    that would be refused at the end is refused at the start.

    A folder pmtoolkit finished before is replaced only with ``overwrite``; a folder holding
    an interrupted run (its ``work/`` folder) is continued with ``resume`` or started over
    with ``overwrite``; any other non-empty folder is never touched."""
    target = Path(path)
    if secondary_process():  # the first DDP process checks and writes the outputs
        return target
    if not target.exists():
        if resume:
            log.info("nothing to resume in %s; starting from the beginning", target)
        return target
    if not target.is_dir():
        raise BadInputError(f"output '{target}' exists and is a file, expected a folder")
    if not any(target.iterdir()):
        return target
    finished = (target / _OUTPUT_MARKER).exists()
    interrupted = _interrupted_run(target)
    if not (finished or interrupted):
        raise BadInputError(f"output folder '{target}' exists and was not written by "
                            "pmtoolkit", hint="choose another folder or empty it")
    if interrupted and not (resume or overwrite):
        raise BadInputError(f"output folder '{target}' holds an interrupted run",
                            hint="pass --resume to continue it, or --overwrite to start over")
    if finished and not interrupted and not overwrite:
        raise BadInputError(f"output folder '{target}' exists",
                            hint="pass --overwrite to replace it")
    if interrupted and overwrite and not resume:
        shutil.rmtree(target / WORK)  # start over: the old checkpoints must not be resumed
    return target


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False,
               resume: bool = False) -> Iterator[Path]:
    """Build an output folder in a temporary sibling and move it into place on success.

    A folder that pmtoolkit wrote before (it carries a marker file) is replaced only with
    ``overwrite=True``; any other existing, non-empty folder is never touched, so pointing
    ``-o`` at the wrong place cannot destroy a user's files. Training inside the block keeps
    its checkpoints in :func:`work_dir` of ``path``, which an interruption leaves for
    ``resume=True`` and success replaces with the finished folder.
    """
    if secondary_process():  # a DDP process other than the first writes a private copy only
        scratch = Path(tempfile.mkdtemp(prefix="pmt-secondary-"))
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    target = check_output_dir(path, overwrite=overwrite, resume=resume)
    existed = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_name(target), dir=target.parent))
    try:
        yield tmp
        (tmp / _OUTPUT_MARKER).write_text("written by pmtoolkit; safe to replace with --overwrite\n")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; outputs are not
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.pmt-old-", dir=target.parent))
            old.rmdir()
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _drop_unused_work(target, existed)
        raise


def _drop_unused_work(target: Path, existed: bool) -> None:
    """After a failed run: a work folder without a checkpoint has nothing to resume, so it
    goes (with the output folder, if the run made it), and the next run starts unhindered."""
    work = target / WORK
    if not work.is_dir() or any(work.rglob("*.ckpt")):
        return
    shutil.rmtree(work, ignore_errors=True)
    if not existed and target.is_dir() and not any(target.iterdir()):
        target.rmdir()


# --------------------------------------------------------------------------- rejects


@dataclass(frozen=True)
class Reject:
    """An input record that could not be used: the record as read, where, and why."""

    item: str
    line: int | None
    reason: str
    #: the shard it was read from, when the input was several files
    file: str | None = None

    def describe(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        if self.file:
            where = f"{self.file}: {where}"
        return f"{where}{self.reason}: {self.item!r}"


@dataclass
class Rejects:
    """The records a reader or model could not use, in input order."""

    source: str = ""
    #: header of the item column in the written file ("smiles", "variant", ...)
    item_name: str = "item"
    items: list[Reject] = field(default_factory=list)

    def add(self, item: Any, line: int | None, reason: str) -> None:
        self.items.append(Reject(str(item), line, reason))

    def extend(self, other: Rejects) -> None:
        self.items.extend(other.items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Reject]:
        return iter(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_first(self) -> None:
        """Raise a one-line :class:`BadInputError` naming the first reject, if any."""
        if self.items:
            src = f"{self.source}: " if self.source and not self.items[0].file else ""
            more = f" and {len(self.items) - 1} more" if len(self.items) > 1 else ""
            raise BadInputError(f"{src}{self.items[0].describe()}{more}",
                                hint="use --on-invalid skip to drop invalid records")

    def write(self, path: str | os.PathLike) -> None:
        """Write the rejects as CSV (``.tsv``: tab-separated) with columns ``line``, the item
        name and ``reason``, atomically; ``file`` first when the input was several files."""
        tab = str(path).lower().endswith((".tsv", ".tsv.gz"))
        files = any(r.file for r in self.items)
        with atomic_write(path, newline="") as fh:
            w = csv.writer(fh, delimiter="\t" if tab else ",", lineterminator="\n")
            w.writerow(["file"] * files + ["line", self.item_name, "reason"])
            for r in self.items:
                w.writerow([r.file or ""] * files +
                           ["" if r.line is None else r.line, r.item, r.reason])

    def apply(self, on_invalid: OnInvalid, output: str | os.PathLike | None = None, *,
              final: str | os.PathLike | None = None) -> Path | None:
        """The bad-input policy: ``error`` raises on the first reject; ``skip`` logs a count,
        writes the rejects beside ``output`` (see :func:`rejects_path`) and returns that path.
        ``final`` is where ``output`` will end up, when it is written in a temporary place."""
        check_choice("on_invalid", on_invalid, ON_INVALID_CHOICES)
        if not self.items:
            return None
        if on_invalid == "error":
            self.raise_first()
        log.warning("%d invalid record(s) skipped%s; first: %s", len(self.items),
                    f" in {self.source}" if self.source else "", self.items[0].describe())
        if output is None or is_stdio(output):
            return None
        path = rejects_path(output)
        self.write(path)
        log.warning("rejects written to %s", rejects_path(final) if final else path)
        return path


def rejects_path(output: str | os.PathLike) -> Path:
    """Where the rejects of a run go: ``OUTDIR/rejected.csv`` for a run that writes a folder,
    ``<stem>.rejected.csv`` beside a run's output file."""
    out = Path(output)
    if out.is_dir() or not out.suffix:
        return out / "rejected.csv"
    name = out.name
    for suffix in (".gz", ".csv", ".tsv", ".parquet", ".vcf", ".bcf", ".smi", ".sdf", ".h5ad"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return out.with_name(f"{name}.rejected.csv")


def check_choice(option: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise BadInputError(f"invalid {option} {value!r}", hint=f"choose from {', '.join(choices)}")
    return value


# --------------------------------------------------------------------------- tables


def _sep(fmt: str) -> str:
    return "\t" if fmt == "tsv" else ","


def read_table(path: str | os.PathLike, *, columns: Sequence[str] | None = None,
               fmt: str | None = None, dtype: Any = None) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet table (``.gz`` too; ``-`` for stdin with ``fmt``).

    ``columns`` are required: a missing one is a one-line error listing the ones there are.
    The index of the returned frame is the 1-based line number of each row in a text file
    (header = line 1), so rejects can name the line a user will find in an editor.
    """
    chunks = list(iter_table(path, columns=columns, fmt=fmt, dtype=dtype, chunksize=None))
    return chunks[0]


def iter_table(path: str | os.PathLike, *, columns: Sequence[str] | None = None,
               fmt: str | None = None, dtype: Any = None,
               chunksize: int | None = 100_000) -> Iterator[pd.DataFrame]:
    """Stream a table in chunks of ``chunksize`` rows (all at once with ``None``); each chunk
    is indexed by line number as in :func:`read_table`. Memory stays flat for any file size."""
    import pandas as pd

    fmt = fmt or table_format(path)
    check_choice("table format", fmt, TABLE_FORMATS)
    name = "stdin" if is_stdio(path) else str(path)
    if fmt == "parquet":
        yield from _iter_parquet(path, name, columns, chunksize)
        return
    with open_text(path) as fh:
        try:
            reader = pd.read_csv(fh, sep=_sep(fmt), dtype=dtype, chunksize=chunksize,
                                 keep_default_na=True, skipinitialspace=False)
            frames = [reader] if chunksize is None else reader
            line = 2
            first = True
            for frame in frames:
                if first:
                    _check_columns(frame, columns, name)
                    first = False
                frame.index = pd.RangeIndex(line, line + len(frame))
                line += len(frame)
                yield frame
        except pd.errors.EmptyDataError:
            raise BadInputError(f"table '{name}' is empty") from None
        except pd.errors.ParserError as exc:
            raise BadInputError(f"cannot parse table '{name}': {str(exc).strip()}") from None


def _iter_parquet(path, name, columns, chunksize) -> Iterator[pd.DataFrame]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = sys.stdin.buffer if is_stdio(path) else require_file(path)
    try:
        pf = pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadInputError(f"cannot read '{name}' as Parquet: {exc}") from None
    available = pf.schema_arrow.names
    _check_columns(pd.DataFrame(columns=available), columns, name)
    start = 0
    batches = pf.iter_batches(batch_size=chunksize) if chunksize else [pf.read()]
    for batch in batches:
        frame = batch.to_pandas()
        frame.index = pd.RangeIndex(start + 1, start + 1 + len(frame))
        start += len(frame)
        yield frame


def _check_columns(frame: pd.DataFrame, columns: Sequence[str] | None, name: str) -> None:
    if not columns:
        return
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "none"
        raise MissingInputError(f"column {missing[0]!r} not found in '{name}'",
                                hint=f"columns are: {have}")


#: significant digits of float64 values written to text tables
TEXT_DIGITS = 12


def tidy_floats(frame: pd.DataFrame, digits: int = TEXT_DIGITS) -> pd.DataFrame:
    """``frame`` with its float64 columns rounded to ``digits`` significant digits, so a text
    table shows 324.428 and not the arithmetic noise 324.4280000000001 (float32 columns are
    already written in their shortest form; Parquet keeps every bit)."""
    import numpy as np

    columns = [c for c in frame.columns if frame[c].dtype == np.float64]
    if not columns:
        return frame
    out = frame.copy(deep=False)
    with np.errstate(all="ignore"):
        for c in columns:
            x = out[c].to_numpy()
            scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(x))))
            # exact while x*scale is an integer below 2**53 and scale an exact power of ten:
            # the quotient is then the float nearest the decimal, whose repr is short
            ok = np.isfinite(scale) & (scale >= 1) & (scale <= 1e22)
            out[c] = np.where(ok, np.round(x * np.where(ok, scale, 1)) / np.where(ok, scale, 1),
                              x)
    return out


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, fmt: str | None = None,
                index: bool = False) -> None:
    """Write a table atomically as CSV, TSV or Parquet (by suffix or ``fmt``); ``-`` is stdout.
    Text tables show float64 values to :data:`TEXT_DIGITS` significant digits."""
    fmt = fmt or table_format(path, default="csv" if is_stdio(path) else None)
    check_choice("table format", fmt, TABLE_FORMATS)
    if fmt == "parquet":
        with atomic_write(path, "wb") as fh:
            frame.to_parquet(fh, index=index)
        return
    with atomic_write(path, newline="") as fh:
        tidy_floats(frame).to_csv(fh, sep=_sep(fmt), index=index, lineterminator="\n")


class TableWriter:
    """Append chunks to one table, then commit it atomically: streaming output for batch
    scoring. Use as a context manager; on an exception nothing appears at ``path``."""

    def __init__(self, path: str | os.PathLike, *, fmt: str | None = None):
        self.path = path
        self.fmt = fmt or table_format(path, default="csv" if is_stdio(path) else None)
        check_choice("table format", self.fmt, TABLE_FORMATS)
        self._ctx = None
        self._fh = None
        self._parquet = None
        self._header = False
        self.rows = 0

    def __enter__(self) -> TableWriter:
        self._ctx = atomic_write(self.path, "wb" if self.fmt == "parquet" else "w", newline="")
        self._fh = self._ctx.__enter__()
        return self

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._fh, table.schema)
            elif not table.schema.equals(self._parquet.schema):
                table = self._conform(table)
            self._parquet.write_table(table)
        else:
            tidy_floats(frame).to_csv(self._fh, sep=_sep(self.fmt), index=False,
                                      header=not self._header, lineterminator="\n")
            self._header = True  # once, also when the first chunk has no rows
        self.rows += len(frame)

    def _conform(self, table):
        """``table`` in the schema of the rows already written: a chunk of a streamed table
        may read a column as another type (all empty, whole numbers only); a column that
        cannot take the earlier type is a one-line error."""
        import pyarrow as pa

        schema = self._parquet.schema
        if table.schema.names != schema.names:
            raise BadInputError(f"'{self.path}': the rows from {self.rows + 1} on have the "
                                f"columns {', '.join(table.schema.names)}, earlier rows "
                                f"{', '.join(schema.names)}")
        for column, want in zip(table.columns, schema):
            try:
                column.cast(want.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise BadInputError(f"column {want.name!r} holds {column.type} values from row "
                                    f"{self.rows + 1} of '{self.path}', {want.type} before",
                                    hint="write CSV or TSV instead") from None
        return table.cast(schema)

    def __exit__(self, exc_type, exc, tb) -> bool | None:
        if self._parquet is not None:
            try:
                self._parquet.close()
            except Exception:  # the run failed already; its temporary file is dropped
                if exc_type is None:
                    raise
        return self._ctx.__exit__(exc_type, exc, tb)


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` pairs of a text file (``.gz`` and ``-`` work), newline stripped."""
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            yield number, line.rstrip("\r\n")


def json_safe(value: Any) -> Any:
    """Plain JSON values: NumPy scalars become Python numbers, NaN and infinities ``null``
    (strict JSON, which NaN is not), tuples lists; dict keys strings."""
    import math

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if type(value).__module__ == "numpy":  # scalars and arrays, without importing NumPy
        value = value.tolist()
        if isinstance(value, list):
            return json_safe(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_json(path: str | os.PathLike, value: Any, *, indent: int | None = 2,
               default: Any = None) -> None:
    """``value`` as strict JSON (see :func:`json_safe`: NaN and infinities become ``null``),
    indented by ``indent`` (None: one line), written atomically. ``default`` turns other
    objects into JSON values, as for :func:`json.dump` (without it they are an error)."""
    import json

    with atomic_write(path) as fh:
        json.dump(json_safe(value), fh, indent=indent, allow_nan=False, default=default)
        fh.write("\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_rows(rows: Iterable[str]) -> str:
    """A fingerprint of a dataset given as strings (e.g. SMILES + label), order-sensitive;
    saved in model metadata as the training-data sha256."""
    import hashlib

    h = hashlib.sha256()
    for row in rows:
        h.update(row.encode())
        h.update(b"\n")
    return h.hexdigest()
