"""ADTTE: OS, PFS, EFS, DOR, CIR times and censoring by hand, under both transplant rules."""

from __future__ import annotations

import pytest

from celltrial.derive import build_adrs, build_adsl, build_adtte



def with_transplant_censoring(protocol, value: bool):
    """The protocol with ``options.censor_at_transplant`` set to ``value``."""
    options = protocol.options.model_copy(update={"censor_at_transplant": value})
    return protocol.model_copy(update={"options": options})


# (subject, PARAMCD): (AVAL days, CNSR, EVNTTYPE) when allo-HSCT is ignored
IGNORE_HSCT = {
    ("S1", "OS"): (365, 1, 0), ("S2", "OS"): (100, 0, 1), ("S3", "OS"): (200, 1, 0),
    ("S4", "OS"): (70, 0, 1), ("S5", "OS"): (150, 1, 0), ("S7", "OS"): (10, 0, 1),
    ("S1", "PFS"): (180, 1, 0), ("S2", "PFS"): (60, 0, 1), ("S3", "PFS"): (120, 0, 1),
    ("S4", "PFS"): (70, 0, 1), ("S5", "PFS"): (60, 0, 1), ("S7", "PFS"): (10, 0, 1),
    ("S1", "EFS"): (180, 1, 0), ("S2", "EFS"): (60, 0, 1), ("S3", "EFS"): (120, 0, 1),
    ("S4", "EFS"): (70, 0, 1), ("S5", "EFS"): (0, 0, 1), ("S7", "EFS"): (0, 0, 1),
    ("S1", "DOR"): (152, 1, 0), ("S2", "DOR"): (32, 0, 1), ("S3", "DOR"): (92, 0, 1),
    ("S4", "DOR"): (42, 0, 1),
    ("S1", "CIR"): (152, 1, 0), ("S2", "CIR"): (32, 0, 1), ("S3", "CIR"): (92, 0, 1),
    ("S4", "CIR"): (42, 0, 2),   # death in remission: competing event
}
# S3 had allo-HSCT on day 45 (17 days after its CR on day 28)
CENSOR_HSCT = {**IGNORE_HSCT, ("S3", "PFS"): (45, 1, 0), ("S3", "EFS"): (45, 1, 0),
               ("S3", "DOR"): (17, 1, 0), ("S3", "CIR"): (17, 1, 0)}


def _table(adtte, suffix=""):
    rows = adtte[adtte["PARAMCD"].str.endswith(suffix)] if suffix else adtte[
        ~adtte["PARAMCD"].str.endswith("SENS")]
    return {(r.USUBJID, r.PARAMCD.removesuffix("SENS")): (r.AVAL, r.CNSR, r.EVNTTYPE)
            for r in rows.itertuples()}


@pytest.mark.parametrize("censor_at_transplant", [False, True])
def test_both_transplant_rules(domains, protocol, censor_at_transplant):
    protocol = with_transplant_censoring(protocol, censor_at_transplant)
    adsl = build_adsl(domains, protocol)
    adtte = build_adtte(adsl, build_adrs(domains, adsl), protocol)
    primary, sensitivity = (CENSOR_HSCT, IGNORE_HSCT) if censor_at_transplant else (
        IGNORE_HSCT, CENSOR_HSCT)
    assert _table(adtte) == primary
    assert _table(adtte, "SENS") == {k: v for k, v in sensitivity.items() if k[1] != "OS"}
    rule = adtte.loc[adtte["PARAMCD"] == "PFS", "HSCTRULE"].unique().tolist()
    assert rule == (["CENSOR AT HSCT"] if censor_at_transplant else ["IGNORE HSCT"])


def test_dates(domains, protocol):
    adsl = build_adsl(domains, protocol)
    adtte = build_adtte(adsl, build_adrs(domains, adsl), protocol).set_index(
        ["USUBJID", "PARAMCD"])
    dor = adtte.loc[("S2", "DOR")]
    assert str(dor["STARTDT"].date()) == "2024-02-29"   # CRi on day 28 (leap year)
    assert str(dor["ADT"].date()) == "2024-04-01"       # relapse on day 60
    assert adtte.loc[("S4", "CIR"), "EVNTDESC"] == "DEATH IN REMISSION"
    assert "S6" not in adtte.index.get_level_values(0)  # never infused


def test_death_in_remission_censored_when_not_competing(domains, protocol):
    options = protocol.options.model_copy(update={"death_in_remission_competing": False})
    protocol = protocol.model_copy(update={"options": options})
    adsl = build_adsl(domains, protocol)
    adtte = build_adtte(adsl, build_adrs(domains, adsl), protocol).set_index(
        ["USUBJID", "PARAMCD"])
    assert adtte.loc[("S4", "CIR"), ["AVAL", "CNSR", "EVNTTYPE"]].tolist() == [42, 1, 0]


def test_options_from_protocol():
    from celltrial.derive.adtte import EFS_LANDMARK_DAYS, options_of
    from celltrial.protocols import load

    nct = options_of(load("nct04762485"))   # ORR = CR + CRi + MLFS + PR in that registration
    assert nct.orr_categories == ("CR", "CRh", "CRi", "MLFS", "PR")
    assert (nct.censor_at_transplant, nct.death_in_remission_competing) == (False, True)
    assert nct.efs_landmark_days == EFS_LANDMARK_DAYS
    assert options_of(load("cd7-zz-phase1")).orr_categories == ("CR", "CRh", "CRi", "MLFS", "PR")
