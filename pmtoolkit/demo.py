"""The main job on shipped defaults: ``pmt demo`` / ``pmtoolkit.demo.run``.

It writes a report folder a person opens in a browser (``report.html``), with the machine-readable
``summary.json`` and the resolved ``config.json`` beside it. Each domain adds its step to
:data:`STEPS` as it lands; a step reads the shipped data, does its work, and adds a section to the
report and an entry to the summary.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmtoolkit.core import shipped
from pmtoolkit.core.config import write_resolved
from pmtoolkit.core.errors import MissingInputError
from pmtoolkit.core.io import Rejects, atomic_dir, iter_table, read_table, write_json
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
    #: (title, link, picture, one line) of each domain, for index.html
    cards: list[tuple[str, str, str, str]] = field(default_factory=list)
    pipeline_plans: dict[str, Any] = field(default_factory=dict)

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
    """Provenance: every shipped file with its size, check, licence and source (last in the
    report: it is long, and reference rather than result)."""
    import pandas as pd

    from pmtoolkit.core.errors import MissingResourceError
    from pmtoolkit.core.report import human_size

    rows = []
    for e in shipped.manifest():
        try:
            shipped.verify(e)
            status = "sha256 ok"
        except MissingResourceError as exc:  # reported in the table, not fatal for the demo
            status = f"FAILED: {exc}"
        rows.append({"name": e.name, "kind": e.kind, "bytes": e.bytes, "check": status,
                     "licence": e.licence, "source": e.source})
    ctx.summary["shipped"] = rows
    sec = ctx.report.section("Shipped datasets and models")
    sec.text("Everything used above ships inside the package and works offline; each file is "
             "checked against the sha256 in data/MANIFEST before use.")
    table = pd.DataFrame(rows)
    table.insert(2, "size", [human_size(b) for b in table.pop("bytes")])
    sec.table(table)


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

    from pmtoolkit.chem.draw import molecule_grid
    from pmtoolkit.chem.filters import filter_table
    from pmtoolkit.chem.molecules import read_molecules
    from pmtoolkit.property.run import load

    table = read_molecules(shipped.path("drugs", "dataset"))
    mols = [m.mol for m in table.valid]
    smiles = [m.smiles for m in table.valid]
    profile = pd.DataFrame({"name": [m.id for m in table.valid], "smiles": smiles})
    for name, column, label in (("solubility", "logS", "logS (mol/L)"),
                                ("lipophilicity", "logD", "logD7.4"),
                                ("bbbp", "bbb_penetration", "P(BBB+)")):
        pred = load(name).predict(smiles).frame
        profile[label] = pred[f"{column}_pred"].to_numpy()
        if f"{column}_uncertainty" in pred:
            profile[f"{label} ±"] = pred[f"{column}_uncertainty"].to_numpy()
    tox = load("tox21").predict(smiles).frame
    tox_cols = [c for c in tox.columns if c.endswith("_pred")]
    profile["Tox21 assays P>0.5"] = (tox[tox_cols] > 0.5).sum(axis=1).to_numpy()
    flags = filter_table(mols)
    profile["QED"] = flags["qed"].to_numpy()
    profile["SA score"] = flags["sa_score"].to_numpy()
    profile["Lipinski"] = flags["lipinski_pass"].map({True: "pass", False: "fail"}).to_numpy()
    profile["alerts"] = flags["alerts"].to_numpy()
    profile.to_csv(ctx.outdir / "molecule_profiles.csv", index=False)
    molecule_grid(mols, ctx.figure_path("drugs.png"), legends=list(profile["name"]))
    ctx.summary["profiles"] = profile.to_dict(orient="records")
    sec = ctx.report.section("Molecule profiles")
    sec.text(f"{len(profile)} approved drugs through the shipped models (ensembles: ± is the "
             "spread of their members) and the usual medicinal-chemistry filters. Also in "
             "molecule_profiles.csv.")
    sec.figure("figures/drugs.png", "The molecules")
    sec.table(profile.drop(columns=["smiles"]), floatfmt="{:.2f}")
    n_pass = int((profile["Lipinski"] == "pass").sum())
    _card(ctx, "Molecule profiles", "report.html#molecule-profiles", "figures/drugs.png",
          f"{len(profile)} approved drugs through the shipped solubility, lipophilicity, BBB "
          f"and Tox21 models; {n_pass} pass Lipinski")


def _design(ctx: DemoContext) -> None:
    """Molecules from the shipped prior, then a short goal-directed run towards celecoxib-like,
    drug-like molecules."""
    import pandas as pd

    from pmtoolkit.design.metrics import generation_metrics
    from pmtoolkit.design.optimize import load_run_file
    from pmtoolkit.design.run import load, optimize_file

    prior = load("prior")
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
    picture = "design/top_molecules.png" if (ctx.outdir / "design" / "top_molecules.png").exists() \
        else "design/score_history.png"
    _card(ctx, "De novo design", "report.html#de-novo-design", picture,
          f"{metrics['valid']:.0%} valid SMILES from the shipped prior; "
          f"{result['steps']} optimisation steps towards celecoxib-like, drug-like "
          f"molecules: mean score {result['first_mean_score']:.2f} → "
          f"{result['last_mean_score']:.2f}")


#: The affinity screen's positive controls: approved inhibitors of each kinase, in drugs.smi
CONTROLS = {"ABL1": ("imatinib",), "EGFR": ("erlotinib", "gefitinib")}


def control_ranks(hits, controls: dict[str, tuple[str, ...]]) -> dict[str, dict[str, int]]:
    """Where each positive control ranks for its target in a screen's table (target, rank,
    id), best first. A control missing from the table is a bug of the shipped data."""
    ranks = {}
    for target, names in controls.items():
        mine = hits[hits["target"] == target].set_index("id")["rank"]
        missing = [n for n in names if n not in mine.index]
        if missing:
            raise RuntimeError(f"positive control {missing[0]} was not ranked for {target}")
        ranks[target] = dict(sorted(((n, int(mine[n])) for n in names), key=lambda x: x[1]))
    return ranks


def controls_sentence(ranks: dict[str, dict[str, int]], n: int) -> str:
    """Where the controls rank, and plainly whether they come first: 'imatinib ranks 1 of 14
    for ABL1; gefitinib and erlotinib rank 1 and 2 of 14 for EGFR: each kinase's inhibitors
    rank above every other drug'."""
    parts, misses = [], []
    for target, got in ranks.items():
        verb = "ranks" if len(got) == 1 else "rank"
        parts.append(f"{' and '.join(got)} {verb} {' and '.join(map(str, got.values()))} "
                     f"of {n} for {target}")
        worst, last = max(got.items(), key=lambda x: x[1])
        if last > len(got):
            misses.append(f"for {target}, {last - len(got)} other drug(s) rank above {worst}")
    verdict = ("each kinase's inhibitors rank above every other drug" if not misses else
               "the model does NOT rank every control first: " + "; ".join(misses))
    return "; ".join(parts) + ": " + verdict


