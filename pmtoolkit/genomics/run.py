"""File-level workflows behind ``pmt variants``: train a sequence model from files, score a
VCF, and draw in-silico mutagenesis of a region."""
from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pmtoolkit.core import workflow
from pmtoolkit.core.errors import BadInputError
from pmtoolkit.core.io import OnInvalid, Rejects, atomic_dir, write_json
from pmtoolkit.core.workflow import Parts
from pmtoolkit.genomics.config import SequenceModelConfig

log = logging.getLogger(__name__)

#: the models shipped in data/ (see data/MANIFEST)
SHIPPED_MODELS = ("splice", "mpra")
_FASTA = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")
_BED = (".bed", ".bed.gz")
#: the longest region a motif model's ISM takes (each position is its own window)
MOTIF_ISM_MAX = 2000


def load(name_or_path: str | os.PathLike):
    """A saved sequence model, a shipped one by name, or ``jaspar`` (the zero-shot motif
    scorer on pyjaspar's bundled matrices)."""
    from pmtoolkit.core.model import load_named
    from pmtoolkit.genomics.model import SequenceModel
    from pmtoolkit.genomics.motifs import MotifModel

    if str(name_or_path) == "jaspar" and not Path("jaspar").exists():
        return MotifModel()

    return load_named(name_or_path, shipped_names=SHIPPED_MODELS,
                      model_class=(SequenceModel, MotifModel), what="sequence model")


def read_training_data(input: str | os.PathLike, *, window: int, task: str,
                       labels: str | os.PathLike | None = None, reference=None,
                       sequence_column: str = "sequence",
                       label_columns: list[str] | None = None, id_column: str | None = None,
                       rejects: Rejects | None = None):
    """Labelled sequences from a table (sequence + label columns), a FASTA + ``labels``
    table, or a BED + ``reference`` + ``labels`` table."""
    from pmtoolkit.genomics import data as D

    name = str(input).lower()
    if name.endswith(_FASTA):
        if labels is None:
            raise BadInputError("training from a FASTA needs --labels (a table: id column "
                                "plus label columns)")
        return D.read_fasta_sequences(input, window=window, labels=labels, task=task,
                                      label_columns=label_columns, id_column=id_column or "id",
                                      rejects=rejects)
    if name.endswith(_BED):
        if labels is None or reference is None:
            raise BadInputError("training from a BED needs --labels and a reference FASTA "
                                "(-f)")
        return D.read_bed_regions(input, reference, window=window, labels=labels, task=task,
                                  label_columns=label_columns, id_column=id_column or "id",
                                  rejects=rejects)
    if not label_columns:
        raise BadInputError("training from a table needs --label-column (one or more)")
    return D.read_sequence_table(input, window=window, task=task, label_columns=label_columns,
                                 sequence_column=sequence_column, id_column=id_column,
                                 rejects=rejects)


def sequence_split(n: int, sizes: tuple[float, float, float], seed: int
                   ) -> dict[str, np.ndarray]:
    """A seeded random (train, val, test) split with ``sizes`` in any proportion (normalised
    here): :func:`pmtoolkit.chem.splits.random_split`, asked for the parts in the order this
    workflow has always cut its permutation (validation, test, then the rest for training), so
    a seed splits the same sequences as before."""
    from pmtoolkit.chem.splits import random_split

    if any(s < 0 for s in sizes) or sum(sizes) <= 0:
        raise BadInputError(f"split sizes must be non-negative and not all zero: {sizes}")
    frac = np.asarray(sizes, float) / sum(sizes)
    s = random_split(n, (float(frac[1]), float(frac[2]), float(frac[0])), seed)
    return {"train": np.asarray(s.test, dtype=np.int64),
            "val": np.asarray(s.train, dtype=np.int64),
            "test": np.asarray(s.val, dtype=np.int64)}


