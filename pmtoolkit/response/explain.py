"""Why the response model predicts what it does for one (cell, drug) pair: integrated
gradients (Sundararajan et al. 2017) over the cell's standardised features and the drug's
fingerprint bits, from the average training cell (every standardised feature 0) and the empty
fingerprint to the pair itself.

The attributions of a pair add up (to the accuracy of the path integral) to its prediction
minus the prediction of that baseline pair, in ln IC50 units: a negative attribution lowers
the predicted IC50 (the cell is predicted more sensitive), a positive one raises it. A bit's
attribution is shared among the atoms of the substructures that set it, so a drug is drawn
with each atom coloured by the part of the prediction it carries.

An attribution says what the model leans on, learnt from associations in the training panel;
it is not a mechanism, and correlated features (a gene's expression and its copy number, genes
on one amplicon) share the credit in ways the model chose."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError

#: steps of the integral's midpoint rule; 32 keeps the sum within ~1% of the difference
STEPS = 32


@dataclass
class Attributions:
    """Per pair: the prediction, the baseline pair's, and the attribution of every feature and
    fingerprint bit (ln IC50 units)."""

    prediction: np.ndarray      # (n,)
    baseline: np.ndarray        # (n,)
    features: np.ndarray        # (n, n_features)
    bits: np.ndarray            # (n, n_bits)

    @property
    def total(self) -> np.ndarray:
        """The sum of every attribution of each pair (≈ prediction − baseline)."""
        return self.features.sum(1) + self.bits.sum(1)


def attribute(model, data, *, steps: int = STEPS, batch: int = 64) -> Attributions:
    """Integrated gradients of ``model`` (a :class:`~pmtoolkit.response.model.ResponseModel`)
    for every pair of ``data`` (a :class:`~pmtoolkit.response.data.ResponseData`)."""
    import torch

    from pmtoolkit.response.features import drug_fingerprints

    if not 1 <= steps <= 1024:
        raise BadInputError(f"steps must be 1 to 1024, got {steps}")
    if model.config.drug_encoder != "fingerprint":
        raise BadInputError("explanations attribute to fingerprint bits; this model reads "
                            f"drugs as {model.config.drug_encoder}s",
                            hint="explain a model trained with --drug-encoder fingerprint")
    n = len(data)
    X = model.prep.standardized(data.samples)
    fp_all = drug_fingerprints(data.drugs.smiles, model.config.fingerprint_radius,
                               model.config.fingerprint_bits)
    net = model.network.eval()
    scale = float(model.y_std)
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
    out_f = np.zeros((n, X.shape[1]), np.float32)
    out_b = np.zeros((n, fp_all.shape[1]), np.float32)
    pred = np.zeros(n)
    base = np.zeros(n)

    def f(x, fp):
        k = torch.arange(len(x))
        return net.pairs(net.sample(x), net.drugs(fp), k, k)

    for a in range(0, n, batch):
        x = torch.from_numpy(X[data.sample_index[a:a + batch]])
        fp = torch.from_numpy(fp_all[data.drug_index[a:a + batch]])
        m = len(x)
        al = torch.from_numpy(np.repeat(alphas, m))[:, None]
        xs = (al * x.repeat(steps, 1)).requires_grad_(True)
        fs = (al * fp.repeat(steps, 1)).requires_grad_(True)
        gx, gf = torch.autograd.grad(f(xs, fs).sum(), (xs, fs))
        out_f[a:a + m] = (gx.view(steps, m, -1).mean(0) * x).numpy() * scale
        out_b[a:a + m] = (gf.view(steps, m, -1).mean(0) * fp).numpy() * scale
        with torch.no_grad():
            pred[a:a + m] = f(x, fp).double().numpy() * scale + model.y_mean
            base[a:a + m] = f(torch.zeros_like(x), torch.zeros_like(fp)).double().numpy() \
                * scale + model.y_mean
    return Attributions(pred, base, out_f, out_b)


def atom_weights(smiles: str, bits: np.ndarray, *, radius: int, n_bits: int) -> tuple[Any, np.ndarray]:
    """The molecule of ``smiles`` and each atom's share of the fingerprint ``bits``'
    attributions: a bit's attribution is split equally among the substructures (atom
    environments) that set it, and each substructure's among its atoms."""
    from rdkit import Chem

    from pmtoolkit.chem.fingerprints import morgan_bit_info
    from pmtoolkit.chem.molecules import parse_smiles

    mol, reason = parse_smiles(smiles)
    if mol is None:
        raise BadInputError(f"invalid drug SMILES {smiles!r}: {reason}")
    weights = np.zeros(mol.GetNumAtoms())
    for bit, envs in morgan_bit_info(mol, radius, n_bits).items():
        if not bits[bit] or not envs:
            continue
        for center, r in envs:
            atoms = {center}
            if r > 0:
                for b in Chem.FindAtomEnvironmentOfRadiusN(mol, r, center):
                    bond = mol.GetBondWithIdx(b)
                    atoms |= {bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()}
            share = float(bits[bit]) / len(envs) / len(atoms)
            for i in atoms:
                weights[i] += share
    return mol, weights


