"""Imports stream in chunks inside one transaction (PostgreSQL: COPY): chunk boundaries change
nothing: the same records, audit rows, --SEQ numbers and messages as one frame, and a problem
in a late chunk rolls back the chunks already written (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store import audit_trail, import_csv_dir, read_domains
from celltrial.store.audit import records_hash, verify_audit
from celltrial.store.domains import DOMAINS
from celltrial.store.schema import TABLES

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
    stored = read_domains(store, STUDY)
    assert stored["LB"]["LBSEQ"].tolist() == [1.0, 2.0, 1.0, 2.0]
    trail = audit_trail(store, STUDY)
    written = trail[trail["table"] != "study"]
    assert (written["action"] == "insert").sum() == summary.audit_rows
    assert verify_audit(store).intact
    # file imports audit DM per record and the other domains per subject and chunk
    if chunk_rows == 1000:
        subject_groups = sum(f["USUBJID"].nunique() for name, f in make_frames().items()
                             if name != "DM")
        assert summary.audit_rows == 3 + subject_groups + 2  # + the two sites first seen


def test_every_imported_record_finds_its_import_row(store, tmp_path):
    """audit_trail of one record (USUBJID=...;LBSEQ=n) finds the import's row that wrote it
    among its subject's records (LBSEQ=1-2), with the file rows read."""
    import_csv_dir(store, STUDY, _folder(tmp_path / "in", make_frames()), user="u",
                   chunk_rows=1000)
    for subject, seq in read_domains(store, STUDY)["LB"][["USUBJID", "LBSEQ"]].itertuples(
            index=False):
        trail = audit_trail(store, STUDY, table="LB",
                            record_key=f"USUBJID={subject};LBSEQ={int(seq)}")
        inserts = trail[trail["action"] == "insert"]
        assert len(inserts) == 1
        assert inserts["record_key"].iloc[0] == f"USUBJID={subject};LBSEQ=1-2"
        assert json.loads(inserts["new_value"].iloc[0])["rows"].startswith("LB.csv rows ")
    assert audit_trail(store, STUDY, table="LB", record_key="USUBJID=101-001;LBSEQ=3").empty


def test_import_row_hash_is_the_hash_of_the_stored_records(store, tmp_path):
    """The SHA-256 in an import's audit row (format records-v1) is recomputed from the records
    as stored: a record changed behind the store's back no longer matches it."""
    import_csv_dir(store, STUDY, _folder(tmp_path / "in", make_frames()), user="u")
    domain = DOMAINS["LB"]
    table = TABLES["LB"]
    variables = [(v.name, v.type) for v in domain.variables]

    def stored_hash(subject: str) -> str:
        with store.engine.connect() as connection:
            rows = connection.execute(sa.select(*[table.c[n] for n, _ in variables]).where(
                table.c.USUBJID == subject).order_by(table.c.LBSEQ)).all()
        columns = {name: [row[i] for row in rows] for i, (name, _) in enumerate(variables)}
        return records_hash(variables, columns, range(len(rows)))

    trail = audit_trail(store, STUDY, table="LB")
    logged = {key.split(";")[0][len("USUBJID="):]: json.loads(new)["sha256"]
              for key, new in zip(trail["record_key"], trail["new_value"], strict=True)}
    assert logged == {s: stored_hash(s) for s in logged}
    with store.engine.begin() as connection:
        connection.execute(table.update().where(table.c.USUBJID == "101-001")
                           .values(LBORRES="999"))
    assert stored_hash("101-001") != logged["101-001"]


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


def test_database_refusal_in_a_streamed_chunk_writes_nothing(store, tmp_path, monkeypatch):
    """A row the database itself refuses (here a key already stored, with the import's own
    check of stored keys switched off so that the row reaches the database) ends the import
    with the database's message and nothing written: on PostgreSQL the refusal comes from the
    COPY kept open across the chunks, on SQLite from the chunk's insert."""
    import celltrial.store.records as records

    frames = make_frames()
    import_csv_dir(store, STUDY, _folder(tmp_path / "first", {"DM": frames["DM"]}), user="u")
    import_csv_dir(store, STUDY, _folder(tmp_path / "one", {"LB": frames["LB"].iloc[[3]]}),
                   user="u")
    before = _snapshot(store)
    monkeypatch.setattr(records, "check_existing", lambda *a, **k: None)
    with pytest.raises(StoreError, match=r"^The database refused LB: .*nothing was written$"):
        import_csv_dir(store, STUDY, _folder(tmp_path / "again", {"LB": frames["LB"]}),
                       user="u", chunk_rows=1)
    assert _snapshot(store) == before


