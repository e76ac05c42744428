"""The main job on shipped defaults: ``pmt demo`` / ``pmtoolkit.demo.run``.

It writes a report folder a person opens in a browser (``report.html``), with the machine-readable
``summary.json`` and the resolved ``config.json`` beside it. Each domain adds its step to
:data:`STEPS` as it lands; a step reads the shipped data, does its work, and adds a section to the
report and an entry to the summary.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmtoolkit.core import shipped
from pmtoolkit.core.config import write_resolved
from pmtoolkit.core.errors import MissingInputError
from pmtoolkit.core.io import Rejects, atomic_dir, atomic_write, iter_table, read_table
from pmtoolkit.core.report import Report

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    dataset: str = field(default="esol", metadata={
        "help": "a shipped dataset name, or a CSV/TSV/Parquet table of molecules"})
    smiles_column: str = field(default="smiles", metadata={"help": "column of SMILES strings"})
    target_column: str = field(default="measured log solubility in mols per litre",
                               metadata={"help": "column of the measured property"})


def resolve_dataset(config: DemoConfig) -> Path:
    """The demo's input table: a file the user named, or a shipped dataset by name."""
    names = [e.name for e in shipped.manifest("dataset")]
    if Path(config.dataset).exists():
        return Path(config.dataset)
    if config.dataset in names:
        return shipped.path(config.dataset, "dataset")
    raise MissingInputError(f"dataset {config.dataset!r} is neither an existing file nor a "
                            "shipped dataset", hint=f"shipped: {', '.join(names)}")


@dataclass
class DemoContext:
    config: DemoConfig
    outdir: Path
    report: Report
    dataset: Path
    final_outdir: Path
    summary: dict[str, Any] = field(default_factory=dict)

    def figure_path(self, name: str) -> Path:
        (self.outdir / "figures").mkdir(exist_ok=True)
        return self.outdir / "figures" / name


def _environment(ctx: DemoContext) -> None:
    import pandas as pd

    from pmtoolkit.core.environment import device_summary, versions

    vers = versions()
    dev = device_summary()
    ctx.summary["environment"] = {"versions": vers, "device": dev}
    sec = ctx.report.section("Environment")
    sec.text(f"Compute device: {dev['auto_device']} ({dev['cpu_threads']} CPU threads"
             + (f"; GPUs: {', '.join(dev['gpus'])}" if dev["gpus"] else "") + ").")
    sec.table(pd.DataFrame({"package": list(vers), "version": [v or "not installed"
                                                               for v in vers.values()]}))


def _shipped(ctx: DemoContext) -> None:
    import pandas as pd

    rows = []
    for e in shipped.manifest():
        try:
            shipped.verify(e)
            status = "sha256 ok"
        except Exception as exc:  # reported in the table, not fatal for the demo
            status = f"FAILED: {exc}"
        rows.append({"name": e.name, "kind": e.kind, "size (kB)": round(e.bytes / 1024, 1),
                     "check": status, "licence": e.licence, "source": e.source})
    ctx.summary["shipped"] = rows
    sec = ctx.report.section("Shipped datasets and models")
    sec.text("Everything below ships inside the package and works offline; each file is "
             "checked against the sha256 in data/MANIFEST before use.")
    sec.table(pd.DataFrame(rows))


def _molecules(ctx: DemoContext) -> None:
    import numpy as np
    import pandas as pd

    from pmtoolkit.core.plots import figure

    cfg = ctx.config
    path = ctx.dataset
    table = read_table(path, columns=[cfg.smiles_column, cfg.target_column])
    smiles = table[cfg.smiles_column].astype("string").str.strip()
    target = pd.to_numeric(table[cfg.target_column], errors="coerce")
    rejects = Rejects(source=str(path), item_name=cfg.smiles_column)
    ok = np.ones(len(table), dtype=bool)
    for i, (line, smi, raw, val) in enumerate(zip(table.index, smiles, table[cfg.target_column],
                                                  target)):
        if pd.isna(smi) or smi == "":
            rejects.add(raw, line, "empty SMILES")
            ok[i] = False
        elif pd.isna(val):
            rejects.add(smi, line, f"no numeric value in {cfg.target_column!r}")
            ok[i] = False
    rejects.apply("skip", ctx.outdir, final=ctx.final_outdir)
    values = target[ok].to_numpy(dtype=float)
    stats = {"molecules": int(ok.sum()), "rejected": len(rejects),
             "mean": float(values.mean()), "sd": float(values.std(ddof=1)),
             "min": float(values.min()), "max": float(values.max())}
    ctx.summary["molecules"] = {"dataset": str(path), "target": cfg.target_column, **stats}
    with figure(ctx.figure_path("target_histogram.png")) as (_, ax):
        ax.hist(values, bins=30, color="#3867d6", edgecolor="white")
        ax.set_xlabel(cfg.target_column)
        ax.set_ylabel("molecules")
        ax.set_title(f"{Path(path).name}: {stats['molecules']} molecules")
    sec = ctx.report.section("Example molecules")
    sec.text(f"{stats['molecules']} molecules read from {Path(path).name} "
             f"({stats['rejected']} rejected, listed in rejected.csv when any).")
    sec.table(pd.DataFrame([{k: v for k, v in stats.items()}]))
    sec.figure("figures/target_histogram.png", f"Distribution of {cfg.target_column}")
    sec.table(pd.DataFrame({"smiles": smiles[ok].head(10).to_list(),
                            cfg.target_column: values[:10]}), max_rows=10)


