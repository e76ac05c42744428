"""The shipped models predict today what they predicted when their outputs were pinned.

``tests/property/test_shipped.py`` pins the four property models; this file pins the other
nine (davis, prior, splice, mpra, pbmc68k, pneumonia, mni-tissue, synthea-mortality, gdsc) on a few
fixed inputs, mostly the shipped examples in ``data/examples``. The pinned values are in
``tests/data/shipped_predictions.json``, written by ``scripts/pin_shipped_predictions.py``
from the same ``predict_<model>`` functions below: a refactor that moves a prediction fails
here. Floats are compared with ``atol`` 1e-4, names, labels and sampled SMILES exactly.

Each model's load-and-predict calls are in its ``predict_<model>`` function at the top of this
file and nowhere else: when a loader or a predict method is renamed, edit only that function
(and leave the pins alone).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import pmtoolkit as pmt
from pmtoolkit.core import shipped

PINS_FILE = Path(__file__).parent / "data" / "shipped_predictions.json"
PROPERTY_PINS_FILE = Path(__file__).parent / "data" / "shipped_property_predictions.json"
EXAMPLES = shipped.data_dir() / "examples"

#: SMILES the prior scores (the last one has a token outside its vocabulary: NaN)
PRIOR_SMILES = ["CCO", "c1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
                "Cc1ccc(-c2cc(C(F)(F)F)nn2-c2ccc(S(N)(=O)=O)cc2)cc1", "[Xe]"]
#: a splice donor of the UCI set (ATRINS-DONOR-521; the intron starts GT at bases 31-32) and
#: the same window with that GT broken
SPLICE_DONOR = "CCAGCTGCATCACAGGAGGCCAGCGAGCAGGTCTGTTCCAAGGGCCTTCGAGCCAGTCTG"
SPLICE_SEQUENCES = [SPLICE_DONOR, SPLICE_DONOR[:30] + "CA" + SPLICE_DONOR[32:]]
#: every 70th cell of the pbmc68k example (10 cells)
PBMC_STEP = 70
PNEUMONIA_IMAGES = ["normal_1.png", "normal_2.png", "pneumonia_1.png", "pneumonia_2.png"]
#: axial slices (last axis) of the MNI T1 example segmented as a small volume, and voxels
#: (x, y, slice) whose class probabilities are pinned
MNI_SLICES = [60, 95, 130]
MNI_VOXELS = [(x, y, z) for x in (50, 98, 146) for y in (60, 116, 172) for z in range(3)]
#: every 50th labelled sample of the mortality task on the Synthea example
EHR_STEP = 50


# ----------------------------------------------------------------------------- predictions
# One function per model: load it, predict its fixed inputs, return {name: values}. Strings
# and integers are pinned exactly, floats to atol 1e-4.

def predict_davis() -> dict:
    """pKd of every example drug against both example kinases (drug-major), through the
    pair predictor and through the screening path (targets encoded once)."""
    import pandas as pd

    from pmtoolkit.dti.data import pairs_from_frame, read_fasta

    model = pmt.dti.load("davis")
    drugs = [line.split() for line in (EXAMPLES / "drugs.smi").read_text().splitlines()[1:]]
    targets = read_fasta(EXAMPLES / "kinases.fasta")
    frame = pd.DataFrame({"smiles": [s for s, _ in drugs for _ in targets],
                          "sequence": [seq for _ in drugs for _, seq in targets]})
    data, rejects = pairs_from_frame(frame)
    assert not rejects and data.proteins == [seq for _, seq in targets]
    screen = model.score_molecules(data.drug_mols(), model.encode_targets(data.proteins))
    return {"pair": [f"{name}/{target}" for _, name in drugs for target, _ in targets],
            "pKd": model.predict(data), "pKd_screen": screen.ravel()}


def predict_prior() -> dict:
    """16 SMILES sampled with seed 0 and their log-likelihoods; the log-likelihood (minus
    the NLL) of fixed SMILES."""

    model = pmt.design.load("prior")
    samples = model.sample(16, seed=0)
    return {"sample_smiles": samples.smiles, "sample_log_likelihood": samples.log_likelihood,
            "log_likelihood": model.log_likelihood(PRIOR_SMILES)}


def _variant_scores(name: str, sequences: list[str]) -> dict:
    """A sequence model's REF and ALT outputs for the TERT promoter example variants (with
    the scan the model recommends, as ``pmt variants score`` uses), and its outputs for
    fixed sequences."""
    from pmtoolkit.genomics.reference import Reference
    from pmtoolkit.genomics.score import VariantScorer
    from pmtoolkit.genomics.variants import read_vcf

    model = pmt.genomics.load(name)
    with Reference(EXAMPLES / "tert_promoter.fa") as ref:
        variants, rejects = read_vcf(EXAMPLES / "tert_promoter.vcf", reference=ref)
        assert not rejects
        scan = int(getattr(model, "recommended_scan", 0))
        scores = VariantScorer(model, ref, scan=scan).score(variants)
    out: dict = {"targets": list(model.targets), "variant": [v.id for v in variants]}
    for k, target in enumerate(model.targets):
        out[f"{target}_ref"] = scores.ref[:, k]
        out[f"{target}_alt"] = scores.alt[:, k]
    out["sequence_outputs"] = model.predict(sequences)
    return out


def _tert_windows(width: int) -> list[str]:
    """The first, middle and last ``width`` bases of the TERT promoter example."""
    seq = "".join(line.strip() for line in
                  (EXAMPLES / "tert_promoter.fa").read_text().splitlines()[1:])
    mid = (len(seq) - width) // 2
    return [seq[:width], seq[mid:mid + width], seq[-width:]]


def predict_splice() -> dict:
    return _variant_scores("splice", SPLICE_SEQUENCES + _tert_windows(60))


def predict_mpra() -> dict:
    return _variant_scores("mpra", _tert_windows(65))


def predict_pbmc68k() -> dict:
    """Class probabilities and labels of every 70th cell of the pbmc68k example."""
    from pmtoolkit.expression.io import read

    model = pmt.expression.load("pbmc68k")
    adata = read(EXAMPLES / "pbmc68k_counts.h5ad")[::PBMC_STEP].copy()
    labels = model.predict(adata)
    return {"classes": list(model.classes), "cell": list(adata.obs_names),
            "label": list(labels["label"]), "probability": model.predict_proba(adata).to_numpy()}


def predict_pneumonia() -> dict:
    """Labels and class probabilities of the four example chest X-rays."""
    from pmtoolkit.imaging.io import read_image

    model = pmt.imaging.load("pneumonia")
    table = model.predict([read_image(EXAMPLES / "imaging" / p) for p in PNEUMONIA_IMAGES])
    return {"label": list(table["label"]),
            **{c: table[c].to_numpy() for c in table.columns if c.startswith("prob_")}}


def predict_mni_tissue() -> dict:
    """Three axial slices of the MNI T1 example, segmented as a small volume: the mean class
    probabilities and the label fractions of each slice, and the probabilities at fixed
    voxels."""
    from pmtoolkit.imaging.io import read_image

    model = pmt.imaging.load("mni-tissue")
    volume = read_image(EXAMPLES / "imaging" / "mni_t1.nii.gz").array[..., MNI_SLICES]
    probs = model.probabilities(volume)  # (classes, x, y, slices)
    labels = probs.argmax(axis=0)
    x, y, z = (list(axis) for axis in zip(*MNI_VOXELS))
    return {"classes": list(model.classes),
            "mean_probability": probs.mean(axis=(1, 2)).T,  # (slices, classes)
            "label_fraction": np.stack([(labels == k).mean(axis=(0, 1))
                                        for k in range(len(model.classes))], axis=1),
            "voxel_probability": probs[:, x, y, z].T}


def predict_gdsc() -> dict:
    """ln IC50 of four made-up cell lines (seeded features over the model's 2,118 columns:
    expression z-scores, copy number, 5% mutated genes) against every example drug, and the
    drug and cell shares of the first pair's explanation."""
    from pmtoolkit.response.data import Drugs, ResponseData, SampleFeatures
    from pmtoolkit.response.explain import attribute

    model = pmt.response.load("gdsc")
    names = model.prep.names
    rng = np.random.default_rng(27)
    kind = np.array([n.split(":", 1)[0] for n in names])
    X = np.where(kind == "cell_mutation", rng.random((4, len(names))) < 0.05,
                 rng.normal(0, 1, (4, len(names))) * np.where(kind == "cell_copynumber", 0.3,
                                                               1.0)).astype(np.float32)
    cells = SampleFeatures([f"cell{i}" for i in range(4)], X, list(names), counts=False)
    drugs = [line.split() for line in (EXAMPLES / "drugs.smi").read_text().splitlines()[1:]]
    drug_set = Drugs([name for _, name in drugs], [smiles for smiles, _ in drugs])
    grid = np.array([(c, d) for c in range(4) for d in range(len(drugs))])
    data = ResponseData(cells, drug_set, grid[:, 0], grid[:, 1])
    attr = attribute(model, data.subset([0]))
    return {"pair": [f"cell{c}/{drugs[d][1]}" for c, d in grid], "ln_IC50": model.predict(data),
            "explain_first": [float(attr.features[0].sum()), float(attr.bits[0].sum()),
                              float(attr.baseline[0])]}


