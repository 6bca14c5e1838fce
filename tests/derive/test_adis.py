"""ADIS: baseline and treatment-emergent anti-CAR antibodies."""

from __future__ import annotations

from celltrial.derive import build_adis, build_adsl


def test_treatment_emergent_positive(domains, protocol):
    adis = build_adis(domains, build_adsl(domains, protocol))
    flags = adis.groupby("USUBJID")["TEPOSFL"].first().to_dict()
    assert flags == {"S1": "Y", "S2": "N"}   # S1 negative at baseline, positive day 28
    base = adis[adis["ABLFL"] == "Y"]
    assert base["ADY"].tolist() == [0.0, 0.0]
    assert adis["BASEC"].unique().tolist() == ["NEGATIVE"]