def _targets(ctx: DemoContext) -> None:
    """The example drugs against two kinases with the shipped DAVIS affinity model, with
    approved inhibitors of each kinase among them as positive controls."""
    import pandas as pd

    from pmtoolkit.core.plots import figure
    from pmtoolkit.dti.run import load, screen_file

    out = ctx.outdir / "kinase_hits.csv"
    model = load("davis")
    stats = screen_file(model, shipped.path("kinases", "dataset"),
                        shipped.path("drugs", "dataset"), out, top=1000,
                        id_column="name")  # every drug ranked
    n = stats["molecules"]
    hits = pd.read_csv(out)
    ranks = control_ranks(hits, CONTROLS)
    best = hits[hits["rank"] == 1].set_index("target")["id"].to_dict()
    controls_of = {d: t for t, names in CONTROLS.items() for d in names}
    others = hits[~hits["id"].isin(controls_of)].sort_values("rank").groupby("target").head(1)
    rest = "; ".join(f"{r.target}: {r.id}, pKd {r.prediction:.1f}"
                     for r in others.itertuples())
    said = controls_sentence(ranks, n)
    test = model.metadata.get("metrics", {}).get("test", {})
    pkd = hits.set_index(["target", "id"])["prediction"]
    ctx.summary["targets"] = {"best": best, "controls": ranks, "drugs": n,
                              "control_pKd": {t: {d: float(pkd[t, d]) for d in got}
                                              for t, got in ranks.items()},
                              "best_other": {r.target: {"id": r.id, "pKd": r.prediction}
                                             for r in others.itertuples()},
                              "molecules_per_second": stats["molecules_per_second"]}
    sec = ctx.report.section("Drug–target affinity")
    sec.text(f"The {n} drugs screened against two kinases, ABL1 and EGFR, with the shipped "
             "DAVIS model (predicted pKd; DAVIS reports no binding as pKd 5, i.e. Kd ≥ 10 µM). "
             "Positive controls: the approved ABL1 inhibitor imatinib and the EGFR inhibitors "
             f"erlotinib and gefitinib. Where they rank: {said}. Best of the other drugs: "
             f"{rest}. These three drugs are among DAVIS' 68 and the model was trained on "
             "their measured pairs with these kinases, so this checks that it kept what it "
             "learnt, not that it finds new inhibitors (on held-out DAVIS pairs: concordance "
             f"index {test.get('ci', float('nan')):.2f}). Predictions for molecules unlike "
             "DAVIS' kinase inhibitors are rough, and the k-mer protein encoder does not see "
             "point mutations. All ranks are in kinase_hits.csv.")
    wide = hits.pivot_table(index="id", columns="target", values=["prediction", "rank"])
    table = pd.DataFrame({"drug": wide.index,
                          "control for": [controls_of.get(d, "") for d in wide.index]})
    for target in wide["prediction"].columns:
        table[f"{target} pKd"] = wide["prediction"][target].to_numpy()
        table[f"{target} rank"] = wide["rank"][target].astype(int).to_numpy()
    strongest = table[[f"{t} pKd" for t in wide["prediction"].columns]].max(axis=1)
    table = table.iloc[(-strongest).argsort(kind="stable")]
    sec.table(table, floatfmt="{:.2f}")
    order = table.iloc[::-1].reset_index(drop=True)  # strongest at the top of the chart
    with figure(ctx.figure_path("affinity.png"), size=(5.4, 0.28 * n + 1.2)) as (_, ax):
        for k, target in enumerate(CONTROLS):
            ax.barh([y + 0.4 * k for y in range(n)], order[f"{target} pKd"], height=0.4,
                    label=target)
        ax.set_yticks([y + 0.2 for y in range(n)],
                      [f"{d} ({controls_of[d]} control)" if d in controls_of else d
                       for d in order["drug"]], fontsize=8)
        ax.axvline(5.0, color="#888", ls="--", lw=1)
        ax.set_xlabel("predicted pKd (5 = no binding)")
        ax.set_xlim(left=4.5)
        ax.legend(fontsize=8, loc="lower right")
    sec.figure("figures/affinity.png", f"predicted pKd of the {n} drugs for each kinase")
    _card(ctx, "Drug–target affinity", "report.html#drug-target-affinity",
          "figures/affinity.png",
          f"{n} drugs against ABL1 and EGFR with the shipped DAVIS model. Positive controls: "
          f"{said} (pairs the model saw in training).")


