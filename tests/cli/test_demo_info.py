"""`pmt demo` and `pmt info` end to end."""
from __future__ import annotations

import json

from pmtoolkit.core import shipped


def summary_of(out):
    return json.loads((out / "summary.json").read_text())


def test_demo_writes_the_report_folder(pmt, tmp_path, monkeypatch):
    out = tmp_path / "demo"
    result = pmt("demo", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "report:" in result.stderr
    assert result.stdout == ""  # data on stdout only when asked
    html = (out / "report.html").read_text()
    for section in ("Environment", "Shipped datasets and models", "Example molecules",
                    "Molecule profiles", "Regulatory variants"):
        assert section in html
    assert (out / "figures" / "target_histogram.png").stat().st_size > 1000
    assert (out / "figures" / "drugs.png").stat().st_size > 1000
    profiles = {p["name"]: p for p in summary_of(out)["profiles"]}
    assert len(profiles) == 12
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
        again = pmt("pipeline", "run", name, "-o", out / "pipelines" / name)
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
    summary = json.loads((out / "summary.json").read_text())
    assert summary["molecules"]["molecules"] == 1128
    assert summary["molecules"]["rejected"] == 0
    assert summary["molecules"]["mean"] < 0  # log solubility, mostly poorly soluble
    config = json.loads((out / "config.json").read_text())
    assert config["demo"]["dataset"] == "esol"
    # a second run refuses to replace it unless asked (replacing it: with one quick step)
    assert pmt("demo", "-o", out).exit_code == 2
    from pmtoolkit import demo

    monkeypatch.setattr(demo, "STEPS", [s for s in demo.STEPS if s[0] == "molecules"])
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
