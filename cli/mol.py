"""``pmt mol``: standardise, describe, fingerprint, filter and split molecule files."""
from __future__ import annotations

from pathlib import Path

import click
from pmtoolkit.cli.options import (
    SHARDS_HELP,
    InputFiles,
    chunk_size_option,
    cluster_from,
    dataclass_options,
    distributed_options,
    given,
    on_invalid_option,
    overwrite_option,
    seed_option,
)

from pmtoolkit.chem.fingerprints import FingerprintConfig
from pmtoolkit.chem.molecules import MAX_ATOMS, MAX_ATOMS_CEILING, SMILES_CHARS_PER_ATOM
from pmtoolkit.chem.standardize import StandardizeConfig

FORMATS = ["csv", "tsv", "parquet", "smi", "sdf"]


def max_atoms_option(f):
    return click.option("--max-atoms", type=click.IntRange(1, MAX_ATOMS_CEILING),
                        default=MAX_ATOMS, show_default=True,
                        help="Molecules with more heavy atoms, or SMILES longer than "
                             f"{SMILES_CHARS_PER_ATOM} characters per allowed atom, are invalid "
                             "records: the cost of one molecule grows with the cube of its "
                             "size.")(f)


def io_options(f):
    f = distributed_options(f)
    f = chunk_size_option(10_000)(f)
    f = max_atoms_option(f)
    f = click.option("--format", "fmt", type=click.Choice(FORMATS),
                     help="Input format (default: from the file suffix).")(f)
    f = click.option("-s", "--smiles-column", default="smiles", show_default=True,
                     help="Column holding the SMILES (tables).")(f)
    f = click.option("-o", "--output", required=True, type=click.Path(dir_okay=False,
                                                                     allow_dash=True),
                     help="Output table (.csv, .tsv, .parquet, optionally .gz; - for stdout).")(f)
    f = click.option("-i", "--input", "input_", required=True,
                     type=InputFiles(),
                     help="Molecules: .csv/.tsv/.parquet with a SMILES column, .smi or .sdf "
                          "(optionally .gz); - for stdin." + SHARDS_HELP)(f)
    return f


@click.group()
def mol() -> None:
    """Read, standardise, describe, fingerprint, filter and split molecules."""


def _run(input_, output, smiles_column, fmt, on_invalid, max_atoms, chunk_size, workers,
         scheduler, partition_size, make, *args):
    """Run the transform ``make(*args)`` over the input: built here, or once per worker on
    Dask (``--workers``/``--scheduler``)."""
    from pmtoolkit.cli.common import startup

    from pmtoolkit.chem import run as chem_run
    from pmtoolkit.core.distributed import WorkerModel

    cluster = cluster_from(workers, scheduler, partition_size, input_)
    startup()
    n, rejected = chem_run.transform_file(WorkerModel(make, args), input_, output,
                                          smiles_column=smiles_column, fmt=fmt,
                                          on_invalid=on_invalid, max_atoms=max_atoms,
                                          chunksize=chunk_size, cluster=cluster)
    invalid = f" ({rejected} invalid)" if rejected else ""
    click.echo(f"{n} molecules written to {output}{invalid}", err=True)


@mol.command()
@io_options
@dataclass_options(StandardizeConfig)
@on_invalid_option("skip")
def standardize(input_, output, smiles_column, fmt, max_atoms, chunk_size, workers, scheduler,
                partition_size, on_invalid, **params):
    """Standardise molecules (cleanup, largest fragment, neutralise, optional tautomer).

    Adds the column standardized_smiles; rows stay aligned with the input.

    \b
    Example:
      pmt mol standardize -i raw.csv -o clean.csv
    """
    from pmtoolkit.chem import run as chem_run
    from pmtoolkit.core.config import merge

    config = merge(StandardizeConfig, given(StandardizeConfig, params))
    _run(input_, output, smiles_column, fmt, on_invalid, max_atoms, chunk_size, workers,
         scheduler, partition_size, chem_run.Standardize, config)


@mol.command()
@io_options
@click.option("--names", help="Comma-separated RDKit descriptor names (default: all 2D ones).")
@on_invalid_option("skip")
def descriptors(input_, output, smiles_column, fmt, max_atoms, chunk_size, workers, scheduler,
                partition_size, on_invalid, names):
    """Compute RDKit 2D descriptors, QED and SA score.

    Ipc and AvgIpc are left empty above 200 heavy atoms, the BCUT2D values above 500: their
    cost outgrows the rest (pmtoolkit.chem.descriptors.COSTLY_DESCRIPTORS).

    \b
    Example:
      pmt mol descriptors -i mols.smi --names MolWt,TPSA,MolLogP -o descriptors.csv
    """
    from pmtoolkit.chem import run as chem_run

    chosen = None
    if names is not None:
        chosen = [n.strip() for n in names.split(",") if n.strip()]
        if not chosen:
            raise click.BadParameter("no descriptor named", param_hint="--names")
    _run(input_, output, smiles_column, fmt, on_invalid, max_atoms, chunk_size, workers,
         scheduler, partition_size, chem_run.Descriptors, chosen)