def _pipelines(ctx: DemoContext) -> None:
    """The shipped pipelines (pmt pipeline run -c NAME), each into pipelines/NAME/."""
    from pmtoolkit import pipeline as pl

    ctx.summary["pipelines"] = {}
    for name in PIPELINES:
        plan = pl.load(name)
        result = pl.run(plan, ctx.outdir / "pipelines" / name)
        ctx.summary["pipelines"][name] = {s.name: {"status": s.status, "seconds": s.seconds,
                                                   "summary": s.summary}
                                          for s in result.steps}
        ctx.pipeline_plans[name] = plan


def _screening(ctx: DemoContext) -> None:
    import html

    import pandas as pd
    from rdkit import Chem

    from pmtoolkit.chem.draw import molecule_grid

    steps = ctx.summary["pipelines"]["virtual-screening"]
    folder = "pipelines/virtual-screening"
    ranked = pd.read_csv(ctx.outdir / folder / "rank" / "ranked.csv")
    s = {k: v["summary"] for k, v in steps.items()}
    by = next(st.params.by for st in ctx.pipeline_plans["virtual-screening"].steps
              if st.name == "rank")
    target = by.removeprefix("affinity_")
    n = s["rank"]["written"]  # the one number the text, the picture and the table show
    molecule_grid([Chem.MolFromSmiles(x) for x in ranked["smiles"].head(n)],
                  ctx.figure_path("screening_top.png"), per_row=5, size=(200, 170),
                  legends=[f"rank {r}, pKd {v:.1f}" for r, v in
                           zip(ranked["rank"].head(n), ranked[by].head(n))])
    # for scale, the positive controls of the affinity step (when it ran)
    known = ctx.summary.get("targets", {}).get("control_pKd", {}).get(target, {})
    said = " and ".join(f"{d} {v:.1f}" for d, v in known.items())
    scale = f" For scale, the approved {target} inhibitors score {said}." if known else ""
    sec = ctx.report.section("Virtual screening pipeline")
    sec.text(f"pmt pipeline run -c virtual-screening: {s['sample']['sampled']} molecules sampled "
             f"from the shipped SMILES prior ({s['sample']['validity']:.0%} valid), "
             f"{s['standardize']['molecules']} after standardising, {s['filter']['kept']} "
             "passing Lipinski, Veber, PAINS/Brenk alerts and QED >= 0.5, profiled for "
             "solubility and blood-brain-barrier penetration, and ranked by predicted affinity "
             f"for {target} (pKd, DAVIS model) among the {s['rank']['meeting_conditions']} "
             f"with logS > -5. The best {n} below, drawn and tabled.{scale} Every step's "
             f"output is in {folder}/ (open its index.html).")
    sec.figure("figures/screening_top.png", f"the best {n} molecules: rank and predicted pKd")
    cols = {"rank": "rank", by: f"pKd {target}", "smiles": "smiles", "logS_pred": "logS",
            "bbb_penetration_pred": "P(BBB+)", "qed": "QED", "sa_score": "SA score"}
    shown = ranked[[c for c in cols if c in ranked]].head(n).rename(columns=cols)
    sec.table(shown, max_rows=n, floatfmt="{:.2f}")
    sec.html(f'<p class="meta">{len(shown.columns)} of the table\'s {len(ranked.columns)} '
             f'columns; all of them in <a href="{html.escape(folder)}/rank/ranked.csv">'
             f"{html.escape(folder)}/rank/ranked.csv</a>.</p>")
    _card(ctx, "Virtual screening", "report.html#virtual-screening-pipeline",
          "figures/screening_top.png",
          f"{s['sample']['sampled']} generated molecules → {s['filter']['kept']} "
          f"drug-like → top {n} for {target} (best predicted pKd {ranked[by].max():.1f}"
          + (f"; approved inhibitors {said}" if known else "") + ")")


