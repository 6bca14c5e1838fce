"""ADPC times and BLQ handling; ADPP NCA parameters on a hand-worked BLQ profile."""

from __future__ import annotations

import math

import pytest

from celltrial.derive import build_adpc, build_adpp, build_adsl


@pytest.fixture()
def adpc(domains, protocol):
    return build_adpc(domains, build_adsl(domains, protocol))


def test_time_and_blq(adpc):
    s1 = adpc[adpc["USUBJID"] == "S1"]
    # pre-dose sample at 09:00, infusion at 10:00 on day 0: one hour before
    assert s1["TIME"].iloc[0] == pytest.approx(-1 / 24)
    # clock time on both: exact; date only: whole days
    assert s1["TIME"].tolist()[1:] == [7.0, 14.0, 28.0, 90.0, 180.0]
    assert s1["BLQFL"].tolist() == ["Y", "N", "N", "N", "Y", "Y"]
    assert s1["AVAL"].isna().tolist() == [True, False, False, False, True, True]
    assert s1["LLOQ"].unique().tolist() == [100.0]
    assert s1["TRT01AN"].unique().tolist() == [1.0]
    assert s1["baseline_cd7_blast_pct"].unique().tolist() == [95.0]


def test_nca_on_blq_profile(adpc):
    """S1 qPCR: 0 implied at day 0, 1000 at 7, 5000 at 14, 500 at 28, BLQ after (missing).
    Linear-up/log-down: 0-7 linear 3500; 7-14 linear 21000; 14-28 log (5000-500)*14/ln(10)."""
    adpp = build_adpp(adpc).set_index(["USUBJID", "PARAMCD"])["AVAL"]
    auc = 3500 + 21000 + 4500 * 14 / math.log(10)
    assert adpp[("S1", "CMAX_QPCR")] == 5000
    assert adpp[("S1", "TMAX_QPCR")] == 14
    assert adpp[("S1", "CLST_QPCR")] == 500
    assert adpp[("S1", "TLST_QPCR")] == 28
    assert adpp[("S1", "AUC28_QPCR")] == pytest.approx(auc, rel=1e-9)
    assert adpp[("S1", "AUCLST_QPCR")] == pytest.approx(auc, rel=1e-9)
    # flow (% CAR+ of CD3+) kept apart from qPCR
    assert adpp[("S2", "CMAX_PCT")] == 8.0
    assert ("S1", "CMAX_PCT") not in adpp.index
