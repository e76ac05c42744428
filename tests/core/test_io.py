from __future__ import annotations

import gzip
import io
import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from pmtoolkit.core import io as pio
from pmtoolkit.core.errors import BadInputError, MissingInputError


def _frame():
    return pd.DataFrame({"smiles": ["CCO", "c1ccccc1", "CC(=O)O"], "y": [1.5, -0.25, 3.0]})


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.parquet", "t.csv.gz", "t.tsv.gz", "t.txt"])
def test_table_round_trip_every_format(tmp_path, name):
    path = tmp_path / name
    pio.write_table(_frame(), path)
    back = pio.read_table(path, columns=["smiles", "y"])
    pd.testing.assert_frame_equal(back.reset_index(drop=True), _frame())
    if name.endswith(".gz"):
        with open(path, "rb") as fh:
            assert fh.read(2) == b"\x1f\x8b"


def test_rows_are_indexed_by_line_number(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("smiles,y\nCCO,1\nCCC,2\n")
    assert list(pio.read_table(path).index) == [2, 3]


def test_chunks_stream_and_keep_line_numbers(tmp_path):
    path = tmp_path / "t.tsv.gz"
    rows = "".join(f"C{'C' * i}\t{i}\n" for i in range(25))
    with gzip.open(path, "wt") as fh:
        fh.write("smiles\ty\n" + rows)
    chunks = list(pio.iter_table(path, chunksize=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert chunks[1].index[0] == 12 and chunks[2].index[-1] == 26


def test_parquet_chunks(tmp_path):
    path = tmp_path / "t.parquet"
    pio.write_table(pd.DataFrame({"a": range(7)}), path)
    chunks = list(pio.iter_table(path, chunksize=3))
    assert [len(c) for c in chunks] == [3, 3, 1]


def test_stdin_and_stdout(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("a\tb\n1\t2\n"))
    frame = pio.read_table("-", fmt="tsv")
    assert frame.to_dict("list") == {"a": [1], "b": [2]}
    pio.write_table(frame, "-")
    assert capsys.readouterr().out == "a,b\n1,2\n"


def test_missing_file_and_column_are_one_line_errors(tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        pio.read_table(tmp_path / "nope.csv")
    path = tmp_path / "t.csv"
    path.write_text("smiles,y\nCCO,1\n")
    with pytest.raises(MissingInputError, match=r"column 'target' not found.*columns are: smiles, y"):
        pio.read_table(path, columns=["smiles", "target"])


def test_unreadable_tables_are_bad_input(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(BadInputError, match="is empty"):
        pio.read_table(empty)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(BadInputError, match="not UTF-8"):
        pio.read_table(binary)
    with pytest.raises(BadInputError, match="cannot tell the table format"):
        pio.read_table(tmp_path / "x.xlsx")
    notpq = tmp_path / "x.parquet"
    notpq.write_text("hello")
    with pytest.raises(BadInputError, match="Parquet"):
        pio.read_table(notpq)


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with pio.atomic_write(path) as fh:
            fh.write("new, half")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]  # no temporary file left behind
    with pio.atomic_write(path) as fh:
        fh.write("new")
    assert path.read_text() == "new"


def test_atomic_write_killed_midway_leaves_no_file(tmp_path):
    target = tmp_path / "big.csv"
    script = textwrap.dedent(f"""
        import os, signal
        from pmtoolkit.core.io import atomic_write
        with atomic_write({str(target)!r}) as fh:
            for i in range(1000):
                fh.write("row,%d\\n" % i)
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    # the partial data exists only under a hidden temporary name, never the target's
    assert all(p.name.startswith(".big.csv.pmt-tmp-") for p in tmp_path.iterdir())


def test_atomic_gzip_output(tmp_path):
    path = tmp_path / "o.txt.gz"
    with pio.atomic_write(path) as fh:
        fh.write("hello\n")
    assert gzip.decompress(path.read_bytes()) == b"hello\n"


def test_table_writer_streams_chunks_atomically(tmp_path):
    for name in ("s.csv", "s.parquet"):
        path = tmp_path / name
        with pio.TableWriter(path) as w:
            w.write(_frame())
            w.write(_frame())
        assert len(pio.read_table(path)) == 6
    path = tmp_path / "fail.csv"
    with pytest.raises(RuntimeError):
        with pio.TableWriter(path) as w:
            w.write(_frame())
            raise RuntimeError("interrupted")
    assert not path.exists()


def test_table_writer_writes_one_header_when_the_first_chunk_is_empty(tmp_path):
    for name in ("e.csv", "e.tsv"):
        path = tmp_path / name
        with pio.TableWriter(path) as w:
            w.write(_frame().iloc[:0])
            w.write(_frame())
            w.write(_frame().iloc[:0])
        lines = path.read_text().splitlines()
        assert len(lines) == 4 and lines[0] not in lines[1:]


def test_atomic_dir_protects_foreign_folders(tmp_path):
    out = tmp_path / "report"
    with pio.atomic_dir(out) as d:
        (d / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(BadInputError, match="--overwrite"):
        with pio.atomic_dir(out):
            pass
    with pio.atomic_dir(out, overwrite=True) as d:
        (d / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [".pmtoolkit-output", "b.txt"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(BadInputError, match="not written by pmtoolkit"):
        with pio.atomic_dir(mine, overwrite=True):
            pass
    assert (mine / "thesis.tex").read_text() == "precious"
    with pytest.raises(ValueError):
        with pio.atomic_dir(tmp_path / "failed") as d:
            (d / "partial").write_text("x")
            raise ValueError
    assert not (tmp_path / "failed").exists()


def test_rejects_policy(tmp_path):
    rejects = pio.Rejects(source="in.csv")
    rejects.add("C1CC", 7, "unclosed ring")
    rejects.add("xyz", 9, "cannot parse SMILES")
    with pytest.raises(BadInputError) as exc:
        rejects.apply("error")
    msg = str(exc.value)
    assert msg.startswith("in.csv: line 7: unclosed ring: 'C1CC' and 1 more")
    assert "\n" not in msg and "--on-invalid skip" in msg
    out = tmp_path / "scored.csv.gz"
    written = rejects.apply("skip", out)
    assert written == tmp_path / "scored.rejected.csv"
    assert written.read_text().splitlines() == [
        "line,item,reason", "7,C1CC,unclosed ring", "9,xyz,cannot parse SMILES"]
    folder = tmp_path / "run"
    folder.mkdir()
    rejects.item_name = "smiles"
    assert rejects.apply("skip", folder) == folder / "rejected.csv"
    assert (folder / "rejected.csv").read_text().startswith("line,smiles,reason\n")
    rejects.write(tmp_path / "r.tsv")
    assert (tmp_path / "r.tsv").read_text().splitlines()[1] == "7\tC1CC\tunclosed ring"
    assert pio.Rejects().apply("error") is None
    with pytest.raises(BadInputError, match="invalid on_invalid"):
        rejects.apply("ignore")


def test_open_text_and_lines(tmp_path):
    path = tmp_path / "a.smi.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("CCO ethanol\r\nCCC propane\n")
    assert list(pio.iter_lines(path)) == [(1, "CCO ethanol"), (2, "CCC propane")]
    with pytest.raises(BadInputError, match="is a directory"):
        with pio.open_text(tmp_path):
            pass


def test_write_json_is_strict_and_atomic(tmp_path):
    import json

    import numpy as np

    from pmtoolkit.core.io import write_json

    write_json(tmp_path / "m.json", {"auc": np.float32(0.5), "hd": float("nan"),
                                     "cm": np.array([[1, 2]]), "k": (1, np.int64(2))})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text
    assert json.loads(text) == {"auc": 0.5, "hd": None, "cm": [[1, 2]], "k": [1, 2]}


def _truncated_gz(path, text="smiles,y\n" + "CCO,1\n" * 5000):
    data = gzip.compress(text.encode())
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("read", [
    lambda p: pio.read_table(p),
    lambda p: list(pio.iter_table(p, chunksize=100)),
    lambda p: list(pio.iter_lines(p)),
])
def test_a_truncated_gzip_is_a_one_line_input_error(tmp_path, read):
    path = _truncated_gz(tmp_path / "t.csv.gz")
    with pytest.raises(BadInputError, match=r"'.*t.csv.gz' is truncated or not valid gzip"):
        read(path)


def test_binary_text_input_names_the_file_and_line(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"smiles,y\nCCO,1\nCCC,2\n\xff\xfe\x00binary")
    with pytest.raises(BadInputError, match=r"'.*b.csv' line 4 is not UTF-8 text \(byte 0xff\)"):
        pio.read_table(path)
    gz = tmp_path / "b.smi.gz"
    gz.write_bytes(gzip.compress(b"CCO\n" * 3 + b"\x80\n"))
    with pytest.raises(BadInputError, match="line 4 is not UTF-8"):
        list(pio.iter_lines(gz))


def test_reading_turns_decoding_errors_into_input_errors(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(BadInputError, match="x.json' line 1 is not UTF-8"), pio.reading(path):
        path.read_text(encoding="utf-8")


def test_an_interrupted_run_is_resumed_or_started_over_never_silently_replaced(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt), pio.atomic_dir(out) as tmp:
        (tmp / "model.bin").write_text("partial")
        work = pio.work_dir(out, {"lr": 0.1})
        (work / "last.ckpt").write_text("epoch 3")
        raise KeyboardInterrupt
    assert sorted(p.name for p in out.iterdir()) == ["work"]  # the checkpoint survives
    assert not list(tmp_path.glob(".*pmt-tmp*"))
    with pytest.raises(BadInputError, match="holds an interrupted run .*--resume"):
        pio.check_output_dir(out)
    with pytest.raises(BadInputError, match=r"other settings \(lr: 0.1 then, 0.2 now\)"):
        pio.work_dir(out, {"lr": 0.2})
    with pio.atomic_dir(out, resume=True) as tmp:
        assert (pio.work_dir(out, {"lr": 0.1}) / "last.ckpt").read_text() == "epoch 3"
        (tmp / "model.bin").write_text("done")
    assert (out / "model.bin").read_text() == "done" and not (out / "work").exists()
    with pytest.raises(BadInputError, match="exists .*--overwrite"):
        pio.check_output_dir(out, resume=True)  # nothing to resume in a finished folder


def test_overwrite_starts_an_interrupted_run_over(tmp_path):
    out = tmp_path / "run"
    (pio.work_dir(out, {"lr": 0.1}) / "last.ckpt").write_text("old")
    with pio.atomic_dir(out, overwrite=True) as tmp:
        assert not (out / "work").exists()  # old checkpoints must not be resumed by mistake
        assert pio.work_dir(out, {"lr": 0.2}).is_dir()
        (tmp / "x").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [".pmtoolkit-output", "x"]


def test_text_tables_show_no_float_noise(tmp_path):
    import numpy as np

    frame = pd.DataFrame({"mw": [324.4280000000001, 0.1 + 0.2, float("nan")],
                          "p": [2.94e-218, 1e-300, 123456789.123456789],
                          "f32": np.array([0.1, 1 / 3, 2], dtype=np.float32)})
    pio.write_table(frame, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines() == [
        "mw,p,f32", "324.428,2.94e-218,0.1", "0.3,1e-300,0.33333334", ",123456789.123,2.0"]
    pio.write_table(frame, tmp_path / "t.parquet")  # binary tables keep every bit
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back["mw"][0] == 324.4280000000001


@pytest.mark.parametrize("stop", [KeyboardInterrupt, BadInputError])
def test_a_run_stopped_before_its_first_checkpoint_leaves_nothing(tmp_path, stop):
    out = tmp_path / "run"
    with pytest.raises(stop), pio.atomic_dir(out) as tmp:
        (tmp / "partial").write_text("x")
        pio.work_dir(out, {"lr": 0.1})
        raise stop("stopped") if stop is BadInputError else stop
    assert not out.exists() and not list(tmp_path.iterdir())


def test_work_beside_a_file_output_keeps_an_interrupted_run_and_nothing_else(tmp_path):
    out = tmp_path / "x.h5ad"
    side = tmp_path / "x.h5ad.work"
    settings = {"model": {"epochs": 3}}

    def interrupted_after_a_checkpoint(settings):
        with pytest.raises(KeyboardInterrupt), pio.work_beside(out, settings) as work:
            (work / "last.ckpt").write_bytes(b"x")
            raise KeyboardInterrupt

    # stopped before any checkpoint: nothing kept
    with pytest.raises(BadInputError, match="bad data"), pio.work_beside(out, settings):
        raise BadInputError("bad data")
    assert not side.exists()
    interrupted_after_a_checkpoint(settings)  # kept for --resume
    assert (side / "work" / "last.ckpt").is_file()
    with pytest.raises(BadInputError, match="holds an interrupted run writing"), \
            pio.work_beside(out, settings):
        pass
    with pytest.raises(BadInputError, match=r"other settings \(model.epochs: 3 then, 4 now\)"), \
            pio.work_beside(out, {"model": {"epochs": 4}}, resume=True):
        pass
    with pio.work_beside(out, settings, resume=True) as work:
        assert (work / "last.ckpt").is_file()
    assert not side.exists()  # success removes it
    interrupted_after_a_checkpoint(settings)
    with pio.work_beside(out, {"model": {"epochs": 4}}, overwrite=True) as work:
        assert not (work / "last.ckpt").exists()  # started over, with the new settings
    side.mkdir()
    (side / "mine.txt").write_text("a user's file")
    with pytest.raises(BadInputError, match="was not written by pmtoolkit"), \
            pio.work_beside(out, settings, overwrite=True):
        pass
    assert (side / "mine.txt").is_file()
