"""Small synthetic image sets with a known answer."""
from __future__ import annotations

import numpy as np


def bright_side(n: int, size: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Grey noise images ``(n, 1, size, size)`` in [0, 255]; label 1 has a bright blob in
    the left half, label 0 in the right half (so where the evidence lies is known)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(60, 15, size=(n, 1, size, size))
    y = np.arange(n) % 2
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        cx = rng.integers(4, size // 2 - 4) if y[i] else rng.integers(size // 2 + 4, size - 4)
        cy = rng.integers(6, size - 6)
        x[i, 0][(yy - cy) ** 2 + (xx - cx) ** 2 <= 9] += 150
    return np.clip(x, 0, 255).astype(np.float32), y.astype(np.int64)


def disks(n: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, 1, size, size)`` with one bright disk (label 1) and one dim square
    (label 2) on noise; masks ``(n, size, size)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = rng.normal(0, 0.2, size=(n, 1, size, size)).astype(np.float32)
    masks = np.zeros((n, size, size), np.int64)
    for i in range(n):
        cy, cx, r = rng.integers(12, size - 12), rng.integers(12, size - 12), rng.integers(5, 9)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        sy, sx = rng.integers(2, size - 12, size=2)
        square = np.zeros_like(disk)
        square[sy:sy + 8, sx:sx + 8] = True
        square &= ~disk
        images[i, 0][disk] += 2.0
        images[i, 0][square] += 1.0
        masks[i][disk] = 1
        masks[i][square] = 2
    return images, masks
