"""SpliceAI (Jaganathan et al. 2019, Cell) on torch: pmtoolkit's own implementation of the
10,000-nt-context residual dilated CNN, with the five trained models read from the user's own
install of the ``spliceai`` package.

The weights are Illumina's, published under the GPLv3 inside the ``spliceai`` wheel (Keras HDF5
files, with its GRCh37/GRCh38 gene tables). pmtoolkit (MIT) neither copies nor ships them: the
optional extra ``pip install "pmtoolkit[spliceai]"`` installs that package and this module reads
its files with h5py; no TensorFlow or Keras runs.

The network, as the paper describes it: a 1x1 convolution to 32 channels, then four groups of
four residual units (batch norm, ReLU, dilated convolution, twice) with kernel sizes 11, 11, 21,
41 and dilations 1, 4, 10, 25, a 1x1 "skip" convolution summed after each group, and a 1x1
convolution to three classes (neither, acceptor, donor) with a softmax. Its receptive field is
exactly 5,000 nt on each side, so the original pads each convolution ("same") and crops 5,000
nt from each end of the output. Here every convolution is unpadded ("valid") and each residual
and skip path is cropped to the centre instead: the outputs that survive the crop are the same
numbers, without computing the activations the crop throws away (about a third of the work).
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pmtoolkit.core.errors import BadInputError, MissingResourceError, UnsafeFileError

log = logging.getLogger(__name__)

#: nucleotides of context on each side of the scored positions
FLANK = 5000
CHANNELS = 32
#: (kernel size, dilation) of the four groups of four residual units
GROUPS = ((11, 1), (11, 4), (21, 10), (41, 25))
UNITS_PER_GROUP = 4
#: output channels, in the models' order
CLASSES = ("neither", "acceptor", "donor")
#: sites of one gene share one reference forward pass over the region holding their windows
#: while each is at most MERGE_GAP nt after the previous one, up to REGION nt from the first
#: (memory: the pass keeps its activations, about 5 kB a nt). A pass of n outputs costs as
#: n + 6,462 outputs would without the 10 kb of context (the context each layer consumes,
#: weighted by its kernel size), so sites further apart than that are cheaper in passes of
#: their own.
MERGE_GAP = 6_462
REGION = 40_000
INSTALL_HINT = 'install the optional extra: pip install "pmtoolkit[spliceai]" (SpliceAI\'s ' \
               "weights are GPLv3 and stay in that package)"


def package_dir() -> Path:
    """The installed ``spliceai`` package's folder (found without importing it: its
    ``__init__`` needs pkg_resources and Keras, which pmtoolkit does not use)."""
    spec = importlib.util.find_spec("spliceai")
    if spec is None or not spec.submodule_search_locations:
        raise MissingResourceError("SpliceAI's trained models are not installed",
                                   hint=INSTALL_HINT)
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> list[Path]:
    """The five trained models, ``models/spliceai1.h5`` to ``spliceai5.h5``."""
    folder = package_dir() / "models"
    files = [folder / f"spliceai{i}.h5" for i in range(1, 6)]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise MissingResourceError(f"the spliceai package at {folder.parent} lacks "
                                   f"{', '.join(missing)}", hint=INSTALL_HINT)
    return files


def _crop(x: torch.Tensor, length: int) -> torch.Tensor:
    """The central ``length`` positions of ``x`` (..., L)."""
    start = (x.shape[-1] - length) // 2
    return x[..., start:start + length]


def _convolve(conv: nn.Conv1d, bn: nn.BatchNorm1d, h: torch.Tensor) -> torch.Tensor:
    """Batch norm, ReLU, convolution: the step every residual unit takes twice."""
    return conv(torch.relu(bn(h)))


class ResidualUnit(nn.Module):
    """Batch norm, ReLU, dilated convolution, twice, plus the (centre-cropped) input."""

    def __init__(self, kernel: int, dilation: int):
        super().__init__()
        self.bn1 = nn.BatchNorm1d(CHANNELS, eps=1e-3)
        self.conv1 = nn.Conv1d(CHANNELS, CHANNELS, kernel, dilation=dilation)
        self.bn2 = nn.BatchNorm1d(CHANNELS, eps=1e-3)
        self.conv2 = nn.Conv1d(CHANNELS, CHANNELS, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor, keep: list | None = None) -> torch.Tensor:
        t = _convolve(self.conv1, self.bn1, x)
        y = _convolve(self.conv2, self.bn2, t)
        h = _crop(x, y.shape[-1]) + y
        if keep is not None:
            keep += [t, h]
        return h


class SpliceAINet(nn.Module):
    """One SpliceAI-10k network: one-hot DNA ``(N, 4, L + 10000)`` (A, C, G, T; N is all
    zeros) to class probabilities ``(N, 3, L)`` of the central ``L`` positions."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv1d(4, CHANNELS, 1)
        self.skip0 = nn.Conv1d(CHANNELS, CHANNELS, 1)
        self.units = nn.ModuleList(ResidualUnit(k, d) for k, d in GROUPS
                                   for _ in range(UNITS_PER_GROUP))
        self.skips = nn.ModuleList(nn.Conv1d(CHANNELS, CHANNELS, 1) for _ in GROUPS)
        self.head = nn.Conv1d(CHANNELS, len(CLASSES), 1)

    def forward(self, x: torch.Tensor, keep: list | None = None) -> torch.Tensor:
        """``keep``: a list that receives the activations :func:`snv_forward` reuses."""
        if x.shape[-1] <= 2 * FLANK:
            raise ValueError(f"SpliceAI needs more than {2 * FLANK} nt of input, got "
                             f"{x.shape[-1]}")
        h = self.stem(x)
        if keep is not None:
            keep.append(h)
        skip = self.skip0(h)
        for g in range(len(GROUPS)):
            for unit in self.units[g * UNITS_PER_GROUP:(g + 1) * UNITS_PER_GROUP]:
                h = unit(h, keep)
            skip = _crop(skip, h.shape[-1]) + self.skips[g](h)
        return torch.softmax(self.head(skip), dim=1)


