"""BOIN12-style OBD design (CLINICAL_REFERENCE 7.3): utility benchmark, admissibility,
exposure credit, and selection on clear scenarios."""

import numpy as np
import pytest

from celltrial.design.boin12 import BOIN12
from celltrial.design.data import EscalationData
from celltrial.design.simulate import simulate


def test_benchmark_utility_of_the_paper_example():
    # u_bar = 100*.25*.65 + 40*.65*.75 + 60*.35*.25 = 41; u_b = 41 + 59/2
    assert BOIN12().benchmark == pytest.approx(70.5)


def test_desirability_score_by_hand():
    design = BOIN12(n_doses=1)
    # 3 patients: eff no tox, no eff no tox, eff + tox -> x = (100 + 40 + 60)/100 = 2
    data = EscalationData(1, (1, 1, 1), (0, 0, 1), efficacy=(1, 0, 1))
    counts = design.outcome_counts(data)
    assert counts["x"][0] == pytest.approx(2.0)
    from scipy.stats import beta
    assert design.scores(counts)[0] == pytest.approx(100 * beta.sf(0.705, 3, 2))


def test_futile_dose_is_not_admissible_and_exposure_can_credit_it():
    data = EscalationData(2, (1,) * 9, (0,) * 9, efficacy=(0,) * 9,
                          exposure=(50.0,) * 6 + (500.0,) * 3)
    plain = BOIN12(n_doses=2)
    assert not plain.admissible(plain.outcome_counts(data))[0]  # P(pE < 0.25) >= 0.9
    kinetic = BOIN12(n_doses=2, exposure_threshold=100.0)
    counts = kinetic.outcome_counts(data)
    assert counts["eff"][0] == 3
    assert kinetic.admissible(counts)[0]


def test_obd_is_below_the_mtd_when_efficacy_plateaus():
    # toxicity rises, efficacy plateaus from dose 2: the OBD is dose 2, not the MTD (dose 4)
    res = simulate(BOIN12(n_doses=4), (0.05, 0.08, 0.15, 0.35), 600, seed=3,
                   p_efficacy=(0.1, 0.6, 0.6, 0.6))
    assert int(np.argmax(res.selection_pct)) == 1
    assert res.selection_pct[1] > 40


def test_stops_when_nothing_is_admissible():
    res = simulate(BOIN12(n_doses=3), (0.7, 0.8, 0.9), 200, seed=3, p_efficacy=(0.5, 0.5, 0.5))
    assert res.stop_pct > 80
