"""Hypothesis strategies for hostile files: what a careless or malicious user might hand a
command. Each strategy draws the bytes of one file, mostly close to the real format (so the
reader gets past the first line) with one thing wrong: junk values, wrong or duplicate
columns, binary noise, a truncated gzip stream, absurd sizes."""
from __future__ import annotations

import gzip
import io

import numpy as np
from hypothesis import strategies as st

SMILES_CHARS = "CNOSPFIclBrcnos()[]=#@+-0123456789%/\\.H*"
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"

smiles = st.one_of(
    st.sampled_from(["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "[Na+].[Cl-]", "C" * 300]),
    st.text(alphabet=SMILES_CHARS, max_size=40),
    st.text(max_size=20),  # any unicode, NUL and newlines included
)

cells = st.one_of(
    smiles,
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", "NA", "nan", "-inf", "1e309", '"', "'", ",", "\t", "\x00", "é"]),
)


@st.composite
def corrupt(draw, data: bytes) -> bytes:
    """``data`` as written, gzipped, or damaged: truncated, spliced with noise, made binary."""
    how = draw(st.sampled_from(["plain", "plain", "gzip", "gzip-truncated", "noise", "binary",
                                "bom", "crlf", "empty"]))
    if how == "gzip":
        return gzip.compress(data)
    if how == "gzip-truncated":
        packed = gzip.compress(data)
        return packed[: draw(st.integers(0, max(0, len(packed) - 1)))]
    if how == "noise":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
    if how == "binary":
        return draw(st.binary(min_size=1, max_size=512))
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "crlf":
        return data.replace(b"\n", b"\r\n")
    if how == "empty":
        return b""
    return data


@st.composite
def table(draw, columns: tuple[str, ...], values: dict | None = None) -> bytes:
    """A CSV with (usually) the expected ``columns`` and hostile cells; ``values`` maps a
    column to the strategy of its plausible values."""
    values = values or {}
    header = list(columns)
    change = draw(st.sampled_from(["keep", "keep", "keep", "drop", "duplicate", "extra"]))
    if change == "drop" and header:
        header.pop(draw(st.integers(0, len(header) - 1)))
    elif change == "duplicate" and header:
        header.append(header[0])
    elif change == "extra":
        header.append(draw(st.text(min_size=1, max_size=8)))
    n = draw(st.integers(0, 8))
    rows = []
    for _ in range(n):
        row = [draw(st.one_of(values.get(c, cells), cells) if c in values else cells)
               for c in header]
        if draw(st.booleans()) and row:
            row = row[: draw(st.integers(0, len(row)))]  # ragged
        rows.append(",".join(row))
    text = "\n".join([",".join(header), *rows]) + "\n"
    return draw(corrupt(text.encode("utf-8", "surrogatepass")))


@st.composite
def smi_file(draw) -> bytes:
    lines = draw(st.lists(st.tuples(smiles, st.text(max_size=6)), max_size=8))
    text = "".join(f"{s} {n}\n" for s, n in lines)
    return draw(corrupt(text.encode("utf-8", "surrogatepass")))


protein = st.one_of(st.text(alphabet=AMINO_ACIDS, min_size=1, max_size=200),
                    st.text(alphabet="ACGTN", min_size=20, max_size=200),  # DNA, not protein
                    st.text(max_size=30))


@st.composite
def fasta(draw, sequences=protein) -> bytes:
    records = draw(st.lists(st.tuples(st.text(alphabet="abcXYZ_|. 1", max_size=8), sequences),
                            max_size=5))
    text = "".join(f">{name}\n{seq}\n" for name, seq in records)
    if draw(st.booleans()) and records:
        text = text[1:]  # no '>' on the first line
    return draw(corrupt(text.encode("utf-8", "surrogatepass")))


@st.composite
def vcf(draw, contigs=("chr1", "chrM")) -> bytes:
    header = "##fileformat=VCFv4.2\n" + "".join(
        f"##contig=<ID={c}>\n" for c in contigs) + \
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    if draw(st.integers(0, 9)) == 0:
        header = header.replace("#CHROM", "CHROM")
    bases = st.text(alphabet="ACGTN", min_size=1, max_size=6)
    records = []
    for _ in range(draw(st.integers(0, 8))):
        fields = [draw(st.one_of(st.sampled_from(contigs), st.text(max_size=5))),
                  draw(st.one_of(st.integers(-5, 400).map(str), st.just("10" * 12),
                                 st.text(max_size=4))),
                  ".",
                  draw(st.one_of(bases, st.text(max_size=4))),
                  draw(st.one_of(bases, st.sampled_from(["<DEL>", "*", ".", "A,C", "T[1:5["]),
                                 st.text(max_size=4))),
                  ".", ".", draw(st.sampled_from([".", "DP=1", "PVALUE=2.94e-218", "X"]))]
        if draw(st.integers(0, 5)) == 0:
            fields = fields[: draw(st.integers(1, 7))]
        records.append("\t".join(fields))
    text = header + "".join(r + "\n" for r in records)
    return draw(corrupt(text.encode("utf-8", "surrogatepass")))


@st.composite
def npy_image(draw) -> bytes:
    """An image array as NPY: odd shapes (1x1, 1-D, 4-D, empty), odd dtypes, NaN and inf."""
    shape = draw(st.one_of(st.sampled_from([(28, 28), (1, 1), (0, 5), (5,), (2, 3, 4, 5),
                                            (3, 28, 28), (64, 64, 3), (2000, 1)]),
                           st.lists(st.integers(1, 12), min_size=2, max_size=3).map(tuple)))
    dtype = draw(st.sampled_from(["float32", "float64", "uint8", "int64", "bool", "complex64"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    arr = (rng.random(shape) * 255).astype(dtype)
    if arr.size and dtype.startswith("float") and draw(st.booleans()):
        arr.flat[draw(st.integers(0, arr.size - 1))] = draw(
            st.sampled_from([np.nan, np.inf, -np.inf, 1e38]))
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return draw(corrupt(buf.getvalue()))


@st.composite
def png_image(draw) -> bytes:
    from PIL import Image

    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "I;16", "1", "P"]))
    size = draw(st.tuples(st.integers(1, 80), st.integers(1, 80)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    img = Image.fromarray((rng.random(size[::-1]) * 255).astype("uint8")).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = buf.getvalue()
    if draw(st.booleans()):
        data = data[: draw(st.integers(8, len(data)))]  # truncated after the signature
    return data
