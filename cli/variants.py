"""``pmt variants``: score VCFs with DNA sequence models, train them, draw mutagenesis maps."""
from __future__ import annotations

import json
from pathlib import Path

import click

from pmtoolkit.cli.options import (
    cluster_from,
    config_option,
    dataclass_options,
    device_option,
    distributed_options,
    on_invalid_option,
    overwrite_option,
    resolve,
    resume_option,
)
from pmtoolkit.genomics.config import SequenceModelConfig

#: the shipped sequence models, what each is for (score and ism)
SEQUENCE_MODELS_HELP = (
    "mpra: variants in promoters and enhancers; its activity_diff is the predicted log2 change "
    "of reporter expression, ALT vs REF (JASPAR motif weights fitted to saturation-mutagenesis "
    "MPRA effects; on elements it never saw, ranked against measured effects, Spearman 0.187 "
    "per element: a ranked, explained prior, not a calibrated prediction). jaspar: zero-shot "
    "change in JASPAR motif strength (Spearman 0.110 on the same test). splice: a teaching CNN "
    "on 60-nt UCI splice-junction windows (donor EI, acceptor IE, neither N), scanning 20 "
    "bases either side by default. Or a model file from pmt variants train.")
MODEL_HELP = ("What scores the variants [default: spliceai]. spliceai: splice-site gain and "
              "loss (SpliceAI's five models, Jaganathan et al. 2019, on torch) within "
              "--distance of variants in annotated genes, what a clinical lab runs on a VCF; "
              "needs pip install \"pmtoolkit[spliceai]\". " + SEQUENCE_MODELS_HELP +
              " A splice model warns on variants outside annotated genes.")
#: bases either side a variant is scanned (each offset is one more window per allele), and
#: windows per forward batch
MAX_SCAN = 5000
MAX_BATCH = 65_536


@click.group(name="variants")
def variants() -> None:
    """Score genetic variants with DNA sequence models; train models; mutagenesis maps."""


@variants.command()
@click.option("-i", "--input", "vcf", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Variants: VCF or BCF, plain or bgzipped.")
@click.option("-f", "--fasta", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Reference FASTA (plain, or bgzip with .fai/.gzi; indexed if needed).")
@click.option("-m", "--model", "model_name", help=MODEL_HELP)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Annotated .vcf / .vcf.gz (bgzip), or a .tsv / .csv table.")
@click.option("--format", "fmt", type=click.Choice(["vcf", "tsv", "csv"]),
              help="Output format, when the file name does not say.")
@click.option("--ref-mismatch", type=click.Choice(["error", "skip", "warn"]), default="error",
              show_default=True,
              help="A REF allele that differs from the FASTA: stop (exit 2), skip the allele "
                   "(listed in the rejects file), or warn and score it.")
@click.option("--strands", type=click.Choice(["both", "forward"]),
              help="Sequence models: average the outputs of both strands (default), or "
                   "forward only. spliceai reads each gene's strand (forward is refused).")
@click.option("--scan", type=click.IntRange(0, MAX_SCAN),
              help="Sequence models: also score windows centred up to this many bases either "
                   "side and keep the largest change per output (SpliceAI-style delta). "
                   "Default: the model's own (splice: 20; mpra, jaspar: 0). Refused with "
                   "spliceai, which looks --distance either side itself.")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH),
              help="Windows scored at a time. Default per model: 256 for sequence models; "
                   "spliceai: 8 (at most 8 of its 10,000-nt windows per forward pass).")
@click.option("--annotation",
              help="Genes: SpliceAI's table by name (grch37, grch38: from the spliceai "
                   "package), a file in that table format, or a GENCODE/Ensembl .gtf/.gff3 "
                   "(one transcript per gene: Ensembl_canonical, else MANE_Select, else the "
                   "longest). spliceai scores the genes it holds (default grch38); splice "
                   "models count the variants outside every gene and warn (default grch38 "
                   "where the extra is installed). Not used by mpra/jaspar.")
@click.option("--distance", type=click.IntRange(0, 5000),
              help="spliceai: score splice-site changes within this many bases of the variant "
                   "[default: 50].")
@click.option("--mask/--no-mask", default=None,
              help="spliceai: zero a gain at an annotated splice site and a loss at an "
                   "unannotated one (SpliceAI's -M 1) [default: no-mask].")
@device_option
@distributed_options
def score(vcf, fasta, model_name, output, fmt, ref_mismatch, strands, scan, batch_size,
          annotation, distance, mask, device, workers, scheduler, partition_size):
    """Score each variant. spliceai (the default): SpliceAI's delta scores in its VCF field.
    Sequence models (mpra, jaspar, splice, a model file): outputs on the REF and ALT windows,
    their difference and log-odds. Options a model does not use are refused, not ignored.

    Every record is scored or listed, with line and reason, in <output>.rejected.csv.
    With --workers or --scheduler the VCF (plain or bgzipped text) is split into whole
    blocks of its lines, scored on Dask workers that each open the FASTA themselves, and
    merged into the same output; --partition-size counts lines (default 1,024 for spliceai,
    20,480 for sequence models).

    \b
    Example:
      pmt variants score -i in.vcf.gz -f ref.fa.gz -m spliceai -o out.vcf.gz
      pmt variants score -i in.vcf.gz -f ref.fa.gz -m mpra -o out.tsv
    """
    from pmtoolkit.cli.common import startup
    from pmtoolkit.genomics.run import DEFAULT_SCORE_MODEL, score_file

    cluster = cluster_from(workers, scheduler, partition_size)
    startup(model=model_name or DEFAULT_SCORE_MODEL, device=device)
    info = score_file(vcf, fasta, output, model_name=model_name, fmt=fmt,
                      ref_mismatch=ref_mismatch, strands=strands, batch_size=batch_size,
                      scan=scan, annotation=annotation, distance=distance, mask=mask,
                      device=device, cluster=cluster)
    click.echo(f"{info['variants_scored']:,} variant(s) from {info['records']:,} record(s) "
               f"scored ({info['variants_per_second']:,.0f} variants/s), {info['rejected']} "
               f"not scored; written to {output}", err=True)


