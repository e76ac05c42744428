"""Hostile inputs to `pmt expr`, `pmt generate` and `pmt federated` (issue 23).

Each case runs the real command on a tiny file that is wrong in one way (truncated, binary,
corrupt, the wrong shape, a header that declares terabytes, NaN where counts belong, a value
out of range): exit code 2, exactly one `pmt: error:` line naming what is wrong, no
traceback, and nothing written — no output, no hidden `.pmt-tmp-*`, no `.work` folder."""
from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest

from tests.expression.conftest import simulate
from tests.hostile.helpers import refused, truncated_gz

NOISE = bytes(np.random.default_rng(0).integers(0, 256, 6000, dtype=np.uint8))


def fails_cleanly(result, dest) -> str:
    """The error line of a run that must have failed as bad input (the shared rule) and left
    nothing at all in ``dest``: no output, temporary file or work folder."""
    return refused(result, dest, leftover=lambda p: True)


@pytest.fixture
def dest(tmp_path):
    """An empty folder the outputs would go to: it must stay empty."""
    d = tmp_path / "dest"
    d.mkdir()
    return d


# ----------------------------------------------------------------------------- expression

def _dense(adata):
    adata = adata.copy()
    adata.X = adata.X.toarray()
    return adata


@pytest.fixture(scope="module")
def expr_inputs(tmp_path_factory):
    import anndata as ad
    import h5py
    import pandas as pd
    import scipy.io
    import scipy.sparse as sp

    d = tmp_path_factory.mktemp("expr_inputs")
    good = simulate(n_per_group=20, n_genes=60)
    good.write_h5ad(d / "good.h5ad")
    whole = (d / "good.h5ad").read_bytes()
    (d / "truncated.h5ad").write_bytes(whole[: len(whole) // 2])
    (d / "noise.h5ad").write_bytes(NOISE)
    (d / "noise.csv").write_bytes(NOISE)
    (d / "text.h5").write_text("barcode,GENE1\nAAAC,1\n" * 20)
    frame = pd.DataFrame(good.X.toarray(), index=good.obs_names, columns=good.var_names)
    frame.index.name = "cell"  # rows are cells (an empty first header would mean genes)
    truncated_gz(d / "truncated.csv.gz", frame.to_csv())
    (d / "empty.csv").write_text("cell,G1,G2\n")
    holes = frame.copy()
    holes.iloc[3, 5] = np.nan
    holes.to_csv(d / "nan.csv")
    pd.DataFrame({"sample": good.obs_names, "y": good.obs["group"].astype(str)}).to_csv(
        d / "labels.csv", index=False)
    # 10x folders: a binary matrix.mtx; a truncated matrix.mtx.gz (v3 layout)
    binary = d / "tenx_binary"
    binary.mkdir()
    (binary / "matrix.mtx").write_bytes(b"%%MatrixMarket matrix coordinate integer general\n"
                                        + NOISE)
    (binary / "genes.tsv").write_text("".join(f"g{i}\tG{i}\n" for i in range(60)))
    (binary / "barcodes.tsv").write_text("".join(f"c{i}\n" for i in range(60)))
    cut = d / "tenx_truncated"
    cut.mkdir()
    scipy.io.mmwrite(cut / "matrix.mtx", sp.csr_matrix(good.X.T.astype(np.int64)))
    mtx = gzip.compress((cut / "matrix.mtx").read_bytes())
    (cut / "matrix.mtx").unlink()
    (cut / "matrix.mtx.gz").write_bytes(mtx[: len(mtx) // 2])
    (cut / "features.tsv.gz").write_bytes(gzip.compress("".join(
        f"g{i}\tG{i}\tGene Expression\n" for i in range(60)).encode()))
    (cut / "barcodes.tsv.gz").write_bytes(gzip.compress("".join(
        f"c{i}\n" for i in range(60)).encode()))
    # a loom whose gene attribute has 3 values for a matrix of 5 genes
    with h5py.File(d / "wrong_shape.loom", "w") as f:
        f["matrix"] = np.ones((5, 4), dtype=np.float32)
        f["row_attrs/Gene"] = np.array([b"A", b"B", b"C"])
        f["col_attrs/CellID"] = np.array([b"c1", b"c2", b"c3", b"c4"])
    # a 1.4 kB file whose header declares a dense 10^6 x 10^6 float32 X (3.6 TiB)
    with h5py.File(d / "huge.h5ad", "w") as f:
        f.create_dataset("X", shape=(10**6, 10**6), dtype="float32", chunks=(64, 64))
    # a sparse X whose row pointers do not match its declared shape
    shutil.copy(d / "good.h5ad", d / "bad_sparse.h5ad")
    with h5py.File(d / "bad_sparse.h5ad", "r+") as f:
        del f["X/indptr"]
        f["X/indptr"] = np.zeros(7, dtype=np.int32)
    ad.AnnData(X=np.zeros((0, 5), np.float32)).write_h5ad(d / "no_cells.h5ad")
    ad.AnnData(X=np.zeros((5, 0), np.float32)).write_h5ad(d / "no_genes.h5ad")
    for name, value in (("nan", np.nan), ("inf", np.inf), ("negative", -3.0)):
        bad = _dense(good)
        bad.X[2, 4] = value
        bad.write_h5ad(d / f"{name}.h5ad")
    (d / "noise.toml").write_bytes(NOISE)
    return d


@pytest.mark.parametrize("name, message", [
    ("truncated.h5ad", ("cannot read '{d}/truncated.h5ad' as an h5ad file: Unable to "
                        "synchronously open file (truncated file")),
    ("noise.h5ad", "cannot read '{d}/noise.h5ad' as an h5ad file"),
    ("noise.csv", "'{d}/noise.csv' line 1 is not UTF-8 text"),
    ("truncated.csv.gz", "'{d}/truncated.csv.gz' is truncated or not valid gzip"),
    ("empty.csv", "holds no matrix"),
    ("tenx_binary", "cannot read '{d}/tenx_binary' as a 10x matrix folder"),
    ("tenx_truncated", "is truncated or not valid gzip"),
    ("text.h5", "cannot read '{d}/text.h5' as a 10x h5 file"),
    ("wrong_shape.loom", "row_attrs/Gene has 3 values but the matrix has 5 genes"),
    ("huge.h5ad", "X, is 1000000 x 1000000) needs 3,725.3 GiB of memory"),
    ("bad_sparse.h5ad", "X declares 60 x 60 but holds 7 row pointers"),
    ("no_cells.h5ad", "empty matrix (0 cells × 5 genes)"),
    ("no_genes.h5ad", "empty matrix (5 cells × 0 genes)"),
    ("nan.h5ad", "X: nan is not a finite number (cell 'cell2', gene 'G4')"),
    ("inf.h5ad", "X: inf is not a finite number (cell 'cell2', gene 'G4')"),
    ("negative.h5ad", "X: negative value -3 (cell 'cell2', gene 'G4')"),
    ("nan.csv", "X: nan is not a finite number (cell 'cell3', gene 'G5')"),
])
def test_expr_run_refuses_the_input(pmt, expr_inputs, dest, name, message):
    line = fails_cleanly(pmt("expr", "run", "-i", expr_inputs / name, "-o", dest / "out"), dest)
    assert message.format(d=expr_inputs) in line


@pytest.mark.parametrize("args, message", [
    (["--n-pcs", "0"], "'--n-pcs': 0 is not in the range 1<=x<=1000"),
    (["--n-pcs", "5000"], "'--n-pcs': 5000 is not in the range"),
    (["--resolution", "nan"], "nan is not a finite number"),
    (["--config", "{d}/noise.toml"], "'{d}/noise.toml' line 1 is not UTF-8 text"),
    (["--config", "n_pcs = nan"], "n-pcs: expected an integer, got nan"),
    (["--config", "n_pcs = 0"], "n-pcs: 0 is out of range, expected [1, 1000]"),
    (["--config", "n_pc = 5"], "unknown key 'n_pc'"),
    (["--config", "vae = 3"], "vae must be a table"),
    (["--config", "embedding = 'vae'\n[vae]\nn_hidden = 100000"], "n-hidden: 100000 is out"),
    (["--markers", "{d}/noise.toml"], "'{d}/noise.toml' line 1 is not UTF-8 text"),
])
def test_expr_run_refuses_the_settings(pmt, expr_inputs, dest, tmp_path, args, message):
    args = [a.format(d=expr_inputs) for a in args]
    if args[0] == "--config" and not args[1].endswith(".toml"):
        (tmp_path / "run.toml").write_text(args[1])
        args[1] = str(tmp_path / "run.toml")
    line = fails_cleanly(pmt("expr", "run", "-i", expr_inputs / "good.h5ad", "-o", dest / "out",
                             *args), dest)
    assert message.format(d=expr_inputs) in line


def test_expr_training_commands_refuse_bad_values_and_leave_nothing(pmt, expr_inputs, dest):
    """Training commands stop before the first checkpoint: no output, and no .work or
    OUTPUT/work folder that a later run would take for an interrupted one."""
    d = expr_inputs
    line = fails_cleanly(pmt("expr", "embed", "-i", d / "negative.h5ad", "-o", dest / "e.h5ad",
                             "--epochs", 1), dest)
    assert "negative value -3" in line
    line = fails_cleanly(pmt("expr", "annotate", "-i", d / "good.h5ad", "--reference",
                             d / "inf.h5ad",
                             "--label-column", "group", "-o", dest / "a.h5ad", "--epochs", 1),
                         dest)
    assert "inf is not a finite number" in line
    line = fails_cleanly(pmt("expr", "classify", "train", "-i", d / "nan.csv", "--labels",
                             d / "labels.csv", "--label-column", "y", "-o", dest / "c"), dest)
    assert "nan is not a finite number" in line
    line = fails_cleanly(pmt("expr", "classify", "train", "-i", d / "good.h5ad", "--label-column",
                             "group", "--folds", 40, "-o", dest / "c"), dest)
    assert "fewer than 40 folds" in line
    line = fails_cleanly(pmt("expr", "embed", "-i", d / "good.h5ad", "-o", dest / "e.h5ad",
                             "--n-hidden", 100_000), dest)
    assert "'--n-hidden': 100000 is not in the range" in line
    line = fails_cleanly(pmt("expr", "de", "-i", d / "nan.h5ad", "--condition-key", "group",
                             "--sample-key", "group", "--case", "type0", "--reference",
                             "type1", "-o", dest / "de.csv"), dest)
    assert "nan is not a finite number" in line


# ----------------------------------------------------------------------------- generate

@pytest.fixture(scope="module")
def gen_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("gen_inputs")
    (d / "noise.toml").write_bytes(NOISE)
    (d / "noise.smi").write_bytes(NOISE)
    (d / "model3.toml").write_text("model = 3\n")
    (d / "modle.toml").write_text("[modle]\nepochs = 3\n")
    (d / "lr_nan.toml").write_text("[model]\nlr = nan\n")
    return d


RUN = """[optimize]
steps = 2
{optimize}
[[scoring.component]]
type = "qed"
{component}
"""


@pytest.mark.parametrize("optimize, component, message", [
    ("sigma = nan", "", "optimize: sigma: nan is not a finite number"),
    ("sigma = -1", "", "optimize: sigma: -1 is out of range, expected [0, 1e+06]"),
    ("sigmaa = 1", "", "unknown key 'sigmaa' in run.toml: optimize (did you mean 'sigma'?"),
    ("batch_size = 1000000", "", "batch-size: 1e+06 is out of range"),
    ("temperature = inf", "", "temperature: inf is not a finite number"),
    ("[optimize.replay]\nsize = -1", "", "optimize: replay: size: -1 is out of range"),
    ("[optimize.diversity]\nmin_score = 2", "", "min-score: 2 is out of range"),
    ("", "weight = nan", "weight: nan is not a finite number"),
    ("", "transform = { kind = \"sigmoid\", low = nan, high = 1 }", "low: nan is not a"),
])
def test_generate_optimize_refuses_the_run_file(pmt, dest, tmp_path, optimize, component,
                                                message):
    run = tmp_path / "run.toml"
    run.write_text(RUN.format(optimize=optimize, component=component))
    line = fails_cleanly(pmt("generate", "optimize", "-c", run, "-o", dest / "o"), dest)
    assert message in line


def test_generate_optimize_refuses_a_binary_or_mistyped_run_file(pmt, gen_inputs, dest,
                                                                 tmp_path):
    line = fails_cleanly(pmt("generate", "optimize", "-c", gen_inputs / "noise.toml", "-o",
                             dest / "o"), dest)
    assert f"'{gen_inputs}/noise.toml' line 1 is not UTF-8 text" in line
    run = tmp_path / "run.toml"
    run.write_text('optimize = 3\n[[scoring.component]]\ntype = "qed"\n')
    line = fails_cleanly(pmt("generate", "optimize", "-c", run, "-o", dest / "o", "--steps", 2),
                         dest)
    assert "optimize: expected a table" in line


@pytest.mark.parametrize("args, message", [
    (["sample", "-o", "{o}/s.csv", "-t", "nan"], "nan is not a finite number"),
    (["sample", "-o", "{o}/s.csv", "-t", "1000"], "'--temperature': 1000.0 is not in"),
    (["sample", "-o", "{o}/s.csv", "-n", "100000001"], "'--num': 100000001 is not in"),
    (["sample", "-o", "{o}/s.csv", "--batch-size", "0"], "'--batch-size': 0 is not in"),
    (["sample", "-o", "{o}/s.csv", "--max-length", "2"], "'--max-length': 2 is not in"),
    (["sample", "-o", "{o}/s.csv", "--seed", "-1"], "'--seed': -1 is not in"),
    (["train", "-i", "{i}/noise.smi", "-o", "{o}/t"], "'{i}/noise.smi' line 1 is not UTF-8"),
    (["train", "-i", "{data}/moses_tiny.smi", "-o", "{o}/t", "--valid-fraction", "1"],
     "'--valid-fraction': 1.0 is not in the range 0<=x<1"),
    (["train", "-i", "{data}/moses_tiny.smi", "-o", "{o}/t", "--epochs", "0"],
     "'--epochs': 0 is not in"),
    (["train", "-i", "{data}/moses_tiny.smi", "-o", "{o}/t", "--hidden-size", "100000"],
     "'--hidden-size': 100000 is not in"),
    (["train", "-i", "{data}/moses_tiny.smi", "-o", "{o}/t", "-c", "{i}/noise.toml"],
     "'{i}/noise.toml' line 1 is not UTF-8 text"),
    (["train", "-i", "{data}/moses_tiny.smi", "-o", "{o}/t", "-c", "{i}/model3.toml"],
     "'{i}/model3.toml': 'model' must be a table of settings"),
    (["train", "-i", "{data}/moses_tiny.smi", "-o", "{o}/t", "-c", "{i}/modle.toml"],
     "unknown table 'modle' in '{i}/modle.toml' (did you mean [model]? tables: [model])"),
    (["train", "-i", "{data}/moses_tiny.smi", "-o", "{o}/t", "-c", "{i}/lr_nan.toml"],
     "lr_nan.toml' [model]: lr: nan is not a finite number"),
    (["finetune", "-i", "{data}/moses_tiny.smi", "-o", "{o}/f", "--lr", "nan"],
     "nan is not a finite number"),
    (["finetune", "-i", "{data}/moses_tiny.smi", "-o", "{o}/f", "--lr", "0"],
     "'--lr': 0.0 is not in"),
    (["finetune", "-i", "{data}/moses_tiny.smi", "-o", "{o}/f", "--epochs", "1000000"],
     "'--epochs': 1000000 is not in"),
    (["evaluate", "-i", "{i}/noise.smi", "-o", "{o}/e"], "'{i}/noise.smi' line 1 is not"),
    (["evaluate", "-i", "{data}/moses_tiny.smi", "--test", "{data}/moses_tiny.smi",
      "--reference-cache", "{i}/noise.toml", "-o", "{o}/e", "--no-fcd"],
     "'{i}/noise.toml' is not a reference cache written by pmt generate evaluate"),
])
def test_generate_refuses_the_options(pmt, gen_inputs, test_data, dest, args, message):
    fill = {"o": dest, "i": gen_inputs, "data": test_data}
    line = fails_cleanly(pmt("generate", *[a.format(**fill) for a in args]), dest)
    assert message.format(**fill) in line


# ----------------------------------------------------------------------------- federated

@pytest.mark.parametrize("text, sets, message", [
    (None, [], "'{f}' line 1 is not UTF-8 text"),
    ("[federated]\ndata = 'esol'\nalpha = nan\n", [], "alpha: nan is not a finite number"),
    ("[federated]\ndata = 'esol'\nsites = 100000\n", [], "sites: 100000 is out of range"),
    ("[federated]\ndata = 'esol'\n[model]\nhiden_size = 3\n", [],
     "unknown key 'hiden_size' in [model] (did you mean 'hidden-size'?"),
    ("[federated]\ndata = 'esol'\n[model]\nhidden_size = 100000\n", [],
     "[model]: hidden-size: 100000 is out of range"),
    ("[federated]\ndata = 'esol'\n[data]\nsmiles_colum = 'x'\n", [],
     "unknown key 'smiles_colum' in [data]"),
    ("[federated]\ndata = 'esol'\n", ["rounds=" + "[" * 50_000], "nested too deeply"),
    ("[federated]\ndata = 'esol'\n", ["rounds=3\nsites=900"], "must be on one line"),
    ("[federated]\ndata = 'esol'\n", ["timeout=inf"], "timeout: inf is not a finite"),
])
@pytest.mark.parametrize("command", ["split", "run"])
def test_federated_refuses_the_run_file(pmt, gen_inputs, dest, tmp_path, command, text, sets,
                                        message):
    config = gen_inputs / "noise.toml" if text is None else tmp_path / "run.toml"
    if text is not None:
        config.write_text(text)
    args = ["-o", dest / "f"] if command == "run" else []
    overrides = [x for s in sets for x in ("--set", s)]
    line = fails_cleanly(pmt("federated", command, "-c", config, *args, *overrides), dest)
    assert message.format(f=config) in line


def test_federated_starts_processes_with_argument_lists_only():
    """No user string reaches a shell: every process is started from an argument list."""
    import ast
    from pathlib import Path

    import pmtoolkit.federated

    for path in Path(pmtoolkit.federated.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = ast.unparse(node.func)
                assert name not in ("os.system", "os.popen", "subprocess.getoutput",
                                    "subprocess.getstatusoutput"), (path.name, name)
                for kw in node.keywords:
                    assert not (kw.arg == "shell" and ast.unparse(kw.value) != "False"), \
                        (path.name, ast.unparse(node))


def test_the_good_fixtures_are_accepted(expr_inputs):
    """The hostile files above are each one change away from these, which read fine."""
    from pmtoolkit.expression.io import read

    adata = read(expr_inputs / "good.h5ad")
    assert adata.shape == (60, 60)
    json.dumps({"shape": list(adata.shape)})