def _profiles(ctx: DemoContext) -> None:
    """Approved drugs through the shipped property models and the medicinal-chemistry filters."""
    import pandas as pd
    from rdkit.Chem import Draw

    from pmtoolkit.chem.filters import filter_table
    from pmtoolkit.chem.molecules import read_molecules
    from pmtoolkit.property.run import load_property_model

    table = read_molecules(shipped.path("drugs", "dataset"))
    mols = [m.mol for m in table.valid]
    smiles = [m.smiles for m in table.valid]
    profile = pd.DataFrame({"name": [m.id for m in table.valid], "smiles": smiles})
    for name, column, label in (("solubility", "logS", "logS (mol/L)"),
                                ("lipophilicity", "logD", "logD7.4"),
                                ("bbbp", "bbb_penetration", "P(BBB+)")):
        pred = load_property_model(name).predict(smiles).frame
        profile[label] = pred[f"{column}_pred"].to_numpy()
        if f"{column}_uncertainty" in pred:
            profile[f"{label} ±"] = pred[f"{column}_uncertainty"].to_numpy()
    tox = load_property_model("tox21").predict(smiles).frame
    tox_cols = [c for c in tox.columns if c.endswith("_pred")]
    profile["Tox21 assays P>0.5"] = (tox[tox_cols] > 0.5).sum(axis=1).to_numpy()
    flags = filter_table(mols)
    profile["QED"] = flags["qed"].to_numpy()
    profile["SA score"] = flags["sa_score"].to_numpy()
    profile["Lipinski"] = flags["lipinski_pass"].map({True: "pass", False: "fail"}).to_numpy()
    profile["alerts"] = flags["alerts"].to_numpy()
    profile.to_csv(ctx.outdir / "molecule_profiles.csv", index=False)
    image = Draw.MolsToGridImage(mols, molsPerRow=4, subImgSize=(240, 190),
                                 legends=list(profile["name"]))
    with atomic_write(ctx.figure_path("drugs.png"), "wb") as fh:
        image.save(fh, format="PNG")
    ctx.summary["profiles"] = profile.to_dict(orient="records")
    sec = ctx.report.section("Molecule profiles")
    sec.text("Twelve approved drugs through the shipped models (ensembles: ± is the spread of "
             "their members) and the usual medicinal-chemistry filters. Also in "
             "molecule_profiles.csv.")
    sec.figure("figures/drugs.png", "The molecules")
    sec.table(profile.drop(columns=["smiles"]), floatfmt="{:.2f}")


def _design(ctx: DemoContext) -> None:
    """Molecules from the shipped prior, then a short goal-directed run towards celecoxib-like,
    drug-like molecules."""
    import pandas as pd

    from pmtoolkit.design.metrics import generation_metrics
    from pmtoolkit.design.optimize import load_run_file
    from pmtoolkit.design.run import load_generator, optimize_file

    prior = load_generator("prior")
    samples = prior.sample(1000, seed=0)
    metrics = generation_metrics(samples.smiles, ks=(1000,))
    run = load_run_file(shipped.path("optimize_celecoxib", "config"),
                        {"steps": 20, "batch_size": 64, "lr": 2e-3})  # short and brisk
    result = optimize_file(run, ctx.outdir / "design", run_file="optimize_celecoxib")
    ctx.summary["design"] = {"samples": {k: round(v, 4) for k, v in metrics.items()},
                             "optimize": result}
    sec = ctx.report.section("De novo design")
    sec.text(f"1000 SMILES sampled from the shipped prior: {metrics['valid']:.1%} valid, "
             f"{metrics['unique@1000']:.1%} unique, internal diversity "
             f"{metrics['IntDiv1']:.3f}. Then {result['steps']} steps of REINVENT-style "
             "optimisation towards celecoxib similarity, QED and SA score (the shipped "
             "optimize_celecoxib.toml, 64 molecules a step, learning rate 2e-3): the mean "
             "score of the sampled batches went from "
             f"{result['first_mean_score']:.3f} to {result['last_mean_score']:.3f}. The run "
             "folder is design/ (report.html, scores.csv, top.csv).")
    sec.figure("design/score_history.png", "mean score of each batch")
    if (ctx.outdir / "design" / "top_molecules.png").exists():
        sec.figure("design/top_molecules.png", "best molecules so far, with their scores")
    top = pd.read_csv(ctx.outdir / "design" / "top.csv").head(10)
    sec.table(top, max_rows=10)