def predict_synthea_mortality() -> dict:
    """Risk as of the last visit of every living patient of the Synthea example (what
    ``pmt ehr predict`` does with events), and of every 50th labelled sample of the
    model's own task there."""
    from pmtoolkit.core.config import from_mapping
    from pmtoolkit.ehr.config import TaskConfig
    from pmtoolkit.ehr.run import read_events
    from pmtoolkit.ehr.tasks import build_samples, current_samples

    model = pmt.ehr.load("synthea-mortality")
    events = read_events(EXAMPLES / "ehr" / "synthea")
    task = from_mapping(TaskConfig, model.task or {}, source="the model's task")
    now = model.predict(current_samples(events, task).samples)
    labelled = build_samples(events, task).samples[::EHR_STEP]
    return {"patient": list(now["patient_id"]), "index_time": list(now["index_time"]),
            "probability": now["probability"].to_numpy(),
            "predicted": [int(v) for v in now["predicted"]],
            "labelled_patient": [s.patient_id for s in labelled],
            "labelled_index_time": [str(s.index_time) for s in labelled],
            "labelled_label": [int(s.label) for s in labelled],
            "labelled_probability": model.predict_proba(labelled)}


PREDICT = {"davis": predict_davis, "prior": predict_prior, "splice": predict_splice,
           "mpra": predict_mpra, "pbmc68k": predict_pbmc68k, "pneumonia": predict_pneumonia,
           "mni-tissue": predict_mni_tissue, "synthea-mortality": predict_synthea_mortality,
           "gdsc": predict_gdsc}


