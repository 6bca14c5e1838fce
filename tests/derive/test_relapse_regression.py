"""Fine-Gray regression of relapse in the CIR endpoint (issue 13 part 3): equal to R
cmprsk::crr on the same rows, and not fitted (with the reason) when the data cannot carry it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltrial.derive.endpoints import compute_endpoint, relapse_regression
from celltrial.protocols import load

from .conftest import make_domains

# R 4.x, cmprsk::crr (gtol = 1e-12); the R script that made R_COEF and R_SE (run with
# Rscript, cmprsk installed; dose per level, blasts per 10%):
#   library(cmprsk)
#   ftime <- c(30, 45, 60, 60, 90, 120, 150, 200, 240, 300, 20, 75)
#   fstatus <- c(1, 2, 1, 0, 1, 0, 2, 1, 0, 0, 1, 2)
#   dose <- c(1, 1, 1, 2, 2, 2, 3, 3, 3, 1, 1, 2)
#   blast10 <- c(8.0, 2.5, 6.0, 1.0, 4.0, 3.5, 0.5, 7.0, 2.0, 1.5, 9.0, 5.0)
#   fit <- crr(ftime, fstatus, cbind(dose, blast10), gtol = 1e-12)
#   fit$coef; sqrt(diag(fit$var))
TIME = [30, 45, 60, 60, 90, 120, 150, 200, 240, 300, 20, 75]
STATUS = [1, 2, 1, 0, 1, 0, 2, 1, 0, 0, 1, 2]
DOSE = [1, 1, 1, 2, 2, 2, 3, 3, 3, 1, 1, 2]
BLAST = [80.0, 25.0, 60.0, 10.0, 40.0, 35.0, 5.0, 70.0, 20.0, 15.0, 90.0, 50.0]
R_COEF = [-2.20490569745969, 1.34977014757140]
R_SE = [0.584612674857462, 0.423245541045015]


def _frames(blast=BLAST) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [f"P{i}" for i in range(len(TIME))]
    adtte = pd.DataFrame({"USUBJID": ids, "PARAMCD": "CIR", "AVAL": np.array(TIME, float),
                          "EVNTTYPE": STATUS, "CNSR": [0 if s else 1 for s in STATUS]})
    adsl = pd.DataFrame({"USUBJID": ids, "TRT01AN": np.array(DOSE, float),
                         "BBLAST": np.array(blast, float)})
    return adtte, adsl


def test_equals_r_crr():
    out = relapse_regression(*_frames())
    assert out["n"] == 12 and out["relapses"] == 5 and out["competing"] == 3
    coef = [c["coef"] for c in out["coefficients"]]
    se = [c["se"] for c in out["coefficients"]]
    # crr stops at its gtol; the exact maximum differs by < 1e-7 relative (stats/finegray.py)
    assert np.allclose(coef, R_COEF, rtol=1e-6, atol=0)
    assert np.allclose(se, R_SE, rtol=1e-6, atol=0)
    dose = out["coefficients"][0]
    assert dose["covariate"] == "dose level (per level)"
    assert dose["shr"] == pytest.approx(np.exp(R_COEF[0]))
    lo, hi = dose["shr_ci"]
    assert lo == pytest.approx(np.exp(R_COEF[0] - 1.959963984540054 * R_SE[0]))
    assert hi == pytest.approx(np.exp(R_COEF[0] + 1.959963984540054 * R_SE[0]))


def test_constant_covariate_dropped_and_missing_counted():
    blast = list(BLAST)
    blast[0] = np.nan
    adtte, adsl = _frames(blast)
    adsl["TRT01AN"] = 1.0
    out = relapse_regression(adtte, adsl)
    assert out["missing_covariates"] == 1 and out["n"] == 11
    assert out["dropped_constant"] == ["dose level (per level)"]
    assert [c["covariate"] for c in out["coefficients"]] == ["baseline blasts (per 10%)"]


def test_too_few_relapses_gives_a_reason():
    adtte, adsl = _frames()
    adtte["EVNTTYPE"] = [1] + [0] * 11
    out = relapse_regression(adtte, adsl)
    assert "coefficients" not in out and "1 relapses" in out["reason"]


def test_cir_endpoint_carries_the_regression():
    from celltrial.derive.analysis import derive_datasets

    protocol = load("nct04762485")
    datasets = derive_datasets(make_domains(), protocol)
    endpoint = next(e for e in protocol.endpoints if e.derivation == "cir")
    result = compute_endpoint(datasets, endpoint, protocol)
    assert result.status == "ok", result.reason
    fine_gray = result.estimates["fine_gray"]
    # remitters S1-S4: baseline blasts only for S1, so one complete case and no fit
    assert fine_gray["n"] == 1 and fine_gray["missing_covariates"] == 3
    assert "coefficients" not in fine_gray and "too few to fit" in fine_gray["reason"]
