"""Batch commands on Dask (``--workers``, ``--scheduler``): the same bytes as a single-process
run, bad input, resume after an interruption, and a cluster of ``dask scheduler`` and two
``dask worker`` processes started here."""
from __future__ import annotations

import gzip
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pmtoolkit.core.distributed import PARTS_SUFFIX, worker_threads
from tests.cli.conftest import torch_threads

distributed = pytest.importorskip("distributed")

EXAMPLES = Path(__file__).resolve().parents[2] / "data" / "examples"
KINASES = EXAMPLES / "kinases.fasta"


def _screen(test_data, *extra):
    return ("dti", "screen", "--target", KINASES, "--library", test_data / "moses_tiny.smi",
            "--top", "15", "--chunk-size", "40", *extra)


def _commands(test_data):
    tiny = test_data / "esol_tiny_invalid.csv"  # two invalid rows among 40
    mol = ("-i", tiny, "--chunk-size", "5")
    return {
        "dti screen": (_screen(test_data), "hits.csv", "80"),
        "dti predict": (("dti", "predict", "-i", test_data / "dti_tiny.csv", "-m", "davis",
                         "--chunk-size", "7"), "pairs.csv", "14"),
        "property predict": (("property", "predict", *mol, "-m", "solubility,bbbp"),
                             "pred.csv", "10"),
        "mol standardize": (("mol", "standardize", *mol), "std.csv", "10"),
        "mol descriptors": (("mol", "descriptors", *mol, "--names", "MolWt,TPSA,MolLogP"),
                            "desc.tsv", "10"),
        "mol fingerprints": (("mol", "fingerprints", *mol, "--n-bits", "64", "--counts"),
                             "fp.parquet", "15"),
        "mol filter": (("mol", "filter", *mol, "--passing-only"), "ok.csv", "10"),
        # blocks of 4 lines (--batch-size 1): a malformed line, a REF mismatch, symbolic and
        # breakend alleles and an unknown contig spread over three partitions
        "variants score": (("variants", "score", "-i", test_data / "variants_tiny.vcf", "-f",
                            test_data / "genome_tiny.fa", "-m", "mpra", "--ref-mismatch",
                            "skip", "--batch-size", "1"), "scored.vcf.gz", "4"),
    }


def _same_files(here: Path, there: Path) -> None:
    assert here.read_bytes() == there.read_bytes()
    rejects = [p.with_name(p.name.split(".")[0] + ".rejected.csv") for p in (here, there)]
    assert rejects[0].exists() == rejects[1].exists()
    if rejects[0].exists():
        assert rejects[0].read_bytes() == rejects[1].read_bytes()
    assert not Path(f"{there}{PARTS_SUFFIX}").exists()


@pytest.mark.parametrize("command", ["dti screen", "dti predict", "property predict",
                                     "mol standardize",
                                     "mol descriptors", "mol fingerprints", "mol filter",
                                     "variants score"])
def test_on_two_worker_processes_each_command_writes_the_single_process_bytes(
        pmt, tmp_path, test_data, scheduler, command):
    args, name, partition = _commands(test_data)[command]
    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    here, there = tmp_path / "here" / name, tmp_path / "there" / name
    with torch_threads(1):
        assert pmt(*args, "-o", here).exit_code == 0
    result = pmt(*args, "-o", there, "--scheduler", scheduler, "--partition-size", partition)
    assert result.exit_code == 0, result.stderr
    assert "dashboard http://" in result.stderr
    _same_files(here, there)


def test_workers_start_and_stop_a_local_cluster_with_the_single_process_hits(
        pmt, tmp_path, test_data):
    here, there = tmp_path / "here.csv", tmp_path / "there.csv"
    with torch_threads(worker_threads(2)):
        assert pmt(*_screen(test_data), "-o", here).exit_code == 0
    result = pmt(*_screen(test_data), "-o", there, "--workers", "2", "--partition-size", "120")
    assert result.exit_code == 0, result.stderr
    assert "a local cluster of 2 worker processes" in result.stderr
    assert "4 partitions (0 from an earlier run)" in result.stderr
    assert here.read_bytes() == there.read_bytes()


def test_a_single_process_run_never_imports_dask(tmp_path, test_data):
    code = ("import sys\nfrom pmtoolkit.cli.main import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed'))\nassert not loaded, loaded\n")
    args = ["mol", "descriptors", "-i", test_data / "tiny.smi", "--names", "MolWt", "-o",
            tmp_path / "d.csv"]
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "d.csv").exists()


