"""The shipped splice model: loads offline by name, calls junctions, reacts to a broken GT."""
from __future__ import annotations

import numpy as np

from pmtoolkit.genomics.run import load_sequence_model


def test_shipped_splice_model(shared_data):
    from pmtoolkit.genomics.data import read_sequence_table
    from pmtoolkit.genomics.model import evaluate

    model = load_sequence_model("splice")
    assert model.targets == ["EI", "IE", "N"] and model.window == 60
    assert model.recommended_scan == 20
    assert model.metadata["metrics"]["test"]["accuracy"] > 0.93
    # the whole UCI set (80% of it seen in training): a shipping sanity check
    data = read_sequence_table(shared_data / "variants" / "uci_splice" / "splice.csv",
                               window=60, task="multiclass", label_columns=["Class"],
                               sequence_column="Sequence")
    assert evaluate(model, data)["accuracy"] > 0.95
    # a donor of the UCI set (ATRINS-DONOR-521): the intron starts GT at bases 31-32
    donor = "CCAGCTGCATCACAGGAGGCCAGCGAGCAGGTCTGTTCCAAGGGCCTTCGAGCCAGTCTG"
    assert donor[30:32] == "GT"
    p = model.predict([donor, donor[:30] + "CA" + donor[32:]])
    assert p[0].argmax() == 0 and p[1, 0] < 0.1
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
