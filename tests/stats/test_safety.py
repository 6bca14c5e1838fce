"""AE incidence by term and worst grade by dose level; CRS/ICANS grade, onset and duration."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.errors import InvalidValue
from celltrial.stats.safety import ae_incidence, crs_icans_summary

POP = pd.DataFrame({"USUBJID": ["01", "02", "03", "04"], "TRT01A": ["DL1", "DL1", "DL2", "DL2"],
                    "TRT01AN": [1, 1, 2, 2]})
CRS = "Cytokine release syndrome"
ICANS = "Immune effector cell-associated neurotoxicity syndrome"
ADAE = pd.DataFrame({
    "USUBJID": ["01", "01", "01", "02", "03", "03", "04"],
    "AEDECOD": [CRS, CRS, "Anemia", CRS, CRS, ICANS, "Anemia"],
    "ATOXGRN": [1, 3, 2, 2, 1, 2, 4],
    "ASTDY":   [1, 9, 5, 3, 2, 6, 10],
    "ADURN":   [4, 3, 10, 5, None, 2, 7],
})


def test_ae_incidence_counts_patients_once_at_worst_grade():
    t = ae_incidence(ADAE, POP).set_index(["level", "term"])
    assert t.loc[("DL1", CRS), ["N", "n_any", "n_grade_2", "n_grade_3", "n_grade_3plus"]].tolist() \
        == [2, 2, 1, 1, 1]
    assert t.loc[("All", "Anemia"), ["N", "n_any", "n_grade_2", "n_grade_4"]].tolist() == [4, 2, 1, 1]
    assert t.loc[("All", CRS), "pct_any"] == 75.0
    assert list(dict.fromkeys(t.index.get_level_values(0))) == ["DL1", "DL2", "All"]


def test_crs_icans_grade_onset_duration():
    t = crs_icans_summary(ADAE, POP).set_index(["level", "syndrome"])
    crs = t.loc[("All", "CRS")]
    assert (crs["n_any"], crs["n_grade_1"], crs["n_grade_2"], crs["n_grade_3"]) == (3, 1, 1, 1)
    assert (crs["episodes"], crs["onset_median"], crs["onset_min"], crs["onset_max"]) == (4, 2, 1, 3)
    assert (crs["duration_median"], crs["duration_max"]) == (4.0, 5.0)   # ongoing episode left out
    assert t.loc[("DL1", "ICANS"), "n_any"] == 0
    assert t.loc[("DL2", "ICANS"), "onset_median"] == 6


def test_missing_column_is_named():
    with pytest.raises(InvalidValue, match=r"Invalid `adae`: .* must be a table with columns"):
        ae_incidence(ADAE.drop(columns="ATOXGRN"), POP)
