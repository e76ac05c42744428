"""The fingerprint baseline: random forests on ECFP counts plus RDKit descriptors.

scikit-learn trains the trees; pmtoolkit saves them as plain arrays (children, split feature,
threshold, leaf value) and predicts by walking those arrays in NumPy, so a saved forest loads
without pickle and without depending on scikit-learn's private tree layout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FlatForest:
    """All trees of one forest, concatenated; ``tree_ptr[t]`` is tree t's first node."""

    left: np.ndarray  # int32, -1 at leaves
    right: np.ndarray
    feature: np.ndarray  # int32
    threshold: np.ndarray  # float64 (scikit-learn's own precision)
    value: np.ndarray  # float32: leaf mean (regression) or P(class 1)
    tree_ptr: np.ndarray  # int64, n_trees + 1

    @classmethod
    def from_sklearn(cls, forest, classification: bool) -> FlatForest:
        lefts, rights, feats, thrs, vals, ptr = [], [], [], [], [], [0]
        for est in forest.estimators_:
            t = est.tree_
            v = t.value[:, 0, :]
            if classification:
                # P(class 1); a forest fit on one class only has no column for it
                classes = list(forest.classes_)
                total = v.sum(axis=1)
                p1 = v[:, classes.index(1.0)] if 1.0 in classes else np.zeros(len(v))
                v = p1 / np.where(total > 0, total, 1)
            else:
                v = v[:, 0]
            offset = ptr[-1]
            left = np.where(t.children_left >= 0, t.children_left + offset, -1)
            right = np.where(t.children_right >= 0, t.children_right + offset, -1)
            lefts.append(left)
            rights.append(right)
            feats.append(t.feature)
            thrs.append(t.threshold)
            vals.append(v)
            ptr.append(offset + t.node_count)
        return cls(np.concatenate(lefts).astype(np.int32), np.concatenate(rights).astype(np.int32),
                   np.concatenate(feats).astype(np.int32), np.concatenate(thrs).astype(np.float64),
                   np.concatenate(vals).astype(np.float32), np.asarray(ptr, dtype=np.int64))

    @property
    def n_trees(self) -> int:
        return len(self.tree_ptr) - 1

    def predict_trees(self, X: np.ndarray) -> np.ndarray:
        """Each tree's prediction, shape (n_trees, n_samples); all trees walk in lockstep."""
        X = np.asarray(X, dtype=np.float32).astype(np.float64)  # scikit-learn compares in float32
        n = X.shape[0]
        node = np.repeat(self.tree_ptr[:-1, None], n, axis=1)
        cols = np.broadcast_to(np.arange(n), node.shape)
        active = self.left[node] >= 0
        while active.any():
            nd = node[active]
            go_left = X[cols[active], self.feature[nd]] <= self.threshold[nd]
            node[active] = np.where(go_left, self.left[nd], self.right[nd])
            active = self.left[node] >= 0
        return self.value[node]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_trees(X).mean(axis=0)

    def tensors(self, prefix: str) -> dict:
        import torch

        return {f"{prefix}.{k}": torch.from_numpy(np.ascontiguousarray(getattr(self, k)))
                for k in ("left", "right", "feature", "threshold", "value", "tree_ptr")}

    @classmethod
    def from_tensors(cls, tensors: dict, prefix: str) -> FlatForest:
        return cls(**{k: tensors[f"{prefix}.{k}"].numpy()
                      for k in ("left", "right", "feature", "threshold", "value", "tree_ptr")})


def forest_features(mols, *, radius: int = 2, n_bits: int = 2048,
                    descriptors: bool = True) -> np.ndarray:
    """ECFP counts, optionally followed by RDKit 2D descriptors (NaN where RDKit fails)."""
    from pmtoolkit.chem.fingerprints import morgan

    fp = morgan(mols, radius=radius, n_bits=n_bits, counts=True).astype(np.float32)
    if not descriptors:
        return fp
    from pmtoolkit.chem.descriptors import rdkit_descriptors

    return np.concatenate([fp, rdkit_descriptors(mols)], axis=1)


def fit_forest(X: np.ndarray, y: np.ndarray, *, classification: bool, n_estimators: int,
               min_samples_leaf: int, max_features: float | str, seed: int,
               n_jobs: int = -1) -> FlatForest:
    """One forest for one task (rows with a label only)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestClassifier if classification else RandomForestRegressor
    model = cls(n_estimators=n_estimators, min_samples_leaf=min_samples_leaf,
                max_features=max_features, random_state=seed, n_jobs=n_jobs)
    model.fit(X, y)
    return FlatForest.from_sklearn(model, classification)
