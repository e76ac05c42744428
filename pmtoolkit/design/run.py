"""File-to-file workflows behind ``pmt generate sample|train|finetune`` (and pipelines).

``sample_file`` streams samples to a table (``smiles``, ``log_likelihood``, ``valid``);
``train_file`` and ``finetune_file`` write an output folder: ``model.safetensors``,
``config.json`` (resolved), ``history.csv``, ``metrics.json`` (validation loss, and validity
and uniqueness of 1000 samples), ``samples.csv`` and ``rejected.csv`` when records were skipped.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid, Rejects, atomic_dir, work_dir, write_json
from pmtoolkit.design.config import GeneratorConfig
from pmtoolkit.design.generator import SmilesGenerator

log = logging.getLogger(__name__)

#: shipped generators by the name users type; each is a ``model`` entry in data/MANIFEST
SHIPPED_GENERATORS = ("prior",)


def load(name_or_path: str | os.PathLike) -> SmilesGenerator:
    """A saved generator file, or a shipped one by name (``prior``)."""
    from pmtoolkit.core.model import load_named

    return load_named(name_or_path, shipped_names=SHIPPED_GENERATORS,
                      model_class=SmilesGenerator, what="generator")


def read_training_smiles(input: str | os.PathLike, *, smiles_column: str = "smiles",
                         fmt: str | None = None) -> tuple[list[str], list[int], Rejects]:
    """The SMILES of a file as written (not canonicalised), with their line numbers; those
    RDKit cannot parse are rejects (a generator should not learn invalid SMILES). Streamed:
    the parsed molecules are not kept."""
    from pmtoolkit.chem.molecules import iter_molecules

    smiles: list[str] = []
    lines: list[int] = []
    rejects = Rejects(source=str(input), item_name="smiles")
    for chunk in iter_molecules(input, smiles_column=smiles_column, fmt=fmt):
        for m in chunk.valid:
            smiles.append(m.smiles)
            lines.append(m.line)
        rejects.extend(chunk.rejects)
    return smiles, lines, rejects


def sample_summary(smiles: Sequence[str]) -> dict[str, float]:
    """Validity (RDKit parses it) and uniqueness (distinct canonical SMILES among the valid)."""
    from pmtoolkit.design.metrics import canonical, parse

    canon = canonical([m for m in parse(smiles) if m is not None])
    return {"n": len(smiles), "validity": len(canon) / max(1, len(smiles)),
            "uniqueness": len(set(canon)) / max(1, len(canon))}


def _sample_table(part) -> Any:
    """One batch of samples as the output table: ``smiles``, ``log_likelihood`` (4
    decimals) and ``valid`` (RDKit parses it)."""
    import pandas as pd

    from pmtoolkit.chem.molecules import parse_smiles

    ok = [bool(s) and parse_smiles(s)[0] is not None for s in part.smiles]
    return pd.DataFrame({"smiles": part.smiles,
                         "log_likelihood": np.round(part.log_likelihood, 4), "valid": ok})


def sample_file(model: SmilesGenerator | str | os.PathLike, output: str | os.PathLike, *,
                n: int, temperature: float = 1.0, batch_size: int = 1024, seed: int = 0,
                max_length: int | None = None, cluster=None) -> dict[str, Any]:
    """Stream ``n`` samples into ``output``: ``smiles``, ``log_likelihood`` and ``valid``
    (whether RDKit parses it). Returns counts, validity and throughput.

    With a ``cluster`` that runs on Dask (:class:`pmtoolkit.core.distributed.Cluster`;
    ``model`` then a name or path) the samples are drawn in partitions of
    ``cluster.partition_size`` (default :data:`SAMPLE_PARTITION`), partition ``i`` seeded by
    ``(seed, i)``: the output depends on the seed and the partition size, not on the
    workers, and differs from a single-process run's (one random stream)."""
    from pmtoolkit.core.io import TableWriter

    if cluster is not None and cluster.distributed:
        return _sample_partitioned(model, output, n=n, temperature=temperature,
                                   batch_size=batch_size, seed=seed, max_length=max_length,
                                   cluster=cluster)
    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    t0 = time.perf_counter()
    sampling = 0.0
    valid = tokens = 0
    with TableWriter(output) as writer:
        it = model.iter_samples(n, temperature=temperature, batch_size=batch_size, seed=seed,
                                max_length=max_length)
        while True:
            ts = time.perf_counter()
            part = next(it, None)
            sampling += time.perf_counter() - ts
            if part is None:
                break
            table = _sample_table(part)
            valid += int(table["valid"].sum())
            tokens += part.tokens
            writer.write(table)
    return {"n": n, "valid": valid, "validity": valid / max(1, n),
            "sampling_seconds": sampling, "seconds": time.perf_counter() - t0,
            "smiles_per_second": n / sampling if sampling else None,
            "tokens": tokens}