@pytest.mark.parametrize("options, message", [
    (["--workers", "0"], "0 is not in the range 1<=x<=256"),
    (["--workers", "100000"], "not in the range"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "exclude each other"),
    (["--scheduler", "localhost:8786"], "is not a scheduler address: expected tcp://HOST:PORT"),
    (["--scheduler", "tcp://localhost:0x1f"], "is not a scheduler address"),
    (["--partition-size", "80"], "--partition-size applies to runs with --workers"),
    (["--workers", "2", "--partition-size", "100"],
     "--partition-size 100 is not a multiple of the chunk size 40"),
    (["--workers", "2", "--partition-size", "10000000"], "not in the range"),
])
def test_distributed_options_are_checked_before_any_work(pmt, tmp_path, test_data, options,
                                                         message):
    result = pmt(*_screen(test_data), "-o", tmp_path / "hits.csv", *options)
    assert result.exit_code == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # the usage line and the error
    assert not list(tmp_path.iterdir())


def test_stdout_is_no_output_for_a_partitioned_run(pmt, tmp_path, test_data):
    result = pmt("mol", "descriptors", "-i", test_data / "tiny.smi", "-o", "-", "--workers", "2")
    assert result.exit_code == 2 and "needs an output file" in result.stderr


def test_an_unreachable_scheduler_is_a_one_line_error(pmt, tmp_path, test_data):
    import dask

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        result = pmt("mol", "descriptors", "-i", test_data / "tiny.smi", "-o",
                     tmp_path / "d.csv", "--scheduler", f"tcp://127.0.0.1:{port}")
    assert result.exit_code == 2
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in result.stderr
    assert not list(tmp_path.iterdir())


def test_stop_at_the_first_invalid_record_says_what_a_single_process_run_says(
        pmt, tmp_path, test_data, scheduler):
    args = ("mol", "descriptors", "-i", test_data / "esol_tiny_invalid.csv", "--chunk-size",
            "5", "--names", "MolWt", "--on-invalid", "error")
    here = pmt(*args, "-o", tmp_path / "here.csv")
    there = pmt(*args, "-o", tmp_path / "there.csv", "--scheduler", scheduler)
    assert here.exit_code == there.exit_code == 2
    error = [line for line in there.stderr.splitlines() if line.startswith("pmt: error")]
    assert error == [line for line in here.stderr.splitlines() if line.startswith("pmt: error")]
    assert "line 5: cannot parse SMILES" in error[0]
    assert not (tmp_path / "there.csv").exists() and not (tmp_path / "here.csv").exists()
    # the partitions computed before the stop serve the run that skips the invalid records
    kept = len(list(Path(f"{tmp_path / 'there.csv'}{PARTS_SUFFIX}").glob("part-*.json")))
    assert kept >= 1
    args = (*args[:-1], "skip")
    skipped = pmt(*args, "-o", tmp_path / "there.csv", "--scheduler", scheduler)
    assert skipped.exit_code == 0 and _resumed(skipped.stderr) == kept
    with torch_threads(1):
        assert pmt(*args, "-o", tmp_path / "here.csv").exit_code == 0
    _same_files(tmp_path / "here.csv", tmp_path / "there.csv")


def _resumed(stderr: str) -> int:
    return int(re.search(r"partitions \((\d+) from an earlier run\)", stderr).group(1))


