"""Electronic health records: one event table from Synthea or plain CSV/Parquet, prediction
tasks built without look-ahead, patient-level splits (issue 9; sequence models follow)."""