#: SMILES a partition of a distributed ``sample_file`` draws, unless the cluster says
SAMPLE_PARTITION = 20_000


def partition_seed(seed: int, number: int) -> int:
    """The sampling seed of partition ``number`` of a run seeded ``seed``: independent streams
    (NumPy's SeedSequence of the pair), the same wherever the partition runs."""
    return int(np.random.SeedSequence([int(seed), int(number)]).generate_state(1)[0])


class SampleJob:
    """:func:`sample_file` as a :class:`pmtoolkit.core.distributed.Job`: partition ``i`` draws
    its share of the samples with :func:`partition_seed`; the merge writes them in order."""

    name = "generate sample"

    def __init__(self, model, *, n: int, per_partition: int, temperature: float,
                 batch_size: int, seed: int, max_length: int | None):
        self.model, self.n, self.per_partition = model, n, per_partition
        self.temperature, self.batch_size = temperature, batch_size
        self.seed, self.max_length = seed, max_length
        self.shards = [str(model.args[0])]

    def settings(self) -> dict[str, Any]:
        return {"model": list(self.model.args), "model-version": self.model.version,
                "n": self.n, "partition-size": self.per_partition,
                "temperature": self.temperature, "batch-size": self.batch_size,
                "seed": self.seed, "max-length": self.max_length}

    def read(self, shard: str):
        for number, start in enumerate(range(0, self.n, self.per_partition)):
            yield {"number": number, "count": min(self.per_partition, self.n - start)}

    def run(self, payload):
        from pmtoolkit.core.distributed import PartResult

        model = self.model.get()
        tables, valid, tokens = [], 0, 0
        for part in model.iter_samples(payload["count"], temperature=self.temperature,
                                       batch_size=self.batch_size,
                                       seed=partition_seed(self.seed, payload["number"]),
                                       max_length=self.max_length, show_progress=False):
            tables.append(_sample_table(part))
            valid += int(tables[-1]["valid"].sum())
            tokens += part.tokens
        return PartResult(tables, [], {"valid": valid, "tokens": tokens})

    def merge(self, parts, output) -> dict[str, Any]:
        from pmtoolkit.core.io import TableWriter

        valid = tokens = 0
        with TableWriter(output) as writer:
            for part in parts:
                for table in part.tables:
                    writer.write(table)
                valid += part.counts["valid"]
                tokens += part.counts["tokens"]
        return {"valid": valid, "tokens": tokens}


def _sample_partitioned(model, output, *, n, temperature, batch_size, seed, max_length,
                        cluster) -> dict[str, Any]:
    from pmtoolkit.core.distributed import MAX_PARTITION_ROWS, WorkerModel, named_model, run_job

    if isinstance(model, (str, os.PathLike)):
        model = WorkerModel.named(load, model)
    per = cluster.partition_size or SAMPLE_PARTITION
    if not 1 <= per <= MAX_PARTITION_ROWS:
        raise BadInputError(f"--partition-size {per:,} is out of range 1..{MAX_PARTITION_ROWS:,}")
    model = named_model(model)
    # bad options stop the run here, before a cluster starts
    next(model.get().iter_samples(0, temperature=temperature, batch_size=batch_size,
                                  max_length=max_length), None)
    job = SampleJob(model, n=n, per_partition=per, temperature=temperature,
                    batch_size=batch_size, seed=seed, max_length=max_length)
    t0 = time.perf_counter()
    info = run_job(job, output, cluster)
    seconds = time.perf_counter() - t0
    return {"n": n, "valid": info["valid"], "validity": info["valid"] / max(1, n),
            "sampling_seconds": None, "seconds": seconds,
            "smiles_per_second": n / seconds if seconds else None, "tokens": info["tokens"],
            "partitions": info["partitions"], "resumed": info["resumed"]}


def _check_fraction(fraction: float) -> None:
    if not 0 <= fraction < 1:  # NaN fails too
        raise BadInputError(f"--valid-fraction {fraction}: must be at least 0 and below 1")


