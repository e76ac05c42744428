"""Offline smoke test of the PyHealth anchor venv (built by setup_anchor_env.sh).

Builds a synthetic visit-sequence dataset, trains GRU (pyhealth RNN), RETAIN and Transformer for
2 epochs each on CPU through pyhealth's Trainer and prints pyhealth's own ROC-AUC / PR-AUC:

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 \
        benchmarks/.venv-pyhealth/bin/python benchmarks/ehr/pyhealth_probe.py
"""
import logging
import os
import random
import tempfile
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars from pyhealth's Trainer
# pyhealth.models.molerec imports pkg_resources at import time (hence setuptools<81 in the venv)
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

from importlib.metadata import version

import pandas
import torch
from pyhealth.datasets import SampleEHRDataset, get_dataloader, split_by_patient
from pyhealth.models import RETAIN, RNN, Transformer
from pyhealth.trainer import Trainer

logging.getLogger("pyhealth").setLevel(logging.WARNING)  # keep the trainer's INFO log quiet
torch.set_num_threads(1)
print(f"pyhealth {version('pyhealth')} | torch {torch.__version__} | pandas {pandas.__version__}")

# --- synthetic cohort: 200 patients, 2-8 visits each, 1-5 ICD-like codes per visit -------------
# The label is 1 with high probability when a "risk" code (first 5 of the vocabulary) occurs in
# the last 2 visits, so a working model scores well above chance.
rng = random.Random(0)
vocab = [f"D{i:03d}" for i in range(60)]
risk = set(vocab[:5])
samples = []
for p in range(200):
    visits = [rng.sample(vocab, rng.randint(1, 5)) for _ in range(rng.randint(2, 8))]
    exposed = any(c in risk for v in visits[-2:] for c in v)
    label = int(rng.random() < (0.85 if exposed else 0.15))
    # one sample per patient; "conditions" is a list of visits, each a list of code strings
    samples.append({"patient_id": f"p{p}", "visit_id": f"p{p}-v{len(visits)}",
                    "conditions": visits, "label": label})

# --- PyHealth dataset from the list of sample dicts, patient-level split, dataloaders -----------
dataset = SampleEHRDataset(samples=samples, dataset_name="synthetic", task_name="probe")
print("dataset:", len(dataset), "samples | input_info conditions:", dataset.input_info["conditions"])
train_ds, val_ds, test_ds = split_by_patient(dataset, [0.7, 0.15, 0.15], seed=0)
train_dl = get_dataloader(train_ds, batch_size=32, shuffle=True)
val_dl = get_dataloader(val_ds, batch_size=64, shuffle=False)
test_dl = get_dataloader(test_ds, batch_size=64, shuffle=False)
print(f"split: train {len(train_ds)} | val {len(val_ds)} | test {len(test_ds)}")

# --- the three anchor models: same feature/label keys, binary mode ------------------------------
common = {"dataset": dataset, "feature_keys": ["conditions"], "label_key": "label",
          "mode": "binary", "embedding_dim": 64}
models = {
    "GRU": lambda: RNN(rnn_type="GRU", hidden_dim=64, **common),
    "RETAIN": lambda: RETAIN(**common),
    "Transformer": lambda: Transformer(heads=2, num_layers=1, **common),
}

# --- train 2 epochs each on CPU with pyhealth's Trainer, evaluate on the held-out patients ------
with tempfile.TemporaryDirectory() as out_dir:  # Trainer writes its log and best.ckpt here
    for name, build in models.items():
        torch.manual_seed(0)
        trainer = Trainer(model=build(), metrics=["roc_auc", "pr_auc"], device="cpu",
                          output_path=out_dir, exp_name=name)
        trainer.train(train_dataloader=train_dl, val_dataloader=val_dl, epochs=2,
                      monitor="roc_auc", optimizer_params={"lr": 1e-2})
        scores = trainer.evaluate(test_dl)  # pyhealth.metrics.binary_metrics_fn under the hood
        print(f"{name:<12} test roc_auc {scores['roc_auc']:.4f} | pr_auc {scores['pr_auc']:.4f}"
              f" | loss {scores['loss']:.4f}")
