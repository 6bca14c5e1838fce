"""The committee's review is computed once per version of the study's records (issue 15: the
page and its API rebuilt ADSL and the design's decision on every request): a repeat request
with no new data is answered from the cache (counted: :func:`celltrial.store.committee.review`
is not called again), a write the review does not read (a monitoring query) keeps it, and a
new DLT written through another store (as the other uvicorn worker would write it) changes
the answer at the next request (SQLite and PostgreSQL).

Study ``cd7-tall-dlt`` (3+3) as in ``test_committee``: cohort 1 at DL1 without a DLT, so
the design recommends escalating to DL2; a grade 3 pneumonitis of 01-001 on day 5 is a DLT
(rule D3, non-hematologic grade >= 3), and one DLT in three patients keeps the dose (3+3).
"""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.store import open_store, write_domains
from celltrial.store import committee as committee_store
from celltrial.store.committee import REVIEW_CACHE, data_version
from celltrial.store.engine import read_connection
from celltrial.store.queries import raise_query
from tests.web.test_committee import STUDY, dec  # noqa: F401  (the module's seeded study)

S = f"/studies/{STUDY}"
DLT = pd.DataFrame({
    "USUBJID": ["01-001"], "AESEQ": [1], "AETERM": ["pneumonitis"], "AEDECOD": ["Pneumonitis"],
    "AETOXGR": [3], "AETOXSCL": ["CTCAE v5.0"], "AESTDTC": ["2024-01-15"],
    "AEENDTC": ["2024-01-25"], "AESER": ["Y"], "AEREL": ["RELATED"]})


@pytest.fixture()
def computed(monkeypatch) -> list[str]:
    """The studies :func:`review` computed a review for, in order (the real function runs)."""
    calls: list[str] = []
    real = committee_store.review

    def counted(domains, protocol):
        calls.append(str(protocol.id))
        return real(domains, protocol)

    monkeypatch.setattr(committee_store, "review", counted)
    REVIEW_CACHE.clear()
    return calls


def _recommendation(client) -> tuple[str, str | None]:
    answer = client.get(f"/api{S}/committee")
    assert answer.status_code == 200, answer.text
    found = answer.json()["review"]["recommendation"]
    return found["action"], found["dose_level"]


def test_a_repeat_request_is_answered_from_the_cache_until_a_record_changes(
        dec, computed):  # noqa: F811  (the fixture imported above)
    mon = dec.login("mon01")
    assert _recommendation(mon) == ("escalate", "DL2")
    assert computed == [STUDY]
    # the same question again, as JSON and as the page: no new computation
    assert _recommendation(mon) == ("escalate", "DL2")
    page = mon.get(f"{S}/committee")
    assert page.status_code == 200 and "escalate to the next dose level: DL2" in page.text
    assert computed == [STUDY]
    assert (REVIEW_CACHE.hits, REVIEW_CACHE.misses) == (2, 1)

    # a query is no clinical record: the review stays as computed
    version = _version(dec)
    raise_query(dec.store, STUDY, "DM", "01-001", 0, "Please confirm the infusion date",
                user="mon01", source="test")
    assert _version(dec) == version
    assert _recommendation(mon) == ("escalate", "DL2")
    assert computed == [STUDY]

    # a DLT written through another connection pool (another worker process): the version
    # read from the database changes, the next request computes again and keeps the dose
    other = open_store(dec.url)
    try:
        write_domains(other, STUDY, {"AE": DLT}, user="setup", reason="late AE report")
    finally:
        other.close()
    assert _version(dec) != version
    assert _recommendation(mon) == ("stay", "DL1")
    assert computed == [STUDY, STUDY]
    assert _recommendation(mon) == ("stay", "DL1")
    assert computed == [STUDY, STUDY]


def _version(site) -> tuple[int, str] | None:
    with read_connection(site.store.engine) as connection:
        return data_version(connection, STUDY)