def _split_valid(data, fraction: float, seed: int):
    """A seeded random (train, validation) split of encoded data."""
    _check_fraction(fraction)
    order = np.random.default_rng(seed).permutation(len(data))
    n_val = round(fraction * len(data)) if len(data) >= 20 else 0
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))


def _finish(model: SmilesGenerator, tmp: Path, rejects: Rejects, outdir, on_invalid: OnInvalid,
            config: GeneratorConfig, data: dict, n_check: int) -> dict[str, Any]:
    from pmtoolkit.core.config import write_resolved
    from pmtoolkit.core.training import write_history

    history = model.metadata.get("history", [])
    samples = model.sample(n_check, seed=config.seed) if n_check else None
    metrics: dict[str, Any] = {"epochs": len(history)}
    if history:
        last = history[-1]
        metrics.update({k: last[k] for k in ("train_loss", "val_loss") if k in last})
    if samples is not None:
        metrics["samples"] = sample_summary(samples.smiles)
    model.save(tmp / "model.safetensors", metrics=metrics)
    if rejects:
        rejects.apply("skip", tmp, final=outdir)
    write_resolved(tmp / "config.json", model=config, data=data)
    write_json(tmp / "metrics.json", metrics)
    if history:
        write_history(tmp / "history.csv", history)
    if samples is not None:
        import pandas as pd

        pd.DataFrame({"smiles": samples.smiles,
                      "log_likelihood": np.round(samples.log_likelihood, 4)}).to_csv(
            tmp / "samples.csv", index=False)
    return metrics


def train_file(input: str | os.PathLike, outdir: str | os.PathLike, *,
               config: GeneratorConfig, smiles_column: str = "smiles", fmt: str | None = None,
               valid_fraction: float = 0.05, on_invalid: OnInvalid = "error",
               overwrite: bool = False, n_check: int = 1000,
               resume: bool = False) -> dict[str, Any]:
    """Train a generator from scratch on the SMILES of ``input``; an interrupted run keeps its
    checkpoint (written every epoch) in ``outdir/work`` and continues from it with
    ``resume``."""
    from pmtoolkit.core.config import check_ranges, to_dict
    from pmtoolkit.core.io import check_output_dir
    from pmtoolkit.design.generator import encode_smiles, fit
    from pmtoolkit.design.tokenizer import Vocabulary

    check_ranges(config, source="generator config")
    _check_fraction(valid_fraction)
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    smiles, lines, rejects = read_training_smiles(input, smiles_column=smiles_column, fmt=fmt)
    if rejects and on_invalid == "error":
        rejects.raise_first()
    vocabulary = Vocabulary.build(smiles)
    # too long or untokenisable SMILES are rejects too (with their input line)
    data, token_rejects = encode_smiles(smiles, vocabulary, max_length=config.max_length,
                                        source=str(input), lines=lines)
    if token_rejects and on_invalid == "error":
        token_rejects.raise_first()
    rejects.extend(token_rejects)
    if len(data) < 10:
        raise BadInputError(f"only {len(data)} usable SMILES in '{input}'; need at least 10")
    tr, va = _split_valid(data, valid_fraction, config.seed)
    log.info("%d SMILES: %d train, %d validation; vocabulary of %d tokens", len(data),
             len(tr), len(va), len(vocabulary))
    data_settings = {"input": str(input), "smiles-column": smiles_column,
                     "valid-fraction": valid_fraction, "on-invalid": on_invalid}
    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        checkpoints = work_dir(outdir, {"model": to_dict(config), "data": data_settings})
        model, _ = fit(tr, config, valid=va if len(va) else None, vocabulary=vocabulary,
                       workdir=tmp / "training", checkpoints=checkpoints,
                       source=str(input), resume=resume)
        return _finish(model, tmp, rejects, outdir, on_invalid, config, data_settings,
                       n_check)


