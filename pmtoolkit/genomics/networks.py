"""The torch networks of DNA sequence models: inputs ``(B, 4, L)`` one-hot, outputs logits
``(B, n_targets)``.

Padding is explicit (``'same'`` split as torch splits it) so that :mod:`.ism` can recompute a
slice of any stage from a slice of its input and get exactly what the full pass computes.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from pmtoolkit.genomics.config import SequenceModelConfig


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(left, right) zero padding that keeps the length, as torch's ``padding='same'``."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


class ConvStage(nn.Module):
    """Convolution ('same' length), batch norm, ReLU, max-pool."""

    def __init__(self, c_in: int, c_out: int, kernel: int, pool: int):
        super().__init__()
        self.kernel, self.pool = kernel, pool
        self.pad = same_padding(kernel)
        self.conv = nn.Conv1d(c_in, c_out, kernel)
        self.norm = nn.BatchNorm1d(c_out)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The stage on an already padded input (no padding added): length shrinks by
        ``kernel - 1`` before pooling."""
        x = torch.relu(self.norm(self.conv(x)))
        return F.max_pool1d(x, self.pool) if self.pool > 1 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(F.pad(x, self.pad))

    def out_length(self, length: int) -> int:
        return length // self.pool


class BassetNet(nn.Module):
    """DeepSEA/Basset family: convolution + pool stages, flatten, dense head."""

    def __init__(self, config: SequenceModelConfig, n_out: int):
        super().__init__()
        c = config
        if not (len(c.filters) == len(c.kernels) == len(c.pools)) or not c.filters:
            raise ValueError("basset needs one filters, kernels and pools entry per stage")
        stages, c_in, length = [], 4, c.window
        for f, k, p in zip(c.filters, c.kernels, c.pools):
            stages.append(ConvStage(c_in, f, k, p))
            c_in, length = f, length // p
        if length < 1:
            raise ValueError(f"window {c.window} is too short for pools {c.pools}")
        self.stages = nn.ModuleList(stages)
        self.flat_channels, self.flat_length = c_in, length
        self.fc = nn.Linear(c_in * length, c.hidden)
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden, n_out)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for s in self.stages:
            x = s(x)
        return x

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """Logits from the first dense layer's pre-activation."""
        return self.out(self.dropout(torch.relu(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc(self.trunk(x).flatten(1)))

    def flops(self, window: int) -> float:
        """Multiply-adds x 2 of one forward pass of one sequence."""
        total, length = 0.0, window
        for s in self.stages:
            total += 2.0 * s.conv.in_channels * s.conv.out_channels * s.kernel * length
            length = s.out_length(length)
        total += 2.0 * self.fc.in_features * self.fc.out_features
        total += 2.0 * self.out.in_features * self.out.out_features
        return total


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.pad = same_padding(kernel, dilation)
        self.norm1 = nn.BatchNorm1d(channels)
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        self.norm2 = nn.BatchNorm1d(channels)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(F.pad(torch.relu(self.norm1(x)), self.pad))
        y = self.mix(torch.relu(self.norm2(y)))
        return x + self.dropout(y)


class DilatedNet(nn.Module):
    """A convolution stem, residual blocks with dilation 1, 2, 4, ..., global mean and max
    pooling, dense head (Basenji's dilated tower, small)."""

    def __init__(self, config: SequenceModelConfig, n_out: int):
        super().__init__()
        c = config
        stem_ch, ch = c.filters[0], c.filters[-1]
        stem_k, k = c.kernels[0], c.kernels[-1]
        self.stem_kernel = stem_k
        self.stem_pad = same_padding(stem_k)
        self.stem = nn.Conv1d(4, stem_ch, stem_k)
        self.stem_norm = nn.BatchNorm1d(stem_ch)
        self.project = nn.Conv1d(stem_ch, ch, 1) if stem_ch != ch else nn.Identity()
        self.blocks = nn.ModuleList(ResidualBlock(ch, k, 2 ** i, c.dropout / 2)
                                    for i in range(c.blocks))
        self.norm = nn.BatchNorm1d(ch)
        self.fc = nn.Linear(2 * ch, c.hidden)
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_norm(self.stem(F.pad(x, self.stem_pad))))
        x = F.max_pool1d(x, 2) if x.shape[-1] >= 2 else x
        x = self.project(x)
        for b in self.blocks:
            x = b(x)
        x = torch.relu(self.norm(x))
        z = self.fc(torch.cat([x.mean(-1), x.amax(-1)], dim=1))
        return self.out(self.dropout(torch.relu(z)))

    def flops(self, window: int) -> float:
        total = 2.0 * 4 * self.stem.out_channels * self.stem_kernel * window
        length = window // 2
        if isinstance(self.project, nn.Conv1d):
            total += 2.0 * self.project.in_channels * self.project.out_channels * length
        for b in self.blocks:
            ch = b.conv.in_channels
            total += 2.0 * ch * ch * (b.kernel + 1) * length
        total += 2.0 * self.fc.in_features * self.fc.out_features
        total += 2.0 * self.out.in_features * self.out.out_features
        return total


class LocalNet(nn.Module):
    """Unpadded convolutions (ReLU; dropout after the first), a 1x1 output convolution, summed
    over positions: the output of a window is a sum of contributions of its ``receptive_field``
    -base stretches. So for a variant's REF and ALT windows of ``2 * receptive_field - 1``
    bases, their difference is exactly the change of every contribution the variant reaches,
    and nothing of the sequence it cannot reach (a Siamese effect model, :func:`fit_effects`,
    whose cost is a few dozen positions a window rather than hundreds)."""

    def __init__(self, config: SequenceModelConfig, n_out: int):
        super().__init__()
        c = config
        if len(c.filters) != len(c.kernels) or not c.filters:
            raise ValueError("local needs one filters and kernels entry per convolution")
        self.receptive_field = sum(k - 1 for k in c.kernels) + 1
        if c.window < self.receptive_field:
            raise ValueError(f"window {c.window} is shorter than the receptive field "
                             f"{self.receptive_field} of kernels {c.kernels}")
        widths = (4, *c.filters)
        self.convs = nn.ModuleList(nn.Conv1d(i, o, k)
                                   for i, o, k in zip(widths, c.filters, c.kernels))
        self.dropout = nn.Dropout(c.dropout)
        self.out = nn.Conv1d(widths[-1], n_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = torch.relu(conv(x))
            if i == 0:
                x = self.dropout(x)
        return self.out(x).sum(-1)

    def flops(self, window: int) -> float:
        total, length = 0.0, window
        for conv in self.convs:
            length -= conv.kernel_size[0] - 1
            total += 2.0 * conv.in_channels * conv.out_channels * conv.kernel_size[0] * length
        return total + 2.0 * self.out.in_channels * self.out.out_channels * length


def build_network(config: SequenceModelConfig, n_out: int) -> nn.Module:
    if config.architecture == "basset":
        return BassetNet(config, n_out)
    if config.architecture == "dilated":
        return DilatedNet(config, n_out)
    if config.architecture == "local":
        return LocalNet(config, n_out)
    raise ValueError(f"unknown architecture {config.architecture!r}")