@dataclass
class SequenceTask:
    """The sequence-model domain's :class:`~pmtoolkit.core.workflow.SupervisedTask`:
    labelled sequences from a table, FASTA + labels or BED + reference + labels, a seeded
    random split, a CNN, and the test sequences' predictions."""

    input: str | os.PathLike
    config: SequenceModelConfig
    labels: str | os.PathLike | None = None
    reference_path: str | os.PathLike | None = None
    sequence_column: str = "sequence"
    label_columns: list[str] | None = None
    id_column: str | None = None
    sizes: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    on_invalid: OnInvalid = "error"
    noun: str = "sequences"
    min_records: int = 10

    def settings(self) -> dict[str, Any]:
        from pmtoolkit.core.config import to_dict

        return {"model": to_dict(self.config), "data": {
            "input": str(self.input), "labels": None if self.labels is None else str(self.labels),
            "reference": None if self.reference_path is None else str(self.reference_path),
            "sequence-column": self.sequence_column, "label-columns": self.label_columns,
            "id-column": self.id_column, "sizes": list(self.sizes),
            "split-seed": self.split_seed, "on-invalid": self.on_invalid}}

    def read(self):
        from pmtoolkit.genomics.reference import Reference

        reference = Reference(self.reference_path) if self.reference_path else None
        rejects = Rejects(str(self.input), "sequence")
        try:
            data = read_training_data(self.input, window=self.config.window,
                                      task=self.config.task, labels=self.labels,
                                      reference=reference, sequence_column=self.sequence_column,
                                      label_columns=self.label_columns,
                                      id_column=self.id_column, rejects=rejects)
        finally:
            if reference is not None:
                reference.close()
        return data, rejects

    def split(self, data) -> Parts:
        idx = sequence_split(len(data), self.sizes, self.split_seed)
        record = {"method": "random", "seed": self.split_seed, "sizes": list(self.sizes),
                  **{k: [data.ids[i] for i in v] for k, v in idx.items()}}
        return Parts(*(data.subset(idx[k]) for k in ("train", "val", "test")), method="random",
                     save=lambda folder: write_json(folder / "split.json", record, indent=None))

    def fit(self, train, valid, *, workdir, checkpoints, resume):
        from pmtoolkit.genomics.model import fit

        return fit(train, valid, self.config, workdir=workdir, checkpoints=checkpoints,
                   resume=resume)

    def summary(self, model) -> dict[str, Any]:
        return {"targets": model.targets}

    def evaluate(self, model, data):
        from pmtoolkit.genomics.model import evaluate

        return evaluate(model, data)

    def write_test(self, model, test, folder: Path) -> None:
        _write_predictions(test, model.predict(test), model.targets,
                           folder / "test_predictions.csv")


def train_file(input: str | os.PathLike, outdir: str | os.PathLike, *,
               config: SequenceModelConfig, labels=None, reference_path=None,
               sequence_column: str = "sequence", label_columns: list[str] | None = None,
               id_column: str | None = None,
               sizes: tuple[float, float, float] = (0.8, 0.1, 0.1), split_seed: int = 0,
               on_invalid: OnInvalid = "error", overwrite: bool = False,
               resume: bool = False) -> dict[str, Any]:
    """Train on a random split of the labelled sequences
    (:func:`pmtoolkit.core.workflow.train_file`); writes ``model.safetensors``,
    ``config.json``, ``metrics.json``, ``split.json``, ``training/history.csv`` and
    ``test_predictions.csv`` into ``outdir``. An interrupted run keeps its checkpoint in
    ``outdir/work`` and continues from it with ``resume``."""
    task = SequenceTask(input, config, labels, reference_path, sequence_column, label_columns,
                        id_column, sizes, split_seed, on_invalid)
    return workflow.train_file(task, outdir, source=input, on_invalid=on_invalid,
                               overwrite=overwrite, resume=resume)


def _write_predictions(data, pred: np.ndarray, targets: list[str], path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"id": data.ids})
    if data.task == "multiclass":
        frame["label"] = [targets[i] for i in data.y]
        frame["predicted"] = [targets[i] for i in pred.argmax(axis=1)]
    for k, t in enumerate(targets):
        if data.task != "multiclass":
            frame[t] = data.y[:, k]
        frame[f"{t}_prediction"] = pred[:, k]
    frame.to_csv(path, index=False)


