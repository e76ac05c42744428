"""Hostile input to `pmt dti` and `pmt variants` (issue 23): DNA given as a protein, records
of one name, stale or inconsistent FASTA indexes, truncated and binary files, regions past a
contig's end, absurd sizes. Each is exit 2 with one `pmt: error:` line, and nothing written:
no output, no hidden temporary file."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.hostile.helpers import binary, refused, truncated_gz

#: a 40-residue sequence that is DNA, not a protein
DNA = "ATGGCGTACGTTAGCCGATCGATCGGCTAGCTAGGCTAAC"
PROTEIN = "MEIDMTYQLKVIQQSLEQEEAEHKATKARLADKNKIYESIEEAKSEAMKEMEKKLLEERT"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An untrained tiny pair model and an untrained tiny 3-class sequence model, saved (what
    they predict does not matter: every case below must stop before scoring)."""
    import torch

    from pmtoolkit.dti.config import DTIConfig
    from pmtoolkit.dti.model import DTIModel
    from pmtoolkit.genomics.config import SequenceModelConfig
    from pmtoolkit.genomics.model import SequenceModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models")
    dti_cfg = DTIConfig(drug_hidden=8, protein_embedding=8, protein_filters=(8, 8, 8),
                        head=(16,), device="cpu")
    DTIModel(dti_cfg, DTIModel.build_network(dti_cfg, {})).save(folder / "dti.safetensors")
    seq_cfg = SequenceModelConfig(task="multiclass", window=24, filters=(8, 8), kernels=(5, 3),
                                  pools=(2, 2), hidden=8, device="cpu")
    SequenceModel(seq_cfg, targets=["EI", "IE", "N"]).save(folder / "seq.safetensors")
    return {"dti": folder / "dti.safetensors", "seq": folder / "seq.safetensors"}


def _refused(result, folder, *needles):
    return refused(result, folder, *needles,
                   leftover=lambda p: p.name.startswith(("out", "hits", "run")))


# --------------------------------------------------------------------------- pmt dti

def _screen(pmt, models, target, tmp_path, *extra):
    return pmt("dti", "screen", "--target", target, "--library", tmp_path / "lib.smi", "-m",
               models["dti"], "-o", tmp_path / "hits.csv", *extra)


@pytest.fixture
def library(tmp_path):
    (tmp_path / "lib.smi").write_text("CCO ethanol\nc1ccccc1O phenol\n")
    return tmp_path / "lib.smi"


@pytest.mark.parametrize("case", ["dna", "rna", "letters", "duplicate", "unnamed-clash",
                                  "truncated-gz", "binary"])
def test_screen_refuses_bad_targets(pmt, models, library, tmp_path, case):
    fasta = tmp_path / "targets.fa"
    needles = []
    if case == "dna":
        fasta.write_text(f">kinase\n{PROTEIN}\n>gene\n{DNA}\n")
        needles = ["'gene'", "DNA or RNA", "line 3"]
    elif case == "rna":
        fasta.write_text(f">mrna\n{DNA.replace('T', 'U')}\n")
        needles = ["'mrna'", "DNA or RNA"]
    elif case == "letters":
        fasta.write_text(f">p1\n{PROTEIN[:10]}1{PROTEIN[10:]}\n")
        needles = ["'p1'", "non-amino-acid"]
    elif case == "duplicate":
        fasta.write_text(f">p1\n{PROTEIN}\n>p2\n{PROTEIN[5:]}\n>p1\n{PROTEIN[9:]}\n")
        needles = ["'p1'", "line 5", "first at line 1"]
    elif case == "unnamed-clash":  # the second record would be called target2 as well
        fasta.write_text(f">target2\n{PROTEIN}\n>\n{PROTEIN[5:]}\n")
        needles = ["'target2'", "used twice"]
    elif case == "truncated-gz":
        fasta = truncated_gz(tmp_path / "targets.fa.gz", f">p1\n{PROTEIN * 400}\n")
        needles = ["targets.fa.gz", "truncated"]
    else:
        fasta = binary(tmp_path / "targets.fa")
        needles = ["targets.fa", "binary"]
    _refused(_screen(pmt, models, fasta, tmp_path), tmp_path, *needles)


