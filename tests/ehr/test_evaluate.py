

def test_code_reading_says_what_kind_of_record_a_code_is():
    import pandas as pd

    from pmtoolkit.ehr.evaluate import code_reading, top_codes

    flu = code_reading("CVX:140", "Influenza  seasonal  injectable  preservative free")
    assert flu.startswith("a vaccination") and "not a cause" in flu and "flu shot" in flu
    assert "flu" not in code_reading("CVX:08", "Hep B  adolescent or pediatric")
    assert code_reading("RxNorm:314077", "lisinopril 20 MG Oral Tablet").startswith(
        "a prescription")
    assert code_reading("SNOMED-CT:160903007", "Full-time employment (finding)").startswith(
        "a social circumstance")
    assert code_reading("SNOMED-CT:44054006", "Diabetes mellitus type 2 (disorder)").startswith(
        "a diagnosis")
    assert code_reading("ICD9CM:4019", "").startswith("a diagnosis")
    assert code_reading("LOINC:1234-5", "") == ""
    contrib = pd.DataFrame({"code": ["CVX:140", "CVX:140", "ICD9CM:4019", "X:1"],
                            "description": ["Influenza", "Influenza", "", None],
                            "contribution": [0.5, 0.25, 0.5, -1.0]})
    top = top_codes(contrib)
    assert top["code"].tolist() == ["CVX:140", "ICD9CM:4019"]  # summed; negative ones dropped
    assert top["records"].tolist() == [2, 1] and top["contribution"].iloc[0] == 0.75
