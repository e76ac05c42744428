"""Tree baselines: random forests on ECFP counts plus RDKit descriptors, and gradient-boosted
trees on RDKit descriptors.

scikit-learn trains the trees; pmtoolkit saves them as plain arrays (children, split feature,
threshold, leaf value) and predicts by walking those arrays in NumPy, so a saved model loads
without pickle and without depending on scikit-learn's private tree layout. A forest averages
its trees; a boosted ensemble adds its trees to a baseline (a logit for classification).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


_ARRAYS = ("left", "right", "feature", "threshold", "value", "tree_ptr")


@dataclass
class FlatForest:
    """All trees of one ensemble, concatenated; ``tree_ptr[t]`` is tree t's first node.

    ``boosted`` False: a random forest, prediction = mean of the trees' leaf values (leaf mean
    for regression, P(class 1) for classification). True: gradient boosting, prediction =
    ``base`` + sum of the trees, passed through the logistic function when ``classification``.
    """

    left: np.ndarray  # int32, -1 at leaves
    right: np.ndarray
    feature: np.ndarray  # int32
    threshold: np.ndarray  # float64 (scikit-learn's own precision)
    value: np.ndarray  # float32 for forests; float64 for boosting (sums of many small leaves)
    tree_ptr: np.ndarray  # int64, n_trees + 1
    boosted: bool = False
    base: float = 0.0
    classification: bool = False

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
        return cls._concat(lefts, rights, feats, thrs, vals, ptr, np.float32)

    @classmethod
    def _concat(cls, lefts, rights, feats, thrs, vals, ptr, value_dtype, **kw) -> FlatForest:
        """One ensemble from per-tree node arrays (children already offset)."""
        return cls(np.concatenate(lefts).astype(np.int32), np.concatenate(rights).astype(np.int32),
                   np.concatenate(feats).astype(np.int32), np.concatenate(thrs).astype(np.float64),
                   np.concatenate(vals).astype(value_dtype), np.asarray(ptr, dtype=np.int64),
                   **kw)

    @classmethod
    def from_boosting(cls, model, classification: bool) -> FlatForest:
        """From a fitted HistGradientBoosting{Regressor,Classifier} (binary or regression)."""
        lefts, rights, feats, thrs, vals, ptr = [], [], [], [], [], [0]
        for (pred,) in model._predictors:  # one tree per iteration for one output
            nodes = pred.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            offset = ptr[-1]
            leaf = nodes["is_leaf"].astype(bool)
            lefts.append(np.where(leaf, -1, nodes["left"].astype(np.int64) + offset))
            rights.append(np.where(leaf, -1, nodes["right"].astype(np.int64) + offset))
            feats.append(np.where(leaf, 0, nodes["feature_idx"]))
            thrs.append(nodes["num_threshold"])
            vals.append(np.where(leaf, nodes["value"], 0.0))
            ptr.append(offset + len(nodes))
        base = float(np.asarray(model._baseline_prediction).ravel()[0])
        return cls._concat(lefts, rights, feats, thrs, vals, ptr, np.float64, boosted=True,
                           base=base, classification=classification)

    @classmethod
    def constant(cls, value: float) -> FlatForest:
        """One leaf: what a task whose training labels are all one class predicts."""
        return cls(np.array([-1], np.int32), np.array([-1], np.int32), np.zeros(1, np.int32),
                   np.zeros(1), np.array([value], np.float32), np.array([0, 1], np.int64))

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
        """Predictions in target units (probabilities for classification), shape (n,)."""
        trees = self.predict_trees(X)
        if not self.boosted:
            return trees.mean(axis=0)
        raw = self.base + trees.sum(axis=0)
        return 1.0 / (1.0 + np.exp(-raw)) if self.classification else raw

    def tensors(self, prefix: str) -> dict:
        import torch

        out = {f"{prefix}.{k}": torch.from_numpy(np.ascontiguousarray(getattr(self, k)))
               for k in _ARRAYS}
        if self.boosted:  # forests saved before boosting existed have no such entry
            out[f"{prefix}.boost"] = torch.tensor([self.base, float(self.classification)],
                                                  dtype=torch.float64)
        return out

    @classmethod
    def from_tensors(cls, tensors: dict, prefix: str) -> FlatForest:
        arrays = {k: tensors[f"{prefix}.{k}"].numpy() for k in _ARRAYS}
        boost = tensors.get(f"{prefix}.boost")
        if boost is None:
            return cls(**arrays)
        base, classification = boost.tolist()
        return cls(**arrays, boosted=True, base=base, classification=bool(classification))


def forest_features(mols, *, radius: int = 2, n_bits: int = 2048, descriptors: bool = True,
                    fingerprint: bool = True) -> np.ndarray:
    """ECFP counts and/or RDKit 2D descriptors (NaN where RDKit fails), as float32."""
    from pmtoolkit.chem.descriptors import rdkit_descriptors
    from pmtoolkit.chem.fingerprints import morgan

    parts = []
    if fingerprint:
        parts.append(morgan(mols, radius=radius, n_bits=n_bits, counts=True).astype(np.float32))
    if descriptors:
        parts.append(rdkit_descriptors(mols).astype(np.float32))
    if not parts:
        raise ValueError("forest_features needs a fingerprint or descriptors")
    return np.concatenate(parts, axis=1)


def tree_features(mols, architecture: str) -> np.ndarray:
    """The features each tree architecture is trained on: ECFP counts + RDKit descriptors for
    the forest, RDKit descriptors alone for boosting (histogram boosting over 2,048 sparse
    count columns costs ~8x the time for little gain; see docs/benchmarks/molprop.md)."""
    return forest_features(mols, fingerprint=architecture != "boost")


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


def fit_boosting(X: np.ndarray, y: np.ndarray, *, classification: bool, n_estimators: int,
                 learning_rate: float, seed: int, min_samples_leaf: int = 20,
                 max_features: float = 0.5) -> FlatForest:
    """Histogram gradient boosting for one task (rows with a label only)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if classification and len(np.unique(y)) < 2:
        return FlatForest.constant(float(y[0]) if len(y) else 0.5)
    cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
    # a fixed number of rounds: scikit-learn's own early stopping would hold out 10% of a
    # small training set; the caller's validation set reports the fit instead
    model = cls(max_iter=n_estimators, learning_rate=learning_rate, max_features=max_features,
                min_samples_leaf=min_samples_leaf, early_stopping=False, random_state=seed)
    model.fit(np.asarray(X, dtype=np.float32), y)
    if classification and list(model.classes_) != [0.0, 1.0]:
        raise ValueError(f"expected 0/1 labels, got classes {list(model.classes_)}")
    return FlatForest.from_boosting(model, classification)
