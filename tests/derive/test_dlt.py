"""DLT adjudication end to end from SDTM frames (``celltrial.derive.dlt.adjudicate`` and ADSL
DLTFL/DLTEVLFL): one subject per boundary, the table in ``dlt_cases.EXPECTED``."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.derive import build_adsl
from celltrial.derive.dlt import adjudicate, censoring, event_table
from celltrial.protocols import load

from .dlt_cases import EXPECTED, STUDY, make_dlt_domains


@pytest.fixture(scope="module")
def zz():
    return load(STUDY)


@pytest.fixture(scope="module")
def cases(zz):
    domains = make_dlt_domains()
    adsl = build_adsl(domains, zz)
    return domains, adsl, adjudicate(domains, zz, adsl).set_index("USUBJID")


@pytest.mark.parametrize("subject", list(EXPECTED))
def test_adjudication_table(cases, subject):
    dltfl, evaluable, rule, excused, event, words = EXPECTED[subject]
    row = cases[2].loc[subject]
    assert (row["DLTFL"], row["DLTEVLFL"], row["DLTRULE"], row["DLTEXC"], row["CENSEVT"]) == \
        (dltfl, evaluable, rule, excused, event)
    assert words in row["DLTRSN"] + " / " + row["DLTEVLRS"]
    assert row["TRT01A"] == "DL1" and row["TRT01AN"] == 1.0


@pytest.mark.parametrize("subject", list(EXPECTED))
def test_adsl_flags_are_the_adjudication(cases, subject):
    adsl = cases[1].set_index("USUBJID")
    dltfl, evaluable = EXPECTED[subject][:2]
    assert (adsl.loc[subject, "DLTFL"], adsl.loc[subject, "DLTEVLFL"]) == (dltfl, evaluable)


def test_cytopenia_reaching_grade_4_after_transplant_is_not_a_dlt(cases):
    """A neutropenia AE starting on day 2 at grade 1 whose grade 4 is reached on day 300."""
    row = cases[2].loc["ANC-D300"]
    assert row["DLTFL"] == "N" and row["DLTEVLFL"] == "Y"
    (event,) = row["RESULT"].not_counted
    assert (event.status, event.met_day, event.toxicity.onset_day) == ("outside_window", 300, 2)
    assert row["EVENTS"] == "Neutrophil count decreased grade 4 met day 300: outside window (D4)"


def test_crs_course_from_xc_carries_clock_times(cases):
    table = cases[2]
    (event,) = table.loc["CRS-71H", "RESULT"].events
    course = event.toxicity.grade_course
    assert course[0] == (pytest.approx(2 + 8 / 24), 1)          # day 2 at 08:00
    assert course[1] == (pytest.approx(2 + 14 / 24), 3)         # from midnight of day 0
    assert event.met_day == pytest.approx(2 + 14 / 24)
    (days,) = table.loc["CRS-DAYS", "RESULT"].events
    assert [d for d, _ in days.toxicity.grade_course] == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_censoring_days_and_events(zz, cases):
    domains, adsl, _ = cases
    found = censoring(domains, zz, adsl).set_index("USUBJID")
    assert found["CENSDY"].to_dict() == {"HSCT-D20-ANC": 20.0, "HSCT-D20-CRS-D20": 20.0,
                                         "HSCT-D20-CRS-D21": 20.0, "HSCT-D40": 40.0,
                                         "THERAPY-D15": 15.0, "WITHDRAWN-D10": 10.0}
    assert found.loc["THERAPY-D15", "CENSEVT"] == "new_anticancer_therapy"


def test_only_the_events_the_protocol_lists_censor(zz, cases):
    domains, adsl, _ = cases
    dlt = zz.dlt.model_copy(update={"censored_by": None})
    uncensored = adjudicate(domains, zz.model_copy(update={"dlt": dlt}), adsl)
    row = uncensored.set_index("USUBJID").loc["HSCT-D20-CRS-D21"]
    assert (row["DLTFL"], row["DLTEVLFL"], row["CENSEVT"]) == ("Y", "Y", "")
    only_hsct = zz.dlt.censored_by.model_copy(update={"events": ["hsct"]})
    dlt = zz.dlt.model_copy(update={"censored_by": only_hsct})
    table = adjudicate(domains, zz.model_copy(update={"dlt": dlt}), adsl).set_index("USUBJID")
    assert table.loc["THERAPY-D15", "DLTEVLFL"] == "Y"
    assert table.loc["HSCT-D20-CRS-D21", "DLTEVLFL"] == "N"


def test_event_table_lists_every_event_considered(cases):
    events = event_table(cases[2].reset_index()).set_index("USUBJID")
    row = events.loc["HSCT-D20-CRS-D21"]
    assert (row["STATUS"], row["RULE"], row["METDY"]) == ("censored", "D1", 21.0)
    assert "after censoring (day 20: hsct)" in row["REASON"]
    assert set(events["STATUS"]) == {"dlt", "excused", "outside_window", "censored"}


def test_not_infused_subjects_are_not_adjudicated(zz):
    domains = make_dlt_domains()
    domains["EX"] = domains["EX"][domains["EX"]["USUBJID"] != "LOST-D20"]
    adsl = build_adsl(domains, zz)
    table = adjudicate(domains, zz, adsl)
    assert "LOST-D20" not in set(table["USUBJID"])
    row = adsl.set_index("USUBJID").loc["LOST-D20"]
    assert row["DLTEVLFL"] == "N" and row["DLTFL"] is None


def test_empty_study(zz):
    domains = {"DM": pd.DataFrame(columns=["STUDYID", "USUBJID", "ARMCD"])}
    adsl = build_adsl(domains, zz)
    assert adjudicate(domains, zz, adsl).empty


# --- through the store: write the frames, read them back, adjudicate (SQLite; PostgreSQL when
# a server answers at 127.0.0.1:5432)

def test_store_round_trip(db_url, zz, cases):
    from celltrial.store import init_db, open_store, read_domains, register_study, write_domains

    init_db(db_url)
    store = open_store(db_url)
    try:
        register_study(store, zz)
        write_domains(store, STUDY, make_dlt_domains(), user="test", reason="DLT boundaries")
        domains = read_domains(store, STUDY)
    finally:
        store.close()
    adsl = build_adsl(domains, zz)
    table = adjudicate(domains, zz, adsl).set_index("USUBJID")
    columns = ["DLTFL", "DLTEVLFL", "DLTRULE", "DLTEXC", "CENSEVT", "DLTRSN", "EVENTS"]
    expected = cases[2].loc[table.index, columns]
    pd.testing.assert_frame_equal(table[columns], expected)
    for subject, (dltfl, evaluable, *_rest) in EXPECTED.items():
        assert (table.loc[subject, "DLTFL"], table.loc[subject, "DLTEVLFL"]) == (dltfl, evaluable)