def finetune_file(model: SmilesGenerator, input: str | os.PathLike, outdir: str | os.PathLike,
                  *, epochs: int = 10, lr: float = 1e-4, batch_size: int | None = None,
                  seed: int = 0, smiles_column: str = "smiles", fmt: str | None = None,
                  valid_fraction: float = 0.0, on_invalid: OnInvalid = "error",
                  overwrite: bool = False, n_check: int = 1000,
                  base: str = "", resume: bool = False) -> dict[str, Any]:
    """Transfer learning: continue training ``model`` on the focused set in ``input``; an
    interrupted run keeps its checkpoint in ``outdir/work`` and continues from it with
    ``resume``."""
    from pmtoolkit.core.config import to_dict
    from pmtoolkit.core.io import check_output_dir
    from pmtoolkit.design.generator import encode_smiles, finetune

    _check_fraction(valid_fraction)
    check_output_dir(outdir, overwrite=overwrite, resume=resume)
    smiles, lines, rejects = read_training_smiles(input, smiles_column=smiles_column, fmt=fmt)
    data, token_rejects = encode_smiles(smiles, model.vocabulary,
                                        max_length=model.config.max_length, source=str(input),
                                        lines=lines)
    rejects.extend(token_rejects)
    if rejects and on_invalid == "error":
        rejects.raise_first()
    if not len(data):
        raise BadInputError(f"no usable SMILES in '{input}'")
    tr, va = _split_valid(data, valid_fraction, seed)
    data_settings = {"input": str(input), "base-model": base, "smiles-column": smiles_column,
                     "epochs": epochs, "lr": lr, "on-invalid": on_invalid}
    settings = {"model": to_dict(model.config), "data": {
        **data_settings, "batch-size": batch_size, "seed": seed,
        "valid-fraction": valid_fraction, "base-model-sha256": _weights_hash(model)}}
    with atomic_dir(outdir, overwrite=overwrite, resume=resume) as tmp:
        tuned, _ = finetune(model, tr, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                            valid=va if len(va) else None, workdir=tmp / "training",
                            checkpoints=work_dir(outdir, settings), source=str(input),
                            resume=resume)
        return _finish(tuned, tmp, rejects, outdir, on_invalid, tuned.config, data_settings,
                       n_check)


def _weights_hash(model: SmilesGenerator) -> str:
    """A hash of a model's weights: a resumed fine-tuning must start from the same model."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.network.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- optimisation

def optimize_file(run, outdir: str | os.PathLike, *, overwrite: bool = False,
                  run_file: str = "") -> dict[str, Any]:
    """Run goal-directed optimisation and write its folder: ``agent.safetensors``,
    ``config.json``, ``scores.csv`` (every sampled molecule of every step), ``history.csv``
    (per step: mean score, validity, uniqueness, component means), ``top.csv`` (best distinct
    molecules), ``score_history.png``, ``top_molecules.png`` and ``report.html``."""
    import pandas as pd

    from pmtoolkit.core.config import write_resolved
    from pmtoolkit.core.io import TableWriter
    from pmtoolkit.design.optimize import optimize
    from pmtoolkit.design.scoring import ScoringFunction, describe

    scoring = ScoringFunction(run.scoring)  # a bad scoring table fails before any writing
    prior = load(run.optimize.prior)
    start = load(run.optimize.agent) if run.optimize.agent else None
    history: list[dict[str, Any]] = []
    best: dict[str, dict[str, Any]] = {}
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        with TableWriter(tmp / "scores.csv") as writer:
            def record(r):
                frame = pd.DataFrame({"step": r.step, "smiles": r.smiles,
                                      "canonical_smiles": [c or "" for c in r.canonical],
                                      "score": np.round(r.total, 4),
                                      "reward": np.round(r.reward, 4)})
                for name, values in r.components.items():
                    frame[name] = np.round(values, 4)
                frame["prior_log_likelihood"] = np.round(r.prior_ll, 3)
                frame["agent_log_likelihood"] = np.round(r.agent_ll, 3)
                writer.write(frame)
                valid = [c for c in r.canonical if c is not None]
                row = {"step": r.step, "mean_score": float(np.nan_to_num(r.total).mean()),
                       "mean_reward": float(r.reward.mean()),
                       "valid": len(valid) / len(r.smiles),
                       "unique": len(set(valid)) / max(1, len(valid)), "loss": r.loss,
                       "mean_agent_log_likelihood": float(np.nanmean(r.agent_ll))}
                for name, values in r.components.items():
                    row[f"mean_{name}"] = float(np.nanmean(values)) if np.isfinite(
                        values).any() else float("nan")
                history.append(row)
                for c, s, smi in zip(r.canonical, r.total, r.smiles):
                    if c is not None and np.isfinite(s) and (c not in best or
                                                             best[c]["score"] < s):
                        best[c] = {"smiles": c, "score": float(s), "step": r.step}
            agent = optimize(prior, scoring, run.optimize, agent=start, callback=record)
        agent.save(tmp / "agent.safetensors")
        write_resolved(tmp / "config.json", optimize=run.optimize, scoring=run.scoring,
                       data={"run-file": run_file})
        hist = pd.DataFrame(history)
        hist.to_csv(tmp / "history.csv", index=False)
        top = pd.DataFrame(sorted(best.values(), key=lambda d: -d["score"])[:run.optimize.top],
                           columns=["smiles", "score", "step"])
        top.to_csv(tmp / "top.csv", index=False)
        _score_plot(hist, tmp / "score_history.png")
        if len(top):
            _molecule_grid(top.head(24), tmp / "top_molecules.png")
        _optimize_report(hist, top, describe(scoring), run,
                         tmp / "report.html")
    first, last = history[0], history[-1]
    return {"steps": len(history), "first_mean_score": first["mean_score"],
            "last_mean_score": last["mean_score"], "best_score": float(top["score"].max())
            if len(top) else float("nan"), "distinct_molecules": len(best)}


def _score_plot(hist, path: Path) -> None:
    from pmtoolkit.core.plots import figure

    with figure(path, size=(6.0, 3.6)) as (_, ax):
        ax.plot(hist["step"], hist["mean_score"], color="#3867d6", lw=1.2, label="mean score")
        if len(hist) >= 5:
            smooth = hist["mean_score"].rolling(5, min_periods=1).mean()
            ax.plot(hist["step"], smooth, color="#0b1f4d", lw=2, label="5-step mean")
        ax.plot(hist["step"], hist["valid"], color="#20bf6b", lw=1, ls="--", label="valid")
        ax.set_xlabel("step")
        ax.set_ylabel("score / fraction")
        ax.set_ylim(0, 1.02)
        ax.legend(frameon=False, fontsize=8)


def _molecule_grid(top, path: Path) -> None:
    """The molecules of a table's ``smiles`` column, with their ``score`` (if any) below."""
    from rdkit import Chem

    from pmtoolkit.chem._rdkit import quiet
    from pmtoolkit.chem.draw import molecule_grid

    with quiet():
        mols = [Chem.MolFromSmiles(s) for s in top["smiles"]]
    legends = [f"{s:.3f}" for s in top["score"]] if "score" in top else None
    molecule_grid(mols, path, legends=legends)