#: what ``pmt variants score`` runs when no model is named: SpliceAI, what a clinical lab runs
#: on a patient's VCF (an optional extra; without it the default is refused, naming the others)
DEFAULT_SCORE_MODEL = "spliceai"
#: windows per forward batch of the sequence models, and SpliceAI's most (10,000-nt windows)
SEQUENCE_BATCH, SPLICEAI_BATCH = 256, 8
#: target names that make a model a splice-site model (the shipped splice model: EI, IE)
_SPLICE_TARGETS = re.compile(r"^(EI|IE)$|donor|acceptor|splice", re.IGNORECASE)


def is_splice_model(model) -> bool:
    """Whether a sequence model predicts splice sites (an output named ``EI``/``IE``, or
    donor, acceptor, splice): its scores mean something near exon-intron boundaries only."""
    return any(_SPLICE_TARGETS.search(str(t)) for t in getattr(model, "targets", ()))


def score_file(vcf: str | os.PathLike, fasta: str | os.PathLike, output: str | os.PathLike, *,
               model_name: str | None = None, fmt: str | None = None,
               ref_mismatch: str = "error", strands: str | None = None,
               batch_size: int | None = None, scan: int | None = None,
               annotation: str | None = None, distance: int | None = None,
               mask: bool | None = None, device: str = "auto",
               cluster=None) -> dict[str, Any]:
    """Score a VCF with SpliceAI (``model_name`` None or ``"spliceai"``), or a sequence model
    (a file or a shipped name: see :func:`pmtoolkit.genomics.score.score_vcf`). ``None``
    means the model's own default for every option:

    - sequence models: ``strands="both"``, ``batch_size=256``, ``scan`` as the model
      recommends (saved as ``scan`` in its metadata: the splice model scans 20), else 0. A
      splice-site model (:func:`is_splice_model`) checks the variants against the genes of
      ``annotation`` (default: SpliceAI's grch38 table where the extra is installed) and
      warns once with the number outside every gene, where its scores mean little.
      ``distance`` and ``mask`` are SpliceAI's and refused here; so is ``annotation`` for a
      model that is not a splice model.
    - ``spliceai``: SpliceAI's delta scores (:mod:`pmtoolkit.genomics.spliceai`) for the genes
      of ``annotation`` (default ``grch38``) within ``distance`` (50) of each variant, ``mask``
      as its -M, at most 8 windows a batch; ``scan`` is refused (SpliceAI already looks
      ``distance`` either side) and so is ``strands="forward"`` (it reads each gene's strand).
      Without the optional extra, the default model is refused with what to install and the
      shipped alternatives.

    ``cluster`` (a :class:`~pmtoolkit.core.distributed.Cluster`): score the VCF in partitions
    of whole blocks of its lines on Dask (:class:`ScoreJob`); the result is the same file."""
    from pmtoolkit.genomics.reference import Reference
    from pmtoolkit.genomics.score import _output_format

    scoring = _resolve_scoring(vcf, model_name, fmt or _output_format(Path(output)),
                               ref_mismatch=ref_mismatch, strands=strands,
                               batch_size=batch_size, scan=scan, annotation=annotation,
                               distance=distance, mask=mask, device=device)
    if cluster is not None and cluster.distributed:
        import time

        from pmtoolkit.core.distributed import run_job

        with Reference(fasta):  # a bad FASTA stops here; its index is made once, not per worker
            pass
        job = ScoreJob(scoring, str(vcf), str(fasta),
                       cluster.chunks_per_partition(scoring.block, scoring.partition_lines))
        t0 = time.perf_counter()
        info = run_job(job, output, cluster)
        info["seconds"] = seconds = time.perf_counter() - t0
        info["variants_per_second"] = info["variants_scored"] / seconds if seconds else 0.0
        return info
    with Reference(fasta) as ref:
        return scoring.score(vcf, ref, output, scoring.model().get(),
                             scoring.genes().get() if scoring.spliceai else None)


#: lines of a VCF SpliceAI scores together (their sites share reference windows)
SPLICEAI_BLOCK = 64
#: lines of a VCF a partition holds by default on Dask: SpliceAI scores a few variants a
#: second on a core, a sequence model thousands
SPLICEAI_PARTITION_LINES, SEQUENCE_PARTITION_LINES = 1_024, 20_480