@pytest.mark.parametrize("option, value", [("--top", 10**9), ("--chunk-size", 10**9),
                                           ("--top", 0)])
def test_screen_refuses_absurd_sizes(pmt, models, library, tmp_path, option, value):
    (tmp_path / "t.fa").write_text(f">p1\n{PROTEIN}\n")
    _refused(_screen(pmt, models, tmp_path / "t.fa", tmp_path, option, value), tmp_path,
             option)


def test_predict_flags_dna_targets_and_refuses_them_on_error(pmt, models, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"smiles": ["CCO", "CCO"], "sequence": [PROTEIN, DNA]}).to_csv(pairs,
                                                                                 index=False)
    r = pmt("dti", "predict", "-i", pairs, "-m", models["dti"], "-o", tmp_path / "out.csv",
            "--on-invalid", "error")
    _refused(r, tmp_path, "line 3", "DNA or RNA")
    r = pmt("dti", "predict", "-i", pairs, "-m", models["dti"], "-o", tmp_path / "pred.csv")
    assert r.exit_code == 0, r.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert np.isfinite(pred["prediction"][0]) and np.isnan(pred["prediction"][1])
    assert "DNA or RNA" in pred["error"][1] and pd.isna(pred["error"][0])


def _davis(tmp_path, broken: str):
    """A DeepDTA-style davis folder of 2 drugs x 2 proteins with one file broken."""
    root = tmp_path / "davis"
    (root / "folds").mkdir(parents=True)
    files = {
        "ligands_can.txt": '{"d1": "CCO", "d2": "c1ccccc1O"}',
        "proteins.txt": f'{{"p1": "{PROTEIN}", "p2": "{PROTEIN[3:]}"}}',
        "drug-target_interaction_affinities_Kd__Davis_et_al.2011v1.txt": "10 100\n1000 10000\n",
        "folds/train_fold_setting1.txt": "[[0, 1], [2]]",
        "folds/test_fold_setting1.txt": "[3]",
    }
    if broken == "json":
        files["ligands_can.txt"] = '{"d1": "CCO", "d2": '
    elif broken == "binary":
        files["proteins.txt"] = None
        binary(root / "proteins.txt")
    elif broken == "dna":
        files["proteins.txt"] = f'{{"p1": "{PROTEIN}", "p2": "{DNA}"}}'
    elif broken == "matrix":
        files["drug-target_interaction_affinities_Kd__Davis_et_al.2011v1.txt"] = "10 x\n1 2\n"
    elif broken == "kd-zero":
        files["drug-target_interaction_affinities_Kd__Davis_et_al.2011v1.txt"] = "0 1\n1 2\n"
    elif broken == "fold":
        files["folds/test_fold_setting1.txt"] = "[99]"
    elif broken == "missing":
        files["ligands_can.txt"] = None
    for name, text in files.items():
        if text is not None:
            (root / name).write_text(text)
    return root


@pytest.mark.parametrize("broken, needle", [
    ("json", "ligands_can.txt"), ("binary", "proteins.txt"), ("dna", "'p2'"),
    ("matrix", "line 1"), ("kd-zero", "Kd of zero"), ("fold", "test_fold_setting1.txt"),
    ("missing", "ligands_can.txt")])
def test_train_refuses_a_broken_benchmark_folder(pmt, tmp_path, broken, needle):
    root = _davis(tmp_path, broken)
    r = pmt("dti", "train", "-i", root, "--split", "setting1", "-o", tmp_path / "run",
            "--epochs", 1, "--device", "cpu")
    _refused(r, tmp_path, needle)


@pytest.mark.parametrize("option", [["--fold", "7"], ["--split-seed", "-1"],
                                    ["--sizes", "0.8", "0.1", "2"],
                                    ["--pairs-per-batch", str(10**9)]])
def test_train_refuses_out_of_range_options(pmt, test_data, tmp_path, option):
    r = pmt("dti", "train", "-i", test_data / "dti_tiny.csv", "-o", tmp_path / "run", *option)
    _refused(r, tmp_path, option[0])


