"""Individual (MAP) fits: M3 below-LLOQ handling and ADPC validation."""

import numpy as np
import pandas as pd
import pytest

from celltrial.errors import InvalidValue
from celltrial.kinetics.individual import fit_individuals, read_observations
from celltrial.kinetics.multiphasic import STEIN_2019, log_predict

DAYS = [0.0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 180, 365]


def _patient(cmax_factor: float = 1.0, lloq: float = 50.0) -> pd.DataFrame:
    lp = STEIN_2019.typical.as_log_array()
    lp[2] += np.log(cmax_factor)
    level = np.exp(log_predict(lp, np.array(DAYS)))
    blq = level < lloq
    return pd.DataFrame({"USUBJID": "P1", "PARAMCD": "CARTQPCR", "TIME": DAYS,
                         "AVAL": np.where(blq, np.nan, level), "BLQFL": np.where(blq, "Y", "N"),
                         "LLOQ": lloq, "EXTRA": "ignored"})


def test_noise_free_typical_profile_recovers_typical_values():
    fit = fit_individuals(_patient()).iloc[0]
    assert fit["Cmax"] == pytest.approx(24000, rel=0.05)
    assert fit["Tmax"] == pytest.approx(9.3, rel=0.05)
    assert fit["n_blq"] == 2 and fit["n_samples"] == 12


def test_high_patient_is_estimated_high():
    fit = fit_individuals(_patient(cmax_factor=4.0)).iloc[0]
    # 4x the typical Cmax; the estimate shrinks towards the prior but stays clearly high
    assert 60000 < fit["Cmax"] < 110000


def test_blq_samples_are_informative_not_dropped():
    # a profile whose late samples are all BLQ must get a lower FB*Cmax than one whose late
    # samples were simply dropped (M3 says "below 500", dropping says nothing)
    data = _patient(lloq=500.0)
    with_blq = fit_individuals(data).iloc[0]
    dropped = fit_individuals(data[data["BLQFL"] == "N"]).iloc[0]
    late = lambda r: r["FB"] * r["Cmax"]  # noqa: E731
    assert late(with_blq) < late(dropped)


@pytest.mark.parametrize(("column", "message"), [
    ("LLOQ", "Invalid `adpc columns`: .*must be including `LLOQ`"),
    ("BLQFL", "Invalid `adpc columns`: .*must be including `BLQFL`"),
])
def test_missing_required_column_is_named(column, message):
    with pytest.raises(InvalidValue, match=message):
        read_observations(_patient().drop(columns=[column]))


def test_missing_time_column_is_named():
    with pytest.raises(InvalidValue, match="`TIME` or `ARELTM`"):
        read_observations(_patient().drop(columns=["TIME"]))


def test_areltm_is_accepted_and_pre_infusion_samples_left_out():
    data = _patient().rename(columns={"TIME": "ARELTM"})
    data.loc[0, "ARELTM"] = -1.0
    obs = read_observations(data)
    assert obs.n_samples == 11 and "pre-infusion" in obs.notes[0]


def test_blq_without_lloq_is_refused():
    data = _patient()
    data.loc[0, "LLOQ"] = np.nan
    with pytest.raises(InvalidValue, match=r"Invalid `LLOQ \(row 0, P1, BLQFL Y\)`"):
        read_observations(data)


def test_unknown_analyte_is_refused():
    with pytest.raises(InvalidValue, match="Invalid `analyte`: got `'CARTXYZ'`"):
        read_observations(_patient(), "CARTXYZ")