def test_a_truncated_library_keeps_the_partitions_before_the_break_and_resumes(
        pmt, tmp_path, test_data, scheduler):
    full = gzip.compress((test_data / "moses_tiny.smi").read_bytes())
    library = tmp_path / "library.smi.gz"
    library.write_bytes(full[: len(full) * 2 // 3])  # a download cut short
    out = tmp_path / "hits.csv"
    args = ("dti", "screen", "--target", KINASES, "--library", library, "--top", "15",
            "--chunk-size", "40", "-o", out, "--scheduler", scheduler, "--partition-size", "40")
    result = pmt(*args)
    assert result.exit_code == 2
    assert "is truncated or not valid gzip" in result.stderr
    assert "finished partitions are kept in" in result.stderr
    assert not out.exists()
    kept = len(list(Path(f"{out}{PARTS_SUFFIX}").glob("part-*.json")))
    assert kept >= 3  # the partitions read before the break
    library.write_bytes(full)
    _resumes_to_the_single_process_hits(pmt, args, kept, out, test_data, tmp_path)


def test_an_interrupted_run_resumes_without_recomputing_finished_partitions(
        pmt, tmp_path, test_data, scheduler):
    out = tmp_path / "hits.csv"
    args = [*_screen(test_data), "-o", out, "--scheduler", scheduler, "--partition-size", "40"]
    proc = subprocess.Popen([sys.executable, "-m", "pmtoolkit.cli", *map(str, args)],
                            stderr=subprocess.PIPE, text=True)
    parts = Path(f"{out}{PARTS_SUFFIX}")
    try:
        deadline = time.monotonic() + 120
        while not len(list(parts.glob("part-*.json"))) >= 2:
            assert proc.poll() is None and time.monotonic() < deadline, "no partition finished"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and not out.exists()
    kept = len(list(parts.glob("part-*.json")))
    assert 2 <= kept < 10
    _resumes_to_the_single_process_hits(pmt, args, kept, out, test_data, tmp_path)


def _resumes_to_the_single_process_hits(pmt, args, kept, out, test_data, tmp_path):
    """Rerunning ``args`` reuses the ``kept`` finished partitions, and its hits are the
    single-process run's."""
    result = pmt(*args)
    assert result.exit_code == 0, result.stderr
    assert _resumed(result.stderr) == kept
    with torch_threads(1):
        assert pmt(*_screen(test_data), "-o", tmp_path / "here.csv").exit_code == 0
    assert out.read_bytes() == (tmp_path / "here.csv").read_bytes()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_cluster_of_dask_scheduler_and_two_dask_workers_started_here(pmt, tmp_path,
                                                                       test_data):
    dask_cli = shutil.which("dask") or pytest.skip("no dask command")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([dask_cli, "scheduler", "--host", "127.0.0.1", "--port",
                               str(port), "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [dask_cli, "worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "60"], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        out = tmp_path / "hits.csv"
        result = pmt(*_screen(test_data), "-o", out, "--scheduler", address,
                     "--partition-size", "80")
        assert result.exit_code == 0, result.stderr
        assert f"the cluster at {address}: 2 workers" in result.stderr or \
            f"the cluster at {address}: 1 workers" in result.stderr
        with torch_threads(1):
            assert pmt(*_screen(test_data), "-o", tmp_path / "here.csv").exit_code == 0
        assert out.read_bytes() == (tmp_path / "here.csv").read_bytes()
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert all(proc.poll() is not None for proc in procs)


def test_generate_sample_partitions_are_seeded_by_their_number_on_any_workers(
        pmt, tmp_path, scheduler):
    """On two worker processes the samples equal the same partitions drawn in this process,
    and partition i equals the prior sampled alone with seed partition_seed(seed, i)."""
    import pandas as pd

    from pmtoolkit.core.distributed import Cluster, WorkerModel, run_job
    from pmtoolkit.design.run import SampleJob, load, partition_seed

    there = tmp_path / "there.csv"
    args = ("generate", "sample", "-n", "250", "--batch-size", "64", "--seed", "3")
    result = pmt(*args, "-o", there, "--scheduler", scheduler, "--partition-size", "100")
    assert result.exit_code == 0, result.stderr
    job = SampleJob(WorkerModel.named(load, "prior"), n=250, per_partition=100,
                    temperature=1.0, batch_size=64, seed=3, max_length=None)
    here = tmp_path / "here.csv"
    with torch_threads(1):
        info = run_job(job, here, Cluster())
        alone = load("prior").sample(50, batch_size=64, seed=partition_seed(3, 2))
    assert info["partitions"] == 3
    assert here.read_bytes() == there.read_bytes()
    table = pd.read_csv(there, keep_default_na=False)
    assert len(table) == 250 and table["smiles"].tolist()[200:] == alone.smiles
    assert not Path(f"{there}{PARTS_SUFFIX}").exists()


def _variants(test_data, *extra):
    return ("variants", "score", "-i", test_data / "variants_tiny.vcf", "-f",
            test_data / "genome_tiny.fa", "-m", "mpra", "--batch-size", "1", *extra)


def test_variants_score_keeps_the_line_numbers_of_the_whole_vcf(pmt, tmp_path, test_data,
                                                                scheduler):
    """A partition is scored alone, yet its rejects and errors name the input file and the
    line of the whole file, as a single-process run does."""
    out = tmp_path / "scored.tsv"
    result = pmt(*_variants(test_data, "--ref-mismatch", "skip"), "-o", out,
                 "--scheduler", scheduler, "--partition-size", "4")
    assert result.exit_code == 0, result.stderr
    assert "3 partitions (0 from an earlier run)" in result.stderr
    rejects = (tmp_path / "scored.rejected.csv").read_text()
    assert "11,1:60:A>G,REF A does not match" in rejects
    assert "12,1\tnotanumber\tbad" in rejects  # the malformed line, its own text
    assert "15,chr9:5:A>G,contig 'chr9' is not in the reference" in rejects
    # under --ref-mismatch error: the single-process message, exit 2, no output
    here = pmt(*_variants(test_data), "-o", tmp_path / "here.tsv")
    there = pmt(*_variants(test_data), "-o", tmp_path / "there.tsv", "--scheduler", scheduler,
                "--partition-size", "4")
    assert here.exit_code == there.exit_code == 2
    message = f"{test_data / 'variants_tiny.vcf'}: line 11: REF A does not match the reference"
    assert message in here.stderr and message in there.stderr
    assert not (tmp_path / "there.tsv").exists()


def test_variants_score_refuses_what_it_cannot_partition(pmt, tmp_path, test_data):
    pysam = pytest.importorskip("pysam")
    vcf, bcf = tmp_path / "in.vcf", tmp_path / "in.bcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=1,length=300>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t10\t.\tA\tC\t.\t.\t.\n")
    with pysam.VariantFile(str(vcf)) as vf, \
            pysam.VariantFile(str(bcf), "wb", header=vf.header) as out:
        for record in vf:
            out.write(record)
    vcf.unlink()
    result = pmt("variants", "score", "-i", bcf, "-f", test_data / "genome_tiny.fa", "-m",
                 "mpra", "-o", tmp_path / "s.tsv", "--workers", "1")
    assert result.exit_code == 2 and "a distributed run reads a text VCF" in result.stderr
    assert "bcftools view -Oz" in result.stderr
    result = pmt(*_variants(test_data), "-o", tmp_path / "s.tsv", "--workers", "1",
                 "--partition-size", "6")
    assert result.exit_code == 2
    assert "--partition-size 6 is not a multiple of the chunk size 4" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bcf"]


@pytest.mark.slow
def test_spliceai_on_two_workers_writes_the_single_process_vcf(pmt, tmp_path, shared_data,
                                                               scheduler):
    """142 SNVs of MYT1L at a genome's density (three partitions of 64 lines): the same
    bgzipped VCF and index as one process."""
    pytest.importorskip("h5py")
    import importlib.util

    if importlib.util.find_spec("spliceai") is None:
        pytest.skip("the spliceai extra is not installed (CI installs it)")
    vcf = Path(__file__).resolve().parents[2] / "benchmarks" / "variants" / "dense_variants.vcf"
    args = ("variants", "score", "-i", vcf, "-f",
            shared_data / "variants" / "reference" / "chr2_1-2333275.fa.gz")
    here, there = tmp_path / "here.vcf.gz", tmp_path / "there.vcf.gz"
    assert pmt(*args, "-o", here).exit_code == 0
    result = pmt(*args, "-o", there, "--scheduler", scheduler, "--partition-size", "64")
    assert result.exit_code == 0, result.stderr
    assert "3 partitions" in result.stderr
    assert here.read_bytes() == there.read_bytes()
    assert Path(f"{here}.tbi").read_bytes() == Path(f"{there}.tbi").read_bytes()


def _shards(test_data, folder: Path, bad: str | None = None) -> list[Path]:
    """moses_tiny.smi cut into four shards of 100 lines (``bad``: a last shard's text)."""
    folder.mkdir()
    lines = (test_data / "moses_tiny.smi").read_text().splitlines(keepends=True)
    paths = []
    for k in range(4):
        paths.append(folder / f"lib_{k}.smi")
        paths[-1].write_text("".join(lines[100 * k:100 * (k + 1)]))
    if bad is not None:
        paths.append(folder / "lib_4.smi")
        paths[-1].write_text(bad)
    return paths


def test_a_glob_or_folder_of_shards_is_one_input_in_sorted_order(pmt, tmp_path, test_data,
                                                                 scheduler):
    _shards(test_data, tmp_path / "lib", bad="CCO\nnot_a_smiles\n")
    args = ("mol", "descriptors", "--names", "MolWt,TPSA", "--chunk-size", "25")
    whole = tmp_path / "whole.smi"
    whole.write_text((test_data / "moses_tiny.smi").read_text() + "CCO\nnot_a_smiles\n")
    assert pmt(*args, "-i", whole, "-o", tmp_path / "one.csv").exit_code == 0
    # a glob, in this process (no cluster): its shards run as partitions here
    result = pmt(*args, "-i", str(tmp_path / "lib" / "lib_*.smi"), "-o", tmp_path / "glob.csv")
    assert result.exit_code == 0, result.stderr
    assert "5 partitions" in result.stderr
    # a folder, on two workers
    result = pmt(*args, "-i", tmp_path / "lib", "-o", tmp_path / "dir.csv",
                 "--scheduler", scheduler, "--partition-size", "50")
    assert result.exit_code == 0, result.stderr
    one = (tmp_path / "one.csv").read_bytes()
    assert (tmp_path / "glob.csv").read_bytes() == one == (tmp_path / "dir.csv").read_bytes()
    # the reject names its shard and its line there
    assert (tmp_path / "dir.rejected.csv").read_text().splitlines() == [
        "file,line,smiles,reason", f"{tmp_path / 'lib' / 'lib_4.smi'},2,not_a_smiles,"
        "cannot parse SMILES"]


def test_a_screen_of_shards_names_the_file_of_each_hit(pmt, tmp_path, test_data):
    paths = _shards(test_data, tmp_path / "lib")
    assert pmt(*_screen(test_data), "-o", tmp_path / "one.csv").exit_code == 0
    args = ("dti", "screen", "--target", KINASES, "--library", str(tmp_path / "lib" / "*.smi"),
            "--top", "15", "--chunk-size", "40", "-o", tmp_path / "many.csv")
    assert pmt(*args).exit_code == 0
    import pandas as pd

    one, many = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "many.csv")
    assert list(many.columns) == ["target", "rank", "smiles", "id", "file", "line",
                                  "prediction"]
    assert many.drop(columns=["file", "line"]).equals(one.drop(columns=["line"]))
    # the whole library's line is the shard's number times 100 plus the shard's line
    shard = many.file.map({str(p): k for k, p in enumerate(paths)})
    assert (shard * 100 + many.line).tolist() == one.line.tolist()


def test_bad_shards(pmt, tmp_path, test_data, scheduler):
    args = ("mol", "descriptors", "--names", "MolWt", "--chunk-size", "50")
    result = pmt(*args, "-i", str(tmp_path / "none" / "*.smi"), "-o", tmp_path / "d.csv")
    assert result.exit_code == 2 and "names no file" in result.stderr
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.smi").write_text("CCO\n")
    (tmp_path / "mixed" / "b.csv").write_text("smiles\nCCO\n")
    result = pmt(*args, "-i", tmp_path / "mixed", "-o", tmp_path / "d.csv")
    assert result.exit_code == 2 and "mixed formats" in result.stderr
    # a truncated shard stops the run (exit 2, naming it) and loses none of the others
    paths = _shards(test_data, tmp_path / "lib")
    good = gzip.compress(paths[2].read_bytes())
    paths[2].unlink()
    cut = tmp_path / "lib" / "lib_2.smi.gz"
    cut.write_bytes(good[: len(good) // 2])
    out = tmp_path / "d.csv"
    result = pmt(*args, "-i", tmp_path / "lib", "-o", out, "--scheduler", scheduler)
    assert result.exit_code == 2 and "lib_2.smi.gz" in result.stderr
    assert not out.exists()
    kept = len(list(Path(f"{out}{PARTS_SUFFIX}").glob("part-*.json")))
    assert kept == 3  # the three good shards (a partition each: 100 rows, default size)
    cut.write_bytes(good)
    result = pmt(*args, "-i", tmp_path / "lib", "-o", out, "--scheduler", scheduler)
    assert result.exit_code == 0 and _resumed(result.stderr) == kept
    assert len(out.read_text().splitlines()) == 401
