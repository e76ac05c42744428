"""The built-in pipeline actions: each wraps the same functions the ``pmt`` commands call, with
its parameters as a dataclass (the step's TOML keys), named inputs and named output files.

``pmt pipeline list --actions`` prints them with their keys; docs/pipelines.md describes them.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pmtoolkit.chem.standardize import StandardizeConfig
from pmtoolkit.core.conditions import parse_condition
from pmtoolkit.core.config import FRACTION, SEED, Range
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.pipeline.registry import Input, StepRun, action

log = logging.getLogger(__name__)


def _named(run: StepRun, value: str) -> str:
    """A parameter naming a model: a file relative to the pipeline's folder, else the value
    itself (a shipped model's name, or a path relative to the working directory)."""
    p = Path(value)
    if not p.is_absolute() and run.base is not None and (run.base / p).is_file():
        return str(run.base / p)
    return value


def _model(run: StepRun, load: Any, *args: Any) -> Any:
    """``load(*args)``: loaded here for a run in this process, or, on a cluster, a
    :class:`~pmtoolkit.core.distributed.WorkerModel` each worker loads once."""
    from pmtoolkit.core.distributed import WorkerModel

    if run.cluster is None:
        return load(*args)
    return WorkerModel.named(load, *args) if all(isinstance(a, str) for a in args) else \
        WorkerModel(load, args)


def _read(path: Path):
    from pmtoolkit.core.io import read_table

    return read_table(path)


def _write(frame, path: Path) -> None:
    from pmtoolkit.core.io import write_table

    write_table(frame, path)


def _plain(v: Any) -> Any:
    """A VCF INFO value as a table cell: one-element tuples unpacked, float32 noise rounded."""
    if isinstance(v, tuple):
        v = v[0] if len(v) == 1 else ",".join(map(str, (_plain(x) for x in v)))
    if isinstance(v, float):
        return float(f"{v:.6g}")
    return v


def _need_column(frame, column: str, what: Path) -> None:
    if column not in frame.columns:
        raise BadInputError(f"'{what.name}' has no column {column!r}",
                            hint="columns: " + ", ".join(map(str, frame.columns)))


# --------------------------------------------------------------------------- molecules


@dataclass
class SampleStepConfig:
    model: str = field(default="prior", metadata={
        "help": "SMILES generator: a shipped name (prior) or a .safetensors file"})
    n: int = field(default=1000, metadata={"range": Range(1, 10**8), "help": "SMILES to sample"})
    temperature: float = field(default=1.0, metadata={"range": Range(0, 100, min_open=True),
        "help": "sampling temperature"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "random seed"})


@action("generate.sample", help="Sample SMILES from a generator (pmt generate sample).",
        params=SampleStepConfig, outputs={"molecules": "molecules.csv"})
def _sample(run: StepRun) -> dict[str, Any]:
    from pmtoolkit.design.run import load, sample_file

    p = run.params
    model = _named(run, p.model)
    stats = sample_file(_model(run, load, model), run.output(), n=p.n,
                        temperature=p.temperature, seed=p.seed, cluster=run.cluster)
    return {"sampled": stats["n"], "valid": stats["valid"],
            "validity": round(stats["validity"], 4)}


@dataclass
class StandardizeStepConfig(StandardizeConfig):
    smiles_column: str = field(default="smiles", metadata={"help": "column of SMILES"})
    deduplicate: bool = field(default=True, metadata={
        "help": "keep the first row of each standardised SMILES"})


@action("mol.standardize", help="Standardise molecules (pmt mol standardize): salts stripped, "
        "charges neutralised; 'smiles' becomes the standardised SMILES, the original is kept "
        "as input_smiles; invalid molecules are dropped and listed in molecules.rejected.csv.",
        params=StandardizeStepConfig, inputs=(Input("input", "molecules: CSV/TSV/SMI/SDF"),),
        outputs={"molecules": "molecules.csv"})
def _standardize(run: StepRun) -> dict[str, Any]:
    from dataclasses import fields

    from pmtoolkit.chem import run as chem_run

    p = run.params
    config = StandardizeConfig(**{f.name: getattr(p, f.name) for f in fields(StandardizeConfig)})
    rows, invalid = chem_run.transform_file(
        _model(run, chem_run.Standardize, config), run.inputs["input"], run.output(),
        smiles_column=p.smiles_column, final=run.final_output(), cluster=run.cluster)
    frame = _read(run.output())
    frame = frame[frame["standardized_smiles"].notna()]
    frame = frame.rename(columns={p.smiles_column: "input_smiles"})
    frame.insert(0, "smiles", frame.pop("standardized_smiles"))
    n = len(frame)
    if p.deduplicate:
        frame = frame.drop_duplicates("smiles")
    _write(frame, run.output())
    return {"read": rows, "invalid": invalid, "duplicates": n - len(frame),
            "molecules": len(frame)}


@dataclass
class FilterStepConfig:
    smiles_column: str = field(default="smiles", metadata={"help": "column of SMILES"})
    alerts: tuple[str, ...] = field(default=("PAINS", "BRENK"), metadata={
        "help": "RDKit FilterCatalog alert sets"})
    passing_only: bool = field(default=True, metadata={
        "help": "keep only molecules passing Lipinski, Veber and the alerts"})
    min_qed: float | None = field(default=None, metadata={"range": FRACTION, "help": "minimum QED"})
    max_sa_score: float | None = field(default=None, metadata={"range": Range(1, 10),
        "help": "maximum synthetic accessibility score (1 easy - 10 hard)"})


@action("mol.filter", help="Medicinal-chemistry filters (pmt mol filter): Lipinski, Veber, "
        "structural alerts, QED and SA score columns; keeps the passing molecules.",
        params=FilterStepConfig, inputs=(Input("input", "molecules table"),),
        outputs={"molecules": "molecules.csv"})
def _filter(run: StepRun) -> dict[str, Any]:
    from pmtoolkit.chem import run as chem_run

    p = run.params
    rows, invalid = chem_run.transform_file(
        _model(run, chem_run.Filter, p.alerts, p.passing_only), run.inputs["input"],
        run.output(), smiles_column=p.smiles_column, final=run.final_output(),
        cluster=run.cluster)
    frame = _read(run.output())
    n = len(frame)
    if p.min_qed is not None:
        frame = frame[frame["qed"] >= p.min_qed]
    if p.max_sa_score is not None:
        frame = frame[frame["sa_score"] <= p.max_sa_score]
    _write(frame, run.output())
    return {"invalid": invalid,
            "passing_rules_and_alerts" if p.passing_only else "molecules": rows,
            "removed_by_qed_sa": n - len(frame), "kept": len(frame)}


@dataclass
class PropertyStepConfig:
    models: tuple[str, ...] = field(default=("solubility",), metadata={
        "help": "property models: shipped names (solubility, lipophilicity, bbbp, tox21) or "
                "files; each adds <target>_pred columns"})
    smiles_column: str = field(default="smiles", metadata={"help": "column of SMILES"})


@action("property.predict", help="Predict molecular properties with one or more models "
        "(pmt property predict), as columns added to the table.",
        params=PropertyStepConfig, inputs=(Input("input", "molecules table"),),
        outputs={"predictions": "predictions.csv"})
def _properties(run: StepRun) -> dict[str, Any]:
    from pmtoolkit.property.run import load, predict_file

    p = run.params
    if not p.models:
        raise BadInputError("models is empty: name at least one property model")
    src = run.inputs["input"]
    for i, name in enumerate(p.models):
        out = run.folder / f"step{i}.tmp.csv"
        model = _named(run, name)
        predict_file([model] if run.cluster else load(model), src, out,
                     smiles_column=p.smiles_column, cluster=run.cluster)
        if i:
            Path(src).unlink()
        src = out
    frame = _read(src)
    Path(src).unlink()
    for f in run.folder.glob("step*.tmp.rejected.csv"):
        f.unlink()
    _write(frame, run.output())
    return {"molecules": len(frame), "columns": [c for c in frame.columns
                                                  if c.endswith("_pred")]}


@dataclass
class AffinityStepConfig:
    model: str = field(default="davis", metadata={
        "help": "drug-target model: a shipped name (davis) or a .safetensors file"})
    targets: tuple[str, ...] = field(default=(), metadata={
        "help": "names of the FASTA records to score against (default: every record)"})
    smiles_column: str = field(default="smiles", metadata={"help": "column of SMILES"})


@action("dti.score", help="Predicted affinity of every molecule for each target protein "
        "(the model of pmt dti predict / screen), one column affinity_<target> each.",
        params=AffinityStepConfig,
        inputs=(Input("input", "molecules table"), Input("fasta", "target proteins (FASTA)")),
        outputs={"scores": "scores.csv"})
def _affinity(run: StepRun) -> dict[str, Any]:
    import numpy as np

    from pmtoolkit.chem.featurizer import GraphFeaturizer
    from pmtoolkit.dti.data import read_fasta
    from pmtoolkit.dti.run import load

    p = run.params
    model = load(_named(run, p.model))
    records = read_fasta(run.inputs["fasta"])
    names = [name or f"target{i + 1}" for i, (name, _) in enumerate(records)]
    if p.targets:
        unknown = [t for t in p.targets if t not in names]
        if unknown:
            raise BadInputError(f"no target {unknown[0]!r} in '{run.inputs['fasta'].name}'",
                                hint="targets: " + ", ".join(names))
        records = [r for n, r in zip(names, records) if n in p.targets]
        names = [n for n in names if n in p.targets]
    frame = _read(run.inputs["input"])
    _need_column(frame, p.smiles_column, run.inputs["input"])
    smiles = ["" if not isinstance(s, str) else s for s in frame[p.smiles_column]]
    codes, _ = GraphFeaturizer(cache_size=0).featurize(smiles,
                                                             source=str(run.inputs["input"]))
    keep = [i for i, c in enumerate(codes) if c is not None]
    scores = np.full((len(frame), len(names)), np.nan)
    if keep:
        targets = model.encode_targets([seq for _, seq in records])
        scores[keep] = model.score_codes([codes[i] for i in keep], targets)
    for j, name in enumerate(names):
        frame[f"affinity_{name}"] = scores[:, j]
    _write(frame, run.output())
    return {"molecules": len(frame), "scored": len(keep), "targets": names}


@dataclass
class RankStepConfig:
    by: str = field(default="", metadata={"help": "column to rank by"})
    descending: bool = field(default=True, metadata={"help": "largest value first"})
    where: tuple[str, ...] = field(default=(), metadata={
        "help": "row conditions, all to be met, e.g. \"logS_pred > -5 and qed >= 0.5\": "
                "columns (`backticks` around names with spaces), numbers, 'text', true/false, "
                "== != < <= > >=, + - * /, and/or/not, parentheses, in [...] / not in [...]; "
                "a comparison with a missing value is false (docs/pipelines.md)"})
    top: int | None = field(default=None, metadata={"range": Range(1, None),
        "help": "keep the first TOP rows"})

    def __post_init__(self):
        if isinstance(self.where, str):
            self.where = (self.where,)
        for cond in self.where:  # syntax now, so pmt pipeline validate reports a bad condition
            parse_condition(cond)


@action("table.rank", help="Keep the rows meeting every condition, sort by a column and add "
        "a rank column.", params=RankStepConfig, inputs=(Input("input", "a table"),),
        outputs={"ranked": "ranked.csv"})
def _rank(run: StepRun) -> dict[str, Any]:
    p = run.params
    frame = _read(run.inputs["input"])
    if not p.by:
        raise BadInputError("rank: set by = \"COLUMN\"",
                            hint="columns: " + ", ".join(map(str, frame.columns)))
    _need_column(frame, p.by, run.inputs["input"])
    n = len(frame)
    # a closed grammar, never frame.query: pandas resolves @names in Python, so a condition
    # in a pipeline file could run code
    for cond in p.where:
        frame = frame[parse_condition(cond).mask(frame)]
    frame = frame.sort_values(p.by, ascending=not p.descending, na_position="last",
                              kind="stable")
    meeting = len(frame)
    if p.top is not None:
        frame = frame.head(p.top)
    # rank and the value ranked by lead the table, where a reader looks first
    frame.insert(0, p.by, frame.pop(p.by))
    frame.insert(0, "rank", range(1, len(frame) + 1))
    _write(frame, run.output())
    return {"read": n, "meeting_conditions": meeting, "written": len(frame)}


# --------------------------------------------------------------------------- variants


@dataclass
class VariantScoreStepConfig:
    model: str = field(default="mpra", metadata={
        "help": "spliceai (the optional extra: splice-site gain and loss in annotated genes), "
                "a shipped sequence model (mpra for promoters and enhancers, splice, jaspar) "
                "or a file"})
    ref_mismatch: Literal["error", "skip", "warn"] = field(default="error", metadata={
        "help": "a REF allele that differs from the FASTA: stop, skip it, or warn"})
    strands: Literal["both", "forward"] | None = field(default=None, metadata={
        "help": "average both strands, or forward only (default: the model's)"})
    scan: int | None = field(default=None, metadata={"range": Range(0, 10_000),
        "help": "also score windows this many bases either side (default: the model's)"})
    annotation: str | None = field(default=None, metadata={
        "help": "spliceai and splice models: the genes (grch37, grch38, a SpliceAI table, a "
                "GTF/GFF3; default grch38)"})
    distance: int | None = field(default=None, metadata={"range": Range(0, 5000),
        "help": "spliceai: splice-site changes within this many bases (default 50)"})
    mask: bool | None = field(default=None, metadata={
        "help": "spliceai: SpliceAI's -M 1 (default off)"})


@action("variants.score", help="Score each variant of a VCF with a DNA sequence model "
        "(pmt variants score): an annotated VCF.", params=VariantScoreStepConfig,
        inputs=(Input("vcf", "variants (VCF/BCF)"), Input("fasta", "reference FASTA")),
        outputs={"vcf": "scored.vcf"})
def _variants_score(run: StepRun) -> dict[str, Any]:
    from pmtoolkit.genomics.run import score_file

    p = run.params
    annotation = p.annotation and _named(run, p.annotation)
    stats = score_file(run.inputs["vcf"], run.inputs["fasta"], run.output(),
                       model_name=_named(run, p.model), ref_mismatch=p.ref_mismatch,
                       strands=p.strands, scan=p.scan, annotation=annotation,
                       distance=p.distance, mask=p.mask, cluster=run.cluster)
    return {k: v for k, v in stats.items()
            if isinstance(v, (int, float, str)) and k not in ("output", "outdir")}


@dataclass
class VariantFilterStepConfig:
    score: str | None = field(default=None, metadata={
        "help": "INFO key to rank by (default: the first *_diff key pmtoolkit wrote)"})
    min_abs: float = field(default=0.0, metadata={"range": Range(0, None),
        "help": "keep variants whose |score| is at least this"})
    top: int | None = field(default=None, metadata={"range": Range(1, None),
        "help": "keep the TOP largest |score|"})


@action("variants.filter", help="Keep the variants with the largest predicted effects: an "
        "annotated VCF (ranked by |score|, with a PMT_RANK INFO field) and a table.",
        params=VariantFilterStepConfig, inputs=(Input("input", "a scored VCF"),),
        outputs={"vcf": "prioritised.vcf", "table": "prioritised.tsv"})
def _variants_filter(run: StepRun) -> dict[str, Any]:
    import pandas as pd

    p = run.params
    path = run.inputs["input"]
    header, info, frame = _read_vcf(path)
    key = p.score or next((k for k in info if k.endswith("_diff")), None) or \
        ("SpliceAI" if "SpliceAI" in info else None)
    if key is None or key not in info:
        raise BadInputError(f"'{path.name}' has no INFO key {key or '*_diff or SpliceAI'}",
                            hint="score it first (variants.score); INFO keys: " + ", ".join(info))
    n = len(frame)
    if n and key not in frame.columns:  # declared, on no record
        frame[key] = None
    if n:
        if key == "SpliceAI":  # the largest delta score of any ALT and gene; none: unscored
            frame[key] = frame[key].map(_spliceai_max)
        else:  # the score of the first ALT allele, next to the alleles
            frame[key] = pd.to_numeric(frame[key].astype(str).str.split(",").str[0])
        frame = frame[[*frame.columns[:5], key, *(c for c in frame.columns[5:] if c != key)]]
        frame["_abs"] = frame[key].abs()
        frame = frame[frame["_abs"] >= p.min_abs].sort_values("_abs", ascending=False,
                                                               kind="stable")
        if p.top is not None:
            frame = frame.head(p.top)
        frame.insert(0, "rank", range(1, len(frame) + 1))
    lines = header.rstrip("\n").split("\n")
    chrom = next(i for i, ln in enumerate(lines) if ln.startswith("#CHROM"))
    lines.insert(chrom, '##INFO=<ID=PMT_RANK,Number=1,Type=Integer,Description="rank by '
                 f'|{key}| (pmtoolkit variants.filter)">')
    from pmtoolkit.core.io import atomic_write

    with atomic_write(run.output("vcf")) as fh:
        fh.write("\n".join(lines) + "\n")
        for r in frame.to_dict("records") if n else []:
            cols = r["_line"].split("\t")
            cols[7] = f"PMT_RANK={r['rank']}" + ("" if cols[7] in (".", "") else ";" + cols[7])
            fh.write("\t".join(cols) + "\n")
    table = frame.drop(columns=["_line", "_abs"], errors="ignore")
    _write(table, run.output("table"))
    return {"variants": n, "kept": len(table), "score": key}


def _spliceai_max(value: Any) -> float:
    """The largest of DS_AG, DS_AL, DS_DG, DS_DL over the entries of a ``SpliceAI`` INFO
    value (``ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|...``, comma-separated); NaN where it
    has no scores (no field, or ``.`` entries)."""
    scores = []
    for entry in str(value).split(","):
        fields = entry.split("|")
        if len(fields) >= 6:
            scores += [float(x) for x in fields[2:6] if x not in (".", "")]
    return max(scores) if scores else float("nan")


@dataclass
class IsmStepConfig:
    model: str = field(default="mpra", metadata={"help": "sequence model (name or file)"})
    region: str = field(default="", metadata={
        "help": "reference region chrom:start-end (1-based, inclusive)"})
    target: str | None = field(default=None, metadata={
        "help": "the model output to map (default: the first)"})


@action("variants.ism", help="Saturation mutagenesis of a reference region (pmt variants "
        "ism): the predicted effect of every substitution, a table and a heat map with logo.",
        params=IsmStepConfig, inputs=(Input("fasta", "reference FASTA"),),
        outputs={"table": "ism/ism.tsv", "figure": "ism/ism.png"})
def _ism(run: StepRun) -> dict[str, Any]:
    from pmtoolkit.genomics.run import ism_file

    p = run.params
    if not p.region:
        raise BadInputError("variants.ism: set region = \"chrom:start-end\"")
    stats = ism_file(_named(run, p.model), run.folder / "ism", fasta=run.inputs["fasta"],
                     region=p.region, target=p.target)
    return {k: v for k, v in stats.items()
            if isinstance(v, (int, float, str)) and k not in ("output", "outdir")}


# --------------------------------------------------------------------------- single cell


@dataclass
class QCStepConfig:
    counts_layer: str = field(default="auto", metadata={
        "help": "where the raw counts are: auto, X, raw or a layer name"})
    mito_prefix: str = field(default="MT-", metadata={"help": "prefix of mitochondrial genes"})
    min_genes: int = field(default=200, metadata={"range": Range(0, 10**6),
        "help": "drop cells with fewer genes"})
    max_genes: int | None = field(default=None, metadata={"range": Range(1, 10**6),
        "help": "drop cells with more genes"})
    min_counts: int | None = field(default=None, metadata={"range": Range(0, None),
        "help": "drop cells with fewer counts"})
    max_pct_mito: float | None = field(default=20.0, metadata={"range": Range(0, 100),
        "help": "drop cells with a larger % of mitochondrial counts"})
    min_cells: int = field(default=3, metadata={"range": Range(0, 10**9),
        "help": "drop genes seen in fewer cells"})
    doublets: bool = field(default=True, metadata={"help": "score doublets (scrublet)"})
    remove_doublets: bool = field(default=False, metadata={"help": "drop predicted doublets"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "random seed"})


def _run_config(params: Any, **extra: Any):
    from dataclasses import fields

    from pmtoolkit.expression.config import SingleCellConfig

    names = {f.name for f in fields(SingleCellConfig)}
    return SingleCellConfig(**{f.name: getattr(params, f.name) for f in fields(params)
                        if f.name in names}, **extra)


def _read_h5ad(path: Path):
    from pmtoolkit.expression.io import read

    return read(path)


@action("expr.qc", help="Single-cell QC (pmt expr run's first stage): counts layer, QC "
        "metrics, cell and gene filters, doublet scores; violin plots before filtering.",
        params=QCStepConfig, inputs=(Input("input", "counts: .h5ad, 10x .h5 / folder, .loom, "
                                               "CSV"),),
        outputs={"adata": "qc.h5ad", "figure": "qc_violins.png"})
def _qc(run: StepRun) -> dict[str, Any]:
    from pmtoolkit.expression.plots import qc_violins
    from pmtoolkit.expression.standard import qc_stage

    config = _run_config(run.params)
    adata = _read_h5ad(run.inputs["input"])
    before: dict = {}
    qc_stage(adata, config, qc_before=before)
    qc_violins(before, run.output("figure"), config=config)
    adata.write_h5ad(run.output("adata"), compression="gzip")
    return dict(adata.uns["pmt_run"]["metrics"])


@dataclass
class ClusterStepConfig:
    target_sum: float = field(default=1e4, metadata={"range": Range(0, 1e12, min_open=True),
        "help": "counts per cell, then log1p"})
    n_top_genes: int = field(default=2000, metadata={"range": Range(1, 10**6),
        "help": "highly variable genes"})
    n_pcs: int = field(default=50, metadata={"range": Range(1, 1000),
        "help": "principal components"})
    n_neighbors: int = field(default=15, metadata={"range": Range(2, 1000),
        "help": "neighbours per cell"})
    resolution: float = field(default=1.0, metadata={"range": Range(0, 100, min_open=True),
        "help": "Leiden resolution"})
    umap_min_dist: float = field(default=0.5, metadata={"range": Range(0, 10),
        "help": "UMAP min_dist"})
    label_key: str | None = field(default=None, metadata={
        "help": "obs column of known labels: ARI/NMI of the clusters and a UMAP by label"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "random seed"})


@action("expr.cluster", help="Normalise, highly variable genes, PCA, neighbours, Leiden "
        "clusters and UMAP (scanpy), on the output of expr.qc.", params=ClusterStepConfig,
        inputs=(Input("input", "the .h5ad of expr.qc"),),
        outputs={"adata": "clustered.h5ad", "figure": "umap_leiden.png"})
def _cluster(run: StepRun) -> dict[str, Any]:
    from pmtoolkit.expression.plots import umap_plot
    from pmtoolkit.expression.standard import cluster_stage

    config = _run_config(run.params)
    adata = _read_h5ad(run.inputs["input"])
    cluster_stage(adata, config)
    umap_plot(adata, "leiden", run.output("figure"), title="UMAP by Leiden cluster")
    if config.label_key:
        umap_plot(adata, config.label_key, run.folder / "umap_label.png",
                  title=f"UMAP by {config.label_key}")
    adata.write_h5ad(run.output("adata"), compression="gzip")
    m = adata.uns["pmt_run"]["metrics"]
    return {k: m[k] for k in m if k == "clusters" or k.startswith("leiden_")}


@dataclass
class MarkerStepConfig:
    method: Literal["wilcoxon", "t-test", "t-test_overestim_var", "logreg"] = field(
        default="wilcoxon", metadata={"help": "scanpy rank_genes_groups method"})
    n_genes: int = field(default=5, metadata={"range": Range(1, 1000),
        "help": "marker genes per cluster in the dot plot"})


@action("expr.markers", help="Marker genes of each cluster (scanpy rank_genes_groups): a table "
        "and a dot plot.", params=MarkerStepConfig,
        inputs=(Input("input", "the .h5ad of expr.cluster"),),
        outputs={"adata": "markers.h5ad", "table": "markers.csv",
                 "figure": "markers_dotplot.png"})
def _markers(run: StepRun) -> dict[str, Any]:
    from pmtoolkit.expression.annotate import markers_table
    from pmtoolkit.expression.plots import markers_dotplot
    from pmtoolkit.expression.standard import markers_stage

    p = run.params
    adata = _read_h5ad(run.inputs["input"])
    markers_stage(adata, method=p.method)
    table = markers_table(adata)
    _write(table, run.output("table"))
    markers_dotplot(adata, run.output("figure"), n_genes=p.n_genes)
    adata.write_h5ad(run.output("adata"), compression="gzip")
    top = table[table["rank"] == 1] if len(table) else table
    return {"clusters": int(adata.obs["leiden"].nunique()), "marker_rows": len(table),
            "top_marker": dict(zip(top["group"].astype(str), top["gene"].astype(str)))}


@dataclass
class AnnotateStepConfig:
    label_key: str | None = field(default=None, metadata={
        "help": "obs column of known labels to compare the annotation with"})
    seed: int = field(default=0, metadata={"range": SEED, "help": "random seed"})


@action("expr.annotate", help="Name each cluster from marker lists (a TOML of label = "
        "[genes]); a table of clusters and a UMAP by cell type.", params=AnnotateStepConfig,
        inputs=(Input("input", "the .h5ad of expr.markers"),
                Input("markers", "marker lists: TOML of label = [genes]")),
        outputs={"adata": "annotated.h5ad", "table": "cell_types.csv",
                 "figure": "umap_cell_type.png"})
def _annotate(run: StepRun) -> dict[str, Any]:
    import pandas as pd

    from pmtoolkit.expression.plots import umap_plot
    from pmtoolkit.expression.standard import annotate_stage, cluster_metrics

    p = run.params
    adata = _read_h5ad(run.inputs["input"])
    annotate_stage(adata, run.inputs["markers"], seed=p.seed)
    counts = (adata.obs.groupby(["leiden", "cell_type"], observed=True).size()
              .reset_index(name="cells"))
    summary: dict[str, Any] = {"cell_types": int(adata.obs["cell_type"].nunique())}
    if p.label_key:
        if p.label_key not in adata.obs:
            raise BadInputError(f"no obs column {p.label_key!r}")
        majority = (adata.obs.groupby("leiden", observed=True)[p.label_key]
                    .agg(lambda s: s.astype(str).value_counts().index[0]))
        counts[f"most common {p.label_key}"] = counts["leiden"].map(majority)
        summary.update({f"cell_type_{k}": round(v, 4) for k, v in cluster_metrics(
            adata.obs[p.label_key].astype(str), adata.obs["cell_type"].astype(str)).items()})
    _write(pd.DataFrame(counts), run.output("table"))
    umap_plot(adata, "cell_type", run.output("figure"), title="UMAP by marker-list annotation")
    adata.write_h5ad(run.output("adata"), compression="gzip")
    return summary


# --------------------------------------------------------------------------- report


@dataclass
class ReportStepConfig:
    title: str = field(default="pmtoolkit pipeline report", metadata={"help": "report title"})
    description: str = field(default="", metadata={"help": "a paragraph under the title"})
    max_rows: int = field(default=20, metadata={"range": Range(1, 100_000),
        "help": "rows shown of each table"})
    molecules: int = field(default=12, metadata={"range": Range(0, 1000),
        "help": "draw the first N molecules of a table with a smiles column (0: none)"})
    columns: tuple[str, ...] = field(default=(), metadata={
        "help": "columns shown of each table, in this order (a table shows those it has, "
                "or all when it has none; default: all); every table links to its file"})


@action("report", help="An HTML report of the listed outputs: tables (first rows), VCFs, "
        "pictures, molecule grids and AnnData summaries.", params=ReportStepConfig,
        inputs=(Input("inputs", "outputs to show, e.g. [\"@rank\", \"@cluster.figure\"]",
                      many=True),),
        outputs={"report": "report.html"})
def _report(run: StepRun) -> dict[str, Any]:
    import html

    import pandas as pd

    from pmtoolkit.core.report import Report

    p = run.params
    report = Report(p.title, p.description)
    (run.folder / "figures").mkdir()
    shown = []
    seen_columns: set[str] = set()
    for i, path in enumerate(run.inputs["inputs"]):
        path = Path(path)
        sec = report.section(f"{path.parent.name}: {path.name}")  # step: file
        name = path.name.lower()
        if name.endswith(".png"):
            dest = run.folder / "figures" / f"{i}_{path.parent.name}_{path.name}"
            shutil.copyfile(path, dest)
            sec.figure(f"figures/{dest.name}", f"{path.parent.name}/{path.name}")
        elif name.endswith((".csv", ".tsv", ".parquet", ".csv.gz", ".tsv.gz")):
            frame = _read(path)
            shown_columns = [c for c in p.columns if c in frame.columns] or list(frame.columns)
            seen_columns.update(map(str, frame.columns))
            href = html.escape(_href(run, path))
            sec.html(f"<p>{len(frame):,} rows; the first {min(len(frame), p.max_rows)} shown"
                     f", {len(shown_columns)} of {len(frame.columns)} columns. The full table: "
                     f'<a href="{href}">{html.escape(path.name)}</a>.</p>')
            smiles = next((c for c in frame.columns if str(c).lower() == "smiles"), None)
            if smiles is not None and p.molecules > 0 and len(frame):
                dest = run.folder / "figures" / f"{i}_{path.parent.name}_molecules.png"
                if _grid(frame, smiles, p.molecules, dest):
                    sec.figure(f"figures/{dest.name}", f"the first {min(len(frame), p.molecules)}"
                               " molecules")
            sec.table(frame[shown_columns], max_rows=p.max_rows)
        elif name.endswith((".vcf", ".vcf.gz")):
            sec.table(_read_vcf(path)[2].drop(columns="_line", errors="ignore"),
                      max_rows=p.max_rows)
        elif name.endswith(".h5ad"):
            import anndata as ad

            a = ad.read_h5ad(path, backed="r")
            sec.text(f"{a.n_obs:,} cells x {a.n_vars:,} genes; obs columns: "
                     + ", ".join(map(str, a.obs.columns)))
            steps = a.uns.get("pmt_run", {}).get("steps") if "pmt_run" in a.uns else None
            if steps is not None:
                sec.table(pd.DataFrame(steps))
            a.file.close()
        elif name.endswith(".html"):
            href = html.escape(_href(run, path))
            sec.html(f'<p><a href="{href}">{html.escape(path.name)}</a></p>')  # names are data
        else:
            sec.text(f"{path.name}: {path.stat().st_size:,} bytes")
        shown.append(f"{path.parent.name}/{path.name}")
    unknown = [c for c in p.columns if c not in seen_columns]
    if unknown:
        raise BadInputError(f"report: no table has the column {unknown[0]!r}",
                            hint="columns: " + ", ".join(sorted(map(str, seen_columns)))
                            if seen_columns else "none of the inputs is a table")
    report.write(run.output())
    return {"shown": shown}


def _href(run: StepRun, path: Path) -> str:
    """A link from the report to one of its inputs: relative within the pipeline's run folder
    (which may be moved as a whole), else the file's absolute address."""
    import os
    from urllib.parse import quote

    root = (run.final or run.folder).parent.resolve()
    target = path.resolve()
    if target.is_relative_to(root):
        return quote("../" + os.path.relpath(target, root).replace(os.sep, "/"))
    return target.as_uri()


def _grid(frame, column: str, n: int, dest: Path) -> bool:
    from pmtoolkit.chem.draw import molecule_grid
    from pmtoolkit.chem.molecules import parse_smiles

    mols, legends = [], []
    label = next((c for c in ("rank", "id", "name") if c in frame.columns), None)
    for _, row in frame.head(n).iterrows():
        mol, _ = parse_smiles(row[column])
        if mol is not None:
            mols.append(mol)
            legends.append(f"{label} {row[label]}" if label else "")
    if not mols:
        return False
    molecule_grid(mols, dest, legends=legends, size=(220, 180))
    return True


def _read_vcf(path: Path):
    """``(header text, declared INFO keys, table)`` of a VCF: one row per record with chrom,
    pos, id, ref, alt, its INFO values (:func:`_plain`) and ``_line``, the record as written."""
    import pandas as pd
    import pysam

    with pysam.VariantFile(str(path)) as vf:
        header, info = str(vf.header), list(vf.header.info)
        rows = [{"chrom": rec.chrom, "pos": rec.pos, "id": rec.id or ".", "ref": rec.ref,
                 "alt": ",".join(rec.alts or ()),
                 **{k: _plain(v) for k, v in rec.info.items()},
                 "_line": str(rec).rstrip("\n")} for rec in vf]
    return header, info, pd.DataFrame(rows)
