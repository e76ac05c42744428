"""The values of 0, -1, NaN and 1e12 that a numeric option accepts, run for real on tiny data:
the command succeeds or exits 2 with one line, never exit 1.

(The values an option refuses are tested in test_numeric_options.py.) In the default run each
command runs once with all its accepted values together (and split fractions on their own,
since 0 0 0 stops a run early); with -m slow every accepted value runs on its own."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.hostile.test_numeric_options import HOSTILE, NUMERIC, accepts

DATA = Path(__file__).resolve().parents[1] / "data"
_count = itertools.count()

GENERATOR = ["--embedding-size", "8", "--hidden-size", "16", "--layers", "1", "--epochs", "1",
             "--batch-size", "16"]
DTI = ["--drug-hidden", "16", "--drug-depth", "1", "--head", "16", "--epochs", "1"]
EHR = ["--epochs", "1", "--embedding-dim", "8", "--hidden-size", "8"]
PICTURES = ["--architecture", "resnet10", "--width", "0.125", "--epochs", "1", "--batch-size", "16"]
SEGMENT = ["--task", "segment", "--classes", "background,disk,square", "--channels", "4",
           "--channels", "8", "--roi-size", "16", "--roi-size", "16", "--epochs", "1"]
#: options whose hostile values end a run before the others matter (a 0 0 0 split; a QC
#: threshold that removes every cell)
ALONE = {"sizes", "split", "fractions", "max_pct_mito"}


class Workspace:
    """Tiny inputs for every command, made on first use."""

    def __init__(self, root: Path, run):
        self.root, self.run = root, run
        self._made: dict[str, object] = {}

    def out(self, name: str) -> Path:
        return self.root / f"{next(_count)}-{name}"

    def _once(self, key, make):
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]

    def _ok(self, *args):
        r = self.run(*args)
        assert r.exit_code == 0, r.output
        return r

    @property
    def generator(self) -> Path:
        def make():
            out = self.root / "generator"
            self._ok("generate", "train", "-i", DATA / "moses_tiny.smi", "-o", out, *GENERATOR)
            return out / "model.safetensors"
        return self._once("generator", make)

    @property
    def optimize_run(self) -> Path:
        def make():
            path = self.root / "optimize.toml"
            path.write_text(f'[optimize]\nprior = "{self.generator}"\nsteps = 2\n'
                            'batch-size = 8\n\n[scoring]\n[[scoring.component]]\ntype = "qed"\n')
            return path
        return self._once("optimize", make)

    @property
    def sequences(self) -> Path:
        def make():
            rng = np.random.default_rng(0)
            seqs = ["".join(rng.choice(list("ACGT"), 60)) for _ in range(40)]
            path = self.root / "sequences.csv"
            pd.DataFrame({"sequence": seqs, "bound": [int("GATA" in s) for s in seqs]}).to_csv(
                path, index=False)
            return path
        return self._once("sequences", make)

    @property
    def cells(self) -> Path:
        def make():
            from tests.expression.conftest import simulate

            path = self.root / "cells.h5ad"
            simulate(n_per_group=20, n_genes=60, groups=2, seed=1).write_h5ad(path)
            return path
        return self._once("cells", make)

    @property
    def bulk(self) -> tuple[Path, Path]:
        def make():
            from tests.expression.conftest import simulate

            adata = simulate(n_per_group=12, n_genes=40, groups=2, seed=4)
            matrix = pd.DataFrame(adata.X.toarray().T, index=adata.var_names,
                                  columns=adata.obs_names)
            matrix.index.name = "gene"
            matrix.to_csv(self.root / "bulk.csv")
            pd.DataFrame({"sample": adata.obs_names, "status": adata.obs["group"].astype(str)}
                         ).to_csv(self.root / "pheno.csv", index=False)
            return self.root / "bulk.csv", self.root / "pheno.csv"
        return self._once("bulk", make)

    @property
    def pictures(self) -> Path:
        def make():
            from PIL import Image

            from tests.imaging.conftest import bright_side

            folder = self.root / "pictures"
            folder.mkdir()
            x, y = bright_side(24, seed=2)
            rows = []
            for i in range(len(x)):
                Image.fromarray(x[i, 0].astype(np.uint8)).save(folder / f"i{i}.png")
                rows.append({"path": f"i{i}.png", "label": ["right", "left"][y[i]]})
            pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
            return folder / "labels.csv"
        return self._once("pictures", make)

    @property
    def volumes(self) -> Path:
        def make():
            import nibabel as nib

            from tests.imaging.conftest import disks

            folder = self.root / "volumes"
            folder.mkdir()
            rows = []
            for k in range(2):
                x, m = disks(4, size=32, seed=k)
                nib.save(nib.Nifti1Image(np.moveaxis(x[:, 0], 0, -1), np.eye(4)),
                         folder / f"v{k}.nii.gz")
                nib.save(nib.Nifti1Image(np.moveaxis(m, 0, -1).astype(np.uint8), np.eye(4)),
                         folder / f"v{k}_mask.nii.gz")
                rows.append({"image": f"v{k}.nii.gz", "mask": f"v{k}_mask.nii.gz"})
            pd.DataFrame(rows).to_csv(folder / "pairs.csv", index=False)
            return folder / "pairs.csv"
        return self._once("volumes", make)

    @property
    def ehr_dataset(self) -> Path:
        def make():
            from pmtoolkit.core import shipped

            events = shipped.path("synthea_example", "dataset").parent
            path = self.root / "ehr.jsonl"
            self._ok("ehr", "build", "-i", events, "-o", path, "--min-visits", "1")
            return path
        return self._once("ehr", make)

    @property
    def cohort(self) -> Path:
        def make():
            out = self.root / "cohort"
            self._ok("fusion", "simulate", "-o", out, "--patients", "60", "--seed", "3")
            return out
        return self._once("cohort", make)

    @property
    def fusion_run(self) -> Path:
        def make():
            out = self.root / "fusion-run"
            self._ok("fusion", "run", "-i", self.cohort, "-o", out, "--epochs", "1", "--fusion",
                     "concat")
            return out
        return self._once("fusion-run", make)

    @property
    def panel(self) -> Path:
        def make():
            out = self.root / "panel"
            self._ok("response", "simulate", "-o", out, "--samples", "16", "--drugs", "10",
                     "--genes", "40", "--module-size", "6", "--seed", "2")
            return out
        return self._once("panel", make)

    @property
    def response_model(self) -> Path:
        def make():
            out = self.root / "response-run"
            self._ok("response", "train", "-i", self.panel / "responses.csv", "-d",
                     self.panel / "drugs.csv", "--features", self.panel / "expression.h5ad",
                     "--epochs", "1", "--baselines", "none", "-o", out)
            return out
        return self._once("response-run", make)


def _fusion_tables(w: Workspace) -> list:
    folder = w.fusion_run / "embeddings"
    tables = sorted(t for t in folder.glob("*.csv") if t.stem != "outcomes")
    return [x for t in tables for x in ("--modality", f"{t.stem}={t}")] + [
        "--outcomes", w.cohort / "outcomes.csv"]


RECIPES = {
    "mol fingerprints": lambda w: ["-i", DATA / "tiny.smi", "-o", w.out("fp.csv")],
    "mol split": lambda w: ["-i", DATA / "esol_tiny.csv", "-o", w.out("split"), "--split",
                            "random"],
    "property train": lambda w: ["-i", DATA / "esol_tiny.csv", "--label-column", "logS",
                                 "--epochs", "2", "--hidden-size", "8", "--ffn-hidden-size", "8",
                                 "--split", "random", "-o", w.out("prop")],
    "generate finetune": lambda w: ["-m", w.generator, "-i", DATA / "moses_tiny.smi",
                                    "--epochs", "1", "-o", w.out("ft")],
    "generate optimize": lambda w: ["-c", w.optimize_run, "-o", w.out("opt")],
    "generate sample": lambda w: ["-m", w.generator, "-n", "5", "-o", w.out("s.csv")],
    "generate train": lambda w: ["-i", DATA / "moses_tiny.smi", *GENERATOR, "-o", w.out("gen")],
    "dti train": lambda w: ["-i", DATA / "dti_tiny.csv", *DTI, "-o", w.out("dti")],
    "variants score": lambda w: ["-i", DATA / "variants_tiny.vcf", "-f",
                                 DATA / "genome_tiny.fa", "-m", "mpra", "--ref-mismatch",
                                 "skip", "-o", w.out("v.tsv")],
    "variants train": lambda w: ["-i", w.sequences, "-l", "bound", "--window", "60",
                                 "--filters", "8", "--filters", "8", "--kernels", "5",
                                 "--kernels", "3", "--pools", "2", "--pools", "2",
                                 "--hidden-size", "8", "--epochs", "1", "-o", w.out("seq")],
    "expr annotate": lambda w: ["-i", w.cells, "--reference", w.cells, "--label-column",
                                "group", "--epochs", "2", "-o", w.out("a.h5ad")],
    "expr classify train": lambda w: ["-i", w.bulk[0], "--labels", w.bulk[1], "--label-column",
                                      "status", "--epochs", "2", "--n-top-genes", "20",
                                      "--folds", "2", "-o", w.out("cls")],
    "expr embed": lambda w: ["-i", w.cells, "--epochs", "2", "--n-latent", "2", "-o",
                             w.out("e.h5ad")],
    "expr run": lambda w: ["-i", w.cells, "--min-genes", "5", "--n-top-genes", "30", "--no-plots",
                           "-o", w.out("run")],
    "imaging train": lambda w: ["-i", w.pictures, *PICTURES, "-o", w.out("img")],
    "imaging train segment": lambda w: ["-i", w.volumes, *SEGMENT, "-o", w.out("seg")],
    "ehr build": lambda w: ["-i", __import__("pmtoolkit.core.shipped", fromlist=["path"]).path(
        "synthea_example", "dataset").parent, "-o", w.out("d.jsonl"), "--min-visits", "1"],
    "ehr evaluate": lambda w: ["-i", w.ehr_dataset, "-o", w.out("ev")],
    "ehr train": lambda w: ["-i", w.ehr_dataset, *EHR, "-o", w.out("ehr")],
    "fusion run": lambda w: ["-i", w.cohort, "--epochs", "1", "--fusion", "concat", "-o",
                             w.out("fr")],
    "fusion simulate": lambda w: ["-o", w.out("cohort"), "--patients", "40"],
    "fusion train": lambda w: [*_fusion_tables(w), "--epochs", "1", "-o",
                                  w.out("f.safetensors")],
    "response simulate": lambda w: ["-o", w.out("panel"), "--samples", "12", "--drugs", "8",
                                    "--genes", "30", "--module-size", "5"],
    "response train": lambda w: ["-i", w.panel / "responses.csv", "-d", w.panel / "drugs.csv",
                                 "--features", w.panel / "expression.h5ad", "--epochs", "1",
                                 "-o", w.out("resp")],
    "response explain": lambda w: ["-m", w.response_model, "-i", w.panel / "responses.csv",
                                   "-d", w.panel / "drugs.csv", "--features",
                                   w.panel / "expression.h5ad", "-o", w.out("why")],
}
#: options only the segmenter has run with its recipe
SEGMENTER_ONLY = {"num_res_units", "overlap", "slice_axis", "lambda_dice", "lambda_ce",
                  "dropout"}


def _accepted():
    """(recipe, option, values) for every value of HOSTILE an option accepts."""
    out = []
    for path, _cmd, p in NUMERIC:
        name = " ".join(path)
        if name == "imaging train" and p.name in SEGMENTER_ONLY:
            name = "imaging train segment"
        for value in HOSTILE:
            if accepts(p, value):
                n = p.nargs if p.nargs > 0 else 1
                out.append((name, p, [p.opts[0], *[value] * n]))
    return out


ACCEPTED = _accepted()


def test_every_command_with_accepted_values_has_a_recipe():
    assert {name for name, _, _ in ACCEPTED} <= set(RECIPES)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from click.testing import CliRunner
    from pmtoolkit.cli.main import cli

    from tests.conftest import _reset_logging

    def run(*args):
        r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
        _reset_logging()
        return r

    return Workspace(tmp_path_factory.mktemp("numeric"), run)


def _args(workspace, recipe, extra):
    command = ["imaging", "train"] if recipe == "imaging train segment" else recipe.split()
    return [*command, *RECIPES[recipe](workspace), *extra]


def _check(workspace, recipe, extra):
    args = _args(workspace, recipe, extra)
    r = workspace.run(*args)
    assert r.exit_code in (0, 2), f"{args}: exit {r.exit_code}\n{r.stderr[-2000:]}"
    if r.exit_code == 2:
        lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
        assert lines[-1].startswith("pmt: error: ") and "Traceback" not in r.stderr, r.stderr
        # the recipe itself must be right, so that the value is what is tested
        assert not any(w in lines[-1] for w in ("No such option", "Missing option",
                                               "Missing argument", "unexpected extra",
                                               "is a setting of")), lines[-1]
    return r


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_each_recipe_runs(workspace, recipe):
    """The tiny invocations succeed as they are, so the runs below test the values."""
    r = workspace.run(*_args(workspace, recipe, []))
    assert r.exit_code == 0, r.stderr[-2000:]


def _groups():
    groups: dict[str, list] = {}
    for name, p, args in ACCEPTED:
        key = f"{name} {p.opts[0]}" if p.name in ALONE else name
        groups.setdefault(key, []).append((name, p, args))
    return groups


GROUPS = _groups()


@pytest.mark.parametrize("key", sorted(GROUPS))
def test_accepted_values_together(workspace, key):
    """Each command once, with every hostile value it accepts (an option given twice keeps
    the first value: the later ones run on their own in the slow test)."""
    name = GROUPS[key][0][0]
    seen, extra = set(), []
    for _, p, args in GROUPS[key]:
        if p.name not in seen:
            seen.add(p.name)
            extra += args
    _check(workspace, name, extra)


@pytest.mark.slow
@pytest.mark.parametrize("name, param, args", ACCEPTED,
                         ids=[f"{n} {' '.join(a)}" for n, _, a in ACCEPTED])
def test_accepted_value_alone(workspace, name, param, args):
    _check(workspace, name, args)