def draw_atom_weights(mol, weights: np.ndarray, path: str | os.PathLike, *,
                      legend: str = "", size: tuple[int, int] = (420, 320)) -> None:
    """The molecule with each atom shaded by its weight: blue lowers the predicted ln IC50
    (more sensitive), red raises it; the palest atoms carry least."""
    from rdkit.Chem.Draw import rdMolDraw2D

    from pmtoolkit.chem._rdkit import quiet
    from pmtoolkit.core.io import atomic_write

    top = float(np.abs(weights).max()) or 1.0
    colours, radii = {}, {}
    for i, w in enumerate(weights):
        t = min(1.0, abs(float(w)) / top)
        colours[i] = (1.0, 1 - 0.75 * t, 1 - 0.75 * t) if w > 0 else (1 - 0.75 * t, 1 - 0.55 * t, 1.0)
        radii[i] = 0.3 + 0.25 * t
    drawer = rdMolDraw2D.MolDraw2DCairo(*size)
    with quiet():
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, legend=legend,
                                           highlightAtoms=list(range(mol.GetNumAtoms())),
                                           highlightAtomColors=colours,
                                           highlightAtomRadii=radii)
    drawer.FinishDrawing()
    with atomic_write(path, "wb") as fh:
        fh.write(drawer.GetDrawingText())


def feature_label(name: str, labels: dict[str, str] | None) -> str:
    """``cell_mutation:entrez_673`` as ``BRAF mutation`` where the model knows the gene's name
    (``labels``: column to symbol), else the name as it is."""
    stem, _, column = name.rpartition(":")
    symbol = (labels or {}).get(column) or column
    kind = {"cell_expression_zscore": "expression", "cell_copynumber": "copy number",
            "cell_mutation": "mutation"}.get(stem, stem)
    return f"{symbol} {kind}".strip()


def top_features(attr: Attributions, names: Sequence[str], labels: dict[str, str] | None,
                 pair: int, top: int = 10):
    """The ``top`` features of ``pair`` by absolute attribution, as a table."""
    import pandas as pd

    row = attr.features[pair]
    order = np.argsort(-np.abs(row), kind="stable")[:top]
    return pd.DataFrame({"feature": [names[i] for i in order],
                         "label": [feature_label(names[i], labels) for i in order],
                         "attribution": row[order]})


def plot_features(table, path: str | Path, *, title: str) -> None:
    """A bar per feature: its attribution (blue lowers the predicted ln IC50, red raises)."""
    from pmtoolkit.core.plots import figure

    t = table.iloc[::-1]
    with figure(path, size=(6.4, 0.6 + 0.28 * max(3, len(t)))) as (fig, ax):
        ax.barh(range(len(t)), t["attribution"],
                color=["#dc2626" if v > 0 else "#2563eb" for v in t["attribution"]])
        ax.set_yticks(range(len(t)), list(t["label"]), fontsize=8)
        ax.axvline(0, color="#888", lw=0.8)
        ax.set_xlabel("attribution to the predicted ln IC50 (blue: more sensitive)",
                      fontsize=8)
        fig.suptitle(title, fontsize=9)