#: The shipped mpra recipe scored on elements it was not fitted to (leave one locus out,
#: docs/benchmarks/variants.json, scorer jaspar-fitted-rank): the mean over the 21 elements,
#: and all 972 measured variants of the demo's element (TERT-GBM) with the TERT locus held out.
MPRA_HELD_OUT = {"mean": 0.187, "TERT-GBM": 0.371}


def _variant_pipeline(ctx: DemoContext) -> None:
    """TERT-promoter variants through the shipped variant-prioritisation pipeline."""
    import pandas as pd
    import pysam

    from pmtoolkit.core.metrics import spearman

    folder = "pipelines/variant-prioritisation"
    scored = pd.read_csv(ctx.outdir / folder / "prioritise" / "prioritised.tsv", sep="\t")
    key = ctx.summary["pipelines"]["variant-prioritisation"]["prioritise"]["summary"]["score"]
    with pysam.VariantFile(str(ctx.outdir / folder / "score" / "scored.vcf")) as vf:
        rows = [(r.id, r.info["EFFECT"], r.info[key][0]) for r in vf]
    ids, measured, predicted = zip(*rows)
    rho = spearman(pd.Series(measured).to_numpy(), pd.Series(predicted).to_numpy())
    order = [i for _, i in sorted(zip(predicted, ids), reverse=True)]
    ctx.summary["variants"] = {"ranked": order, "spearman_with_measured": rho,
                               "prioritised": scored["id"].tolist()}
    sec = ctx.report.section("Regulatory variants (variant-prioritisation pipeline)")
    sec.text("pmt pipeline run -c variant-prioritisation: eight variants of the TERT promoter "
             "(the 259-base element of Kircher et al. 2019) scored with the shipped mpra model "
             "(one weight per JASPAR motif, fitted to the assay's effects): the two recurrent "
             "cancer mutations C228T and C250T, which create ETS binding sites and switch TERT "
             "on in tumours, the three variants the assay found most damaging and three "
             f"neutral ones. {len(scored)} have a predicted |log2 change| >= 0.05 and are kept "
             f"in an annotated VCF (ranked by size). Spearman with the measured effect: "
             f"{rho:.2f}, in-sample: the model was fitted on this element (all its measured "
             f"variants, these {len(ids)} included), and they were chosen for the largest and "
             "smallest measured effects, which flatters a rank correlation. "
             "Held out, with the TERT locus left out of the fit, the same recipe reaches "
             f"Spearman {MPRA_HELD_OUT['TERT-GBM']:.2f} over all 972 variants of this element "
             f"and {MPRA_HELD_OUT['mean']:.2f} on average over 21 elements "
             "(docs/benchmarks/variants.md): expect that on new sequence.")
    sec.table(scored.drop(columns=["chrom"]), floatfmt="{:.3f}")
    sec.figure(f"{folder}/ism/ism/ism.png",
               "predicted effect of every substitution of the element")
    from pmtoolkit.core.plots import figure

    with figure(ctx.figure_path("tert_variants.png"), size=(5.0, 3.6)) as (_, ax):
        ax.axhline(0, color="#888", lw=0.8)
        ax.axvline(0, color="#888", lw=0.8)
        ax.scatter(measured, predicted, color="#3867d6")
        for i, x, y in zip(ids, measured, predicted):
            ax.annotate(i.split("_")[0] if "_" in i else i, (x, y), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("measured log2 effect (MPRA)")
        ax.set_ylabel("predicted change (mpra model)")
        ax.set_title(f"TERT promoter variants: Spearman {rho:.2f} in-sample\n"
                     f"(model fitted on this element; {MPRA_HELD_OUT['TERT-GBM']:.2f} with it held out)",
                     fontsize=9)
    sec.figure("figures/tert_variants.png", "predicted against measured effects (in-sample)")
    _card(ctx, "Variant prioritisation",
          "report.html#regulatory-variants-variant-prioritisation-pipeline",
          "figures/tert_variants.png",
          f"VCF → scores → {len(scored)} of {len(ids)} TERT-promoter variants kept; Spearman with "
          f"the measured effects {rho:.2f} in-sample (the model was fitted on this element); "
          f"with the element held out {MPRA_HELD_OUT['TERT-GBM']:.2f} over its 972 "
          f"variants, {MPRA_HELD_OUT['mean']:.2f} averaged over 21 elements")


def _single_cell(ctx: DemoContext) -> None:
    import json

    import anndata as ad
    import pandas as pd

    from pmtoolkit.expression.annotate import read_marker_lists

    folder = "pipelines/single-cell"
    s = {k: v["summary"] for k, v in ctx.summary["pipelines"]["single-cell"].items()}
    params = {st.name: st.params for st in ctx.pipeline_plans["single-cell"].steps}
    label_key = params["annotate"].label_key
    a = ad.read_h5ad(ctx.outdir / folder / "annotate" / "annotated.h5ad", backed="r")
    obs, genes = a.obs.copy(), set(map(str, a.var_names))
    used = {k: list(v) for k, v in a.uns["cell_type"]["markers"].items()}
    steps = a.uns["pmt_run"]["steps"]
    record = json.loads(steps[steps["step"] == "annotate"]["params"].iloc[0])
    a.file.close()
    lists = read_marker_lists(record["markers"])
    missing = sorted({g for genes_ in lists.values() for g in genes_ if g not in genes})
    dropped = [k for k in lists if k not in used]
    prefix = params["qc"].mito_prefix
    mito = sorted(g for g in genes if g.upper().startswith(prefix.upper()))
    # each cluster: its name, the markers that named it, and what the sorted cells say
    rows = []
    for cluster, cells in obs.groupby("leiden", observed=True):
        name = str(cells["cell_type"].iloc[0])
        row = {"cluster": str(cluster), "cells": len(cells), "named": name,
               "scored on (markers present)": ", ".join(used.get(name, [])) or "—"}
        if label_key:
            share = cells[label_key].astype(str).value_counts(normalize=True)
            row[f"most common {label_key}"] = share.index[0]
            row["its share"] = f"{share.iloc[0]:.0%}"
        rows.append(row)
    table = pd.DataFrame(rows)
    ctx.summary["single_cell"] = {"clusters": rows, "markers_absent": missing,
                                  "lists_left_out": dropped, "mito_genes": mito,
                                  "max_pct_mito": float(obs["pct_counts_mito"].max())}
    sec = ctx.report.section("Single-cell analysis pipeline")
    sec.text(f"pmt pipeline run -c single-cell: {s['qc']['cells_in']} PBMCs (raw counts, "
             f"{s['qc']['genes_in']} genes) → {s['qc']['cells']} after QC → "
             f"{s['cluster']['clusters']} Leiden clusters (ARI with the FACS-sorted labels "
             f"{s['cluster']['leiden_ari']:.2f}) → marker genes → cell types named from "
             f"canonical marker lists (ARI {s['annotate']['cell_type_ari']:.2f}).")
    sec.figure(f"{folder}/annotate/umap_cell_type.png", "UMAP by marker-list annotation")
    sec.text("How the clusters are named: each cell gets a score per marker list (scanpy's "
             "score_genes: mean expression of the list's genes minus that of random genes of "
             "similar expression) and each cluster takes the list with the highest mean "
             "score, or 'unassigned' when none is above 0. Only genes present in the data "
             "count: "
             + (f"this example has {len(genes)} genes and lacks {', '.join(missing)}"
                + (f" (so {', '.join(repr(d) for d in dropped)} cannot be named at all)"
                   if dropped else "")
                + ", and a list left with one gene can outscore a fuller one. "
                if missing else "every marker is present here. ")
             + "A name is a hypothesis to check against the marker genes and, where known, "
             "the sorted labels below; the share is the fraction of the cluster's cells "
             "carrying its most common sorted label.")
    sec.table(table)
    cutoff, top_mito = params["qc"].max_pct_mito, float(obs["pct_counts_mito"].max())
    if cutoff is not None and top_mito < cutoff / 10:
        sec.text(f"The QC's % mitochondrial panel is flat: this example keeps {len(mito)} "
                 f"gene(s) starting with {prefix} ({', '.join(mito) or 'none'}; a full 10x "
                 "gene list has 13), so no cell kept is more than "
                 f"{top_mito:.1f}% mitochondrial, far below the {cutoff:g}% cut-off. On a "
                 "full gene matrix that cut-off removes dying cells; here it cannot.")
    sec.figure(f"{folder}/qc/qc_violins.png", "QC metrics before filtering")
    _card(ctx, "Single-cell analysis", "report.html#single-cell-analysis-pipeline",
          f"{folder}/annotate/umap_cell_type.png",
          f"{s['qc']['cells']} PBMCs → {s['cluster']['clusters']} clusters → "
          f"{s['annotate']['cell_types']} cell types (ARI "
          f"{s['annotate']['cell_type_ari']:.2f} with sorted labels); names come from "
          "marker lists"
          + (f" and this example lacks {', '.join(missing)}: check them against the "
             "sorted labels in the table" if missing else ""))


def _imaging(ctx: DemoContext) -> None:
    """The shipped chest X-ray classifier with Grad-CAM, and the brain-tissue U-Net."""
    import pandas as pd

    from pmtoolkit.imaging import run as img

    xrays = pd.read_csv(shipped.path("pneumonia_xrays", "dataset"))
    base = shipped.path("pneumonia_xrays", "dataset").parent
    paths = [str(base / p) for p in xrays["path"]]
    out = ctx.outdir / "imaging"
    out.mkdir()
    clf = img.load("pneumonia")
    img.predict_file(clf, paths, out / "xray_predictions.csv")
    img.explain(clf, paths, out / "gradcam")
    seg = img.load("mni-tissue")
    img.segment(seg, [str(shipped.path("mni_t1", "dataset"))], out / "segmentation")
    pred = pd.read_csv(out / "xray_predictions.csv")
    pred.insert(1, "true label", xrays["label"].to_numpy())
    pred["path"] = [Path(p).name for p in pred["path"]]
    volumes = pd.read_csv(out / "segmentation" / "volumes.csv")
    right = int((pred["label"] == pred["true label"]).sum())
    ctx.summary["imaging"] = {"xrays": pred.to_dict(orient="records"),
                              "volumes": volumes.to_dict(orient="records")}
    grads = sorted((out / "gradcam").glob("*_gradcam.png"))
    overlay = next((out / "segmentation").glob("*_overlay.png"))
    sec = ctx.report.section("Medical imaging")
    sec.text("Four chest X-rays of the PneumoniaMNIST test split (28×28) through the shipped "
             f"pneumonia classifier (test AUC 0.98): {right} of 4 called right. Grad-CAM "
             "shows where the evidence for the predicted class lies. Then the MNI T1 brain "
             "template segmented into grey and white matter by the shipped 2-D U-Net, slice by "
             "slice.")
    sec.table(pred, floatfmt="{:.3f}")
    for g in grads:
        sec.figure(f"imaging/gradcam/{g.name}", f"Grad-CAM: {g.name}")
    sec.figure(f"imaging/segmentation/{overlay.name}", "tissue segmentation overlay")
    shown = volumes.assign(image=[Path(str(x)).name for x in volumes["image"]])
    sec.table(shown, floatfmt="{:,.0f}")
    _card(ctx, "Medical imaging", "report.html#medical-imaging",
          f"imaging/segmentation/{overlay.name}",
          f"pneumonia classifier: {right} of 4 X-rays right, with Grad-CAM; brain "
          "tissue U-Net on the MNI template")


def _ehr(ctx: DemoContext) -> None:
    """Risk of death within a year for the example patients, and why, with the shipped
    RETAIN model."""
    import numpy as np
    import pandas as pd

    from pmtoolkit.core.metrics import pr_auc, roc_auc
    from pmtoolkit.ehr import run as ehr
    from pmtoolkit.ehr.config import TaskConfig
    from pmtoolkit.ehr.evaluate import top_codes

    events = shipped.path("synthea_example", "dataset").parent
    out = ctx.outdir / "ehr"
    out.mkdir()
    model = ehr.load("synthea-mortality")
    ehr.predict_file(model, events, out / "risk_now.csv")
    task = TaskConfig(kind="mortality", horizon_days=365, index="each_visit")
    summary = ehr.build(events, out / "visits.jsonl.gz", task, fractions=(0.0, 0.0, 1.0))
    explained = ehr.explain(model, out / "visits.jsonl.gz", out / "explain", top=3)
    risk = pd.read_csv(out / "risk_now.csv").sort_values("probability", ascending=False)
    _, samples, _ = ehr.read_dataset(out / "visits.jsonl.gz")
    y = np.array([s.label for s in samples])
    p = model.predict_proba(samples)
    auroc = roc_auc(y, p) if 0 < y.sum() < len(y) else float("nan")
    ctx.summary["ehr"] = {"dataset": {k: summary[k] for k in ("patients", "samples",
                                                              "positives")},
                          "auroc": auroc, "auprc": pr_auc(y, p) if y.sum() else float("nan"),
                          "explained": explained["samples"],
                          "highest_risk_now": risk.head(5).to_dict(orient="records")}
    timelines = sorted((out / "explain").glob("timeline_*.png"))
    sec = ctx.report.section("Patient records (EHR)")
    sec.text(f"{summary['patients']} synthetic patients (Synthea) the shipped "
             "synthea-mortality model (RETAIN, death within 365 days of a visit) never saw. "
             f"Scored at each of their {summary['samples']:,} visits ({summary['positives']} "
             f"followed by death within a year): AUROC {auroc:.3f}. The table is each living "
             "patient's risk as of their last visit (calibrated probability); the timelines "
             "show which visits and codes drove the three highest-risk predictions (RETAIN's "
             "attention gives each code's contribution exactly).")
    threshold = model.threshold
    metrics = model.metadata.get("metrics", {})
    if threshold is not None and "predicted" in risk:
        flagged = int(risk["predicted"].sum())
        column = f"flagged (risk ≥ {threshold:.3f})"
        sec.text(f"'flagged' is 1 when the risk is at least {threshold:.3f}: the decision "
                 "threshold stored with the model, chosen on the validation patients by "
                 "Youden's J (the largest sensitivity + specificity − 1). It is low because "
                 "deaths within a year are rare, and it favours sensitivity: on the test "
                 f"patients it caught {metrics.get('test_sensitivity', float('nan')):.0%} of "
                 "the visits followed by death at specificity "
                 f"{metrics.get('test_specificity', float('nan')):.0%}, and "
                 f"{metrics.get('test_ppv', float('nan')):.0%} of the flagged visits were followed "
                 f"by death (PPV). Here it flags {flagged} of the {len(risk)} living patients: a list "
                 "to review, not a prognosis.")
        shown = risk.rename(columns={"predicted": column})
    else:
        shown = risk.drop(columns=["predicted"], errors="ignore")
    sec.table(shown.head(10), floatfmt="{:.3f}")
    ctx.summary["ehr"]["threshold"] = threshold
    for t in timelines:
        sec.figure(f"ehr/explain/{t.name}", "contributions of visits and codes")
    codes = top_codes(pd.read_csv(out / "explain" / "contributions.csv"))
    ctx.summary["ehr"]["top_codes"] = codes.to_dict(orient="records")
    first = codes.iloc[0] if len(codes) else None
    note = ""
    if first is not None and first["how to read it"].startswith("a vaccination"):
        note = (f" The top code, {first['code']} ({first['description'].strip()}), is such a "
                "marker: it comes with the regular visits of older and chronically ill "
                "patients.")
    sec.text("The codes that raised these three risks most (contributions summed over their "
             "records), with how to read each. A contribution is what the model learned to "
             "associate with death in these records, not a cause." + note)
    sec.table(codes, floatfmt="{:.2f}")
    top_line = (f"; top code {first['code']} ({first['description'].strip()}): "
                f"{first['how to read it'].split(':', 1)[-1].strip()}" if first is not None
                else "")
    flag_line = (f", flagged at risk ≥ {threshold:.3f} (Youden's J on validation)"
                 if threshold is not None else "")
    _card(ctx, "Patient records (EHR)", "report.html#patient-records-ehr",
          f"ehr/explain/{timelines[0].name}" if timelines else "",
          f"one-year mortality risk for {summary['patients']} unseen Synthea patients "
          f"(AUROC {auroc:.2f} over their visits){flag_line}{top_line}")


#: The demo's steps in order: (name, function). Results first; the environment and the long
#: provenance table of the shipped files last.
STEPS: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("molecules", _molecules),
    ("profiles", _profiles),
    ("targets", _targets),
    ("design", _design),
    ("pipelines", _pipelines),
    ("screening", _screening),
    ("variants", _variant_pipeline),
    ("single-cell", _single_cell),
    ("imaging", _imaging),
    ("ehr", _ehr),
    ("environment", _environment),
    ("shipped", _shipped),
]

