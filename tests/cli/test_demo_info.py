"""`pmt demo` and `pmt info` end to end."""
from __future__ import annotations

import json

import pytest

from pmtoolkit.core import shipped


def summary_of(out):
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One full ``pmt demo`` run (about 90 s) that the tests below read; none of them changes
    a file another one reads."""
    from click.testing import CliRunner
    from pmtoolkit.cli.main import cli

    out = tmp_path_factory.mktemp("demo") / "demo"
    result = CliRunner().invoke(cli, ["demo", "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return out, result


def section(html_text: str, anchor: str) -> str:
    """The HTML of one report section, by its id."""
    start = html_text.index(f'<section id="{anchor}">')
    return html_text[start:html_text.index("</section>", start)]


def headers(fragment: str) -> list[str]:
    import html
    import re

    return [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", fragment)]


def card(out, title: str) -> str:
    import html
    import re

    index = (out / "index.html").read_text()
    cards = re.findall(r'<div class="card">.*?<h3>(.*?)</h3><p>(.*?)</p>', index)
    return next(html.unescape(line) for t, line in cards if html.unescape(t) == title)


def test_demo_writes_the_report_folder(demo, pmt):
    out, result = demo
    assert "report:" in result.stderr
    assert result.stdout == ""  # data on stdout only when asked
    html = (out / "report.html").read_text()
    for section_ in ("Environment", "Shipped datasets and models", "Example molecules",
                     "Molecule profiles", "Regulatory variants"):
        assert section_ in html
    assert (out / "figures" / "target_histogram.png").stat().st_size > 1000
    assert (out / "figures" / "drugs.png").stat().st_size > 1000
    profiles = {p["name"]: p for p in summary_of(out)["profiles"]}
    assert len(profiles) == 14
    # caffeine dissolves far better than testosterone; both are drug-like
    assert profiles["caffeine"]["logS (mol/L)"] > profiles["testosterone"]["logS (mol/L)"]
    assert profiles["aspirin"]["Lipinski"] == "pass"
    assert "Drug–target affinity" in html
    assert summary_of(out)["targets"]["best"]["ABL1"] == "imatinib"   # its target
    assert (out / "kinase_hits.csv").is_file()
    # regulatory variants: the cancer mutations of the TERT promoter score above the variants
    # the assay found damaging, and the mutagenesis map is drawn
    assert "Regulatory variants" in html
    ranked = summary_of(out)["variants"]["ranked"]
    assert ranked.index("C228T") < 2 and all(ranked.index("C250T") < ranked.index(v)
                                             for v in ranked if v.startswith("damaging"))
    assert (out / "pipelines" / "variant-prioritisation" / "ism" / "ism" / "ism.png").stat(
    ).st_size > 1000
    # every shipped pipeline ran, each with its own index of steps
    runs = summary_of(out)["pipelines"]
    assert set(runs) == {"virtual-screening", "variant-prioritisation", "single-cell"}
    assert all(step["status"] == "ran" for run in runs.values() for step in run.values())
    screen = runs["virtual-screening"]
    assert screen["rank"]["summary"]["written"] == 20
    assert screen["sample"]["summary"]["validity"] > 0.9
    cells = runs["single-cell"]
    assert cells["annotate"]["summary"]["cell_type_ari"] > 0.3  # clusters follow sorted labels
    for name in runs:
        assert (out / "pipelines" / name / "index.html").is_file()
        # the demo's run folders are ordinary pipeline runs: rerunning skips every step
        again = pmt("pipeline", "run", "-c", name, "-o", out / "pipelines" / name)
        assert again.exit_code == 0 and f"0 steps ran, {len(runs[name])} skipped" in again.stderr
    # imaging: the classifier gets the example X-rays right; tissue volumes are brain-sized
    xrays = summary_of(out)["imaging"]["xrays"]
    assert sum(x["label"] == x["true label"] for x in xrays) >= 3
    assert len(list((out / "imaging" / "gradcam").glob("*_gradcam.png"))) == 4
    # EHR: the unseen example patients are ranked better than chance, with explanations
    ehr = summary_of(out)["ehr"]
    assert ehr["auroc"] > 0.7 and ehr["explained"] == 3
    assert len(list((out / "ehr" / "explain").glob("timeline_*.png"))) == 3
    # the index links every domain, and every link and picture in it exists
    import re

    index = (out / "index.html").read_text()
    for title in ("Molecule profiles", "De novo design", "Drug–target affinity",
                  "Virtual screening", "Variant prioritisation", "Single-cell analysis",
                  "Medical imaging", "Patient records (EHR)"):
        assert title in index
    for ref in re.findall(r'(?:href|src)="([^"#]+)', index):
        assert (out / ref).is_file(), ref
    for anchor in re.findall(r'href="report\.html#([^"]+)"', index):
        assert f'<section id="{anchor}">' in html, anchor
    summary = json.loads((out / "summary.json").read_text())
    assert summary["molecules"]["molecules"] == 1128
    assert summary["molecules"]["rejected"] == 0
    assert summary["molecules"]["mean"] < 0  # log solubility, mostly poorly soluble
    config = json.loads((out / "config.json").read_text())
    assert config["demo"]["dataset"] == "esol"


def test_affinity_card_states_where_the_positive_controls_rank(demo):
    import pandas as pd

    from pmtoolkit.demo import CONTROLS

    out, _ = demo
    hits = pd.read_csv(out / "kinase_hits.csv")
    n = hits["id"].nunique()
    assert n == 14 and len(hits) == 2 * n  # every drug ranked for both kinases
    said = card(out, "Drug–target affinity")
    for target, names in CONTROLS.items():
        ranks = hits[hits["target"] == target].set_index("id")["rank"]
        assert summary_of(out)["targets"]["controls"][target] == {d: int(ranks[d])
                                                                  for d in names}
        got = sorted(names, key=lambda d: ranks[d])
        verb = "ranks" if len(got) == 1 else "rank"
        assert (f"{' and '.join(got)} {verb} {' and '.join(str(ranks[d]) for d in got)} of {n} "
                f"for {target}") in said
    assert "nicotine" not in said
    assert "pairs the model saw in training" in said
    # the shipped model ranks the approved inhibitors of each kinase above every other drug
    assert "each kinase's inhibitors rank above every other drug" in said
    html = section((out / "report.html").read_text(), "drug-target-affinity")
    assert headers(html)[:2] == ["drug", "control for"]


def test_a_control_ranked_below_other_drugs_is_said_plainly():
    from pmtoolkit.demo import controls_sentence

    said = controls_sentence({"ABL1": {"imatinib": 1},
                              "EGFR": {"erlotinib": 2, "gefitinib": 5}}, 14)
    assert said.startswith("imatinib ranks 1 of 14 for ABL1; erlotinib and gefitinib rank 2 "
                           "and 5 of 14 for EGFR")
    assert "does NOT rank every control first: for EGFR, 3 other drug(s) rank above " \
           "gefitinib" in said
    assert "above every other drug" not in said


def test_variant_figures_are_labelled_in_sample(demo):
    from pmtoolkit.demo import MPRA_HELD_OUT

    out, _ = demo
    said = card(out, "Variant prioritisation")
    rho = summary_of(out)["variants"]["spearman_with_measured"]
    assert f"{rho:.2f} in-sample (the model was fitted on this element)" in said
    assert f"{MPRA_HELD_OUT['TERT-GBM']:.2f}" in said
    text = section((out / "report.html").read_text(),
                   "regulatory-variants-variant-prioritisation-pipeline")
    assert "in-sample" in text and "972 variants" in text


def test_held_out_mpra_figures_match_the_benchmark():
    from pathlib import Path

    from pmtoolkit.demo import MPRA_HELD_OUT

    bench = Path(__file__).parents[2] / "docs" / "benchmarks" / "variants.json"
    fitted = json.loads(bench.read_text())["mpra"]["scorers"]["jaspar-fitted-rank"]
    assert round(fitted["mean_spearman"], 3) == MPRA_HELD_OUT["mean"]
    assert round(fitted["elements"]["TERT-GBM"]["spearman"], 3) == MPRA_HELD_OUT["TERT-GBM"]
    assert fitted["elements"]["TERT-GBM"]["n"] == 972


def test_ehr_table_shows_its_decision_threshold(demo):
    from pmtoolkit.ehr.run import load

    out, _ = demo
    threshold = load("synthea-mortality").threshold
    assert summary_of(out)["ehr"]["threshold"] == threshold
    html = section((out / "report.html").read_text(), "patient-records-ehr")
    assert f"flagged (risk ≥ {threshold:.3f})" in headers(html)
    assert "predicted" not in headers(html)
    assert f"at least {threshold:.3f}" in html and "Youden" in html and "validation" in html


def test_screening_shows_one_number_and_the_score_first(demo):
    import re

    import pandas as pd

    out, _ = demo
    n = summary_of(out)["pipelines"]["virtual-screening"]["rank"]["summary"]["written"]
    html = section((out / "report.html").read_text(), "virtual-screening-pipeline")
    assert f"The best {n} below" in html and f"the best {n} molecules" in html
    assert html.count("<tr>") == n + 1  # header and n rows
    assert headers(html)[:2] == ["rank", "pKd EGFR"]
    assert 'href="pipelines/virtual-screening/rank/ranked.csv"' in html
    assert f"top {n} for EGFR" in card(out, "Virtual screening")
    # the pipeline's own report: rank and score first, a readable subset, a link to all
    run = out / "pipelines" / "virtual-screening"
    report = (run / "report" / "report.html").read_text()
    ranked = section(report, "rank-ranked-csv")
    assert headers(ranked)[:2] == ["rank", "affinity_EGFR"] and len(headers(ranked)) == 8
    link = re.search(r'href="([^"]+)">ranked.csv', ranked).group(1)
    assert (run / "report" / link).resolve() == (run / "rank" / "ranked.csv").resolve()
    assert list(pd.read_csv(run / "rank" / "ranked.csv").columns[:2]) == ["rank",
                                                                          "affinity_EGFR"]


def test_single_cell_names_come_with_their_evidence(demo):
    out, _ = demo
    sc = summary_of(out)["single_cell"]
    assert "CD14" in sc["markers_absent"] and sc["mito_genes"] == ["MT-ND3"]
    html = section((out / "report.html").read_text(), "single-cell-analysis-pipeline")
    assert headers(html) == ["cluster", "cells", "named", "scored on (markers present)",
                             "most common bulk_labels", "its share"]
    assert "How the clusters are named" in html and "lacks CD14" in html
    assert "% mitochondrial panel is flat" in html and "MT-ND3" in html
    assert sum(c["cells"] for c in sc["clusters"]) == summary_of(out)["pipelines"][
        "single-cell"]["qc"]["summary"]["cells"]
    assert "CD14" in card(out, "Single-cell analysis")


def test_results_come_before_the_provenance_table(demo):
    import re

    out, _ = demo
    html = (out / "report.html").read_text()
    titles = re.findall(r"<h2>(.*?)</h2>", html)
    assert titles[-1] == "Shipped datasets and models" and titles[0] == "Example molecules"
    shipped_ = section(html, "shipped-datasets-and-models")
    assert "size" in headers(shipped_) and "size (kB)" not in headers(shipped_)
    assert "<td>3.9 MB</td>" in shipped_ and "e+0" not in shipped_  # solubility's 3,874,068 B


def test_sizes_read_as_people_write_them():
    from pmtoolkit.core.report import human_size

    assert [human_size(b) for b in (0, 649, 999, 1000, 96_699, 99_999, 3_874_068, 999_999,
                                     29_734_227_000)] == [
        "0 B", "649 B", "999 B", "1.0 kB", "96.7 kB", "100 kB", "3.9 MB", "1.0 MB", "29.7 GB"]


def test_a_second_demo_run_needs_overwrite(pmt, tmp_path, monkeypatch):
    from pmtoolkit import demo

    # one quick step is enough to see the folder rule
    monkeypatch.setattr(demo, "STEPS", [s for s in demo.STEPS if s[0] == "molecules"])
    out = tmp_path / "demo"
    assert pmt("demo", "-o", out).exit_code == 0
    assert pmt("demo", "-o", out).exit_code == 2
    (out / "pipelines").mkdir()
    assert pmt("demo", "-o", out, "--overwrite").exit_code == 0
    assert not (out / "pipelines").exists()


def test_demo_on_a_user_table_with_bad_rows(pmt, tmp_path, test_data, monkeypatch):
    from pmtoolkit import demo

    # the user's table feeds the molecules step only; the others are tested above
    monkeypatch.setattr(demo, "STEPS", [s for s in demo.STEPS if s[0] == "molecules"])
    out = tmp_path / "demo"
    config = tmp_path / "demo.toml"
    config.write_text(f'dataset = "{test_data / "molecules_with_bad_rows.csv"}"\n'
                      'target-column = "logS"\n')
    result = pmt("demo", "-o", out, "--config", config)
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["molecules"]["molecules"] == 3 and summary["molecules"]["rejected"] == 2
    rejects = (out / "rejected.csv").read_text().splitlines()
    assert rejects[0] == "line,smiles,reason"  # the item column is named after the input
    assert rejects[1].startswith("3,") and "empty SMILES" in rejects[1]
    assert rejects[2] == "5,CCO,no numeric value in 'logS'"
    # command-line options override the config file
    config.write_text('target-column = "nope"\n')
    result = pmt("demo", "-o", tmp_path / "d2", "-c", config, "--dataset",
                 test_data / "molecules_with_bad_rows.csv")
    assert result.exit_code == 2 and "column 'nope' not found" in result.stderr


def test_demo_config_typo_is_named(pmt, tmp_path):
    config = tmp_path / "demo.toml"
    config.write_text('target-colum = "logS"\n')
    result = pmt("demo", "-o", tmp_path / "o", "-c", config)
    assert result.exit_code == 2
    assert "unknown key 'target-colum'" in result.stderr and "target-column" in result.stderr


def test_info_text_and_json(pmt):
    result = pmt("info")
    assert result.exit_code == 0
    assert "pmtoolkit" in result.stdout and "esol" in result.stdout
    data = json.loads(pmt("info", "--json", "--verify").stdout)
    assert data["versions"]["torch"].startswith("2.13.0")
    assert {i["name"]: i["check"] for i in data["shipped"]}["esol"] == "ok"
    assert data["device"]["auto_device"] in ("cpu", "cuda")


def test_info_verify_fails_on_a_corrupted_file(pmt, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(shipped.data_dir(), copy)
    monkeypatch.setenv("PMT_DATA_DIR", str(copy))
    (copy / shipped.entry("esol").path).write_text("smiles\nC\n")
    result = pmt("info", "--verify")
    assert result.exit_code == 2 and "failed the sha256 check: esol" in result.stderr


def test_ehr_card_shows_the_threshold_and_how_to_read_the_top_code(demo):
    from pmtoolkit.ehr.run import load

    out, _ = demo
    threshold = load("synthea-mortality").threshold
    line = card(out, "Patient records (EHR)")
    assert f"risk ≥ {threshold:.3f}" in line and "Synthea" in line
    top = summary_of(out)["ehr"]["top_codes"]
    assert top and all(t["contribution"] > 0 for t in top)
    assert top[0]["code"] in line and "not a cause" in line
    html = section((out / "report.html").read_text(), "patient-records-ehr")
    assert "how to read it" in headers(html)
