"""ADRS: best overall response and response at a landmark day."""

from __future__ import annotations

import pytest

from celltrial.derive import build_adrs, build_adsl
from celltrial.derive.adrs import best_response, response_at_day

BOR = {"S1": "CR", "S2": "CRi", "S3": "CR", "S4": "CR", "S5": "NR"}

# status at day 90 and day 180 (latest assessment up to day + 14, relapse/death before it win)
AT_DAY = {
    "S1": ("CR", "CR"),
    "S2": ("RELAPSE", "RELAPSE"),   # relapse day 60
    "S3": ("CR", "RELAPSE"),        # CR day 28, relapse day 120
    "S4": ("DEATH", "DEATH"),       # died in remission day 70
    "S5": ("PD", "PD"),
    "S7": ("DEATH", "DEATH"),       # died day 10, never assessed
}


@pytest.fixture()
def data(domains, protocol):
    adsl = build_adsl(domains, protocol)
    return adsl, build_adrs(domains, adsl)


def test_best_overall_response(data):
    adsl, adrs = data
    bor = adrs[adrs["PARAMCD"] == "BOR"].set_index("USUBJID")["AVALC"].to_dict()
    assert bor == BOR
    assert best_response(adrs, 28).to_dict() == {"S1": "CR", "S2": "CRi", "S3": "CR",
                                                  "S4": "CR", "S5": "NR"}


@pytest.mark.parametrize("subject", sorted(AT_DAY))
def test_response_at_day(data, subject):
    adsl, adrs = data
    assert response_at_day(adrs, adsl, 90)[subject] == AT_DAY[subject][0]
    assert response_at_day(adrs, adsl, 180)[subject] == AT_DAY[subject][1]


def test_study_days(data):
    _, adrs = data
    s2 = adrs[(adrs["USUBJID"] == "S2") & (adrs["PARAMCD"] == "OVRLRESP")]
    assert s2["ADY"].tolist() == [28.0, 60.0]
    assert s2["AVALC"].tolist() == ["CRi", "RELAPSE"]
