"""Imports stream in chunks inside one transaction (PostgreSQL: COPY): chunk boundaries change
nothing: the same records, audit rows, --SEQ numbers and messages as one frame, and a problem
in a late chunk rolls back the chunks already written (SQLite and PostgreSQL)."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.errors import StoreError
from celltrial.store import audit_trail, import_csv_dir, read_domains
from celltrial.store.audit import verify_audit

from .conftest import STUDY, make_frames
from .test_validate import _snapshot


def _folder(path, frames):
    path.mkdir()
    for name, frame in frames.items():
        frame.to_csv(path / f"{name}.csv", index=False)
    return path


@pytest.mark.parametrize("chunk_rows", [1, 2, 1000])
def test_chunked_import_stores_what_one_frame_stores(store, tmp_path, chunk_rows):
    summary = import_csv_dir(store, STUDY, _folder(tmp_path / "in", make_frames()), user="u",
                             chunk_rows=chunk_rows)
    assert summary.records == {name: len(f) for name, f in make_frames().items()}
    assert summary.audit_rows == summary.total + 2  # + the two sites first seen in DM
    stored = read_domains(store, STUDY)
    assert stored["LB"]["LBSEQ"].tolist() == [1.0, 2.0, 1.0, 2.0]
    trail = audit_trail(store, STUDY)
    written = trail[trail["table"] != "study"]
    assert (written["action"] == "insert").sum() == summary.audit_rows
    assert verify_audit(store).intact


def test_seq_numbering_carries_across_chunks(store, tmp_path):
    frames = make_frames()
    frames["LB"] = frames["LB"].drop(columns="LBSEQ")
    import_csv_dir(store, STUDY, _folder(tmp_path / "in", frames), user="u", chunk_rows=1)
    lb = read_domains(store, STUDY)["LB"]
    assert list(zip(lb["USUBJID"], lb["LBSEQ"], strict=True)) == [
        ("101-001", 1.0), ("101-001", 2.0), ("101-002", 1.0), ("101-002", 2.0)]


# (case, change to the frames, text the message must hold)
LATE_PROBLEMS = [
    ("key repeating a row of an earlier chunk",
     lambda f: f["LB"].assign(LBSEQ=[1, 2, 1, 1]),
     "LB.csv row 4 (line 5), column LBSEQ: Invalid `LBSEQ`: got `1`, must be unique per "
     "subject (USUBJID+LBSEQ ('101-002', 1) repeats row 3)"),
    ("grade disagreeing in the last chunk",
     lambda f: f["LB"].assign(LBTOXGR=[1, None, 3, None]),
     "LB.csv row 3 (line 4), column LBTOXGR: Invalid `LBTOXGR`: got `3`, must be 4"),
    ("unknown subject in the last chunk",
     lambda f: f["DS"].assign(USUBJID=["101-001", "101-002", "999"]),
     "DS.csv row 3 (line 4), column USUBJID"),
]


@pytest.mark.parametrize(("case", "change", "expected"), LATE_PROBLEMS,
                         ids=[c[0] for c in LATE_PROBLEMS])
def test_problem_in_a_late_chunk_rolls_back_earlier_chunks(guarded, tmp_path, case, change,
                                                           expected):
    frames = make_frames()
    domain = {"key repeating a row of an earlier chunk": "LB",
              "grade disagreeing in the last chunk": "LB"}.get(case, "DS")
    frames[domain] = change(frames)
    before = _snapshot(guarded)
    with pytest.raises(StoreError) as caught:
        import_csv_dir(guarded, STUDY, _folder(tmp_path / "in", frames), user="u",
                       chunk_rows=1)
    assert expected in str(caught.value), str(caught.value)
    assert _snapshot(guarded) == before


def test_cut_file_after_written_chunks_writes_nothing(guarded, tmp_path):
    frames = make_frames()
    frames["LB"] = pd.concat([frames["LB"]] * 3, ignore_index=True).assign(
        LBSEQ=range(1, 13))
    folder = _folder(tmp_path / "in", frames)
    text = (folder / "LB.csv").read_text()
    (folder / "LB.csv").write_text(text[:text.rstrip("\n").rfind("\n") + 20])
    before = _snapshot(guarded)
    with pytest.raises(StoreError, match=r"^LB.csv row 12 \(line 13\): Invalid `row`"):
        import_csv_dir(guarded, STUDY, folder, user="u", chunk_rows=2)
    assert _snapshot(guarded) == before


# (variable type, cells cycled over 1,500 rows: good, blank and bad ones)
COLUMNS = [
    ("int", ["1", " 2 ", "", "2.5", "x", "3.0"]),
    ("float", ["1.5", "-0", "", "inf", "nan", "1e3", "one"]),
    ("date", ["2024-01-12", "2024-02-30", "", "2024-01-12T08:00", "12/01/2024"]),
    ("text", ["NEUT", " ", "", "neut"]),
]


@pytest.mark.parametrize(("kind", "cells"), COLUMNS, ids=[c[0] for c in COLUMNS])
def test_long_text_columns_convert_as_row_by_row(kind, cells):
    """Over 1,000 rows of text, each distinct cell is converted once: the values and the
    problems (rows, order) are those of converting 500 rows at a time, row by row."""
    from celltrial.store.validate import Problems, Source, _convert_column

    values = pd.Series([cells[i % len(cells)] for i in range(1500)], dtype=object)
    source = Source("LB.csv", header_lines=1)
    at_once_problems, problems = Problems(), Problems()
    at_once = _convert_column(values, kind, source, "X", at_once_problems)
    by_part: list = []
    for start in range(0, 1500, 500):
        by_part += _convert_column(values[start:start + 500].reset_index(drop=True), kind,
                                   source.after(start), "X", problems)
    assert at_once == by_part
    assert (at_once_problems.count, at_once_problems.lines) == (problems.count, problems.lines)