@dataclass(frozen=True)
class Scoring:
    """What scores a VCF, every default resolved: a single-process run and each partition of
    a distributed one score with the same."""

    model_name: str  # "spliceai", or a sequence model's name or path
    fmt: str
    ref_mismatch: str
    device: str
    label: str = ""
    #: SpliceAI (decided once, in the client: a worker's folder may differ)
    spliceai: bool = False
    # spliceai
    annotation: str | None = None
    distance: int = 50
    mask: bool = False
    # sequence models
    strands: str = "both"
    batch_size: int = SEQUENCE_BATCH
    scan: int = 0

    @property
    def block(self) -> int:
        """Lines of the VCF scored together."""
        return SPLICEAI_BLOCK if self.spliceai else 4 * self.batch_size

    @property
    def partition_lines(self) -> int:
        return SPLICEAI_PARTITION_LINES if self.spliceai else SEQUENCE_PARTITION_LINES

    def model(self):
        """The model, as a :class:`~pmtoolkit.core.distributed.WorkerModel` (loaded once
        per process)."""
        from pmtoolkit.core.distributed import WorkerModel

        if self.spliceai:
            from pmtoolkit.genomics import spliceai

            return WorkerModel(spliceai.SpliceAI, (self.device,), _spliceai_version())
        return WorkerModel.named(load, self.model_name)

    def genes(self):
        from pmtoolkit.core.distributed import WorkerModel
        from pmtoolkit.genomics import spliceai

        return WorkerModel.named(spliceai.SpliceAnnotation.read, self.annotation or "grch38")

    def score(self, vcf, ref, output, model, genes, **slice_) -> dict[str, Any]:
        """Score ``vcf`` into ``output`` (``slice_``: ``source``, ``line_offset``, ``rejects``,
        ``show_progress`` for a partition)."""
        if self.spliceai:
            from pmtoolkit.genomics import spliceai

            scorer = spliceai.SpliceScorer(model, ref, genes, distance=self.distance,
                                           mask=self.mask, batch_size=self.batch_size)
            return spliceai.score_vcf(vcf, ref, output, scorer=scorer, fmt=self.fmt,
                                      ref_mismatch=self.ref_mismatch, batch_size=self.block,
                                      **slice_)
        from pmtoolkit.genomics.score import score_vcf

        return score_vcf(vcf, ref, model, output, fmt=self.fmt, ref_mismatch=self.ref_mismatch,
                         strands=self.strands, batch_size=self.batch_size,
                         model_name=self.label, scan=self.scan, **slice_)


def _spliceai_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("spliceai")
    except metadata.PackageNotFoundError:
        return ""


def _resolve_scoring(vcf, model_name: str | None, fmt: str, *, ref_mismatch: str,
                     strands: str | None, batch_size: int | None, scan: int | None,
                     annotation: str | None, distance: int | None, mask: bool | None,
                     device: str) -> Scoring:
    """The :class:`Scoring` of :func:`score_file`'s options: refusals and per-model defaults
    (its docstring), the model loaded once here so that a bad name stops the run first."""
    name = DEFAULT_SCORE_MODEL if model_name is None else str(model_name)
    if name == "spliceai" and not Path("spliceai").exists():
        from pmtoolkit.core.errors import MissingResourceError
        from pmtoolkit.genomics import spliceai

        if scan is not None:
            raise BadInputError("--scan does not apply to spliceai: it scores every position "
                                "within --distance of the variant itself",
                                hint="set --distance instead, default 50")
        if strands == "forward":
            raise BadInputError("--strands does not apply to spliceai: it scores each "
                                "variant on the strand of its annotated gene")
        if model_name is None:
            try:
                spliceai.model_files()
            except MissingResourceError:
                raise MissingResourceError(
                    "the default model, spliceai, is not installed",
                    hint='pip install "pmtoolkit[spliceai]", or choose -m mpra (promoters, '
                         'enhancers) or -m splice') from None
        scoring = Scoring("spliceai", fmt, ref_mismatch, device, label="spliceai", spliceai=True,
                          annotation=annotation, distance=50 if distance is None else distance,
                          mask=bool(mask),
                          batch_size=min(batch_size or SPLICEAI_BATCH, SPLICEAI_BATCH))
        scoring.model().get()
        scoring.genes().get()
        return scoring
    for option, value in (("--distance", distance), ("--mask", mask)):
        if value is not None:
            raise BadInputError(f"{option} applies to -m spliceai only, not to {name}")
    p = Path(name)
    if not p.is_file() and not p.suffix and os.sep not in name and \
            name not in ("jaspar", *SHIPPED_MODELS):
        from pmtoolkit.core.errors import unknown_name

        raise unknown_name("model", name, [DEFAULT_SCORE_MODEL, "jaspar", *SHIPPED_MODELS])
    scoring = Scoring(name, fmt, ref_mismatch, device, label=p.name.split(".")[0],
                      strands=strands or "both", batch_size=batch_size or SEQUENCE_BATCH)
    model = scoring.model().get()
    if is_splice_model(model):
        check_genic(vcf, annotation, scoring.label)
    elif annotation is not None:
        raise BadInputError(f"--annotation applies to -m spliceai and splice models only, "
                            f"not to {scoring.label}")
    if scan is None:
        scan = int(getattr(model, "recommended_scan", 0))
    return dataclasses.replace(scoring, scan=scan)


