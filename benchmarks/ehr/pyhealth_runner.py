"""PyHealth side of the EHR benchmark, run with the anchor venv's python
(benchmarks/.venv-pyhealth, built by setup_anchor_env.sh: pyhealth 1.1.4 on the CPU torch).

Reads a job file written by benchmarks/ehr/run.py: the same train / valid / test samples
pmtoolkit trains on (visits as lists of code tokens, binary labels), the models and the shared
hyper-parameters; trains each PyHealth model with its own Trainer (best validation PR-AUC
kept), and prints one JSON line per model with test ROC-AUC, PR-AUC and the train time.

    benchmarks/.venv-pyhealth/bin/python benchmarks/ehr/pyhealth_runner.py job.json
"""
import json
import logging
import os
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

import torch
from pyhealth.datasets import SampleEHRDataset, get_dataloader
from pyhealth.models import RETAIN, RNN, Transformer
from pyhealth.trainer import Trainer

logging.getLogger("pyhealth").setLevel(logging.WARNING)
torch.set_num_threads(1)


def dataset(samples, name):
    rows = [{"patient_id": s["patient_id"], "visit_id": f"{s['patient_id']}@{i}",
             "conditions": s["visits"], "label": int(s["label"])} for i, s in enumerate(samples)]
    return SampleEHRDataset(samples=rows, dataset_name="pmtoolkit", task_name=name)


def main() -> int:
    with open(sys.argv[1]) as fh:
        job = json.load(fh)
    train, valid, test = (dataset(job[k], k) for k in ("train", "valid", "test"))
    loaders = {k: get_dataloader(d, batch_size=job["batch_size"], shuffle=(k == "train"))
               for k, d in (("train", train), ("valid", valid), ("test", test))}
    common = {"dataset": train, "feature_keys": ["conditions"], "label_key": "label",
              "mode": "binary", "embedding_dim": job["embedding_dim"]}
    build = {"gru": lambda: RNN(rnn_type="GRU", hidden_dim=job["hidden_dim"], **common),
             "retain": lambda: RETAIN(**common),
             "transformer": lambda: Transformer(heads=job["heads"], num_layers=job["layers"],
                                                **common)}
    with tempfile.TemporaryDirectory() as out:
        for arch in job["models"]:
            if arch not in build:
                print(json.dumps({"arch": arch, "skipped": "no PyHealth equivalent"}), flush=True)
                continue
            torch.manual_seed(job["seed"])
            model = build[arch]()
            trainer = Trainer(model=model, metrics=["roc_auc", "pr_auc"], device="cpu",
                              output_path=out, exp_name=f"{arch}-{job['seed']}")
            t0 = time.perf_counter()
            trainer.train(train_dataloader=loaders["train"], val_dataloader=loaders["valid"],
                          epochs=job["epochs"], monitor="pr_auc",
                          optimizer_params={"lr": job["lr"]})
            seconds = time.perf_counter() - t0
            scores = trainer.evaluate(loaders["test"])
            print(json.dumps({"arch": arch, "auroc": float(scores["roc_auc"]),
                              "auprc": float(scores["pr_auc"]), "train_seconds": seconds,
                              "epochs": job["epochs"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