def _targets(ctx: DemoContext) -> None:
    """The example drugs against two kinases with the shipped DAVIS affinity model."""
    import pandas as pd

    from pmtoolkit.dti.run import load_dti_model, screen_file

    out = ctx.outdir / "kinase_hits.csv"
    stats = screen_file(shipped.path("kinases", "dataset"), shipped.path("drugs", "dataset"),
                        out, model=load_dti_model("davis"), top=5, id_column="name")
    hits = pd.read_csv(out)
    first = hits[hits["rank"] == 1].set_index("target")
    best = first["id"].to_dict()
    said = "; ".join(f"{t}: {r['id']} (pKd {r['prediction']:.1f})" for t, r in first.iterrows())
    ctx.summary["targets"] = {"best": best, "molecules_per_second":
                              stats["molecules_per_second"]}
    sec = ctx.report.section("Drug–target affinity")
    sec.text("The twelve drugs screened against two kinases (ABL1, the target of imatinib, and "
             "EGFR) with the shipped DAVIS model (predicted pKd; DAVIS reports no binding as "
             f"pKd 5, i.e. Kd ≥ 10 µM). Best per target: {said}. The model learnt kinase "
             "inhibitors: predictions for molecules unlike DAVIS' 68 drugs are rough, and "
             "the k-mer protein encoder does not see point mutations. Also in "
             "kinase_hits.csv.")
    sec.table(hits.drop(columns=["line", "smiles"], errors="ignore"), floatfmt="{:.2f}")


def _variants(ctx: DemoContext) -> None:
    """TERT-promoter variants scored with the shipped MPRA model, and its mutagenesis map."""
    import pandas as pd

    from pmtoolkit.genomics.reference import Reference
    from pmtoolkit.genomics.run import ism_file, load_sequence_model
    from pmtoolkit.genomics.score import score_vcf

    fasta, vcf = shipped.path("tert_promoter", "dataset"), shipped.path("tert_variants",
                                                                         "dataset")
    model = load_sequence_model("mpra")
    out = ctx.outdir / "tert_variants.tsv"
    with Reference(fasta) as ref:
        score_vcf(vcf, ref, model, out)
    scored = pd.read_csv(out, sep="\t")
    import pysam

    with pysam.VariantFile(str(vcf)) as records:
        measured = {rec.id: rec.info["EFFECT"] for rec in records}
    scored["measured_log2_effect"] = scored["id"].map(measured)
    ism = ism_file("mpra", ctx.outdir / "tert_ism", fasta=fasta, region="TERT_promoter:1-259")
    order = scored.sort_values("activity_diff", ascending=False)["id"].tolist()
    from pmtoolkit.core.metrics import spearman

    rho = spearman(scored["measured_log2_effect"].to_numpy(), scored["activity_diff"].to_numpy())
    ctx.summary["variants"] = {"ranked": order, "spearman_with_measured": rho,
                               "ism_positions": ism["positions"]}
    sec = ctx.report.section("Regulatory variants")
    sec.text("Eight variants of the TERT promoter (the 259-base element of Kircher et al. 2019) "
             "scored with the shipped mpra model (one weight per JASPAR motif, fitted to the "
             "assay's effects): the two recurrent cancer mutations C228T and C250T, which "
             "create ETS binding sites and switch TERT on in tumours, the three variants the "
             "assay found most damaging and three neutral ones. activity_diff is the "
             f"predicted log2 change; Spearman with the measured effect: {rho:.2f}. The model "
             "saw this element in training; on elements held out from fitting its mean "
             "Spearman is 0.16 (docs/benchmarks/variants.md). Also in tert_variants.tsv; "
             "every substitution of the element is in tert_ism/ism.tsv.")
    sec.table(scored.drop(columns=["chrom"]), floatfmt="{:.3f}")
    sec.figure("tert_ism/ism.png", "predicted effect of every substitution of the element")


#: The demo's steps in order: (name, function). Each domain appends its own as it lands.
STEPS: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("environment", _environment),
    ("shipped", _shipped),
    ("molecules", _molecules),
    ("profiles", _profiles),
    ("targets", _targets),
    ("variants", _variants),
    ("design", _design),
]


@dataclass
class DemoResult:
    outdir: Path
    report: Path
    summary: dict[str, Any]


def run(outdir: str | os.PathLike = "pmt-demo", config: DemoConfig | None = None, *,
        overwrite: bool = False) -> DemoResult:
    """Run every demo step and write the report folder atomically."""
    from pmtoolkit.core.progress import progress

    config = config or DemoConfig()
    dataset = resolve_dataset(config)  # check the input before any work is done
    next(iter_table(dataset, columns=[config.smiles_column, config.target_column], chunksize=1),
         None)
    final = Path(outdir)
    with atomic_dir(final, overwrite=overwrite) as tmp:
        ctx = DemoContext(config=config, outdir=tmp, dataset=dataset, final_outdir=final,
                          report=Report("pmtoolkit demo",
                                        "What pmtoolkit does on its shipped defaults."))
        for name, step in progress(STEPS, desc="demo", unit="step"):
            log.info("demo step: %s", name)
            step(ctx)
        ctx.report.write(tmp / "report.html")
        with atomic_write(tmp / "summary.json") as fh:
            json.dump(ctx.summary, fh, indent=2, default=str)
            fh.write("\n")
        write_resolved(tmp / "config.json", demo=config)
        summary = ctx.summary
    return DemoResult(final, final / "report.html", summary)
