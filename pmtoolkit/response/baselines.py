"""The field's drug-response baselines, fitted and evaluated on the same split as the model:
per-drug mean, per-sample mean, additive (drug + sample effects), ridge regression and a
random forest on [sample features | fingerprint] (they reach new drugs through the
fingerprint), and one ridge per drug on the sample features (the classic GDSC biomarker
model: it ranks a known drug's samples by that drug's own weights, but knows nothing of a new
drug)."""
from __future__ import annotations

import numpy as np

from pmtoolkit.response.config import BASELINE_NAMES, ResponseConfig
from pmtoolkit.response.data import ResponseData
from pmtoolkit.response.features import FeaturePrep, drug_fingerprints


class _EntityMeans:
    """Mean training response of each drug (or sample); the global mean for unseen ones."""

    by = "drug"

    def fit(self, train: ResponseData, valid: ResponseData | None = None) -> _EntityMeans:
        ids = train.pair_drug_ids if self.by == "drug" else train.pair_sample_ids
        import pandas as pd

        self.mean = float(np.mean(train.y))
        self.table = pd.Series(np.asarray(train.y, float)).groupby(ids).mean().to_dict()
        return self

    def predict(self, data: ResponseData) -> np.ndarray:
        ids = data.pair_drug_ids if self.by == "drug" else data.pair_sample_ids
        return np.array([self.table.get(i, self.mean) for i in ids], dtype=float)


class DrugMean(_EntityMeans):
    by = "drug"


class SampleMean(_EntityMeans):
    by = "sample"


class Additive:
    """y = mu + a_drug + b_sample, fitted by alternating ridge-shrunk means (``shrink``
    pseudo-pairs at 0 per entity); unseen drugs or samples get effect 0. The strongest
    baseline without features on warm splits: every drug's potency and every sample's
    general sensitivity, but nothing that depends on the pair."""

    def __init__(self, shrink: float = 1.0, iterations: int = 30):
        self.shrink, self.iterations = shrink, iterations

    def fit(self, train: ResponseData, valid: ResponseData | None = None) -> Additive:
        y = np.asarray(train.y, float)
        d, s = train.drug_index, train.sample_index
        n_d, n_s = len(train.drugs.ids), len(train.samples.ids)
        self.mu = float(y.mean())
        a, b = np.zeros(n_d), np.zeros(n_s)
        cd = np.bincount(d, minlength=n_d) + self.shrink
        cs = np.bincount(s, minlength=n_s) + self.shrink
        for _ in range(self.iterations):
            a = np.bincount(d, y - self.mu - b[s], minlength=n_d) / cd
            b = np.bincount(s, y - self.mu - a[d], minlength=n_s) / cs
        used_d, used_s = np.bincount(d, minlength=n_d) > 0, np.bincount(s, minlength=n_s) > 0
        self.drug = {train.drugs.ids[i]: a[i] for i in np.flatnonzero(used_d)}
        self.sample = {train.samples.ids[i]: b[i] for i in np.flatnonzero(used_s)}
        return self

    def predict(self, data: ResponseData) -> np.ndarray:
        return self.mu + np.array([self.drug.get(i, 0.0) for i in data.pair_drug_ids]) + \
            np.array([self.sample.get(i, 0.0) for i in data.pair_sample_ids])


class _FeatureBaseline:
    """Shared: sample features prepared as the network's (top variable, standardised) and
    drug fingerprints."""

    def __init__(self, config: ResponseConfig | None = None):
        self.config = config or ResponseConfig()

    def _prep(self, train: ResponseData) -> None:
        c = self.config
        self.prep = FeaturePrep.learn(train.samples, np.unique(train.sample_index),
                                      c.normalize, c.top_genes)

    def _entities(self, data: ResponseData) -> tuple[np.ndarray, np.ndarray]:
        c = self.config
        return (self.prep.standardized(data.samples).astype(np.float64),
                drug_fingerprints(data.drugs.smiles, c.fingerprint_radius,
                                  c.fingerprint_bits).astype(np.float64))


class Ridge(_FeatureBaseline):
    """Ridge regression on [sample features | drug fingerprint]: linear, so a sum of a
    sample part and a drug part (no interaction). Solved on the normal equations built from
    per-entity sums (never the pairs x features design matrix); the penalty is picked on the
    validation pairs from a grid (10 without validation)."""

    ALPHAS = (1.0, 10.0, 100.0, 1000.0, 10000.0)

    def fit(self, train: ResponseData, valid: ResponseData | None = None) -> Ridge:
        self._prep(train)
        S, F = self._entities(train)
        s, d = train.sample_index, train.drug_index
        y = np.asarray(train.y, float)
        n_s, n_d = len(S), len(F)
        ns = np.bincount(s, minlength=n_s).astype(float)
        nd = np.bincount(d, minlength=n_d).astype(float)
        N = np.zeros((n_s, n_d))
        np.add.at(N, (s, d), 1.0)
        # centre both blocks on the pairs so the intercept is the mean response
        ms, md = ns @ S / len(y), nd @ F / len(y)
        Sc, Fc = S - ms, F - md
        ys, yd = np.bincount(s, y - y.mean(), minlength=n_s), \
            np.bincount(d, y - y.mean(), minlength=n_d)
        A = np.block([[Sc.T @ (ns[:, None] * Sc), Sc.T @ N @ Fc],
                      [Fc.T @ N.T @ Sc, Fc.T @ (nd[:, None] * Fc)]])
        rhs = np.concatenate([Sc.T @ ys, Fc.T @ yd])
        self.y_mean, self.ms, self.md = float(y.mean()), ms, md
        alphas = self.ALPHAS if valid is not None and len(valid) else (10.0,)
        best = None
        for alpha in alphas:
            w = np.linalg.solve(A + alpha * np.eye(len(A)), rhs)
            self.w_s, self.w_d = w[:S.shape[1]], w[S.shape[1]:]
            if len(alphas) == 1:
                break
            err = float(np.mean((self.predict(valid) - valid.y) ** 2))
            if best is None or err < best[0]:
                best = (err, alpha, self.w_s, self.w_d)
        if best is not None:
            _, self.alpha, self.w_s, self.w_d = best
        return self

    def predict(self, data: ResponseData) -> np.ndarray:
        S, F = self._entities(data)
        a = (S - self.ms) @ self.w_s
        b = (F - self.md) @ self.w_d
        return self.y_mean + a[data.sample_index] + b[data.drug_index]