def _optimize_report(hist, top, components: str, run, path: Path) -> None:
    from pmtoolkit.core.report import Report

    first, last = hist.iloc[0], hist.iloc[-1]
    rep = Report("Goal-directed generation",
                 f"{len(hist)} steps of {run.optimize.batch_size} molecules from prior "
                 f"'{run.optimize.prior}' (sigma {run.optimize.sigma:g}).")
    s = rep.section("Scoring function")
    for line in components.splitlines():
        s.text(line)
    rep.section("Progress").text(
        f"Mean score {first['mean_score']:.3f} at the first step, {last['mean_score']:.3f} at "
        f"the last; validity {first['valid']:.0%} -> {last['valid']:.0%}.").figure(
        "score_history.png", "mean score of each sampled batch (invalid molecules count 0)")
    t = rep.section("Top molecules")
    if len(top):
        t.figure("top_molecules.png", "best distinct molecules, with their scores")
        t.table(top, max_rows=30)
    else:
        t.text("No valid molecule was scored.")
    rep.write(path)


# ----------------------------------------------------------------------------- evaluation

PROPERTIES = (("MolWt", "molecular weight"), ("MolLogP", "logP"), ("TPSA", "TPSA"),
              ("qed", "QED"), ("sa_score", "SA score"), ("NumRotatableBonds", "rotatable bonds"))


def molecule_properties(mols: Sequence[Any]) -> dict[str, np.ndarray]:
    """The properties of the distribution plots, one array per property."""
    from rdkit.Chem import Descriptors

    from pmtoolkit.chem._rdkit import quiet
    from pmtoolkit.chem.descriptors import qed, sa_score

    fns = {"MolWt": Descriptors.MolWt, "MolLogP": Descriptors.MolLogP,
           "TPSA": Descriptors.TPSA, "qed": qed, "sa_score": sa_score,
           "NumRotatableBonds": Descriptors.NumRotatableBonds}
    out = {}
    with quiet():
        for name, fn in fns.items():
            out[name] = np.array([float(fn(m)) for m in mols])
    return out


