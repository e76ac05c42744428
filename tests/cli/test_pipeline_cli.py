"""`pmt pipeline run|validate|list` end to end; exit codes and one-line errors."""
from __future__ import annotations

import shutil

import pytest

from tests.pipeline.test_engine import TINY


def _tiny(tmp_path, test_data, text=TINY):
    shutil.copy(test_data / "esol_tiny.csv", tmp_path / "esol_tiny.csv")
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def test_run_validate_list(pmt, tmp_path, test_data):
    path = _tiny(tmp_path, test_data)
    out = tmp_path / "run"
    r = pmt("pipeline", "run", "-c", path, "-o", out)
    assert r.exit_code == 0, r.stderr
    assert "3 steps ran, 0 skipped" in r.stderr and r.stdout == ""
    assert "step rank (table.rank) parameters:" in r.stderr  # resolved parameters logged
    r = pmt("pipeline", "run", "-c", path, "-o", out, "--set", "report.title=changed")
    assert "1 steps ran, 2 skipped" in r.stderr
    assert "changed" in (out / "report" / "report.html").read_text()
    r = pmt("pipeline", "validate", "-c", path)
    assert r.exit_code == 0 and r.stdout.splitlines()[1].startswith("rank\ttable.rank")
    r = pmt("pipeline", "list")
    assert {"virtual-screening", "variant-prioritisation", "single-cell"} <= {
        line.split("\t")[0] for line in r.stdout.splitlines()}
    r = pmt("pipeline", "list", "--actions")
    assert "table.rank:" in r.stdout and "param  top" in r.stdout


def test_bad_pipelines_exit_2_with_one_line(pmt, tmp_path, test_data):
    path = _tiny(tmp_path, test_data, TINY.replace("top = 5", "topp = 5"))
    r = pmt("pipeline", "validate", "-c", path)
    assert r.exit_code == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert "unknown key 'topp' in step 'rank'" in r.stderr
    r = pmt("pipeline", "run", "-c", path, "-o", tmp_path / "run")
    assert r.exit_code == 2 and not (tmp_path / "run").exists()  # nothing ran
    r = pmt("pipeline", "run", "-c", "no-such-pipeline", "-o", tmp_path / "x")
    assert r.exit_code == 2 and "virtual-screening" in r.stderr  # names the shipped ones
    bad = _tiny(tmp_path, test_data, TINY.replace('by = "logS"', 'by = "logs"'))
    r = pmt("pipeline", "run", "-c", bad, "-o", tmp_path / "run2")
    assert r.exit_code == 2
    assert "step 'rank' (table.rank) failed: 'molecules.csv' has no column 'logs'" in r.stderr
    assert (tmp_path / "run2" / "standardize" / "molecules.csv").is_file()


def test_shipped_variant_pipeline_end_to_end(pmt, tmp_path):
    out = tmp_path / "tert"
    r = pmt("pipeline", "run", "-c", "variant-prioritisation", "-o", out)
    assert r.exit_code == 0, r.stderr
    table = (out / "prioritise" / "prioritised.tsv").read_text().splitlines()
    ids = [line.split("\t")[3] for line in table[1:]]
    # the assay's strongest effects lead; the neutral variants below 0.05 are dropped
    assert set(ids[:5]) == {"damaging_103G>T", "damaging_104G>C", "C228T", "damaging_99A>T",
                            "C250T"}
    assert not any(i.startswith(("neutral_2", "neutral_54")) for i in ids)
    vcf = (out / "prioritise" / "prioritised.vcf").read_text()
    assert "##INFO=<ID=PMT_RANK" in vcf and "PMT_RANK=1;" in vcf
    assert (out / "ism" / "ism" / "ism.png").stat().st_size > 1000
    assert "Variant prioritisation" in (out / "report" / "report.html").read_text()
    r = pmt("pipeline", "run", "-c", "variant-prioritisation", "-o", out)
    assert "0 steps ran, 4 skipped" in r.stderr


def test_a_splice_prioritisation_pipeline_ranks_by_spliceai_delta_scores(pmt, tmp_path,
                                                                         shared_data):
    """variants.score with spliceai (the optional extra), then variants.filter ranking by
    the largest SpliceAI delta score: the broken acceptor AG of MYT1L leads; a variant
    outside every gene (no SpliceAI field) is not ranked."""
    import importlib.util

    import pytest

    if importlib.util.find_spec("spliceai") is None:
        pytest.skip("the spliceai extra is not installed (CI installs it)")
    fasta = shared_data / "variants" / "reference" / "chr2_1-2333275.fa.gz"
    vcf = tmp_path / "in.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   "chr2\t100000\tintergenic\tT\tA\t.\t.\t.\n"
                   "chr2\t1801800\tacceptor_AG\tC\tA\t.\t.\t.\n"
                   "chr2\t1801830\tintronic\tT\tG\t.\t.\t.\n")
    path = tmp_path / "splice.toml"
    path.write_text(f'[pipeline]\nname = "splice"\n\n[steps.score]\naction = "variants.score"\n'
                    f'vcf = "{vcf}"\nfasta = "{fasta}"\nmodel = "spliceai"\ndistance = 50\n\n'
                    '[steps.rank]\naction = "variants.filter"\ninput = "@score"\n')
    r = pmt("pipeline", "run", "-c", path, "-o", tmp_path / "run")
    assert r.exit_code == 0, r.stderr
    table = (tmp_path / "run" / "rank" / "prioritised.tsv").read_text().splitlines()
    ids = [line.split("\t")[3] for line in table[1:]]
    assert ids[0] == "acceptor_AG" and "intergenic" not in ids
    assert float(table[1].split("\t")[6]) > 0.9  # its max delta score, next to the alleles


BATCH = """
[pipeline]
name = "batch"
description = "standardise -> filter -> properties, on a cluster or not"

[steps.standardize]
action = "mol.standardize"
input = "esol_tiny.csv"

[steps.filter]
action = "mol.filter"
input = "@standardize"
passing_only = false

[steps.properties]
action = "property.predict"
input = "@filter"
models = ["solubility", "bbbp"]
"""


def test_a_pipelines_batch_steps_share_one_local_cluster_with_the_same_outputs(
        pmt, tmp_path, test_data):
    import torch

    pytest.importorskip("distributed")
    path = _tiny(tmp_path, test_data, BATCH)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' (2 cores shared by 2 workers on CI)
    try:
        here = pmt("pipeline", "run", "-c", path, "-o", tmp_path / "here")
    finally:
        torch.set_num_threads(before)
    assert here.exit_code == 0, here.stderr
    there = pmt("pipeline", "run", "-c", path, "-o", tmp_path / "there", "--workers", "2",
                "--partition-size", "10000")
    assert there.exit_code == 0, there.stderr
    assert there.stderr.count("a local cluster of 2 worker processes for the run") == 1
    # a job per step, and per model of the properties step
    assert there.stderr.count("partitions (0 from an earlier run)") == 4
    for step, name in (("standardize", "molecules.csv"), ("filter", "molecules.csv"),
                       ("properties", "predictions.csv")):
        assert (tmp_path / "here" / step / name).read_bytes() == \
            (tmp_path / "there" / step / name).read_bytes(), step