def test_train_refuses_a_truncated_table(pmt, test_data, tmp_path):
    table = truncated_gz(tmp_path / "pairs.csv.gz",
                          (test_data / "dti_tiny.csv").read_text() * 20)
    r = pmt("dti", "train", "-i", table, "-o", tmp_path / "run", "--epochs", 1)
    _refused(r, tmp_path, "pairs.csv.gz", "truncated")


# --------------------------------------------------------------------------- pmt variants

@pytest.fixture
def genome(tmp_path, test_data):
    """A copy of the tiny genome (chr1: 300 bases, chrM: 60) with its index."""
    path = tmp_path / "g.fa"
    shutil.copy(test_data / "genome_tiny.fa", path)
    shutil.copy(test_data / "genome_tiny.fa.fai", tmp_path / "g.fa.fai")
    return path


def _score(pmt, models, vcf, fasta, tmp_path, *extra):
    return pmt("variants", "score", "-i", vcf, "-f", fasta, "-m", models["seq"], "-o",
               tmp_path / "out.tsv", "--ref-mismatch", "skip", *extra)


@pytest.mark.parametrize("case", ["duplicate", "duplicate-gzip", "stale-fai", "foreign-fai",
                                  "malformed-fai", "truncated-bgzip", "binary", "stale-gzi"])
def test_score_refuses_a_bad_reference(pmt, models, test_data, genome, tmp_path, case):
    import pysam

    text = genome.read_text()
    fasta, needles = genome, []
    if case == "duplicate":  # samtools' index of it silently keeps the first chr1
        genome.write_text(text + ">chr1 again\nACGTACGT\n")
        (tmp_path / "g.fa.fai").unlink()
        pysam.faidx(str(genome))
        needles = ["'chr1' appears twice", "g.fa"]
    elif case == "duplicate-gzip":  # plain gzip: read into memory
        fasta = tmp_path / "dup.fa.gz"
        fasta.write_bytes(gzip.compress((text + ">chrM\nACGT\n").encode()))
        needles = ["'chrM' appears twice", "line"]
    elif case == "stale-fai":  # a contig added in front after indexing
        genome.write_text(">chr0\n" + "ACGT" * 30 + "\n" + text)
        needles = ["g.fa.fai'", "does not match", "delete it to rebuild"]
    elif case == "foreign-fai":  # the same records wrapped at 70 columns, not 60
        records = [r.split("\n", 1) for r in text.split(">")[1:]]
        genome.write_text("".join(
            f">{head}\n" + "".join(seq[i:i + 70] + "\n" for i in range(0, len(seq), 70))
            for head, seq in ((h, b.replace("\n", "")) for h, b in records)))
        needles = ["g.fa.fai'", "does not match", "delete it to rebuild"]
    elif case == "malformed-fai":
        (tmp_path / "g.fa.fai").write_text("chr1\t300\tx\n")
        needles = ["g.fa.fai", "not a FASTA index"]
    elif case == "truncated-bgzip":
        fasta = tmp_path / "g.fa.gz"
        pysam.tabix_compress(str(genome), str(fasta))
        data = fasta.read_bytes()
        fasta.write_bytes(data[:len(data) - 40])
        needles = ["g.fa.gz", "truncated"]
    elif case == "binary":
        fasta = binary(tmp_path / "b.fa")
        needles = ["b.fa", "FASTA"]
    else:  # the .gzi of an earlier compression of a different file
        fasta = tmp_path / "g.fa.gz"
        other = tmp_path / "other.fa"
        other.write_text(">chr1\n" + ("ACGTTGCA" * 8 + "\n") * 3000)
        pysam.tabix_compress(str(other), str(fasta))
        pysam.faidx(str(fasta))
        pysam.tabix_compress(str(genome), str(fasta), force=True)
        needles = ["g.fa.gz.fai", "does not match"]
    _refused(_score(pmt, models, test_data / "variants_tiny.vcf", fasta, tmp_path), tmp_path,
             *needles)