@dataclass
class ScoreJob:
    """:func:`score_file` as a :class:`pmtoolkit.core.distributed.Job`: a partition is whole
    blocks of the VCF's record lines (:attr:`Scoring.block`), read unparsed by the client; a
    worker writes them under the VCF's header into a file of its own and scores it as a
    single-process run scores the whole (same blocks, same line numbers in the rejects), with
    the reference FASTA opened by the worker (a path every worker can read). The merge
    writes the partitions' records in input order under their header: the same file."""

    scoring: Scoring
    vcf: str
    fasta: str
    per_partition: int
    name: str = "variants"

    def __post_init__(self):
        from pmtoolkit.core.io import open_text
        from pmtoolkit.genomics.variants import _count_header_lines, close_vcf, open_vcf

        self.shards = [self.vcf]
        vf = open_vcf(self.vcf)  # not a VCF: the one-line error, before a cluster starts
        is_bcf = bool(getattr(vf, "is_bcf", self.vcf.lower().endswith(".bcf")))
        close_vcf(vf)
        if is_bcf:
            raise BadInputError(f"'{self.vcf}': a distributed run reads a text VCF (plain or "
                                "bgzipped), whose lines it splits among the workers; this is "
                                "a BCF", hint=f"convert it: bcftools view -Oz -o in.vcf.gz "
                                              f"{self.vcf}")
        self.header_lines = _count_header_lines(Path(self.vcf))
        with open_text(self.vcf) as fh:
            self.header = "".join(itertools.islice(fh, self.header_lines))

    def settings(self) -> dict[str, Any]:
        from pmtoolkit.core.distributed import WorkerModel

        return {**{k.replace("_", "-"): v for k, v in dataclasses.asdict(self.scoring).items()
                   if k != "device"},
                "model-version": self.scoring.model().version,
                "fasta": WorkerModel.named(_open_reference, self.fasta).version or self.fasta,
                "partition-size": self.scoring.block * self.per_partition}

    def read(self, shard: str):
        from pmtoolkit.genomics.variants import raw_lines

        size = self.scoring.block * self.per_partition
        lines: list[str] = []
        first = part = None
        for n, text in raw_lines(shard):
            if n <= self.header_lines:
                continue
            p = (n - self.header_lines - 1) // size
            if lines and p != part:
                yield {"first": first, "lines": lines}
                lines = []
            if not lines:
                first = n
            part = p
            lines.append(text)
        if lines or first is None:  # a VCF without records: one partition, for its header
            yield {"first": first or self.header_lines + 1, "lines": lines}

    def run(self, payload):
        import tempfile

        import pandas as pd

        from pmtoolkit.core.distributed import PartResult, WorkerModel

        sc = self.scoring
        ref = WorkerModel.named(_open_reference, self.fasta).get()
        model = sc.model().get()
        genes = sc.genes().get() if sc.spliceai else None
        rejects = Rejects(self.vcf, "variant")
        with tempfile.TemporaryDirectory(prefix="pmt-variants-") as tmp:
            part, out = Path(tmp, "part.vcf"), Path(tmp, f"scored.{sc.fmt}")
            with open(part, "w", encoding="utf-8", newline="") as fh:
                fh.write(self.header)
                fh.writelines(payload["lines"])
            info = sc.score(part, ref, out, model, genes, source=self.vcf,
                            line_offset=payload["first"] - self.header_lines - 1,
                            rejects=rejects, show_progress=False)
            with open(out, encoding="utf-8", newline="") as fh:
                text = fh.readlines()
        n = sum(t.startswith("#") for t in text) if sc.fmt == "vcf" else 1
        return PartResult([pd.DataFrame({"text": text[n:]}, dtype=object)], rejects.items,
                          {"header": "".join(text[:n]), "records": info["records"],
                           "scored": info["variants_scored"]})

    def merge(self, parts, output) -> dict[str, Any]:
        import time

        from pmtoolkit.core.io import atomic_write
        from pmtoolkit.genomics.score import _atomic_bgzf, run_summary, tabix

        t0 = time.perf_counter()
        out = Path(output)
        rejects = Rejects(self.vcf, "variant")
        records = scored = 0
        with (_atomic_bgzf(out) if self.scoring.fmt == "vcf" else
              atomic_write(out, newline="")) as fh:
            for i, part in enumerate(parts):
                if i == 0:
                    fh.write(part.counts["header"])
                fh.write("".join(part.tables[0]["text"]))
                rejects.items.extend(part.rejects)
                records += part.counts["records"]
                scored += part.counts["scored"]
        if self.scoring.fmt == "vcf" and out.name.lower().endswith((".gz", ".bgz")):
            tabix(out)
        return run_summary(rejects, out, self.scoring.fmt, records=records, scored=scored,
                           started=t0)


