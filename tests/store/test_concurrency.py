"""Concurrent writers on SQLite and PostgreSQL: no lost update, no duplicate --SEQ, no error.

The store serializes its writers (docs/store.md, "Concurrency"): a correction reads, grades
and writes under one lock and names the version it saw; --SEQ is read and written under the
same lock. These tests race real threads, each with its own connection, against one store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from celltrial.clinical import grade_lab
from celltrial.store import StaleRecord, audit_trail, read_domain, update_record, write_domains
from celltrial.store.records import record_key
from celltrial.store.domains import DOMAINS
from tests.store.conftest import STUDY

NEUT = "Neutrophil count decreased"
KEY = (STUDY, "101-002", 1)  # NEUT 0.2 x 10^9/L, LLN 1.8: grade 4


def neut_grade(record: dict[str, Any]) -> dict[str, Any]:
    """What a correction derives: the original result as typed and the CTCAE v5.0 grade of
    the corrected neutrophil count (units 10^9/L throughout)."""
    value = record["LBSTRESN"]
    return {"LBORRES": f"{value:g}",
            "LBTOXGR": int(grade_lab(NEUT, value, "10^9/L", lln=record["LBORNRLO"]))}


def race(workers: list[Callable[[], Any]]) -> list[Any]:
    """Start every worker at the same instant; results (or the exception raised) in order."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = workers[i]()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each worker raised
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.mark.parametrize("round_", range(5))
def test_two_corrections_of_one_record_one_wins_one_is_told(filled, round_):
    """One user corrects the value, the other the LLN, both having read version 1."""
    value = {"LBSTRESN": 3.029}
    lln = {"LBORNRLO": 4.029}
    results = race([
        lambda: update_record(filled, "LB", KEY, value, user="inv01", reason="typo",
                              version=1, derive=neut_grade),
        lambda: update_record(filled, "LB", KEY, lln, user="inv02", reason="lab sheet",
                              version=1, derive=neut_grade),
    ])
    won = [r for r in results if isinstance(r, dict)]
    stale = [r for r in results if isinstance(r, StaleRecord)]
    assert len(won) == 1 and len(stale) == 1, results
    assert stale[0].current["version"] == 2
    stored = _stored(filled)
    assert stored["LBTOXGR"] == neut_grade(stored)["LBTOXGR"] == won[0]["LBTOXGR"]
    trail = audit_trail(filled, STUDY, record_key="USUBJID=101-002;LBSEQ=1")
    updates = trail[trail["action"] == "update"].set_index("field")
    changed = "LBSTRESN" if "LBSTRESN" in updates.index else "LBORNRLO"
    assert updates.loc[changed, "old_value"] == {"LBSTRESN": "0.2", "LBORNRLO": "1.8"}[changed]
    if changed == "LBSTRESN":  # 3.029 >= LLN 1.8: grade 0; 0.2 under LLN 4.029 stays 4
        assert (updates.loc["LBTOXGR", "old_value"], stored["LBTOXGR"]) == ("4", 0)
    assert len(set(updates["user"])) == 1


def _stored(store) -> dict[str, Any]:
    lb = read_domain(store, STUDY, "LB")
    return lb[(lb["USUBJID"] == "101-002") & (lb["LBSEQ"] == 1)].iloc[0].to_dict()


def test_a_stale_correction_writes_nothing_and_carries_the_current_record(filled):
    update_record(filled, "LB", KEY, {"LBSTRESN": 1.2}, user="inv01", reason="typo",
                  version=1, derive=neut_grade)
    assert _stored(filled)["LBTOXGR"] == 2
    before = audit_trail(filled, STUDY)
    with pytest.raises(StaleRecord, match="version 1, it is now version 2") as caught:
        update_record(filled, "LB", KEY, {"LBSTRESN": 0.4}, user="inv02", reason="typo",
                      version=1, derive=neut_grade)
    assert caught.value.current["LBSTRESN"] == 1.2 and caught.value.current["version"] == 2
    assert audit_trail(filled, STUDY).equals(before)
    assert _stored(filled)["LBSTRESN"] == 1.2


def test_every_correction_adds_one_to_the_version(filled):
    for n, value in enumerate((1.0, 0.9, 0.8), start=1):
        stored = update_record(filled, "LB", KEY, {"LBSTRESN": value}, user="inv01",
                               reason="recount", version=n, derive=neut_grade)
        assert stored["version"] == n + 1


def _lab(day: int) -> pd.DataFrame:
    return pd.DataFrame([{
        "USUBJID": "101-002", "LBCAT": "HEMATOLOGY", "LBTESTCD": "NEUT",
        "LBTEST": "Neutrophils", "LBSPEC": "BLOOD", "LBORRES": "1.2", "LBORRESU": "10^9/L",
        "LBSTRESN": 1.2, "LBSTRESU": "10^9/L", "LBORNRLO": 1.8, "LBORNRHI": 7.5,
        "LBTOXGR": 2, "LBDTC": f"2024-03-{day:02d}"}], dtype=object)


def test_twenty_writers_for_one_subject_all_stored_with_distinct_seq(filled):
    before = read_domain(filled, STUDY, "LB")
    results = race([lambda d=d: write_domains(filled, STUDY, {"LB": _lab(d)}, user="inv01",
                                              reason="entry") for d in range(1, 21)])
    assert all(not isinstance(r, Exception) for r in results), results
    after = read_domain(filled, STUDY, "LB")
    new = after[after["USUBJID"] == "101-002"].iloc[len(before[before["USUBJID"] ==
                                                                "101-002"]):]
    assert len(new) == 20
    assert sorted(new["LBSEQ"].astype(int)) == list(range(3, 23))
    assert sorted(new["LBDTC"]) == [f"2024-03-{d:02d}" for d in range(1, 21)]
    keys = {record_key(DOMAINS["LB"], r) for r in new.to_dict("records")}
    inserts = audit_trail(filled, STUDY, table="lb")
    assert keys <= set(inserts["record_key"])


def test_each_of_twenty_racing_entries_gets_back_its_own_record(filled):
    """write_record reads back under the write lock: never another writer's newer row."""
    from celltrial.store import write_record

    def entry(day: int):  # type: ignore[no-untyped-def]
        row = _lab(day).iloc[0].to_dict()
        return write_record(filled, STUDY, "LB", row, user="inv01", reason="entry",
                            idempotency_key=f"entry-{day:02d}-0123456789abc")

    results = race([lambda d=d: entry(d) for d in range(1, 21)])
    assert all(not isinstance(r, Exception) for r in results), results
    assert [r.record["LBDTC"] for r in results] == [f"2024-03-{d:02d}" for d in range(1, 21)]
    assert len({r.record["LBSEQ"] for r in results}) == 20
    replays = race([lambda d=d: entry(d) for d in range(1, 21)])
    assert all(r.replayed for r in replays)
    assert [r.record for r in replays] == [r.record for r in results]