@pytest.mark.parametrize("case", ["truncated-bgzip", "plain-gzip", "binary", "corrupt-block"])
def test_score_refuses_a_bad_vcf(pmt, models, test_data, genome, tmp_path, case):
    import pysam

    text = (test_data / "variants_tiny.vcf").read_text()
    head = "".join(ln + "\n" for ln in text.splitlines() if ln.startswith("#"))
    body = "".join(ln + "\n" for ln in text.splitlines()
                   if not ln.startswith("#") and "notanumber" not in ln)
    plain = tmp_path / "v.vcf"
    plain.write_text(head + body * 2000)
    vcf = tmp_path / "v.vcf.gz"
    needles = ["v.vcf.gz"]
    if case == "truncated-bgzip":
        pysam.tabix_compress(str(plain), str(vcf))
        vcf.write_bytes(vcf.read_bytes()[:-100])
        needles.append("truncated")
    elif case == "plain-gzip":
        vcf.write_bytes(gzip.compress(plain.read_bytes()))
        needles.append("bgzip")
    elif case == "binary":
        vcf = binary(tmp_path / "v.vcf")
        needles = ["v.vcf", "not a VCF"]
    else:
        pysam.tabix_compress(str(plain), str(vcf))
        data = bytearray(vcf.read_bytes())
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0xFF
        vcf.write_bytes(bytes(data))
    _refused(_score(pmt, models, vcf, genome, tmp_path), tmp_path, *needles)


@pytest.mark.parametrize("option, value", [("--batch-size", 10**9), ("--scan", 10**9),
                                           ("--batch-size", 0)])
def test_score_refuses_absurd_sizes(pmt, models, test_data, genome, tmp_path, option, value):
    r = _score(pmt, models, test_data / "variants_tiny.vcf", genome, tmp_path, option, value)
    _refused(r, tmp_path, option)


@pytest.mark.parametrize("region, needles", [
    ("chr1:290-310", ["chr1", "300 bases", "past the end"]),
    ("chr1:400-410", ["past the end"]),
    ("chr1:0-10", ["1 <= start <= end"]),
    ("chr1:20-10", ["1 <= start <= end"]),
    ("chr9:1-10", ["'chr9'"])])
def test_ism_refuses_a_region_off_its_contig(pmt, models, genome, tmp_path, region, needles):
    r = pmt("variants", "ism", "-m", models["seq"], "--region", region, "-f", genome, "-o",
            tmp_path / "out")
    _refused(r, tmp_path, *needles)


def test_ism_of_a_motif_model_refuses_a_region_past_the_contig(pmt, genome, tmp_path):
    """The case of the report: 200-900 on a short contig was padded with N and scored."""
    r = pmt("variants", "ism", "-m", "mpra", "--region", "chr1:200-900", "-f", genome, "-o",
            tmp_path / "out")
    _refused(r, tmp_path, "300 bases")


@pytest.mark.parametrize("case", ["truncated-gz", "binary"])
def test_train_refuses_a_broken_table(pmt, tmp_path, case):
    rng = np.random.default_rng(0)
    rows = "".join(f"{''.join(rng.choice(list('ACGT'), 24))},{'ab'[i % 2]}\n"
                   for i in range(2000))
    if case == "truncated-gz":
        table = truncated_gz(tmp_path / "t.csv.gz", "sequence,cls\n" + rows)
    else:
        table = binary(tmp_path / "t.csv")
    r = pmt("variants", "train", "-i", table, "-l", "cls", "--task", "multiclass", "--window",
            24, "-o", tmp_path / "run")
    _refused(r, tmp_path, table.name)


# --------------------------------------------------------------------------- resume