# (variable type, cells cycled over 1,500 rows: good, blank and bad ones)
COLUMNS = [
    ("int", ["1", " 2 ", "", "2.5", "x", "3.0"]),
    ("int", ["1", " 2 ", "3.0", "1_0", "-4"]),  # all good: converted as one array
    ("float", ["1.5", "-0", "", "inf", "nan", "1e3", "one"]),
    ("float", ["1.5", "-0", "1e3", " 2 ", "0.1"]),  # all good: converted as one array
    ("date", ["2024-01-12", "2024-02-30", "", "2024-01-12T08:00", "12/01/2024"]),
    ("text", ["NEUT", " ", "", "neut"]),
]


@pytest.mark.parametrize(("kind", "cells"), COLUMNS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(COLUMNS)])
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
    assert [type(v) for v in at_once] == [type(v) for v in by_part]
    assert [str(v) for v in at_once] == [str(v) for v in by_part]  # -0.0 stays -0.0
    assert (at_once_problems.count, at_once_problems.lines) == (problems.count, problems.lines)


HASHED = [("A", "text"), ("D", "date"), ("N", "int"), ("X", "float"), ("G", "int")]


@pytest.mark.parametrize("text", [["S1", "S2", "S3", "S4"], ["a\"b", "é", "tab\there", "x"],
                                  ["x", None, "y", "z"]], ids=["plain", "escaped", "missing"])
def test_records_hasher_gives_records_hash(text):
    """The per-chunk hasher of imports (arrays built once) gives records-v1 of each subject's
    positions exactly as records_hash, whatever the text needs (escapes, non-ASCII, null)."""
    import numpy as np

    from celltrial.store.audit import RecordsHasher

    columns = {"A": text, "D": ["2024-01-01", "2024-01-02T08:00", None, "2024-01-03"],
               "N": [1, 2, 3, 10], "X": [1.5, None, -0.0, 1e300], "G": [0, None, 4, 1]}
    hasher = RecordsHasher(HASHED, columns)
    for positions in ([0, 1, 2, 3], [3, 1], [2], []):
        assert hasher(np.array(positions, dtype=np.int64)) == records_hash(
            HASHED, columns, positions)


@pytest.mark.parametrize("numbers", [[1, 2, 3, 5, 9, 10], [7], [], [4, 2, 3, 3, 1, 8]])
def test_number_ranges_of_an_array_is_that_of_a_list(numbers):
    import numpy as np

    from celltrial.store.audit import number_ranges

    assert number_ranges(np.array(numbers, dtype=np.int64)) == number_ranges(numbers)


def test_clean_combinations_remembered_across_chunks_change_no_problem():
    """The LB cross-field check run chunk by chunk with a memo of clean value combinations
    reports exactly what it reports over the whole frame at once (rows, order, messages)."""
    from celltrial.store import consistency
    from celltrial.store.validate import Problems, Source, by_distinct_rows

    lb = make_frames()["LB"]
    good = lb.iloc[0].to_dict()
    bad_grade = {**good, "LBTOXGR": 4 if good["LBTOXGR"] != 4 else 0}
    bad_result = {**good, "LBORRES": "123"}
    rows = [good, bad_grade, good, bad_result, good, good, bad_grade] * 30
    columns = {name: [None if pd.isna(row.get(name)) else row.get(name) for row in rows]
               for name in consistency.LAB_COLUMNS}
    source = Source("LB.csv", header_lines=1)
    whole = Problems()
    consistency.check_lab_results(columns, lambda r, c, v, m: whole.add(source, r, c, v, m))
    chunked, memo = Problems(), set()
    for start in range(0, len(rows), 70):
        part = {name: values[start:start + 70] for name, values in columns.items()}
        src = source.after(start)
        by_distinct_rows(consistency.check_lab_results, consistency.LAB_COLUMNS, part,
                         lambda r, c, v, m, src=src: chunked.add(src, r, c, v, m), memo=memo)
    assert whole.count == 90
    assert (chunked.count, chunked.lines) == (whole.count, whole.lines)
    assert len(memo) == 1  # the one good combination


@pytest.mark.parametrize("kind", ["text", "int", "float", "date"])
def test_a_str_column_with_missing_cells_converts_as_row_by_row(kind):
    """pandas' ``str`` dtype (a frame built in memory, e.g. a virtual study) holds a missing
    cell as NaN: over 1,000 rows it is missing (None), as converting row by row gives."""
    from celltrial.store.validate import Problems, Source, _convert_column

    cells = {"text": "TOCILIZUMAB", "int": "3", "float": "1.5", "date": "2024-01-02"}[kind]
    values = pd.Series([cells if i % 3 else None for i in range(1500)], dtype="str")
    source = Source("domain CM")
    at_once = _convert_column(values, kind, source, "X", Problems())
    row_by_row = _convert_column(values[:900].reset_index(drop=True), kind, source, "X",
                                 Problems())
    assert at_once[:900] == row_by_row
    assert at_once[0] is None and at_once[1] is not None