# ----------------------------------------------------------------------------- pins

def as_pinned(values) -> list | str | int | float | None:
    """Plain JSON values of a prediction: floats to 8 significant digits (all a float32
    output holds), NaN as null."""
    if isinstance(values, (str, bool, int, np.integer, np.bool_)):
        return values.item() if isinstance(values, np.generic) else values
    if isinstance(values, (float, np.floating)):
        return None if not np.isfinite(values) else float(f"{float(values):.8g}")
    return [as_pinned(v) for v in (values.tolist() if isinstance(values, np.ndarray)
                                   else values)]


def _is_exact(values) -> bool:
    """Strings and integers are compared exactly, anything with a float numerically."""
    arr = np.asarray(values, dtype=object).ravel()
    return all(isinstance(v, (str, bool, int, np.integer, np.bool_)) for v in arr)


#: tolerances other than atol 1e-4: the mortality risks are mostly below 0.01 (the decision
#: threshold is about 0.008), so they are compared relatively
TOLERANCE = {"synthea-mortality": {"atol": 1e-6, "rtol": 1e-3}}


def check(name: str, actual: dict, pinned: dict, *, atol: float = 1e-4,
          rtol: float = 0.0) -> None:
    """``actual`` outputs equal the ``pinned`` ones: the same names, strings and integers
    exactly, floats (NaN where pinned null) within the tolerance."""
    assert sorted(actual) == sorted(pinned), f"{name}: outputs changed"
    for key, want in pinned.items():
        got = as_pinned(actual[key])
        if _is_exact(want):
            assert got == want, f"{name} {key}: {got} != pinned {want}"
            continue
        got_arr = np.asarray(got, dtype=float)
        want_arr = np.asarray(want, dtype=float)  # null -> NaN
        assert got_arr.shape == want_arr.shape, f"{name} {key}: shape {got_arr.shape}"
        np.testing.assert_allclose(got_arr, want_arr, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"{name} {key}")


@pytest.fixture(scope="module")
def pins() -> dict:
    return json.loads(PINS_FILE.read_text())["models"]


def test_every_shipped_model_is_pinned(pins):
    """A model added to data/MANIFEST must be pinned here or in tests/property."""
    property_models = json.loads(PROPERTY_PINS_FILE.read_text())["predictions"]
    assert not set(pins) & set(property_models)
    assert sorted(e.name for e in shipped.manifest("model")) == \
        sorted([*pins, *property_models])
    assert sorted(pins) == sorted(PREDICT)


@pytest.mark.parametrize("name", sorted(PREDICT))
def test_shipped_model_predicts_its_pinned_values(name, pins):
    check(name, PREDICT[name](), pins[name], **TOLERANCE.get(name, {}))