@mol.command()
@io_options
@dataclass_options(FingerprintConfig)
@on_invalid_option("skip")
def fingerprints(input_, output, smiles_column, fmt, max_atoms, chunk_size, workers, scheduler,
                 partition_size, on_invalid, **params):
    """Compute fingerprints (Morgan/ECFP bits or counts, RDKit, atom pairs, torsions, MACCS).

    One column per bit (fp_0, fp_1, ...); Parquet output is compact.

    \b
    Example:
      pmt mol fingerprints -i mols.csv -o fingerprints.parquet
    """
    from pmtoolkit.chem import run as chem_run
    from pmtoolkit.core.config import merge

    config = merge(FingerprintConfig, given(FingerprintConfig, params))
    _run(input_, output, smiles_column, fmt, on_invalid, max_atoms, chunk_size, workers,
         scheduler, partition_size, chem_run.Fingerprints, config)


@mol.command(name="filter")
@io_options
@click.option("--alerts", default="PAINS,BRENK", show_default=True,
              help="Alert catalogs: PAINS, BRENK, NIH, ZINC, CHEMBL (comma-separated).")
@click.option("--passing-only", is_flag=True,
              help="Write only molecules that pass Lipinski, Veber and have no alert.")
@on_invalid_option("skip")
def filter_(input_, output, smiles_column, fmt, max_atoms, chunk_size, workers, scheduler,
            partition_size, on_invalid, alerts, passing_only):
    """Flag rule-of-five and Veber violations, QED, SA score and structural alerts.

    \b
    Example:
      pmt mol filter -i mols.csv --alerts PAINS --passing-only -o clean.csv
    """
    from pmtoolkit.chem import run as chem_run

    catalogs = [a.strip() for a in alerts.split(",") if a.strip()]
    _run(input_, output, smiles_column, fmt, on_invalid, max_atoms, chunk_size, workers,
         scheduler, partition_size, chem_run.Filter, catalogs, passing_only)


@mol.command()
@click.option("-i", "--input", "input_", required=True, type=click.Path(dir_okay=False),
              help="Molecule table or file.")
@click.option("-o", "--output", "outdir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for split.json and train/val/test tables.")
@click.option("-s", "--smiles-column", default="smiles", show_default=True,
              help="Column holding the SMILES (tables).")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format (default: from the file suffix).")
@click.option("--split", "method", type=click.Choice(["random", "scaffold", "balanced_scaffold",
                                                      "stratified", "kfold"]),
              default="balanced_scaffold", show_default=True, help="Split method.")
@click.option("--sizes", nargs=3, type=click.FloatRange(0, 1), default=(0.8, 0.1, 0.1),
              show_default=True, help="Train, validation and test fractions (summing to 1).")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True,
              help="k for --split kfold.")
@click.option("--label-column", "target_column",
              help="Column of the values to stratify on (--split stratified).")
@seed_option
@max_atoms_option
@on_invalid_option("error")
@overwrite_option
def split(input_, outdir, smiles_column, fmt, method, sizes, folds, target_column, seed,
          max_atoms, on_invalid, overwrite):
    """Split molecules into train/validation/test sets, saved so they reload exactly.

    \b
    Example:
      pmt mol split -i esol.csv --split scaffold --sizes 0.8 0.1 0.1 -o splits/
    """
    from pmtoolkit.cli.common import startup

    from pmtoolkit.chem import run as chem_run

    if method != "kfold" and not abs(sum(sizes) - 1.0) <= 1e-6:
        raise click.BadParameter(f"{' '.join(f'{s:g}' for s in sizes)} sum to {sum(sizes):g}, "
                                 "not 1", param_hint="--sizes")
    startup(seed=seed)
    counts = chem_run.split_file(input_, outdir, method=method, sizes=sizes, folds=folds,
                            target_column=target_column, seed=seed, smiles_column=smiles_column,
                            fmt=fmt, on_invalid=on_invalid, overwrite=overwrite,
                            max_atoms=max_atoms)
    click.echo(f"split written to {outdir}: {counts}", err=True)