def read_smiles_column(path: str | os.PathLike, column: str | None = None) -> list[str]:
    """A SMILES column of a table or .smi file, as text (no parsing)."""
    from pmtoolkit.core.io import read_table, require_file

    p = Path(path)
    require_file(p)
    if p.name.endswith((".smi", ".smi.gz")):
        from pmtoolkit.core.io import open_text

        with open_text(p) as fh:
            return [line.split()[0] if line.strip() else "" for line in fh]
    frame = read_table(p)
    for name in ([column] if column else []) + ["smiles", "SMILES", "canonical_smiles"]:
        if name and name in frame.columns:
            return frame[name].fillna("").astype(str).tolist()
    raise BadInputError(f"'{path}' has no SMILES column",
                        hint="name it with --smiles-column; columns: " + ", ".join(
                            map(str, frame.columns[:10])))


def evaluate_file(samples: str | os.PathLike, outdir: str | os.PathLike, *,
                  smiles_column: str | None = None, train: str | os.PathLike | None = None,
                  test: str | os.PathLike | None = None,
                  reference_cache: str | os.PathLike | None = None, fcd: bool = True,
                  overwrite: bool = False) -> dict[str, Any]:
    """MOSES metrics of a file of samples (against a training set for novelty and a test
    set for SNN/Frag/Scaf/FCD when given) and a report with property distributions."""
    from pmtoolkit.design.metrics import (
        Reference,
        canonical,
        canonical_set,
        generation_metrics,
        parse,
    )

    gen = read_smiles_column(samples, smiles_column)
    if not gen:
        raise BadInputError(f"no samples in '{samples}'")
    train_set = None
    if train is not None:
        train_set = canonical_set(read_smiles_column(train))
    reference = None
    test_smiles: list[str] = []
    if test is not None:
        test_smiles = read_smiles_column(test)
        if reference_cache is not None and Path(reference_cache).exists():
            reference = Reference.load(reference_cache)
        else:
            reference = Reference.compute(test_smiles, fcd=fcd)
            if reference_cache is not None:
                reference.save(reference_cache)
    parsed = parse(gen)
    metrics = generation_metrics(gen, train=train_set, reference=reference, fcd=fcd,
                                 mols=parsed,
                                 ks=tuple(k for k in (1000, 10000) if k <= len(gen)) or
                                 (len(gen),))
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        write_json(tmp / "metrics.json", {"n": len(gen), **metrics})
        mols = [m for m in parsed if m is not None]
        ref_mols = [m for m in parse(test_smiles[:5000]) if m is not None]
        _distribution_plot(mols[:5000], ref_mols, tmp / "property_distributions.png")
        import pandas as pd

        if mols:
            _molecule_grid(pd.DataFrame({"smiles": canonical(mols[:24])}), tmp / "samples.png")
        _evaluate_report(metrics, len(gen), bool(mols), tmp / "report.html")
    return {"n": len(gen), **metrics}


def _distribution_plot(mols, ref_mols, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from pmtoolkit.core.io import atomic_write

    gen = molecule_properties(mols) if mols else {}
    ref = molecule_properties(ref_mols) if ref_mols else {}
    fig, axes = plt.subplots(2, 3, figsize=(10, 5.6), dpi=110)
    for ax, (key, label) in zip(axes.flat, PROPERTIES):
        values = [v for v in (gen.get(key), ref.get(key)) if v is not None and len(v)]
        if values:
            lo = min(np.nanpercentile(v, 0.5) for v in values)
            hi = max(np.nanpercentile(v, 99.5) for v in values)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
            if key in ref:
                ax.hist(ref[key], bins=bins, density=True, alpha=0.45, color="#8395a7",
                        label="reference")
            if key in gen:
                ax.hist(gen[key], bins=bins, density=True, histtype="step", lw=1.6,
                        color="#3867d6", label="generated")
        ax.set_title(label, fontsize=10)
        ax.tick_params(labelsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes.flat[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)


def _evaluate_report(metrics: dict, n: int, any_valid: bool, path: Path) -> None:
    import pandas as pd

    from pmtoolkit.core.report import Report

    rep = Report("Generated molecules", f"{n} samples, MOSES metrics.")
    rep.section("Metrics").table(pd.DataFrame({"metric": list(metrics),
                                               "value": list(metrics.values())}))
    rep.section("Property distributions").figure(
        "property_distributions.png", "generated (line) and reference (filled) molecules")
    if any_valid:
        rep.section("Samples").figure("samples.png", "the first valid samples")
    rep.write(path)