def _open_reference(path: str):
    from pmtoolkit.genomics.reference import Reference

    return Reference(path)


def check_genic(vcf: str | os.PathLike, annotation: str | None, label: str) -> dict[str, int]:
    """Count the variants of ``vcf`` outside every gene of ``annotation`` (SpliceAI's table by
    name, a table file or a GTF/GFF3; default: the grch38 table, where the spliceai extra is
    installed) and warn once when there are any: a splice-site model's scores mean little
    where there is no exon-intron boundary to make or break. Without an annotation, say once
    that this could not be checked. Returns the counts (``None`` values where unchecked)."""
    from pmtoolkit.core.errors import MissingResourceError
    from pmtoolkit.genomics import spliceai
    from pmtoolkit.genomics.reference import contig_aliases
    from pmtoolkit.genomics.variants import iter_vcf

    try:
        genes = spliceai.SpliceAnnotation.read(annotation or "grch38")
    except MissingResourceError:
        if annotation is not None:
            raise
        log.warning("%s is a splice-site model: whether the variants lie in genes could not be "
                    "checked (no gene annotation; give --annotation genes.gtf, or install "
                    "pmtoolkit[spliceai] for its grch37/grch38 tables)", label)
        return {"variants": None, "outside_genes": None, "unannotated_contigs": None}
    source = annotation or "grch38"
    known = set(genes.chroms)
    total = outside = unknown = 0
    for v in iter_vcf(vcf, rejects=Rejects(str(vcf), "variant")):
        total += 1
        if v.chrom not in known and not known.intersection(contig_aliases(v.chrom)):
            unknown += 1
        elif not len(genes.genes_at(v.chrom, v.pos)):
            outside += 1
    if unknown:
        log.warning("%s: %d of %d variants are on contigs %s does not name, so whether they "
                    "lie in genes could not be checked (give --annotation for this genome)",
                    label, unknown, total, source)
    if outside:
        log.warning("%s: %d of %d variants lie outside every gene of %s: a splice-site "
                    "model's scores mean little there (no exon-intron boundary to make or "
                    "break); for promoters and enhancers use -m mpra", label, outside, total,
                    source)
    elif total > unknown:
        log.info("%s: all %d variants on annotated contigs lie in genes of %s", label,
                 total - unknown, source)
    return {"variants": total, "outside_genes": outside, "unannotated_contigs": unknown}


