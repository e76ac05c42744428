"""DeepChem interoperability: pmtoolkit data to and from ``deepchem.data`` datasets, and
DeepChem's molecular featurizers by name.

DeepChem is imported only here, on first use, with its import-time chatter (messages about
optional TensorFlow/JAX backends) silenced: it is noise to a pmtoolkit user.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError, unknown_name

#: DeepChem featurizers by the names pmtoolkit accepts: name -> (class, keyword arguments)
FEATURIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ecfp": ("CircularFingerprint", {"size": 2048, "radius": 2}),
    "ecfp-counts": ("CircularFingerprint", {"size": 2048, "radius": 2, "sparse": False,
                                            "chiral": False, "features": False}),
    "rdkit-descriptors": ("RDKitDescriptors", {}),
    "maccs": ("MACCSKeysFingerprint", {}),
    "molgraphconv": ("MolGraphConvFeaturizer", {"use_edges": True}),
    "convmol": ("ConvMolFeaturizer", {}),
    "weave": ("WeaveFeaturizer", {}),
    "dmpnn": ("DMPNNFeaturizer", {}),
}


@lru_cache(maxsize=1)
def deepchem():
    """``import deepchem`` with its start-up messages and warnings swallowed."""
    quiet = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import deepchem as dc
    except ImportError as exc:
        raise BadInputError(f"deepchem is not installed ({exc})",
                            hint="pip install deepchem") from None
    finally:
        logging.disable(previous)
    return dc


def featurizer(name: str):
    """A DeepChem featurizer instance by name (see :data:`FEATURIZERS`)."""
    if name not in FEATURIZERS:
        raise unknown_name("deepchem featurizer", name, FEATURIZERS)
    cls_name, kwargs = FEATURIZERS[name]
    return getattr(deepchem().feat, cls_name)(**kwargs)


def featurize(smiles: Sequence[str], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Featurise with DeepChem; returns (features, valid mask). DeepChem leaves an empty
    array where it fails, which becomes ``valid = False`` here rather than a silent gap."""
    from pmtoolkit.chem._rdkit import quiet

    f = featurizer(name)
    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        feats = f.featurize(list(smiles))
    valid = np.array([not (isinstance(x, np.ndarray) and x.size == 0) for x in feats], bool)
    return feats, valid


def to_deepchem(smiles: Sequence[str], y: np.ndarray | None = None, *,
                featurizer_name: str | None = None, task_names: Sequence[str] | None = None):
    """A ``deepchem.data.NumpyDataset`` with SMILES as ids; missing labels (NaN) get weight 0,
    DeepChem's convention. With ``featurizer_name`` X holds DeepChem features (invalid
    molecules are dropped, and so are their labels: ids show which remain)."""
    dc = deepchem()
    ids = np.asarray(list(smiles), dtype=object)
    w = None
    if y is not None:
        y = np.asarray(y, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        w = (~np.isnan(y)).astype(np.float64)
        y = np.nan_to_num(y)
    if featurizer_name is None:
        X = ids
    else:
        feats, valid = featurize(ids, featurizer_name)
        ids = ids[valid]
        X = feats[valid]
        if X.dtype == object and all(isinstance(x, np.ndarray) for x in X):
            X = np.stack(X)
        if y is not None:
            y, w = y[valid], w[valid]
    return dc.data.NumpyDataset(X=X, y=y, w=w, ids=ids, n_tasks=0 if y is None else y.shape[1])


def from_deepchem(dataset) -> tuple[list[str], np.ndarray | None]:
    """SMILES (the dataset's ids) and labels, with weight-0 labels turned back into NaN."""
    ids = [str(i) for i in dataset.ids]
    y = getattr(dataset, "y", None)
    if y is None or np.size(y) == 0:
        return ids, None
    y = np.asarray(y, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    w = np.asarray(dataset.w, dtype=np.float64)
    w = w[:, None] if w.ndim == 1 else w
    if w.shape == y.shape:
        y = np.where(w > 0, y, np.nan)
    if len(ids) != len(y):
        raise BadInputError(f"deepchem dataset has {len(ids)} ids but {len(y)} label rows")
    return ids, y