#: The shipped pipelines the demo runs (pipelines/*.toml).
PIPELINES = ("virtual-screening", "variant-prioritisation", "single-cell")


_INDEX_CSS = """
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:1rem;
margin:1.2rem 0}.card{border:1px solid #d8dde6;border-radius:8px;padding:.8rem;
background:#fff;display:flex;flex-direction:column}.card img{width:100%;height:11rem;
object-fit:contain;background:#f7f8fa;border-radius:4px}.card h3{margin:.5rem 0 .2rem;
font-size:1.05rem}.card p{margin:.2rem 0;font-size:.9rem;color:#39424e;flex:1}
.card a.more{font-size:.9rem}pre{background:#f2f4f8;padding:.6rem;border-radius:4px;
overflow-x:auto;font-size:.85rem}
"""


def _card(ctx: DemoContext, title: str, link: str, picture: str, line: str) -> None:
    """A domain's card on index.html: its title, link, picture (relative paths) and one line."""
    ctx.cards.append((title, link, picture, line))


def _write_index(ctx: DemoContext, path: Path) -> None:
    """index.html: one card per domain (picture, headline, link to its results), the
    commands that reproduce each part, and links to the full report and the pipeline runs."""
    import html

    from pmtoolkit._version import __version__
    from pmtoolkit.core.io import atomic_write
    from pmtoolkit.core.report import CSS

    cards = []
    for title, link, picture, line in ctx.cards:
        img = (f'<a href="{html.escape(link)}"><img src="{html.escape(picture)}" '
               f'alt="{html.escape(title)}"></a>') if picture else ""
        cards.append(f'<div class="card">{img}<h3>{html.escape(title)}</h3>'
                     f"<p>{html.escape(line)}</p>"
                     f'<a class="more" href="{html.escape(link)}">results →</a></div>')
    runs = "".join(f'<li><a href="pipelines/{n}/index.html">{n}</a>: '
                   f"{html.escape(ctx.pipeline_plans[n].description)}</li>"
                   for n in ctx.pipeline_plans)
    commands = """\
pmt property predict -i drugs.smi -m solubility -o logS.csv          # molecules
pmt generate optimize -c run.toml -o design/                           # de novo design
pmt dti screen --target kinases.fasta --library lib.smi -o hits.csv  # affinity
pmt variants score -i in.vcf.gz -f ref.fa -m mpra -o scored.vcf      # variants
pmt expr run -i counts.h5ad -o pbmc/                                    # single cell
pmt imaging predict xray.png -o pred.csv                             # imaging
pmt ehr predict -i synthea/csv -o risk.csv                              # patient records
pmt pipeline run -c virtual-screening -o screen/                        # pipelines"""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>pmtoolkit demo</title><style>{CSS}{_INDEX_CSS}</style></head><body>"
        "<h1>pmtoolkit demo</h1>"
        f'<p class="meta">pmtoolkit {__version__} · everything below ran offline on the data '
        "and models that ship with the package</p>"
        "<p>pmtoolkit is one toolkit for precision medicine: molecules (properties, "
        "drug–target affinity, de novo design), genetic variants and single-cell expression, "
        "medical images and patient records. Each card is one domain run on example data; "
        "click through for tables, pictures and the files written. The "
        '<a href="report.html">full report</a> has every section in one page.</p>'
        f'<div class="cards">{"".join(cards)}</div>'
        "<h2>Pipelines</h2><p>Three of the cards are shipped pipelines (TOML files of steps; "
        "rerunning skips unchanged steps). Each run folder has an index of its steps:</p>"
        f"<ul>{runs}</ul>"
        f"<h2>Do it yourself</h2><pre>{html.escape(commands)}</pre>"
        "<p>Files written: summary.json (every number on this page), config.json, and one "
        "folder per part.</p></body></html>\n")
    with atomic_write(path) as fh:
        fh.write(page)


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
        _write_index(ctx, tmp / "index.html")
        write_json(tmp / "summary.json", ctx.summary, default=str)
        write_resolved(tmp / "config.json", demo=config)
        summary = ctx.summary
    return DemoResult(final, final / "index.html", summary)