def score(vcf: str | os.PathLike, fasta: str | os.PathLike, *, model="mpra",
          ref_mismatch: str = "error", strands: str = "both", batch_size: int = 256,
          scan: int | None = None):
    """The effect of every variant of ``vcf`` (alleles cut from the reference ``fasta``) as a
    pandas DataFrame, one row per variant and ALT allele: the numbers ``pmt variants score``
    writes (see :func:`pmtoolkit.genomics.score.score_frame`). ``model``: a loaded sequence
    model, a saved file or a shipped name (``mpra``, ``splice``, ``jaspar``); ``scan`` as
    for :func:`score_file`."""
    from pmtoolkit.genomics.reference import Reference
    from pmtoolkit.genomics.score import score_frame

    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    if scan is None:
        scan = int(getattr(model, "recommended_scan", 0))
    with Reference(fasta) as ref:
        return score_frame(vcf, ref, model, ref_mismatch=ref_mismatch, strands=strands,
                           batch_size=batch_size, scan=scan)


_REGION = re.compile(r"^(?P<chrom>[^:]+):(?P<start>[\d,]+)-(?P<end>[\d,]+)$")


def parse_region(text: str) -> tuple[str, int, int]:
    """``chrom:start-end`` (1-based, inclusive, as samtools) to (chrom, 0-based start, end)."""
    m = _REGION.match(text.strip())
    if not m:
        raise BadInputError(f"region {text!r} is not chrom:start-end",
                            hint="e.g. chr2:60494900-60495100 (1-based, inclusive)")
    start, end = int(m["start"].replace(",", "")), int(m["end"].replace(",", ""))
    if start < 1 or end < start:
        raise BadInputError(f"region {text!r}: need 1 <= start <= end (1-based, inclusive)")
    return m["chrom"], start - 1, end


def ism_file(model_name: str, outdir: str | os.PathLike, *, sequence: str | None = None,
             fasta: str | os.PathLike | None = None, region: str | None = None,
             target: str | None = None, strands: str = "both", overwrite: bool = False
             ) -> dict[str, Any]:
    """Saturation mutagenesis of a DNA string or of a reference region (at most one window,
    centred in it): ``ism.tsv`` (one row per position: reference base, the output change for
    each base, per target), ``gradient_x_input.tsv`` and ``ism.png`` (heat map + logo).

    Motif models (``jaspar``, ``mpra``) score a window's centre, so each substitution is
    scored in its own window centred on it (as ``score`` would score that SNV), over regions
    of up to ``MOTIF_ISM_MAX`` bases; they have no gradient file."""
    import pandas as pd

    from pmtoolkit.genomics.ism import BASES, centred_ism, gradient_x_input, ism

    model = load(model_name)
    centred = not hasattr(model, "network")
    w = MOTIF_ISM_MAX if centred else model.window
    limit = (f"the {w} bases a motif model's ISM takes" if centred
             else f"the model window ({w})")
    flank = model.window // 2 if centred else 0
    if (sequence is None) == (region is None):
        raise BadInputError("give either a sequence or a region (with a reference FASTA)")
    offset, chrom = 0, None
    if region is not None:
        if fasta is None:
            raise BadInputError("a region needs the reference FASTA (-f)")
        from pmtoolkit.genomics.reference import Reference

        chrom, start, end = parse_region(region)
        if end - start > w:
            raise BadInputError(f"region of {end - start} bases is longer than {limit}",
                                hint="give a shorter region")
        if centred:  # the region and the context its centred windows need
            offset, width = start - flank, end - start + 2 * flank
        else:
            offset, width = (start + end) // 2 - w // 2, w
        with Reference(fasta) as ref:
            name = ref.resolve(chrom)
            if name is None:
                raise BadInputError(f"contig {chrom!r} is not in {fasta}")
            if end > ref.lengths[name]:
                raise BadInputError(f"region {region} runs past the end of contig {name} "
                                    f"({ref.lengths[name]:,} bases)",
                                    hint="positions are 1-based and inclusive")
            sequence = ref.fetch(chrom, offset, offset + width)
        lo, hi = start - offset, end - offset
    else:
        sequence = "".join(sequence.split())
        n = len(sequence)
        if n > w:
            raise BadInputError(f"sequence of {n} bases is longer than {limit}")
        lo = 0 if centred else (w - n) // 2
        hi = lo + n
    k = model.targets.index(target) if target else 0
    if target and target not in model.targets:
        raise BadInputError(f"target {target!r} is not one of {model.targets}")
    if centred:
        res, gxi = centred_ism(model, sequence, start=lo, end=hi), None
    else:
        res = ism(model, sequence, start=lo, end=hi, strands=strands)
        gxi = gradient_x_input(model, sequence, target=k, strands=strands)[lo:hi]
    eff = res.effects()
    rows = {"position": (res.positions + offset + 1) if chrom else res.positions - lo + 1,
            "ref": ["ACGTN"[c] for c in res.reference_bases]}
    if chrom:
        rows = {"chrom": chrom, **rows}
    for j, t in enumerate(model.targets):
        for b, base in enumerate(BASES):
            rows[f"{t}_{base}"] = eff[:, b, j]
    frame = pd.DataFrame(rows)
    with atomic_dir(outdir, overwrite=overwrite) as tmp:
        frame.to_csv(tmp / "ism.tsv", sep="\t", index=False, float_format="%.5g")
        if gxi is not None:
            pd.DataFrame({"position": frame["position"], "ref": frame["ref"],
                          "gradient_x_input": gxi}).to_csv(
                tmp / "gradient_x_input.tsv", sep="\t", index=False, float_format="%.5g")
        label = Path(str(model_name)).name.split(".")[0]
        title = f"{label}: {model.targets[k]}" + (f", {region}" if region else "")
        plot_ism(eff[:, :, k], res.reference_bases, tmp / "ism.png", title=title,
                 first_position=int(frame["position"].iloc[0]))
    return {"positions": len(res.positions), "target": model.targets[k],
            "max_abs_effect": float(np.abs(eff[:, :, k]).max()),
            "reference_output": float(np.mean(res.reference_output[..., k]))}