def _stop_at_epoch(monkeypatch, epoch: int):
    """Make every training run stop with SIGTERM's Interrupted when ``epoch`` starts (after
    the checkpoint of epoch 5, the first the trainer writes)."""
    import signal

    import lightning as L

    from pmtoolkit.core import training
    from pmtoolkit.core.errors import Interrupted

    class Stop(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == epoch:
                raise Interrupted(signal.SIGTERM)

    real = training.build_trainer
    monkeypatch.setattr(training, "build_trainer", lambda config, workdir, **kw: real(
        config, workdir, **{**kw, "callbacks": [*kw.get("callbacks", []), Stop()]}))
    return real


def _epochs(history):
    import csv

    with open(history) as fh:
        return [int(r["epoch"]) for r in csv.DictReader(fh)]


@pytest.fixture
def sequences(tmp_path):
    rng = np.random.default_rng(0)
    table = tmp_path / "t.csv"
    pd.DataFrame({"sequence": ["".join(rng.choice(list("ACGT"), 24)) for _ in range(40)],
                  "cls": ["a", "b"] * 20}).to_csv(table, index=False)
    return table


DTI_TINY = ["--drug-hidden", 16, "--protein-embedding", 8, "--protein-filters", 8, 8, 8,
            "--protein-kernel", 5, "--head", 16, "--pairs-per-batch", 40, "--device", "cpu",
            "--epochs", 8]
SEQ_TINY = ["-l", "cls", "--task", "multiclass", "--window", 24, "--filters", 8, "--filters", 8,
            "--kernels", 5, "--kernels", 3, "--pools", 2, "--pools", 2, "--hidden-size", 8,
            "--device", "cpu", "--epochs", 8, "--patience", 0]


@pytest.mark.parametrize("command", ["dti", "variants"])
def test_interrupted_training_resumes(pmt, test_data, sequences, tmp_path, monkeypatch,
                                      command):
    """In process (fast): stopped at epoch 6, the run leaves only OUTPUT/work; a rerun without
    --resume is refused; --resume trains epochs 5-7 and keeps 0-4."""
    from pmtoolkit.core import training

    out = tmp_path / "run"
    if command == "dti":
        args = ["dti", "train", "-i", test_data / "dti_tiny.csv", "-o", out, *DTI_TINY]
        ckpt, history = out / "work" / "member0" / "last.ckpt", "training/member0/history.csv"
    else:
        args = ["variants", "train", "-i", sequences, "-o", out, *SEQ_TINY]
        ckpt, history = out / "work" / "last.ckpt", "training/history.csv"
    real = _stop_at_epoch(monkeypatch, 6)
    r = pmt(*args)
    assert r.exit_code == 143, r.output
    assert r.stderr.strip().splitlines()[-1] == "pmt: error: interrupted"
    assert sorted(p.name for p in out.iterdir()) == ["work"] and ckpt.is_file()
    assert not [p for p in tmp_path.rglob("*") if ".pmt-tmp" in p.name]
    monkeypatch.setattr(training, "build_trainer", real)
    r = pmt(*args)
    assert r.exit_code == 2 and "holds an interrupted run" in r.stderr
    other = [9 if before == "--epochs" else a for before, a in zip([None, *args], args)]
    r = pmt(*other, "--resume")  # other settings: refused, work kept
    assert r.exit_code == 2 and "other settings" in r.stderr and ckpt.is_file()
    r = pmt(*args, "--resume")
    assert r.exit_code == 0, r.output
    assert _epochs(out / history) == list(range(8))
    assert (out / "model.safetensors").is_file() and not (out / "work").exists()


@pytest.mark.slow
def test_sigterm_stops_variants_training_and_resume_finishes(tmp_path, sequences):
    """The real thing: `pmt variants train` in its own process, SIGTERM once the first
    checkpoint is in OUTPUT/work (exit 143, only work left), then --resume finishes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    tiny = [60 if before == "--epochs" else a for before, a in zip([None, *SEQ_TINY], SEQ_TINY)]
    args = [sys.executable, "-m", "pmtoolkit.cli", "variants", "train", "-i", sequences, "-o",
            out, *[str(a) for a in tiny]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([str(a) for a in args], cwd=tmp_path, stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (out / "work" / "last.ckpt").is_file():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "pmt: error: interrupted"
    assert sorted(p.name for p in out.iterdir()) == ["work"]
    assert not [p for p in tmp_path.rglob("*") if ".pmt-tmp" in p.name]
    resumed = subprocess.run([str(a) for a in args] + ["--resume"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    assert _epochs(out / "training" / "history.csv") == list(range(60))
    assert (out / "model.safetensors").is_file() and not (out / "work").exists()
