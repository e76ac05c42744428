"""What Flower trains: one small adapter class per pmtoolkit model.

An adapter (:class:`FederatedTask`) knows, for its domain, how to read the data and deal it
(labels, units that stay together, groups), how a site writes and reads its share in the
domain's own file format, which summary statistics a site shares before training so every
site builds the same network (a vocabulary, a target scaler), and how to build the domain's
model, its Lightning module (the domain's own loss and optimizer), its data loader and its
metrics. Everything else — weights as arrays, FedAvg/FedProx, the Flower server and clients —
is generic. Adding a model is one subclass registered in :data:`TASKS`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from pmtoolkit.core.errors import BadInputError, MissingInputError
from pmtoolkit.core.registry import Registry

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

TASKS: Registry = Registry("federated task")


def resolve_data(name: str) -> Path:
    """A dataset path, or a shipped dataset's file by name."""
    from pmtoolkit.core import shipped

    p = Path(name)
    if p.exists():
        return p
    names = [e.name for e in shipped.manifest("dataset")]
    if name in names:
        return shipped.path(name, "dataset")
    raise MissingInputError(f"dataset '{name}' does not exist and is not a shipped dataset",
                            hint="shipped: " + ", ".join(names))


class FederatedTask:
    """The domain-specific half of federated training (see the module docstring)."""

    name: ClassVar[str]
    ModelConfig: ClassVar[type]
    DataOptions: ClassVar[type]
    #: the metric the benchmark and the report follow, and whether higher is better
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    #: file name of a site's share, in the domain's format
    site_file: ClassVar[str]

    def __init__(self, model: dict[str, Any] | Any = None, data: dict[str, Any] | Any = None):
        from dataclasses import is_dataclass

        from pmtoolkit.core.config import check_ranges, from_mapping

        self.config = model if is_dataclass(model) else from_mapping(
            self.ModelConfig, model or {}, source="[model]")
        self.options = data if is_dataclass(data) else from_mapping(
            self.DataOptions, data or {}, source="[data]")
        check_ranges(self.config, source="[model]")  # configs built in Python, too
        check_ranges(self.options, source="[data]")
        self.check()

    def check(self) -> None:
        """Refuse model settings that cannot be trained this way."""

    # -- data ----------------------------------------------------------------------------
    def load(self, source: str) -> Any:
        raise NotImplementedError

    def size(self, data: Any) -> int:
        raise NotImplementedError

    def subset(self, data: Any, index: np.ndarray) -> Any:
        raise NotImplementedError

    def labels(self, data: Any) -> np.ndarray:
        """Per item: the label the split skews (a class, or a continuous value)."""
        raise NotImplementedError

    @property
    def classification(self) -> bool:
        return True

    def units(self, data: Any) -> list | None:
        """Per item: the unit it must stay with (None: each item is its own unit)."""
        return None

    def groups(self, data: Any, by: str) -> list:
        raise BadInputError(f"task {self.name!r} cannot group by {by!r}")

    def write(self, data: Any, path: Path) -> None:
        raise NotImplementedError

    def read(self, path: Path) -> Any:
        raise NotImplementedError

    # -- shared set-up -----------------------------------------------------------------------
    def summary(self, data: Any) -> dict[str, Any]:
        """What a site shares before training (counts and sums, never its records)."""
        return {"n": self.size(data)}

    def setup(self, summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """What every site and the server need to build the same network (JSON values)."""
        return {}

    # -- model ---------------------------------------------------------------------------
    def new_model(self, setup: dict[str, Any], seed: int = 0) -> Any:
        raise NotImplementedError

    def network(self, model: Any) -> torch.nn.Module:
        return model.network

    def objective(self, model: Any, setup: dict[str, Any]) -> Any:
        """The domain's training objective (:class:`pmtoolkit.core.task.Objective`) for
        :meth:`network`."""
        raise NotImplementedError

    def optimizer(self) -> Any:
        """The domain's :class:`pmtoolkit.core.task.Optimizer` (its schedule is dropped)."""
        raise NotImplementedError

    def loader(self, model: Any, data: Any, *, shuffle: bool, seed: int) -> Any:
        raise NotImplementedError

    def evaluate(self, model: Any, data: Any) -> tuple[float, dict[str, float]]:
        """(loss, metrics) of ``model`` on ``data``, by the domain's own metrics."""
        raise NotImplementedError

    def finish(self, model: Any, setup: dict[str, Any], info: dict[str, Any]) -> Any:
        """The trained model as the domain saves it (metadata filled in)."""
        model.metadata = {"metrics": info}
        return model

    @property
    def device(self) -> str:
        return getattr(self.config, "device", "auto")


# ------------------------------------------------------------------------------ molecules

SHIPPED_TARGETS = {"esol": ("measured log solubility in mols per litre",)}


@dataclass
class PropertyDataConfig:
    """How the property task reads a molecule table."""

    smiles_column: str = field(default="smiles", metadata={"help": "SMILES column"})
    target_columns: tuple[str, ...] = field(default=(), metadata={
        "help": "target column(s); the split skews the first"})
    on_invalid: Literal["error", "skip"] = field(default="error", metadata={
        "help": "an invalid molecule or label stops the run (error) or is dropped (skip)"})


@TASKS.register("property", help="molecular property GNN (pmt property): D-MPNN, GINE, "
                                 "AttentiveFP; regression or classification")
class PropertyTask(FederatedTask):
    """:class:`~pmtoolkit.property.model.PropertyModel` with one graph network. A regression
    target is standardised with the mean and sd pooled from the sites' counts, sums and
    sums of squares."""

    name = "property"
    metric = "rmse"
    higher_is_better = False
    site_file = "molecules.csv"

    from pmtoolkit.property.config import PropertyConfig as ModelConfig

    DataOptions = PropertyDataConfig

    def check(self) -> None:
        from pmtoolkit.property.config import TREE_ARCHITECTURES

        c = self.config
        if c.architecture in TREE_ARCHITECTURES:
            raise BadInputError(f"architecture {c.architecture!r} is a tree ensemble; federated "
                                "averaging needs a network", hint="dmpnn, gine or attentivefp")
        if c.ensemble_size != 1:
            raise BadInputError("federated training trains one network: ensemble_size = 1")
        if c.features != "none":
            raise BadInputError("federated training supports features = 'none' only")
        if c.task == "classification":
            self.metric, self.higher_is_better = "roc_auc", True
        self._packed: dict[int, Any] = {}

    @property
    def classification(self) -> bool:
        return self.config.task == "classification"

    def load(self, source: str) -> Any:
        from pmtoolkit.property.data import read_property_data

        targets = tuple(self.options.target_columns) or SHIPPED_TARGETS.get(source, ())
        if not targets:
            raise BadInputError("name the target column(s) in [data] target_columns")
        self.options.target_columns = targets
        data, rejects = read_property_data(resolve_data(source),
                                           smiles_column=self.options.smiles_column,
                                           target_columns=list(targets), task=self.config.task)
        rejects.apply(self.options.on_invalid)
        if len(data) < 10:
            raise BadInputError(f"only {len(data)} usable molecules in '{source}'")
        return data

    def size(self, data) -> int:
        return len(data)

    def subset(self, data, index):
        return data.subset(index)

    def labels(self, data) -> np.ndarray:
        return data.y[:, 0].astype(np.float64)

    def groups(self, data, by: str) -> list:
        if by != "scaffold":
            raise BadInputError(f"molecules can be grouped by scaffold, not {by!r}")
        from pmtoolkit.chem.scaffolds import murcko_scaffold

        return [murcko_scaffold(m) for m in data.mols()]

    def write(self, data, path: Path) -> None:
        import pandas as pd

        from pmtoolkit.core.io import write_table

        frame = pd.DataFrame({self.options.smiles_column: data.smiles})
        for j, name in enumerate(data.target_names):
            frame[name] = data.y[:, j]
        write_table(frame, path)

    def read(self, path: Path):
        from pmtoolkit.property.data import read_property_data

        data, rejects = read_property_data(path, smiles_column=self.options.smiles_column,
                                           target_columns=list(self.options.target_columns),
                                           task=self.config.task)
        rejects.raise_first()
        return data

    def summary(self, data) -> dict[str, Any]:
        y = data.y.astype(np.float64)
        ok = ~np.isnan(y)
        return {"n": len(data), "count": ok.sum(0).tolist(),
                "sum": np.where(ok, y, 0).sum(0).tolist(),
                "sumsq": np.where(ok, y ** 2, 0).sum(0).tolist(),
                "targets": list(data.target_names)}

    def setup(self, summaries) -> dict[str, Any]:
        out: dict[str, Any] = {"targets": summaries[0]["targets"]}
        if not self.classification:
            n = np.sum([s["count"] for s in summaries], axis=0)
            mean = np.sum([s["sum"] for s in summaries], axis=0) / np.maximum(n, 1)
            var = np.sum([s["sumsq"] for s in summaries], axis=0) / np.maximum(n, 1) - mean ** 2
            std = np.sqrt(np.maximum(var, 0.0))
            out["y_mean"] = mean.tolist()
            out["y_std"] = np.where(std > 1e-8, std, 1.0).tolist()
        return out

    def new_model(self, setup, seed: int = 0):
        import torch  # noqa: F401  (seeded below)

        from pmtoolkit.core.seeds import seed_everything
        from pmtoolkit.property.model import PropertyModel, Scaler, build_network

        seed_everything(seed)
        net = build_network(self.config, len(setup["targets"]), 0)
        scaler = None if self.classification else Scaler(np.array(setup["y_mean"]),
                                                         np.array(setup["y_std"]))
        return PropertyModel(self.config, setup["targets"], members=[net], y_scaler=scaler)

    def network(self, model):
        return model.members[0]

    def objective(self, model, setup):
        from pmtoolkit.property.model import objective

        return objective(self.config)

    def optimizer(self):
        from pmtoolkit.property.model import optimizer

        return optimizer(self.config)

    def loader(self, model, data, *, shuffle: bool, seed: int):
        from pmtoolkit.chem.featurizer import PackedGraphs
        from pmtoolkit.property.model import graph_loader

        held, packed = self._packed.get(id(data), (None, None))
        if held is not data:  # featurised once per dataset (kept alive, so ids stay unique)
            packed = PackedGraphs(data.codes())
            self._packed[id(data)] = (data, packed)
        y = data.y if self.classification else model.y_scaler.transform(data.y)
        return graph_loader(packed, y, None, self.config.batch_size, shuffle, seed)

    def evaluate(self, model, data) -> tuple[float, dict[str, float]]:
        from pmtoolkit.property.model import evaluate

        p = model.member_predictions(data).mean(axis=0)
        y = data.y
        ok = ~np.isnan(y)
        if self.classification:
            q = np.clip(p, 1e-7, 1 - 1e-7)
            loss = -(y * np.log(q) + (1 - y) * np.log(1 - q))
        else:
            loss = ((p - y) / model.y_scaler.std) ** 2
        metrics = evaluate(model, data)["mean"]
        return float(loss[ok].mean()), {k: float(v) for k, v in metrics.items()}

    def finish(self, model, setup, info):
        model.metadata = {"metrics": info}
        return model


# ------------------------------------------------------------------------------ EHR


@TASKS.register("ehr", help="risk model over visit sequences (pmt ehr): logistic, GRU/LSTM, "
                            "RETAIN, Transformer; mortality or onset")
class EHRTask(FederatedTask):
    """:class:`~pmtoolkit.ehr.models.RiskModel` on binary tasks. Data: a Synthea folder or
    event table (built into samples with the ``[data]`` task settings) or a dataset file from
    ``pmt ehr build``. A patient's samples stay at one site. The vocabulary is the codes seen
    in at least ``min_code_count`` samples over all sites, from per-site code counts; the
    positive weight comes from the pooled label counts. Probabilities are not calibrated
    (calibration would need the sites' validation predictions pooled)."""

    name = "ehr"
    metric = "auroc"
    higher_is_better = True
    site_file = "samples.jsonl.gz"

    from pmtoolkit.ehr.config import RiskModelConfig as ModelConfig
    from pmtoolkit.ehr.config import TaskConfig as DataOptions

    def check(self) -> None:
        if self.options.kind == "next_visit":
            raise BadInputError("federated EHR training supports binary tasks (mortality, "
                                "onset), not next_visit")
        self.header: dict[str, Any] = {}

    def load(self, source: str):
        from pmtoolkit.core.config import to_dict
        from pmtoolkit.ehr import run as ehr_run
        from pmtoolkit.ehr.tasks import build_samples

        path = resolve_data(source)
        if path.is_file() and path.name.endswith((".jsonl", ".jsonl.gz")):
            header, samples, _ = ehr_run.read_dataset(path)
            task = header.get("task", {})
        else:
            if path.is_file() and path.name.startswith("patients.csv"):
                path = path.parent  # a shipped Synthea export is named by its patients table
            table = ehr_run.read_events(path)
            built = build_samples(table, self.options)
            samples, task = built.samples, to_dict(self.options)
        if any(s.targets is not None for s in samples):
            raise BadInputError("federated EHR training supports binary tasks, not next_visit")
        if len(samples) < 10:
            raise BadInputError(f"only {len(samples)} samples in '{source}'")
        self.header = {"task": task, "source": str(source)}
        return samples

    def size(self, data) -> int:
        return len(data)

    def subset(self, data, index):
        return [data[int(i)] for i in index]

    def labels(self, data) -> np.ndarray:
        return np.array([s.label for s in data], dtype=np.float64)

    def units(self, data) -> list:
        return [s.patient_id for s in data]

    def groups(self, data, by: str) -> list:
        if by == "sex":
            return [str(s.sex) for s in data]
        if by == "age":
            return ["unknown" if s.age is None else f"{int(s.age // 20) * 20}s" for s in data]
        raise BadInputError(f"EHR samples can be grouped by age or sex, not {by!r}")

    def write(self, data, path: Path) -> None:
        import json

        from pmtoolkit.core.io import atomic_write
        from pmtoolkit.ehr.run import FORMAT

        header = {"format": FORMAT, **self.header}
        with atomic_write(path) as fh:
            fh.write(json.dumps(header) + "\n")
            for s in data:
                fh.write(json.dumps(s.to_dict()) + "\n")

    def read(self, path: Path):
        from pmtoolkit.ehr.run import read_dataset

        header, samples, _ = read_dataset(path)
        self.header = {k: header[k] for k in ("task", "source") if k in header}
        return samples

    def summary(self, data) -> dict[str, Any]:
        from collections import Counter

        counts: Counter = Counter()
        for s in data:
            counts.update({c for v in s.visits for c in v})
        return {"n": len(data), "positives": int(sum(s.label for s in data)),
                "codes": dict(counts)}

    def setup(self, summaries) -> dict[str, Any]:
        from collections import Counter

        from pmtoolkit.ehr.models import Vocabulary

        counts: Counter = Counter()
        for s in summaries:
            counts.update(s["codes"])
        n = sum(s["n"] for s in summaries)
        pos = sum(s["positives"] for s in summaries)
        if pos == 0 or pos == n:
            raise BadInputError(f"the sites' training samples have {pos} positives of {n}; "
                                "need both outcomes")
        tokens = Vocabulary(sorted(t for t, k in counts.items()
                                   if k >= self.config.min_code_count)).tokens
        return {"tokens": tokens, "pos_weight": (n - pos) / pos if self.config.pos_weight
                else 1.0, "task": self.header.get("task", {})}

    def new_model(self, setup, seed: int = 0):
        import torch  # noqa: F401  (seeded below)

        from pmtoolkit.core.seeds import seed_everything
        from pmtoolkit.ehr.models import RiskModel

        seed_everything(seed)
        return RiskModel.untrained(self.config, {"tokens": setup["tokens"], "task": setup["task"],
                                            "calibration": {"method": "none"}})

    def objective(self, model, setup):
        from pmtoolkit.ehr.models import objective

        return objective(float(setup["pos_weight"]))

    def optimizer(self):
        from pmtoolkit.ehr.models import optimizer

        return optimizer(self.config)

    def loader(self, model, data, *, shuffle: bool, seed: int):
        import torch

        codes, days, mask = model.vocab.encode(data)
        y = np.array([s.label for s in data], np.float32)
        ds = torch.utils.data.TensorDataset(torch.from_numpy(codes), torch.from_numpy(days),
                                            torch.from_numpy(mask), torch.from_numpy(y))
        return torch.utils.data.DataLoader(ds, batch_size=self.config.batch_size,
                                           shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(seed))

    def evaluate(self, model, data) -> tuple[float, dict[str, float]]:
        from pmtoolkit.ehr.evaluate import risk_metrics

        z = model.logits(data).astype(np.float64)
        y = np.array([s.label for s in data], dtype=np.float64)
        loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
        m = risk_metrics(y, 1.0 / (1.0 + np.exp(-z)), 0.5)
        return loss, {k: float(v) for k, v in m.items()}


def make_task(name: str, model: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None) -> FederatedTask:
    return TASKS.get(name)(model, data)


def site_seed(seed: int, site: int, server_round: int) -> int:
    """A distinct, reproducible training seed per site and round."""
    return (int(seed) * 1_000_003 + 7919 * (site + 1) + int(server_round)) % (2**32 - 1)