def _draw_letter(ax, letter: str, x: float, y: float, height: float, color: str) -> None:
    """One logo letter filling [x, x + 1] x [y, y + height] (negative heights draw down)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    if abs(height) < 1e-12:
        return
    path = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans",
                                                                weight="bold"))
    box = path.get_extents()
    t = (Affine2D().translate(-box.x0, -box.y0).scale(0.9 / box.width, abs(height) / box.height)
         .translate(x + 0.05, y if height > 0 else y + height))
    ax.add_patch(PathPatch(t.transform_path(path), color=color, lw=0))


def plot_ism(effects: np.ndarray, ref_codes: np.ndarray, path: Path, *, title: str = "",
             first_position: int = 1) -> None:
    """A logo of the reference bases (height: the mean output change when the base is
    mutated away, negated: tall letters matter) above a heat map of every substitution."""
    from pmtoolkit.core.plots import figure

    colors = {"A": "#2e9e44", "C": "#3867d6", "G": "#f5a623", "T": "#d0312d", "N": "#888888"}
    n = len(ref_codes)
    importance = -effects.sum(axis=1) / 3.0  # mean over the three substitutions
    width = min(max(6.0, n * 0.09), 24.0)
    with figure(path, size=(width, 3.6), nrows=2) as (fig, axes):
        ax, hm = axes
        for i, c in enumerate(ref_codes):
            _draw_letter(ax, "ACGTN"[c], i, 0.0, importance[i], colors["ACGTN"[c]])
        span = float(np.abs(importance).max()) or 1.0
        ax.set_xlim(0, n)
        ax.set_ylim(min(0.0, importance.min()) - 0.05 * span,
                    max(0.0, importance.max()) + 0.05 * span)
        ax.axhline(0, color="#999999", lw=0.6)
        ax.set_ylabel("importance")
        ax.set_xticks([])
        ax.set_title(title, fontsize=9)
        lim = float(np.abs(effects).max()) or 1.0
        im = hm.imshow(effects.T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                       extent=(0, n, 3.5, -0.5), interpolation="nearest")
        hm.set_yticks(range(4))
        hm.set_yticklabels(list("ACGT"))
        step = max(1, n // 10)
        hm.set_xticks([i + 0.5 for i in range(0, n, step)])
        hm.set_xticklabels([str(first_position + i) for i in range(0, n, step)], fontsize=7)
        hm.set_xlabel("position")
        cax = hm.inset_axes([1.005, 0.0, 0.012, 1.0])  # keeps both panels one width
        fig.colorbar(im, cax=cax, label="alt - ref")