class Forest(_FeatureBaseline):
    """A random forest (scikit-learn, 100 trees, min 5 pairs a leaf, the square root of the
    features tried per split) on [sample features | drug fingerprint]: it can learn
    interactions."""

    def __init__(self, config: ResponseConfig | None = None, trees: int = 100,
                 max_samples: float | None = None):
        super().__init__(config)
        self.trees, self.max_samples = trees, max_samples

    def fit(self, train: ResponseData, valid: ResponseData | None = None) -> Forest:
        from sklearn.ensemble import RandomForestRegressor

        self._prep(train)
        # max_samples: the share of the training pairs each tree draws (None: as many as
        # there are), what bounds a forest's time on a large panel
        self.rf = RandomForestRegressor(n_estimators=self.trees, min_samples_leaf=5,
                                        max_features="sqrt", max_samples=self.max_samples,
                                        random_state=self.config.seed, n_jobs=1)
        self.rf.fit(self._design(train), np.asarray(train.y, float))
        return self

    def _design(self, data: ResponseData) -> np.ndarray:
        S, F = self._entities(data)
        return np.hstack([S.astype(np.float32)[data.sample_index],
                          F.astype(np.float32)[data.drug_index]])

    def predict(self, data: ResponseData) -> np.ndarray:
        return self.rf.predict(self._design(data))


class DrugRidge(_FeatureBaseline):
    """One ridge regression per training drug on the standardised sample features (its own
    intercept: the drug's mean). One penalty for all drugs, picked from a grid on the
    validation pairs of drugs seen in training (100 without any). A drug unseen in training
    gets the mean of every drug model's prediction for the sample: a feature-based general
    sensitivity, the same ranking for every new drug."""

    ALPHAS = (10.0, 100.0, 1000.0, 10000.0, 100000.0)
    DEFAULT_ALPHA = 100.0

    def fit(self, train: ResponseData, valid: ResponseData | None = None) -> DrugRidge:
        self._prep(train)
        S = self.prep.standardized(train.samples).astype(np.float64)
        y = np.asarray(train.y, float)
        self.drugs = {d: k for k, d in enumerate(np.unique(train.pair_drug_ids))}
        n_d = len(self.drugs)
        drug_of = np.array([self.drugs[d] for d in train.pair_drug_ids])
        if valid is not None and len(valid):
            vS = self.prep.standardized(valid.samples).astype(np.float64)
            v_drug = np.array([self.drugs.get(d, -1) for d in valid.pair_drug_ids])
        alphas = self.ALPHAS if valid is not None and len(valid) and (v_drug >= 0).any() \
            else (self.DEFAULT_ALPHA,)
        W = np.zeros((len(alphas), n_d, S.shape[1]))
        self.center = np.zeros((n_d, S.shape[1]))
        self.intercept = np.zeros(n_d)
        err = np.zeros(len(alphas))
        for k in range(n_d):
            rows = np.flatnonzero(drug_of == k)
            X = S[train.sample_index[rows]]
            self.center[k], self.intercept[k] = X.mean(0), y[rows].mean()
            U, sv, Vt = np.linalg.svd(X - self.center[k], full_matrices=False)
            uty = U.T @ (y[rows] - self.intercept[k])
            for a, alpha in enumerate(alphas):
                W[a, k] = Vt.T @ (sv / (sv ** 2 + alpha) * uty)
            if len(alphas) > 1:
                vrows = np.flatnonzero(v_drug == k)
                if len(vrows):
                    Xv = vS[valid.sample_index[vrows]] - self.center[k]
                    pred = self.intercept[k] + Xv @ W[:, k].T
                    err += ((pred - valid.y[vrows, None]) ** 2).sum(0)
        best = int(np.argmin(err)) if len(alphas) > 1 else 0
        self.alpha, self.W = alphas[best], W[best]
        return self

    def predict(self, data: ResponseData) -> np.ndarray:
        S = self.prep.standardized(data.samples).astype(np.float64)
        # every drug model on every sample of data: (samples, drugs)
        P = self.intercept + S @ self.W.T - np.einsum("kf,kf->k", self.center, self.W)
        known = np.array([self.drugs.get(d, -1) for d in data.pair_drug_ids])
        out = P.mean(1)[data.sample_index]
        seen = known >= 0
        out[seen] = P[data.sample_index[seen], known[seen]]
        return out


#: baselines by the name users type (the names: ``config.BASELINE_NAMES``)
BASELINES: dict[str, type] = dict(zip(BASELINE_NAMES, (DrugMean, SampleMean, Additive, Ridge,
                                                       DrugRidge, Forest)))


def fit_baseline(name: str, train: ResponseData, valid: ResponseData | None = None,
                 config: ResponseConfig | None = None):
    """Fit baseline ``name`` (see :data:`BASELINES`); returns an object with ``predict``."""
    from pmtoolkit.core.errors import unknown_name

    if name not in BASELINES:
        raise unknown_name("baseline", name, BASELINES)
    cls = BASELINES[name]
    model = cls(config) if issubclass(cls, _FeatureBaseline) else cls()
    return model.fit(train, valid)
