"""BOIN boundaries and decision table against the published values (issue 5,
CLINICAL_REFERENCE 7.2) and the R package BOIN 2.7.2 get.boundary (fixture + script)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from celltrial.design import boin_boundaries, decision_table, write_decision_table_csv
from celltrial.errors import InvalidValue

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "boin_get_oc.json").read_text())


@pytest.mark.parametrize(("target", "lambda_e", "lambda_d"), [
    (0.3, 0.2365, 0.3585), (0.25, 0.1968, 0.2984), (0.2, 0.1572, 0.2385), (0.33, 0.2604, 0.3947),
])
def test_published_boundaries(target, lambda_e, lambda_d):
    lam_e, lam_d = boin_boundaries(target)
    assert round(lam_e, 4) == lambda_e
    assert round(lam_d, 4) == lambda_d


# n: (escalate if DLT <=, de-escalate if DLT >=, eliminate if DLT >=), issue 5
PUBLISHED_03 = {3: (0, 2, 3), 6: (1, 3, 4), 9: (2, 4, 5), 12: (2, 5, 7)}


@pytest.mark.parametrize("n", sorted(PUBLISHED_03))
def test_published_decision_table_target_03(n):
    row = decision_table(0.3, 30).set_index("n").loc[n]
    assert (row.escalate_if_dlt_le, row.deescalate_if_dlt_ge, row.eliminate_if_dlt_ge) == \
        PUBLISHED_03[n]


@pytest.mark.parametrize("target", ["0.2", "0.25", "0.3", "0.33"])
def test_decision_table_equals_r_get_boundary(target):
    ref = FIXTURE["boundaries"][target]
    table = decision_table(float(target), 30)
    lam_e, lam_d = boin_boundaries(float(target))
    assert lam_e == pytest.approx(ref["lambda_e"], abs=1e-12)
    assert lam_d == pytest.approx(ref["lambda_d"], abs=1e-12)
    assert list(table["escalate_if_dlt_le"]) == ref["escalate"]
    assert list(table["deescalate_if_dlt_ge"]) == ref["deescalate"]
    assert [None if pd.isna(v) else int(v) for v in table["eliminate_if_dlt_ge"]] == \
        ref["eliminate"]


def test_custom_phi_and_csv_round_trip(tmp_path):
    lam_e, lam_d = boin_boundaries(0.3, phi1=0.15, phi2=0.45)
    assert 0.15 < lam_e < 0.3 < lam_d < 0.45
    path = write_decision_table_csv(tmp_path / "boin.csv", 0.3, 30)
    back = pd.read_csv(path)
    assert list(back.columns) == ["n", "escalate_if_dlt_le", "deescalate_if_dlt_ge",
                                  "eliminate_if_dlt_ge"]
    assert len(back) == 30
    assert back.loc[back["n"] == 12, "eliminate_if_dlt_ge"].item() == 7
    assert pd.isna(back.loc[back["n"] == 2, "eliminate_if_dlt_ge"].item())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"target": 1.2}, r"Invalid `target`: got `1.2`, must be a DLT probability in \(0, 1\)"),
    ({"target": 0.3, "phi1": 0.4}, r"Invalid `phi1`: got `0.4`"),
    ({"target": 0.3, "phi2": 0.2}, r"Invalid `phi2`: got `0.2`"),
])
def test_invalid_inputs(kwargs, message):
    with pytest.raises(InvalidValue, match=message):
        boin_boundaries(**kwargs)