@variants.command()
@click.option("-i", "--input", "input_", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Labelled sequences: a table (.csv/.tsv/.parquet) with a sequence column, "
                   "a FASTA (+ --labels), or a BED of regions (+ --labels and -f).")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: model, config, metrics, split, test predictions.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False),
              help="FASTA/BED inputs: a table with an id column (FASTA record id, BED name) "
                   "and the label columns.")
@click.option("-f", "--fasta", type=click.Path(exists=True, dir_okay=False),
              help="Reference FASTA (BED input).")
@click.option("-l", "--label-column", "label_columns", multiple=True,
              help="Label column(s); multiclass: the one column of class names. Default for "
                   "FASTA/BED: every column of --labels but the id.")
@click.option("--sequence-column", default="sequence", show_default=True,
              help="Column holding the DNA sequence (tables).")
@click.option("--id-column", help="Column of sequence names (tables); id join key (default "
                                  "'id') for FASTA/BED labels.")
@click.option("--sizes", type=click.FloatRange(0.0, 1.0), nargs=3, default=(0.8, 0.1, 0.1),
              show_default=True, help="Train, validation and test fractions (random split).")
@click.option("--split-seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the split (the model seed is --seed).")
@dataclass_options(SequenceModelConfig)
@on_invalid_option("error")
@config_option
@overwrite_option
@resume_option
def train(input_, outdir, labels, fasta, label_columns, sequence_column, id_column, sizes,
          split_seed, on_invalid, config_file, overwrite, resume, **params):
    """Train a DNA sequence model (basset or dilated CNN) and test it on held-out sequences.

    \b
    Example:
      pmt variants train -i splice.csv -l Class --task multiclass --window 60 -o runs/splice
    """
    from pmtoolkit.cli.common import startup
    from pmtoolkit.genomics.run import train_file

    config = resolve(SequenceModelConfig, params, config_file, section="model")
    startup(seed=config.seed, device=config.device)
    metrics = train_file(input_, outdir, config=config, labels=labels, reference_path=fasta,
                         sequence_column=sequence_column,
                         label_columns=list(label_columns) or None, id_column=id_column,
                         sizes=tuple(sizes), split_seed=split_seed, on_invalid=on_invalid,
                         overwrite=overwrite, resume=resume)
    test = metrics.get("test")
    if test:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in test.items() if "[" not in k)
        click.echo(f"test ({metrics['n_test']} sequences): {shown}", err=True)
    click.echo(f"model written to {outdir / 'model.safetensors'} "
               f"({metrics['train_seconds']:.0f} s of training)", err=True)


@variants.command()
@click.option("-m", "--model", "model_name", default="splice", show_default=True,
              help="A sequence model. " + SEQUENCE_MODELS_HELP)
@click.option("--sequence", help="A DNA sequence (at most the model's window; up to "
                                       "2,000 bases for the motif models mpra and jaspar).")
@click.option("--region", help="A reference region chrom:start-end (1-based, inclusive; at "
                                "most the model's window, or 2,000 bases for a motif model), "
                                "with -f.")
@click.option("-f", "--fasta", type=click.Path(exists=True, dir_okay=False),
              help="Reference FASTA (with --region).")
@click.option("--target", help="The model output to draw (default: the first).")
@click.option("--strands", type=click.Choice(["both", "forward"]), default="both",
              show_default=True, help="Average the outputs of both strands, or forward only.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: ism.tsv, gradient_x_input.tsv (CNNs), ism.png.")
@overwrite_option
def ism(model_name, sequence, region, fasta, target, strands, outdir, overwrite):
    """In-silico saturation mutagenesis: the output change of every substitution, as a table
    and a logo + heat map. Motif models score each substitution in its own window centred on
    it, as `score` scores that SNV.

    \b
    Example:
      pmt variants ism -m splice --sequence CCAGCTGCAT...GTCTG --target EI -o ism/
    """
    from pmtoolkit.genomics.run import ism_file

    info = ism_file(model_name, outdir, sequence=sequence, fasta=fasta, region=region,
                    target=target, strands=strands, overwrite=overwrite)
    click.echo(json.dumps(info), err=True)
    files = [f.name for f in sorted(Path(outdir).iterdir()) if not f.name.startswith(".")]
    click.echo(f"written to {outdir}/ ({', '.join(files)})", err=True)
