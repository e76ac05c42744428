"""Splits of a drug-response panel's pairs: ``random`` (warm: every test drug and sample was
seen in training with other partners), ``cold-drug`` (test drugs never seen),
``cold-sample`` (test samples never seen), ``cold-pair`` (both unseen; pairs crossing the
groups are left out)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.response.config import SPLITS

if TYPE_CHECKING:
    from pmtoolkit.chem.splits import Split
    from pmtoolkit.response.data import ResponseData


def response_split(data: ResponseData, method: str = "random",
                   sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """A seeded split of ``data``'s pairs into train / validation / test (see the module
    doc). ``random`` keeps replicate measurements of one (sample, drug) pair on one side;
    the cold splits assign whole drugs or samples, so that the pairs they carry come near
    ``sizes``; ``cold-pair`` splits drugs and samples each with the square roots of the
    fractions and keeps only the pairs whose drug and sample fall on the same side."""
    from pmtoolkit.chem.splits import Split, check_sizes, entity_groups, split_method
    from pmtoolkit.core.io import sha256_rows

    sizes = check_sizes(sizes)
    method = split_method(method)
    rng = np.random.default_rng(seed)
    n = len(data)
    n_s, n_d = len(data.samples.ids), len(data.drugs.ids)
    if method == "random":
        pair = data.sample_index * n_d + data.drug_index
        keys, inverse = np.unique(pair, return_inverse=True)
        group = entity_groups(len(keys), sizes, rng, np.bincount(inverse))[inverse]
    elif method == "cold-drug":
        group = entity_groups(n_d, sizes, rng, np.bincount(data.drug_index,
                                                            minlength=n_d))[data.drug_index]
    elif method == "cold-sample":
        group = entity_groups(n_s, sizes, rng, np.bincount(data.sample_index,
                                                            minlength=n_s))[data.sample_index]
    elif method == "cold-pair":
        root = np.sqrt(np.asarray(sizes))
        root = tuple(root / root.sum())
        gd = entity_groups(n_d, root, rng, np.bincount(data.drug_index, minlength=n_d))
        gs = entity_groups(n_s, root, rng, np.bincount(data.sample_index, minlength=n_s))
        a, b = gd[data.drug_index], gs[data.sample_index]
        group = np.where(a == b, a, -1)
    else:
        raise BadInputError(f"unknown split {method!r}", hint="choose from " + ", ".join(SPLITS))
    parts = [np.flatnonzero(group == k) for k in range(3)]
    split = Split(method=method, seed=seed, sizes=sizes, train=parts[0].tolist(),
                  val=parts[1].tolist(), test=parts[2].tolist(), n=n,
                  smiles_sha256=sha256_rows(data.keys()))
    split.info = {f"{part}_{kind}": len(np.unique(idx[p]))
                  for part, p in zip(("train", "val", "test"), parts)
                  for kind, idx in (("drugs", data.drug_index), ("samples", data.sample_index))}
    split.info["dropped_pairs"] = int((group < 0).sum())
    if not split.train or not split.test:
        raise BadInputError(f"a {method} split of {n} pairs left an empty training or test "
                            "set", hint="more drugs and samples, or other --sizes")
    return split