def forward_with_activations(net: SpliceAINet, x: torch.Tensor
                             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """:meth:`SpliceAINet.forward` that also returns every activation an SNV's banded pass
    (:func:`snv_forward`) reuses: the stem's output, then each unit's first convolution and
    output. In the unpadded network index ``i`` of every one of them lies at input position
    ``i + (its offset)``, so a window inside a longer input reads them at one common shift."""
    acts: list[torch.Tensor] = []
    return net(x, acts), acts


def snv_forward(net: SpliceAINet, acts: list[torch.Tensor], shift: int, length: int,
                column: torch.Tensor) -> torch.Tensor:
    """The output ``(3, length - 10000)`` of a window of ``length`` nt whose reference
    activations are ``acts[k][..., shift:]`` (:func:`forward_with_activations`, batch 1), with
    the centre base replaced by the one-hot ``column`` (4,). Only the band of positions the
    substitution can reach is computed at each layer; the rest is the reference's."""
    centre = length // 2
    h_ref = acts[0][0, :, shift:shift + length]
    band = (centre, centre)  # inclusive, in the current layer's coordinates
    h_alt = net.stem(column.view(1, 4, 1))[0]  # (C, 1): the stem is 1x1
    heads = [(h_ref, h_alt, band)]  # each group's output, for the skip connections

    def assemble(ref: torch.Tensor, alt: torch.Tensor, band, lo: int, hi: int):
        """Layer values on [lo, hi]: the reference's, with the alt band written in."""
        out = ref[:, lo:hi + 1].clone()
        a, b = max(band[0], lo), min(band[1], hi)
        if a <= b:
            out[:, a - lo:b - lo + 1] = alt[:, a - band[0]:b - band[0] + 1]
        return out

    k = 1
    n = length
    for g in range(len(GROUPS)):
        for unit in net.units[g * UNITS_PER_GROUP:(g + 1) * UNITS_PER_GROUP]:
            D = unit.conv1.dilation[0] * (unit.conv1.kernel_size[0] - 1)
            t_ref, h_ref_next = acts[k], acts[k + 1]
            k += 2
            n_t, n_h = n - D, n - 2 * D
            # conv1: outputs that see the band
            lo, hi = max(band[0] - D, 0), min(band[1], n_t - 1)
            x_in = assemble(h_ref, h_alt, band, lo, hi + D)
            t_alt = _convolve(unit.conv1, unit.bn1, x_in[None])[0]
            t_band = (lo, hi)
            t_ref_w = t_ref[0, :, shift:shift + n_t]
            # conv2
            lo2, hi2 = max(t_band[0] - D, 0), min(t_band[1], n_h - 1)
            x2 = assemble(t_ref_w, t_alt, t_band, lo2, hi2 + D)
            y_alt = _convolve(unit.conv2, unit.bn2, x2[None])[0]
            # residual: h'[j] = h[j + D] + y[j] on the band
            res = assemble(h_ref, h_alt, band, lo2 + D, hi2 + D)
            h_alt, band = res + y_alt, (lo2, hi2)
            h_ref, n = h_ref_next[0, :, shift:shift + n_h], n_h
        heads.append((h_ref, h_alt, band))
    cov = n
    skip = None
    for (ref, alt, b), conv in zip(heads, [net.skip0, *net.skips]):
        off = (ref.shape[-1] - cov) // 2
        term = conv(assemble(ref, alt, b, off, off + cov - 1)[None])[0]
        skip = term if skip is None else skip + term
    return torch.softmax(net.head(skip[None]), dim=1)[0]


def _to_margin(h: torch.Tensor, have: int, want: int, const: torch.Tensor) -> torch.Tensor:
    """``h`` (N, C, L + 2 ``have``), a layer's values on the construct and ``have`` positions
    either side, cut or extended to ``want`` either side; positions it lacks hold ``const``
    (C,), the layer's value wherever the input it sees is all N."""
    if want <= have:
        return h[..., have - want:h.shape[-1] - (have - want)]
    side = const.view(1, -1, 1).expand(h.shape[0], -1, want - have)
    return torch.cat([side, h, side], dim=-1)


def _constant(conv: nn.Conv1d, bn: nn.BatchNorm1d, c: torch.Tensor) -> torch.Tensor:
    """:func:`_convolve` of an input that is ``c`` (C,) everywhere: its (constant) output."""
    span = conv.dilation[0] * (conv.kernel_size[0] - 1) + 1
    return _convolve(conv, bn, c.view(1, -1, 1).expand(1, -1, span))[0, :, 0]


def padded_forward(net: SpliceAINet, x: torch.Tensor) -> torch.Tensor:
    """``net(x padded with FLANK N each side)``, ``(N, 3, L)`` for one-hot ``x`` ``(N, 4, L)``
    (any ``L`` >= 1): what SpliceAI predicts for a short sequence given alone, without the
    work of the 10,000 all-N positions.

    A layer whose receptive field reaches ``r`` nt either side is the same vector (its
    response to all-zero input) at every position more than ``r`` nt from the sequence, and
    the output needs it only within ``FLANK - r`` nt of the sequence. So each layer is
    computed on the sequence and ``min(r, FLANK - r)`` positions either side, its input
    extended with the previous layer's constant where that layer was not computed: the same
    numbers as the whole padded input (to float rounding), about 3.5x less work at 170 nt."""
    h = net.stem(x)
    c = net.stem.bias  # the stem's output on N (all-zero input)
    skip = net.skip0(h)
    r = m = 0  # receptive radius so far; margin computed either side of the sequence
    for g in range(len(GROUPS)):
        for unit in net.units[g * UNITS_PER_GROUP:(g + 1) * UNITS_PER_GROUP]:
            k = unit.conv1.dilation[0] * (unit.conv1.kernel_size[0] - 1) // 2
            m1 = min(r + k, FLANK - r - k)
            t = _convolve(unit.conv1, unit.bn1, _to_margin(h, m, m1 + k, c))
            ct = _constant(unit.conv1, unit.bn1, c)
            m2 = min(r + 2 * k, FLANK - r - 2 * k)
            y = _convolve(unit.conv2, unit.bn2, _to_margin(t, m1, m2 + k, ct))
            h, c = _to_margin(h, m, m2, c) + y, c + _constant(unit.conv2, unit.bn2, ct)
            r, m = r + 2 * k, m2
        skip = skip + net.skips[g](_to_margin(h, m, 0, c))
    return torch.softmax(net.head(skip), dim=1)


def _keras_layers(path: Path) -> dict[str, dict]:
    import h5py

    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        raise UnsafeFileError(f"{path}: not a Keras model file (no model_config)")
    cfg = json.loads(raw if isinstance(raw, str) else raw.decode())
    return {layer["config"]["name"]: layer for layer in cfg["config"]["layers"]}


def _layer_names() -> tuple[list[str], list[str]]:
    """The Keras names of the convolutions and batch norms in the order :class:`SpliceAINet`
    holds them. Keras numbered layers as the original code created them: the stem
    (``conv1d_1``) and first skip (``conv1d_2``), then per group its eight unit convolutions
    and its skip convolution; batch norms two per unit, in order; the head last."""
    convs, norms = ["conv1d_1", "conv1d_2"], []
    n = 3
    for _ in GROUPS:
        convs += [f"conv1d_{i}" for i in range(n, n + 2 * UNITS_PER_GROUP + 1)]
        n += 2 * UNITS_PER_GROUP + 1
    convs.append(f"conv1d_{n}")
    norms = [f"batch_normalization_{i}" for i in range(1, 2 * UNITS_PER_GROUP * len(GROUPS) + 1)]
    return convs, norms


def _modules_in_keras_order(net: SpliceAINet) -> tuple[list[nn.Conv1d], list[nn.BatchNorm1d]]:
    convs: list[nn.Conv1d] = [net.stem, net.skip0]
    norms: list[nn.BatchNorm1d] = []
    for g in range(len(GROUPS)):
        for unit in net.units[g * UNITS_PER_GROUP:(g + 1) * UNITS_PER_GROUP]:
            convs += [unit.conv1, unit.conv2]
            norms += [unit.bn1, unit.bn2]
        convs.append(net.skips[g])
    convs.append(net.head)
    return convs, norms


def load_keras_weights(net: SpliceAINet, path: str | Path) -> SpliceAINet:
    """Fill ``net`` with the weights of one of SpliceAI's Keras HDF5 files, after checking
    that the file describes this architecture (every convolution's kernel size and dilation)."""
    import h5py

    path = Path(path)
    layers = _keras_layers(path)
    conv_names, norm_names = _layer_names()
    convs, norms = _modules_in_keras_order(net)
    with h5py.File(path, "r") as f:
        weights = f["model_weights"]

        def array(layer: str, name: str) -> torch.Tensor:
            try:
                return torch.from_numpy(np.asarray(weights[layer][layer][f"{name}:0"],
                                                   dtype=np.float32))
            except KeyError:
                raise UnsafeFileError(f"{path}: no weights {layer}/{name}: not a SpliceAI "
                                      "model") from None

        with torch.no_grad():
            for name, conv in zip(conv_names, convs):
                c = layers.get(name, {}).get("config", {})
                if list(c.get("kernel_size", [])) != [conv.kernel_size[0]] or \
                        list(c.get("dilation_rate", [])) != [conv.dilation[0]]:
                    raise UnsafeFileError(f"{path}: layer {name} is not the SpliceAI-10k "
                                          "architecture")
                kernel = array(name, "kernel")  # Keras: (kernel, in, out)
                if tuple(kernel.shape) != (conv.kernel_size[0], conv.in_channels,
                                           conv.out_channels):
                    raise UnsafeFileError(f"{path}: {name} has weights of shape "
                                          f"{tuple(kernel.shape)}")
                conv.weight.copy_(kernel.permute(2, 1, 0))
                conv.bias.copy_(array(name, "bias"))
            for name, norm in zip(norm_names, norms):
                if abs(float(layers.get(name, {}).get("config", {}).get("epsilon", -1))
                       - norm.eps) > 1e-9:
                    raise UnsafeFileError(f"{path}: layer {name} is not the SpliceAI-10k "
                                          "architecture")
                norm.weight.copy_(array(name, "gamma"))
                norm.bias.copy_(array(name, "beta"))
                norm.running_mean.copy_(array(name, "moving_mean"))
                norm.running_var.copy_(array(name, "moving_variance"))
    for t in net.state_dict().values():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise UnsafeFileError(f"{path}: non-finite weights")
    return net.eval()


class SpliceAI:
    """The five SpliceAI models; :meth:`predict` is their mean, as the original reports."""

    def __init__(self, device: str = "cpu", files: list[Path] | None = None):
        from pmtoolkit.core.devices import torch_device

        self.device = torch_device(device)
        self.files = list(files) if files is not None else model_files()
        self.nets = [load_keras_weights(SpliceAINet(), f).to(self.device) for f in self.files]

    def predict(self, onehot: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """Probabilities ``(N, L - 10000, 3)`` (neither, acceptor, donor) of one-hot windows
        ``(N, L, 4)``, all of one length."""
        return self._mean(onehot, batch_size, lambda net, xb: net(xb))

    def predict_padded(self, onehot: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Probabilities ``(N, L, 3)`` of short one-hot sequences ``(N, L, 4)``, all of one
        length, each given alone: as :meth:`predict` on the sequence with :data:`FLANK` N on
        each side, computed by :func:`padded_forward` (only where the N do not make a layer
        constant). For constructs, e.g. a reference and its variants in one batch."""
        return self._mean(onehot, batch_size, padded_forward)

    @torch.inference_mode()
    def _mean(self, onehot: np.ndarray, batch_size: int, forward) -> np.ndarray:
        """The five models' mean of ``forward(net, x)`` over ``onehot`` ``(N, L, 4)`` in
        batches, as ``(N, length out, 3)``."""
        x = np.asarray(onehot, dtype=np.float32)
        out = []
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(
                x[start:start + batch_size].transpose(0, 2, 1))).to(self.device)
            y = sum(forward(net, xb) for net in self.nets) / len(self.nets)
            out.append(y.permute(0, 2, 1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0, len(CLASSES)), np.float32)


_CODES = np.full(256, -1, dtype=np.int64)
for _i, _b in enumerate("ACGT"):
    _CODES[ord(_b)] = _i
    _CODES[ord(_b.lower())] = _i


def one_hot(seq: str) -> np.ndarray:
    """``(len(seq), 4)`` one-hot of A, C, G, T; any other letter (N) is all zeros."""
    codes = _CODES[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
    out = np.zeros((len(seq), 4), dtype=np.float32)
    ok = codes >= 0
    out[np.flatnonzero(ok), codes[ok]] = 1.0
    return out


# ----------------------------------------------------------------------------- annotation

ANNOTATIONS = ("grch37", "grch38")
GTF_SUFFIXES = (".gtf", ".gtf.gz", ".gff3", ".gff3.gz", ".gff", ".gff.gz")
TABLE_COLUMNS = ("#NAME", "CHROM", "STRAND", "TX_START", "TX_END", "EXON_START", "EXON_END")


class SpliceAnnotation:
    """Genes for splice scoring, in SpliceAI's terms: one transcript per gene, its 1-based
    inclusive span, its strand and its exon boundaries (1-based exon starts and ends).

    Read from SpliceAI's own table format (tab-separated ``#NAME CHROM STRAND TX_START TX_END
    EXON_START EXON_END``, 0-based starts and comma-terminated exon lists), by name for the
    tables the ``spliceai`` package ships (``grch37``, ``grch38``) or from a file."""

    def __init__(self, names, chroms, strands, tx_starts, tx_ends, boundaries, source=""):
        self.names = np.asarray(names, dtype=object)
        self.chroms = np.asarray(chroms, dtype=object)
        self.strands = np.asarray(strands, dtype=object)
        self.tx_starts = np.asarray(tx_starts, dtype=np.int64)
        self.tx_ends = np.asarray(tx_ends, dtype=np.int64)
        self.boundaries = list(boundaries)
        self.source = source
        self._by_chrom = {c: np.flatnonzero(self.chroms == c) for c in set(self.chroms)}

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def read(cls, name_or_path: str | Path) -> SpliceAnnotation:
        """A shipped table by name (``grch37``, ``grch38``: from the spliceai package), a
        SpliceAI-format table file, or a GTF / GFF3 file (``.gtf``, ``.gff3``, ``.gff``,
        gzipped or not: see :meth:`from_gtf`)."""
        from pmtoolkit.core.io import read_table, require_file

        key = str(name_or_path).lower()
        if key.endswith(GTF_SUFFIXES):
            return cls.from_gtf(name_or_path)
        path = package_dir() / "annotations" / f"{key}.txt" if key in ANNOTATIONS \
            else require_file(name_or_path, "annotation")
        table = read_table(path, fmt="tsv")
        missing = [c for c in TABLE_COLUMNS if c not in table.columns]
        if missing:
            raise BadInputError(f"'{path}' is not a SpliceAI annotation table: no column(s) "
                                f"{', '.join(missing)}", hint="columns: " + " ".join(
                                    TABLE_COLUMNS))

        def positions(text, shift: int, what: str, row: int) -> np.ndarray:
            try:
                return np.asarray([int(p) for p in str(text).split(",") if p.strip()],
                                  dtype=np.int64) + shift
            except ValueError:
                raise BadInputError(f"'{path}': line {row}: {what} is not a list of "
                                    f"positions: {str(text)[:60]!r}") from None

        bounds = []
        for row, (s, e) in zip(table.index, zip(table["EXON_START"], table["EXON_END"])):
            bounds.append(np.union1d(positions(s, 1, "EXON_START", row),
                                     positions(e, 0, "EXON_END", row)))
        bad = ~table["STRAND"].isin(["+", "-"])
        if bad.any():
            row = table.index[np.flatnonzero(bad.to_numpy())[0]]
            raise BadInputError(f"'{path}': line {row}: strand must be + or -")
        return cls(table["#NAME"].astype(str), table["CHROM"].astype(str),
                   table["STRAND"].astype(str), table["TX_START"].astype(np.int64) + 1,
                   table["TX_END"].astype(np.int64), bounds, source=str(path))

    @classmethod
    def from_gtf(cls, path: str | Path) -> SpliceAnnotation:
        """Genes from a GENCODE / Ensembl GTF or GFF3: per gene, one transcript, as SpliceAI's
        tables hold (the one tagged ``Ensembl_canonical``, else ``MANE_Select``, else
        ``basic`` and longest, else the longest by exonic length); its span and exon
        boundaries (1-based, as the file gives them). Genes without exons are left out."""
        import re

        from pmtoolkit.core.io import open_text, require_file

        path = require_file(path, "annotation")
        gff3 = str(path).lower().endswith((".gff3", ".gff", ".gff3.gz", ".gff.gz"))
        pair = re.compile(r'(\S+)\s+"([^"]*)"') if not gff3 else None
        transcripts: dict[str, dict] = {}
        parent_gene: dict[str, str] = {}
        with open_text(path) as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip() or line.startswith("#"):
                    continue
                cols = line.rstrip("\n").split("\t")
                if len(cols) != 9:
                    raise BadInputError(f"'{path}': line {number}: {len(cols)} columns, a "
                                        f"{'GFF3' if gff3 else 'GTF'} line has 9")
                chrom, kind, start, end, strand, attrs = (cols[0], cols[2], cols[3], cols[4],
                                                          cols[6], cols[8])
                if gff3:
                    a = dict(kv.split("=", 1) for kv in attrs.strip(";").split(";") if "=" in kv)
                    tags = set(a.get("tag", "").split(","))
                else:
                    found = pair.findall(attrs)
                    a = dict(found)
                    tags = {v for k, v in found if k == "tag"}
                try:
                    start, end = int(start), int(end)
                except ValueError:
                    raise BadInputError(f"'{path}': line {number}: start and end must be "
                                        f"integers") from None
                if gff3 and kind in ("mRNA", "transcript") and "ID" in a:
                    parent_gene[a["ID"]] = a.get("Parent", a["ID"])
                    t = transcripts.setdefault(a["ID"], {"exons": []})
                    t.update(chrom=chrom, strand=strand, tags=tags,
                             gene=a.get("gene_name") or a.get("Name") or a.get("Parent"))
                    continue
                if not gff3 and kind == "transcript" and a.get("transcript_id"):
                    t = transcripts.setdefault(a["transcript_id"], {
                        "exons": [], "chrom": chrom, "strand": strand, "tags": set()})
                    t["tags"] |= tags
                    continue
                if kind != "exon":
                    continue
                if gff3:
                    tid = a.get("Parent", "").split(",")[0]
                    t = transcripts.setdefault(tid, {"exons": [], "chrom": chrom,
                                                     "strand": strand, "tags": tags,
                                                     "gene": tid})
                else:
                    tid = a.get("transcript_id")
                    if not tid:
                        continue
                    t = transcripts.setdefault(tid, {"exons": [], "chrom": chrom,
                                                     "strand": strand, "tags": set()})
                    t["gene"] = a.get("gene_name") or a.get("gene_id") or tid
                    t["tags"] |= tags
                t["exons"].append((start, end))
        genes: dict[tuple[str, str], tuple] = {}
        for tid, t in transcripts.items():
            if not t["exons"] or t.get("strand") not in ("+", "-"):
                continue
            exonic = sum(e - s + 1 for s, e in t["exons"])
            rank = ("Ensembl_canonical" in t["tags"], "MANE_Select" in t["tags"],
                    "basic" in t["tags"], exonic, tid)
            key = (t["gene"], t["chrom"])
            if key not in genes or rank > genes[key][0]:
                genes[key] = (rank, t)
        if not genes:
            raise BadInputError(f"'{path}': no transcript with exons found",
                                hint="give a GENCODE/Ensembl GTF or GFF3 with exon lines")
        rows = [t for _, t in genes.values()]
        return cls([t["gene"] for t in rows], [t["chrom"] for t in rows],
                   [t["strand"] for t in rows],
                   [min(s for s, _ in t["exons"]) for t in rows],
                   [max(e for _, e in t["exons"]) for t in rows],
                   [np.union1d([s for s, _ in t["exons"]], [e for _, e in t["exons"]])
                    for t in rows], source=str(path))

    def genes_at(self, chrom: str, pos: int) -> np.ndarray:
        """Indices of the genes whose span holds 1-based ``pos`` on ``chrom`` (``chr1`` and
        ``1`` match each other)."""
        from pmtoolkit.genomics.reference import contig_aliases

        for name in (chrom, *contig_aliases(chrom)):
            idx = self._by_chrom.get(name)
            if idx is not None:
                hit = (self.tx_starts[idx] <= pos) & (pos <= self.tx_ends[idx])
                return idx[hit]
        return np.zeros(0, dtype=np.int64)

    def distances(self, gene: int, pos: int) -> tuple[int, int, int]:
        """``pos`` to the gene's span start and end, and to its nearest exon boundary (signed:
        boundary minus ``pos``; the earlier one on a tie, as SpliceAI takes it)."""
        b = self.boundaries[gene] - pos
        nearest = int(b[np.argmin(np.abs(b))]) if len(b) else 10**9
        return int(self.tx_starts[gene] - pos), int(self.tx_ends[gene] - pos), nearest


# ----------------------------------------------------------------------------- scoring

SCORE_NAMES = ("DS_AG", "DS_AL", "DS_DG", "DS_DL")
POSITION_NAMES = ("DP_AG", "DP_AL", "DP_DG", "DP_DL")


def _reverse_complement(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x[::-1, ::-1])  # A C G T -> T G C A on the channel axis


def delta_scores(y_ref: np.ndarray, y_alt: np.ndarray, *, ref_len: int, alt_len: int,
                 distance: int, boundary: int, mask: bool
                 ) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """SpliceAI's four delta scores and their positions (relative to the variant) from the
    reference ``(2d+1, 3)`` and alternative ``(2d+1-ref_len+alt_len, 3)`` predictions, in
    genomic orientation. A deletion's missing positions score 0; an insertion's inserted
    positions count as one, their maximum. ``mask`` zeroes a gain at an annotated boundary
    (``boundary``: its offset from the variant) and a loss anywhere else."""
    centre = distance
    if ref_len > 1 and alt_len == 1:
        y_alt = np.concatenate([y_alt[:centre + alt_len],
                                np.zeros((ref_len - alt_len, 3), y_alt.dtype),
                                y_alt[centre + alt_len:]])
    elif ref_len == 1 and alt_len > 1:
        y_alt = np.concatenate([y_alt[:centre], y_alt[centre:centre + alt_len].max(0)[None],
                                y_alt[centre + alt_len:]])
    gain_a, gain_d = y_alt[:, 1] - y_ref[:, 1], y_alt[:, 2] - y_ref[:, 2]
    i_ag, i_al = int(gain_a.argmax()), int((-gain_a).argmax())
    i_dg, i_dl = int(gain_d.argmax()), int((-gain_d).argmax())
    dp = tuple(i - centre for i in (i_ag, i_al, i_dg, i_dl))
    masked = (mask and dp[0] == boundary, mask and dp[1] != boundary,
              mask and dp[2] == boundary, mask and dp[3] != boundary)
    ds = (float(gain_a[i_ag]), float(-gain_a[i_al]), float(gain_d[i_dg]), float(-gain_d[i_dl]))
    # the original multiplies by (1 - mask), which keeps the sign of a masked negative value
    return tuple(s * (1.0 - m) for s, m in zip(ds, masked)), dp


@dataclass(frozen=True)
class SpliceCall:
    """SpliceAI's answer for one ALT allele in one gene: the four delta scores and their
    positions relative to the variant (``None`` for a substitution of several bases by
    several, which SpliceAI does not score: written as ``.``)."""

    variant: Any
    gene: str
    strand: str
    scores: tuple[float, float, float, float] | None
    positions: tuple[int, int, int, int] | None

    def info(self) -> str:
        """The ``ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL`` entry of the
        ``SpliceAI`` INFO field, scores to two decimals as the original writes them."""
        if self.scores is None:
            return f"{self.variant.alt}|{self.gene}|.|.|.|.|.|.|.|."
        ds = "|".join(f"{x:.2f}" for x in self.scores)
        dp = "|".join(str(x) for x in self.positions)
        return f"{self.variant.alt}|{self.gene}|{ds}|{dp}"


class SpliceScorer:
    """Delta scores of variants as SpliceAI computes them, for every gene of ``annotation``
    whose span holds the variant: the reference window is the variant's ±(5000 + distance) nt,
    with ``N`` outside the gene's span (and beyond the contig's ends, where the original skips
    the variant instead), read on the gene's strand; the alternative window has the ALT in
    place of the REF. The reference prediction of a site is computed once for all its ALTs."""

    def __init__(self, model: SpliceAI, reference, annotation: SpliceAnnotation, *,
                 distance: int = 50, mask: bool = False, batch_size: int = 8):
        if distance < 0:
            raise ValueError("distance must be >= 0")
        self.model, self.reference, self.annotation = model, reference, annotation
        self.distance, self.mask, self.batch_size = int(distance), bool(mask), batch_size

    def unscorable(self, variant) -> str | None:
        """Why SpliceAI cannot score ``variant`` (a reject reason), or None."""
        alt = variant.alt
        if any(c in alt for c in ".-*<>[]") or not alt:
            return f"not a sequence ALT ({alt!r})"
        if len(variant.ref) > 2 * self.distance:
            return f"REF longer than 2 x --distance ({len(variant.ref)} > {2 * self.distance})"
        return None

    def _windows(self, variant, gene: int) -> tuple[str, str]:
        cov = 2 * self.distance + 1
        wid = 2 * FLANK + cov
        half = wid // 2
        seq = self.reference.fetch(variant.chrom, variant.pos - half - 1, variant.pos + half)
        d_start, d_end, _ = self.annotation.distances(gene, variant.pos)
        left, right = max(half + d_start, 0), max(half - d_end, 0)
        x_ref = "N" * left + seq[left:wid - right] + "N" * right
        x_ref = x_ref[:wid] if len(x_ref) >= wid else x_ref + "N" * (wid - len(x_ref))
        x_alt = x_ref[:half] + variant.alt + x_ref[half + len(variant.ref):]
        return x_ref, x_alt

    def _predict(self, windows: list[str], strands: list[str]) -> list[np.ndarray]:
        """Predictions of the windows (genomic orientation), batched by length."""
        out: list[np.ndarray | None] = [None] * len(windows)
        by_length: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_length.setdefault(len(w), []).append(i)
        for idx in by_length.values():
            x = np.stack([one_hot(windows[i]) if strands[i] == "+"
                          else _reverse_complement(one_hot(windows[i])) for i in idx])
            y = self.model.predict(x, batch_size=self.batch_size)
            for i, yi in zip(idx, y):
                out[i] = yi if strands[i] == "+" else yi[::-1]
        return out  # type: ignore[return-value]

    def _regions(self, sites: set[tuple[str, int, int]]):
        """``(chrom, gene, first, positions, sequence)`` per region: sites of one gene close
        enough to share a pass (:data:`MERGE_GAP`, :data:`REGION`), the region holding all
        their windows (1-based ``first``), read with N outside the gene's span."""
        half = FLANK + self.distance
        by_gene: dict[tuple[str, int], list[int]] = {}
        for chrom, pos, g in sites:
            by_gene.setdefault((chrom, g), []).append(pos)
        for (chrom, g), positions in by_gene.items():
            positions = sorted(set(positions))
            clusters, current = [], [positions[0]]
            for pos in positions[1:]:
                if pos - current[-1] > MERGE_GAP or pos - current[0] > REGION:
                    clusters.append(current)
                    current = []
                current.append(pos)
            clusters.append(current)
            start, end = int(self.annotation.tx_starts[g]), int(self.annotation.tx_ends[g])
            for cluster in clusters:
                first = cluster[0] - half
                seq = self.reference.fetch(chrom, first - 1, cluster[-1] + half)
                keep_from, keep_to = max(start - first, 0), max(end - first + 1, 0)
                seq = "N" * min(keep_from, len(seq)) + seq[keep_from:keep_to] + \
                    "N" * max(len(seq) - max(keep_to, keep_from), 0)
                yield chrom, g, first, cluster, seq

    def _reference_and_snvs(self, sites: set[tuple[str, int, int]], snvs: dict
                            ) -> tuple[dict, dict]:
        """Reference predictions ``(2d+1, 3)`` of every site, and alternative predictions of
        every single-base substitution in ``snvs`` ((chrom, pos, gene) -> {alt base: None}).

        One forward pass per model over each region gives the reference of all its sites (an
        output depends on its ±5,000 nt alone, and the gene's N mask is the same for each)
        and the activations from which each substitution's pass computes only the band of
        positions the substitution reaches (:func:`snv_forward`): the same numbers as whole
        windows, about a quarter of the work.

        On CPU the passes run on :func:`torch.get_num_threads` threads at once, each op on
        one (PyTorch's own threads barely speed up these narrow convolutions: measured 1.0x
        from one to two); the models' outputs are summed in model order, so the result does
        not depend on the thread count."""
        from concurrent.futures import ThreadPoolExecutor

        refs: dict = {}
        alts: dict = {}
        threads = 1 if self.model.device.type != "cpu" else max(1, torch.get_num_threads())
        before = torch.get_num_threads()
        if threads > 1:
            torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                for region in self._regions(sites):
                    region_refs, region_alts = self._region(region, snvs, pool, threads)
                    refs.update(region_refs)
                    alts.update(region_alts)
        finally:
            torch.set_num_threads(before)
        return refs, alts

    def _region(self, region, snvs: dict, pool, threads: int) -> tuple[dict, dict]:
        """:meth:`_reference_and_snvs` for one region: the models' reference passes, then
        their substitution passes in chunks, on the ``pool``."""
        half = FLANK + self.distance
        wid = 2 * half + 1
        chrom, g, first, cluster, seq = region
        models = self.model.nets
        minus = str(self.annotation.strands[g]) == "-"
        x = one_hot(seq)
        if minus:
            x = _reverse_complement(x)
        xt = torch.from_numpy(np.ascontiguousarray(x.T)[None]).to(self.model.device)
        n = len(seq)
        jobs = []  # (key, base, shift, column) of each substitution
        for pos in cluster:
            key = (chrom, pos, g)
            offset = pos - half - first  # the window's start in the region
            shift = n - offset - wid if minus else offset
            for base in snvs.get(key, {}):
                code = one_hot(base)[0]
                if minus:
                    code = code[::-1].copy()
                jobs.append((key, base, shift, torch.from_numpy(code).to(self.model.device)))

        @torch.inference_mode()
        def reference(net):
            out, acts = forward_with_activations(net, xt)
            y = out[0].permute(1, 0).float().cpu().numpy()  # (n - 10000, 3)
            return (y[::-1] if minus else y), acts

        @torch.inference_mode()
        def substitutions(net, acts, part):
            out = []
            for _, _, shift, col in part:
                a = snv_forward(net, acts, shift, wid, col).permute(1, 0).float().cpu().numpy()
                out.append(a[::-1] if minus else a)
            return out

        passes = list(pool.map(reference, models))
        # about four chunks of substitutions per thread over all models, to balance the load
        per_model = -(-4 * threads // len(models))
        size = max(1, -(-len(jobs) // per_model))
        parts = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        futures = [[pool.submit(substitutions, net, acts, part) for part in parts]
                   for net, (_, acts) in zip(models, passes)]
        ref_sum: dict = {}
        for y, _ in passes:  # model order: the same sums on any number of threads
            for pos in cluster:
                j = pos - self.distance - first - FLANK
                key = (chrom, pos, g)
                ref_sum[key] = ref_sum.get(key, 0) + y[j:j + 2 * self.distance + 1]
        alt_sum: dict = {}
        for per_model in futures:
            done = [a for f in per_model for a in f.result()]
            for (key, base, _, _), a in zip(jobs, done):
                alt_sum[(key, base)] = alt_sum.get((key, base), 0) + a
        return ({k: v / len(models) for k, v in ref_sum.items()},
                {k: v / len(models) for k, v in alt_sum.items()})

    def score(self, variants: list) -> list[list[SpliceCall]]:
        """Per variant, one :class:`SpliceCall` per gene it lies in (none outside genes).
        Variants :meth:`unscorable` refuses must be filtered out first."""
        jobs, windows, strands, sites, snvs = [], [], [], set(), {}
        for k, v in enumerate(variants):
            for g in self.annotation.genes_at(v.chrom, v.pos):
                g = int(g)
                if len(v.ref) > 1 and len(v.alt) > 1:
                    jobs.append((k, g, None))
                    continue
                sites.add((v.chrom, v.pos, g))
                if len(v.ref) == 1 and len(v.alt) == 1:
                    snvs.setdefault((v.chrom, v.pos, g), {})[v.alt] = None
                    jobs.append((k, g, "snv"))
                    continue
                _, x_alt = self._windows(v, g)
                windows.append(x_alt)
                strands.append(self.annotation.strands[g])
                jobs.append((k, g, len(windows) - 1))
        preds = self._predict(windows, strands) if windows else []
        refs, alts = self._reference_and_snvs(sites, snvs) if sites else ({}, {})
        calls: list[list[SpliceCall]] = [[] for _ in variants]
        for k, g, which in jobs:
            v = variants[k]
            name, strand = str(self.annotation.names[g]), str(self.annotation.strands[g])
            if which is None:
                calls[k].append(SpliceCall(v, name, strand, None, None))
                continue
            key = (v.chrom, v.pos, g)
            y_alt = alts[(key, v.alt)] if which == "snv" else preds[which]
            _, _, boundary = self.annotation.distances(g, v.pos)
            ds, dp = delta_scores(refs[key], y_alt, ref_len=len(v.ref), alt_len=len(v.alt),
                                  distance=self.distance, boundary=boundary, mask=self.mask)
            calls[k].append(SpliceCall(v, name, strand, ds, dp))
        return calls


# ----------------------------------------------------------------------------- files

#: the INFO declaration the original writes, so its users' filters work unchanged
INFO_HEADER = ('##INFO=<ID=SpliceAI,Number=.,Type=String,Description="SpliceAIv1.3.1 variant '
               'annotation. These include delta scores (DS) and delta positions (DP) for '
               'acceptor gain (AG), acceptor loss (AL), donor gain (DG), and donor loss (DL). '
               'Format: ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL">')
TABLE_HEADER = ("chrom", "pos", "id", "ref", "alt", "gene", "strand", *SCORE_NAMES,
                *POSITION_NAMES)


def score_vcf(vcf: str | os.PathLike, reference, output: str | os.PathLike, *,
              scorer: SpliceScorer, fmt: str | None = None, ref_mismatch: str = "error",
              batch_size: int = 64, show_progress: bool | None = None,
              source: str | None = None, line_offset: int = 0,
              rejects=None) -> dict[str, Any]:
    """Score every record of ``vcf`` with ``scorer`` and write ``output`` atomically: a VCF
    (``.vcf``; ``.vcf.gz`` bgzipped with a tabix index beside it) whose records are the input's
    lines byte for byte plus a ``SpliceAI`` INFO field in the original tool's format (one
    ``ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL`` entry per ALT and gene),
    or a table (``.tsv``/``.csv``: one row per ALT and gene, scores unrounded). Variants
    outside every annotated gene are written unscored, as the original does; unusable alleles
    go to ``<name>.rejected.csv`` (and into ``rejects``, when given). ``batch_size``: lines of
    the file scored together (their sites share reference windows). ``source``,
    ``line_offset``: ``vcf`` is a slice of that file (see
    :func:`~pmtoolkit.genomics.variants.iter_records`). Returns counts and variants/s."""
    from pmtoolkit.core.io import Rejects, atomic_write
    from pmtoolkit.core.progress import progress_bar
    from pmtoolkit.genomics.score import (
        _annotate,
        _atomic_bgzf,
        _batched,
        _output_format,
        copy_header,
        first_record_line,
        record_text,
        run_summary,
        tabix,
    )
    from pmtoolkit.genomics.variants import close_vcf, iter_records, open_vcf, raw_lines

    out = Path(output)
    fmt = fmt or _output_format(out)
    own_rejects = rejects is None
    rejects = Rejects(source or str(vcf), "variant") if own_rejects else rejects
    vf = open_vcf(vcf)
    is_bcf = bool(getattr(vf, "is_bcf", str(vcf).endswith(".bcf")))
    first = first_record_line(vcf, is_bcf, line_offset)
    if is_bcf and fmt == "vcf":
        close_vcf(vf)
        raise BadInputError(f"'{vcf}': BCF input cannot be kept byte for byte in a VCF",
                            hint="convert it first: bcftools view -Oz -o in.vcf.gz in.bcf")
    n_records = n_scored = 0
    t0 = time.perf_counter()
    records = iter_records(vcf, reference=reference, ref_mismatch=ref_mismatch,
                           rejects=rejects, vcf=vf, source=source, line_offset=line_offset)
    bar = progress_bar(desc="spliceai", unit="variant", enabled=show_progress)
    try:
        if fmt == "vcf":
            raw = raw_lines(vcf, line_offset)
            with _atomic_bgzf(out) as fh:
                copy_header(fh, raw, [INFO_HEADER], {"SpliceAI"})
                for batch in _batched(records, batch_size, first):
                    calls = _score_records(scorer, batch, rejects)
                    for r, per_alt in zip(batch, calls):
                        text = record_text(raw, r)
                        entries = [c.info() for alt_calls in per_alt for c in alt_calls]
                        fh.write(_annotate(text, {"SpliceAI": entries}) if entries else text)
                    n_records += len(batch)
                    done = sum(v is not None for r in batch for v in r.variants)
                    n_scored += done
                    bar.update(done)
            if out.name.lower().endswith((".gz", ".bgz")):
                tabix(out)
        else:
            sep = "\t" if fmt == "tsv" else ","
            with atomic_write(out) as fh:
                fh.write(sep.join(TABLE_HEADER) + "\n")
                for batch in _batched(records, batch_size, first):
                    for per_alt in _score_records(scorer, batch, rejects):
                        for c in (c for alt_calls in per_alt for c in alt_calls):
                            v = c.variant
                            values = ["."] * 8 if c.scores is None else \
                                [f"{x:.6f}" for x in c.scores] + [str(p) for p in c.positions]
                            fh.write(sep.join([v.chrom, str(v.pos), v.id, v.ref, v.alt, c.gene,
                                               c.strand, *values]) + "\n")
                    n_records += len(batch)
                    done = sum(v is not None for r in batch for v in r.variants)
                    n_scored += done
                    bar.update(done)
    finally:
        bar.close()
        close_vcf(vf)
    return run_summary(rejects, out, fmt, records=n_records, scored=n_scored, started=t0,
                       write_rejects=own_rejects)


def _score_records(scorer: SpliceScorer, batch: list, rejects) -> list[list[list[SpliceCall]]]:
    """Per record, per ALT: its calls (empty for a rejected allele or outside genes)."""
    flat, where = [], []
    for i, r in enumerate(batch):
        for j, v in enumerate(r.variants):
            if v is None:
                continue
            reason = scorer.unscorable(v)
            if reason:
                rejects.add(f"{v.chrom}:{v.pos}:{v.ref}>{v.alt}", v.line, reason)
                r.variants[j] = None
                continue
            flat.append(v)
            where.append((i, j))
    out: list[list[list[SpliceCall]]] = [[[] for _ in r.variants] for r in batch]
    for (i, j), calls in zip(where, scorer.score(flat) if flat else []):
        out[i][j] = calls
    return out


def describe() -> dict[str, Any]:
    """Where SpliceAI's weights come from, for ``pmt info spliceai``: the installed package,
    its version and licence, and each model and gene table with its size and sha256."""
    from importlib import metadata

    from pmtoolkit.core.io import sha256_file

    root = package_dir()
    files = [*model_files(), *(root / "annotations" / f"{a}.txt" for a in ANNOTATIONS)]
    try:
        version = metadata.version("spliceai")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"name": "spliceai", "kind": "model (optional extra, not shipped)",
            "path": str(root), "version": version,
            "source": "the PyPI package spliceai, installed by pip install "
                      '"pmtoolkit[spliceai]": the five SpliceAI-10k models of Jaganathan et '
                      "al. 2019 (Cell 176:535) and their GRCh37/GRCh38 gene tables",
            "licence": "GPLv3 (the spliceai package); read in place, never copied into "
                       "pmtoolkit (MIT)",
            "description": "splice-site gain/loss delta scores (pmt variants score -m "
                           "spliceai), run by pmtoolkit's own torch implementation",
            "files": [{"file": str(f.relative_to(root)), "bytes": f.stat().st_size,
                       "sha256": sha256_file(f)} for f in files if f.is_file()]}
