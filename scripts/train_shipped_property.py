"""Train the property models that ship in data/models/ on the full public datasets in
../shared/data/molecules, then record them in data/MANIFEST and pin their predictions for the
tests. Rerun it after changing the model code (about 15 minutes on 2 CPU cores):

    python scripts/train_shipped_property.py [--only solubility ...]

Each model is an ensemble (its spread is the uncertainty column users see); 10% of the molecules,
chosen at random with seed 0, are held out to pick each member's best epoch.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "molecules"
MODELS = ROOT / "data" / "models"
PINS = ROOT / "tests" / "data" / "shipped_property_predictions.json"
PIN_SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "c1ccc2ccccc2c1",
              "CCCCCCCCCCCCCCCC(=O)O", "O=C(O)CC(O)(CC(=O)O)C(=O)O", "Clc1ccc(cc1)C(c1ccccc1)N1CCN(CC1)C"]

TOX21 = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
         "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]
SPECS = {
    # name: (file, smiles column, {source column: shipped target name}, task, members, source)
    "solubility": ("delaney-processed.csv", "smiles",
                   {"measured log solubility in mols per litre": "logS"}, "regression", 3,
                   "MoleculeNet ESOL (Delaney 2004), 1128 molecules, CC0 (OpenDrugAI/AttentiveFP @dda6708)"),
    "lipophilicity": ("Lipophilicity.csv", "smiles", {"exp": "logD"}, "regression", 3,
                      "MoleculeNet Lipophilicity (ChEMBL logD7.4), 4200 molecules, CC0 (OpenDrugAI/AttentiveFP @dda6708)"),
    "bbbp": ("bbbp.csv", "smiles", {"p_np": "bbb_penetration"}, "classification", 3,
             "MoleculeNet BBBP, 2039 molecules, MIT (chemprop/chemprop @3f2b733)"),
    "tox21": ("tox21.csv.gz", "smiles", {t: t for t in TOX21}, "classification", 2,
              "MoleculeNet Tox21, 7831 molecules x 12 assays, MIT (chemprop/chemprop @3f2b733)"),
}


def train(name: str) -> Path:
    from pmtoolkit.chem.splits import random_split
    from pmtoolkit.property.config import PropertyConfig
    from pmtoolkit.property.data import read_property_data
    from pmtoolkit.property.model import fit

    file, smiles_col, targets, task, members, _ = SPECS[name]
    data, rejects = read_property_data(SHARED / file, smiles_column=smiles_col,
                                       target_columns=list(targets), task=task)
    if rejects:
        print(f"{name}: {len(rejects)} invalid rows left out", file=sys.stderr)
    data.target_names = list(targets.values())
    split = random_split(len(data), (0.9, 0.1, 0.0), seed=0)
    idx = split.indices()
    config = PropertyConfig(task=task, ensemble_size=members, device="cpu")
    model = fit(data.subset(idx["train"]), data.subset(idx["val"]), config)
    MODELS.mkdir(parents=True, exist_ok=True)
    out = MODELS / f"{name}.safetensors"
    model.save(out, training_data_sha256=data.fingerprint())
    print(f"{name}: {len(data)} molecules, validation "
          f"{json.dumps(model.metadata['metrics']['valid']['mean'])}", file=sys.stderr)
    return out


def update_manifest(name: str, path: Path) -> None:
    manifest = ROOT / "data" / "MANIFEST"
    lines = manifest.read_text().splitlines()
    rel = path.relative_to(ROOT / "data").as_posix()
    _, _, targets, task, members, source = SPECS[name]
    desc = (f"{task} ensemble of {members} D-MPNNs predicting {', '.join(targets.values())}; "
            "trained by scripts/train_shipped_property.py")
    data_licence = "CC0-1.0" if "CC0" in source else "MIT"
    row = "\t".join([name, "model", rel, "0", "-", source, f"MIT (weights); data {data_licence}",
                     desc])
    kept = [line for line in lines if not line.startswith(f"{name}\tmodel\t")]
    manifest.write_text("\n".join(kept + [row]) + "\n")


def pin_predictions() -> None:
    from pmtoolkit.property.run import load

    pins = {}
    for name in SPECS:
        frame = load(name).predict(PIN_SMILES).frame
        pins[name] = {c: [round(float(v), 6) for v in frame[c]] for c in frame.columns
                      if c.endswith("_pred")}
    PINS.write_text(json.dumps({"smiles": PIN_SMILES, "predictions": pins}, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=list(SPECS), default=list(SPECS))
    args = ap.parse_args()
    for name in args.only:
        update_manifest(name, train(name))
    subprocess.run([sys.executable, str(ROOT / "scripts" / "update_manifest.py")], check=True)
    pin_predictions()
    return 0


if __name__ == "__main__":
    sys.exit(main())
