"""A simulator of drug-response panels with known, planted signal.

No drug-response panel (GDSC, CCLE, PRISM) ships here, so drug-response models are shown on
simulated panels whose response is built from parts that are known, and written in the
formats :mod:`pmtoolkit.response.data` reads. Drugs are real molecules (the shipped ESOL
set, 1,128 structures); everything about their "biology" is planted from their structure.

The model, for sample s and drug d, with K mechanisms (default 4):

- drug mechanism vector ``z_d`` (K): ``z_dk = log1p(count of SMARTS pattern k in d)``,
  centred and scaled over the panel's drugs (:data:`MECHANISMS`: aromatic halogen,
  carbonyl, hydroxyl, aromatic nitrogen; a drug without a pattern sits below the mean);
- drug main effect (potency) ``a_d = sqrt(h) x std(Crippen logP_d) + sqrt(1 - h) x e_d``,
  e_d ~ N(0, 1): a share ``h`` (``drug_effect_structure``) of it follows the structure,
  the rest is drug-specific and cannot be predicted for a new drug;
- sample programmes ``u_s`` ~ N(0, I_K) and a general sensitivity ``b_s`` ~ N(0, 1);
- expression (bulk RNA counts, ``genes`` genes): genes of module k (``module_size`` genes
  each, ``G000``...) have their mean scaled by ``exp(module_strength x u_sk)``, the next
  module by ``exp(module_strength x b_s)`` (a "proliferation" module), the rest are
  background; negative-binomial counts (dispersion 10) with library sizes varying +-30%;
- response ``y_sd = mu + w_drug a_d + w_sample b_s + w_interaction <z_d, u_s> / sqrt(K)
  + noise x e_sd``, e_sd ~ N(0, 1); a share ``coverage`` of the pairs is measured.

Files written (``simulate_panel``): ``responses.csv`` (sample_id, drug_id, response),
``drugs.csv`` (drug_id, smiles, name), ``expression.h5ad`` (samples x genes counts),
``truth.csv`` (per measured pair: drug_effect, sample_effect, interaction, noiseless,
response), ``drug_mechanisms.csv`` (z_d), ``sample_programmes.csv`` (u_s, b_s) and
``panel.json`` (the settings and the noise ceilings).

Noise ceiling: the Pearson r between the noiseless response and the observed one, over all
pairs and within each drug (mean): no model can expect to beat it on new pairs.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.response.config import MECHANISMS, PanelConfig

__all__ = ["MECHANISMS", "PanelConfig", "noise_ceiling", "recovery", "simulate_panel"]


#: the largest expression matrix simulated (samples x genes values; 160 MB of means)
MAX_MATRIX = 20_000_000


def _check(spec: PanelConfig, n_available: int) -> None:
    from pmtoolkit.core.config import check_ranges

    check_ranges(spec, source="panel settings")
    problems = []
    if spec.samples < 4 or spec.drugs < 4:
        problems.append("need at least 4 samples and 4 drugs")
    if spec.drugs > n_available:
        problems.append(f"at most {n_available} drugs ship to draw from")
    if not 1 <= spec.mechanisms <= len(MECHANISMS):
        problems.append(f"mechanisms must be 1..{len(MECHANISMS)}")
    if spec.genes < (spec.mechanisms + 1) * spec.module_size or spec.module_size < 1:
        problems.append(f"genes must hold {spec.mechanisms + 1} modules of "
                        f"{spec.module_size} genes")
    if not 0 < spec.coverage <= 1 or not 0 <= spec.drug_effect_structure <= 1:
        problems.append("coverage must be in (0, 1] and drug-effect-structure in [0, 1]")
    if spec.noise < 0:
        problems.append("noise must be >= 0")
    if spec.samples * spec.genes > MAX_MATRIX:
        problems.append(f"samples x genes must be at most {MAX_MATRIX:,} (the expression "
                        f"matrix; {spec.samples:,} x {spec.genes:,} asked)")
    if problems:
        raise BadInputError("invalid panel settings: " + "; ".join(problems))


def _standardize(v: np.ndarray) -> np.ndarray:
    sd = v.std(axis=0)
    return (v - v.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def shipped_molecules() -> tuple[list[str], list[str]]:
    """SMILES (stripped; some end in a space) and names of the shipped ESOL set."""
    from pmtoolkit.core import shipped
    from pmtoolkit.core.io import read_table

    table = read_table(shipped.path("esol", "dataset"), columns=["smiles", "Compound ID"])
    return [str(s).strip() for s in table["smiles"]], [str(n) for n in table["Compound ID"]]


def drug_latents(mols: list, mechanisms: int) -> np.ndarray:
    """``(n, mechanisms)`` log1p SMARTS match counts (not yet standardised)."""
    from rdkit import Chem

    patterns = [Chem.MolFromSmarts(s) for s in list(MECHANISMS.values())[:mechanisms]]
    return np.log1p(np.array([[len(m.GetSubstructMatches(p)) for p in patterns]
                              for m in mols], dtype=float))


def simulate_panel(outdir: str | os.PathLike, spec: PanelConfig | None = None, *,
                   overwrite: bool = False) -> dict[str, Any]:
    """Write a simulated panel into ``outdir`` (see the module doc); returns its summary
    (the settings and the noise ceilings, as in ``panel.json``)."""
    import anndata as ad
    import pandas as pd
    from rdkit.Chem import Crippen

    from pmtoolkit.chem.molecules import parse_smiles
    from pmtoolkit.chem.standardize import Standardizer, canonical_smiles
    from pmtoolkit.core.config import to_dict
    from pmtoolkit.core.io import atomic_dir, check_output_dir, write_json
    from pmtoolkit.expression.io import write_h5ad

    spec = spec or PanelConfig()
    smiles, compound_names = shipped_molecules()
    _check(spec, len(smiles))
    check_output_dir(outdir, overwrite=overwrite)
    rng = np.random.default_rng(spec.seed)
    K = spec.mechanisms
    # drugs: real structures; mechanisms and potency planted from them
    standardizer = Standardizer()
    picked, mols, names = [], [], []
    for i in rng.permutation(len(smiles)):
        mol, _ = parse_smiles(smiles[i])
        mol = standardizer(mol)[0] if mol is not None else None
        if mol is None or mol.GetNumHeavyAtoms() < 3:
            continue
        text = canonical_smiles(mol)
        if text in picked:
            continue
        picked.append(text)
        mols.append(mol)
        names.append(compound_names[i].strip())
        if len(picked) == spec.drugs:
            break
    n_d, n_s = len(picked), spec.samples
    z = _standardize(drug_latents(mols, K))
    logp = _standardize(np.array([Crippen.MolLogP(m) for m in mols]))
    h = spec.drug_effect_structure
    a = np.sqrt(h) * logp + np.sqrt(1 - h) * rng.normal(size=n_d)
    # samples: programmes and general sensitivity, planted in expression modules
    u = rng.normal(size=(n_s, K))
    b = rng.normal(size=n_s)
    base = rng.lognormal(2.0, 1.0, size=spec.genes)
    mu = np.tile(base, (n_s, 1))
    m = spec.module_size
    for k in range(K):
        mu[:, k * m:(k + 1) * m] *= np.exp(spec.module_strength * u[:, [k]])
    mu[:, K * m:(K + 1) * m] *= np.exp(spec.module_strength * b[:, None])
    mu *= rng.uniform(0.7, 1.3, size=(n_s, 1))
    r = 10.0
    counts = rng.negative_binomial(r, r / (r + mu)).astype(np.float32)
    sample_ids = [f"S{i:04d}" for i in range(n_s)]
    drug_ids = [f"D{j:04d}" for j in range(n_d)]
    # responses
    drug_part = spec.w_drug * a
    sample_part = spec.w_sample * b
    inter = spec.w_interaction * (u @ z.T) / np.sqrt(K)          # (n_s, n_d)
    clean = spec.mean + sample_part[:, None] + drug_part[None, :] + inter
    # four decimals, as panels report them; the truth table holds the same values
    observed = np.round(clean + spec.noise * rng.normal(size=clean.shape), 4)
    si, di = np.nonzero(rng.random(clean.shape) < spec.coverage)
    truth = pd.DataFrame({"sample_id": np.asarray(sample_ids)[si],
                          "drug_id": np.asarray(drug_ids)[di],
                          "drug_effect": drug_part[di], "sample_effect": sample_part[si],
                          "interaction": inter[si, di], "noiseless": clean[si, di],
                          "response": observed[si, di]})
    ceiling = noise_ceiling(truth)
    summary = {"format": "pmtoolkit-simulated-response-panel/1", "spec": to_dict(spec),
               "mechanisms": dict(list(MECHANISMS.items())[:K]), "drugs": n_d,
               "samples": n_s, "pairs": len(truth), "noise_ceiling": ceiling,
               "variance": {"drug_effect": float(truth["drug_effect"].var()),
                            "sample_effect": float(truth["sample_effect"].var()),
                            "interaction": float(truth["interaction"].var()),
                            "noise": spec.noise ** 2}}
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        truth[["sample_id", "drug_id", "response"]].to_csv(tmp / "responses.csv", index=False)
        pd.DataFrame({"drug_id": drug_ids, "smiles": picked, "name": names}).to_csv(
            tmp / "drugs.csv", index=False)
        adata = ad.AnnData(counts, obs=pd.DataFrame(index=sample_ids),
                           var=pd.DataFrame(index=[f"G{j:03d}" for j in range(spec.genes)]))
        write_h5ad(adata, tmp / "expression.h5ad")
        truth.to_csv(tmp / "truth.csv", index=False)
        mech = pd.DataFrame(z, columns=list(MECHANISMS)[:K])
        mech.insert(0, "drug_id", drug_ids)
        mech["potency"] = a
        mech.to_csv(tmp / "drug_mechanisms.csv", index=False)
        prog = pd.DataFrame(u, columns=[f"programme_{k + 1}" for k in range(K)])
        prog.insert(0, "sample_id", sample_ids)
        prog["sensitivity"] = b
        prog.to_csv(tmp / "sample_programmes.csv", index=False)
        write_json(tmp / "panel.json", summary)
    return summary


def _within(frame, group: str, x: str, y: str) -> float:
    """Mean over groups (3 or more rows) of Pearson r(x, y) within the group."""
    from pmtoolkit.core.metrics import pearson

    rs = [pearson(g[x].to_numpy(), g[y].to_numpy())
          for _, g in frame.groupby(group) if len(g) >= 3]
    rs = [r for r in rs if np.isfinite(r)]
    return float(np.mean(rs)) if rs else float("nan")


def noise_ceiling(truth) -> dict[str, float]:
    """Pearson r of the noiseless response with the observed one: overall and the mean
    within drugs and within samples (the best a model can expect on these pairs), and the
    RMSE of the noiseless response (the noise's own size)."""
    from pmtoolkit.core.metrics import pearson

    diff = truth["noiseless"].to_numpy() - truth["response"].to_numpy()
    return {"rmse": float(np.sqrt(np.mean(diff ** 2))),
            "pearson": pearson(truth["noiseless"], truth["response"]),
            "per_drug_pearson": _within(truth, "drug_id", "noiseless", "response"),
            "per_sample_pearson": _within(truth, "sample_id", "noiseless", "response")}


def recovery(truth, predictions) -> dict[str, float]:
    """Which planted component predictions follow, on the pairs of ``predictions`` (a table
    with sample_id, drug_id, prediction) found in ``truth``: Pearson r of the prediction with
    the drug effect, the sample effect and the interaction over all pairs, and the mean
    within-drug r with the interaction alone (``interaction_within_drug``: what ranking a
    drug's samples right needs beyond general sensitivity) and with the noiseless response."""
    from pmtoolkit.core.metrics import pearson

    frame = truth.merge(predictions[["sample_id", "drug_id", "prediction"]],
                        on=["sample_id", "drug_id"], how="inner")
    if not len(frame):
        raise BadInputError("no predicted pair is in the truth table")
    out = {f"r_{part}": pearson(frame[part], frame["prediction"])
           for part in ("drug_effect", "sample_effect", "interaction", "noiseless")}
    out["interaction_within_drug"] = _within(frame, "drug_id", "interaction", "prediction")
    out["noiseless_within_drug"] = _within(frame, "drug_id", "noiseless", "prediction")
    out["ceiling"] = noise_ceiling(frame)
    return out
