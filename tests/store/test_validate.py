"""Bad input is refused whole: the message names file, row, column and value, and the database
is unchanged (row counts per table and the audit count equal before and after)."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store import import_csv_dir, write_domains

from .conftest import STUDY, make_frames


def _snapshot(store) -> dict[str, int]:
    """Rows in every table (domains, study, site, user, audit)."""
    with store.engine.connect() as connection:
        names = sa.inspect(connection).get_table_names()
        return {name: connection.execute(sa.text(f'SELECT COUNT(*) FROM "{name}"')).scalar_one()
                for name in names}


def _set(frames, domain, row, column, value):
    frame = frames[domain].astype({column: object}) if column in frames[domain] else \
        frames[domain]
    frame.loc[row - 1, column] = value
    frames[domain] = frame
    return frames


# (case, domain, data row (1-based), column, bad value, text the message must hold)
CASES = [
    ("unknown column", "AE", None, "AEGRADE", 3, "must be one of the AE variables"),
    ("wrong type: text for a number", "DM", 2, "AGE", "fifty-one", "must be a finite number"),
    ("wrong type: fraction for a grade", "AE", 1, "AETOXGR", 2.5, "must be a whole number"),
    ("wrong type: impossible date", "AE", 2, "AESTDTC", "2024-02-30", "ISO 8601"),
    ("unknown subject", "LB", 3, "USUBJID", "999-999", "must be a subject of DM"),
    ("negative weight", "VS", 3, "VSSTRESN", -48.0, "must be in [0.3, 400] kg for WEIGHT"),
    ("ANC in the wrong unit", "LB", 3, "LBSTRESU", "cells/uL", "must be `10^9/L` for NEUT"),
    ("ANC in /uL labelled 10^9/L", "LB", 1, "LBSTRESN", 1500.0, "[0, 200] 10^9/L for NEUT"),
    ("grade beyond 5", "AE", 2, "AETOXGR", 6, "must be in [1, 5]"),
    ("closed code list", "DM", 1, "SEX", "male", "must be one of 'M', 'F', 'U'"),
    ("duplicate key in the batch", "EX", 2, "EXSEQ", 1, "repeats row 1"),
    ("duplicate subject in DM", "DM", 3, "USUBJID", "101-001", "repeats row 1"),
    ("another study's rows", "AE", 1, "STUDYID", "other-study", "the study being written"),
]


def _bad_frames(domain, row, column, value):
    frames = make_frames()
    if row is None:
        frames[domain] = frames[domain].assign(**{column: value})
    else:
        _set(frames, domain, row, column, value)
    return frames


@pytest.mark.parametrize(("case", "domain", "row", "column", "value", "rule"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_frame_is_refused_and_nothing_is_written(guarded, case, domain, row, column, value,
                                                      rule):
    before = _snapshot(guarded)
    with pytest.raises(StoreError) as caught:
        write_domains(guarded, STUDY, _bad_frames(domain, row, column, value), user="u",
                      reason="entry")
    message = str(caught.value)
    where = f"domain {domain} header" if row is None else f"domain {domain} row {row}"
    assert where in message
    assert f"column {column}" in message
    assert repr(value) in message
    assert rule in message
    assert "nothing was written" in message
    assert _snapshot(guarded) == before


@pytest.mark.parametrize(("case", "domain", "row", "column", "value", "rule"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_csv_import_names_file_row_and_line(guarded, tmp_path, case, domain, row, column,
                                                value, rule):
    for name, frame in _bad_frames(domain, row, column, value).items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    before = _snapshot(guarded)
    with pytest.raises(StoreError) as caught:
        import_csv_dir(guarded, STUDY, tmp_path, user="u")
    message = str(caught.value)
    where = (f"{domain}.csv header" if row is None
             else f"{domain}.csv row {row} (line {row + 1})")
    assert where in message and f"column {column}" in message and rule in message
    assert re.search(rf"`'?{re.escape(str(value))}'?`", message), message
    assert _snapshot(guarded) == before


def test_stored_key_and_subject_are_checked_against_the_store(filled):
    before = _snapshot(filled)
    again = {"AE": make_frames()["AE"]}
    with pytest.raises(StoreError, match=r"domain AE row 1, column AESEQ: .*already stored"):
        write_domains(filled, STUDY, again, user="u", reason="entry")
    assert _snapshot(filled) == before
    # a new AE for a stored subject, without AESEQ: numbered after the stored ones
    new = pd.DataFrame({"USUBJID": ["101-001"], "AETERM": ["Fever"], "AETOXGR": [1],
                        "AESTDTC": ["2024-01-20"], "AESER": ["N"], "AEREL": ["RELATED"]})
    summary = write_domains(filled, STUDY, {"AE": new}, user="u", reason="late entry")
    assert summary.records == {"AE": 1}
    from celltrial.store import read_domain

    ae = read_domain(filled, STUDY, "AE")
    assert ae.loc[ae["AETERM"] == "Fever", "AESEQ"].tolist() == [2.0]


def test_many_problems_are_listed_together(guarded):
    frames = make_frames()
    frames["VS"] = frames["VS"].assign(VSSTRESN=[-1.0, -2.0, -3.0], VSTESTCD="WEIGHT",
                                       VSSTRESU="kg")
    with pytest.raises(StoreError, match=r"^3 problems; nothing was written") as caught:
        write_domains(guarded, STUDY, frames, user="u", reason="entry")
    assert all(f"domain VS row {r}, column VSSTRESN" in str(caught.value) for r in (1, 2, 3))


def test_unknown_domain_file_and_study(guarded, tmp_path):
    (tmp_path / "ZZ.csv").write_text("USUBJID\n1\n")
    with pytest.raises(StoreError, match=r"got `'ZZ.csv'`.*must be named by a domain"):
        import_csv_dir(guarded, STUDY, tmp_path, user="u")
    with pytest.raises(StoreError, match=r"Invalid `domain`: got `'XX'`"):
        write_domains(guarded, STUDY, {"XX": pd.DataFrame()}, user="u", reason="r")
    with pytest.raises(StoreError, match=r"Invalid `study`: got `'nope'`.*cd7-tall-dlt"):
        write_domains(guarded, "nope", make_frames(), user="u", reason="r")
