"""BOIN12 (Lin et al., JCO Precis Oncol 2020; CLINICAL_REFERENCE 7.3): utility benchmark,
dose elimination and the stops, hand-worked decisions, OBD selection, and agreement with an
independent trial-by-trial implementation kept in this file."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import beta

from celltrial.design.boin12 import BOIN12
from celltrial.design.boundaries import boin_boundaries
from celltrial.design.data import EscalationData
from celltrial.design.isotonic import unimodal
from celltrial.design.simulate import simulate


def trial(doses, dlt, eff, n_doses=5):
    return EscalationData(n_doses, tuple(doses), tuple(dlt), efficacy=tuple(eff))


def test_benchmark_utility_of_the_paper_example():
    # u_bar = 100*.25*.65 + 40*.65*.75 + 60*.35*.25 = 41; u_b = 41 + 59/2
    assert BOIN12().benchmark == pytest.approx(70.5)


def test_desirability_score_by_hand():
    design = BOIN12(n_doses=1)
    # 3 patients: eff no tox, no eff no tox, eff + tox -> x = (100 + 40 + 60)/100 = 2
    counts = design.outcome_counts(trial((1, 1, 1), (0, 0, 1), (1, 0, 1), n_doses=1))
    assert counts["x"][0] == pytest.approx(2.0)
    assert design.scores(counts)[0] == pytest.approx(100 * beta.sf(0.705, 3, 2))


# Toxicity elimination, Beta(1,1) prior, phi_T = 0.35, c_T = 0.95, n >= 3:
#   DLT/n   P(p_T > 0.35 | data)           eliminated
ELIMINATION = [
    (2, 2, 1 - 0.35 ** 3, False),         # 0.957 but fewer than 3 patients
    (3, 3, 1 - 0.35 ** 4, True),          # 0.985
    (2, 3, beta.sf(0.35, 3, 2), False),   # 0.874
    (4, 6, beta.sf(0.35, 5, 3), False),
    (5, 6, beta.sf(0.35, 6, 2), True),
    (7, 9, beta.sf(0.35, 8, 3), True),
]


@pytest.mark.parametrize(("y", "n", "prob", "out"), ELIMINATION)
def test_toxicity_elimination_table(y, n, prob, out):
    design = BOIN12(n_doses=2)
    counts = design.outcome_counts(trial((1,) * n, (1,) * y + (0,) * (n - y), (1,) * n, 2))
    assert (prob > 0.95) == out or n < 3
    assert bool(design.eliminated(counts).toxic[0]) is out
    assert bool(design.eliminated(counts).toxic[1]) is out  # and every higher dose


# Futility: P(p_E < 0.25 | 0/n responses) = 1 - 0.75^(n+1) > 0.90 first at n = 8
@pytest.mark.parametrize(("n", "out"), [(3, False), (7, False), (8, True)])
def test_futility_elimination_boundary(n, out):
    assert (1 - 0.75 ** (n + 1) > 0.9) is out
    design = BOIN12(n_doses=2)
    counts = design.outcome_counts(trial((1,) * n, (0,) * n, (0,) * n, 2))
    elim = design.eliminated(counts)
    assert bool(elim.futile[0]) is out
    assert not elim.futile[1]  # futility removes that dose only


@pytest.mark.parametrize(("dlt", "n"), [(3, 3), (7, 9), (5, 6)])
def test_stops_when_dose_1_is_too_toxic(dlt, n):
    data = trial((1,) * n, (1,) * dlt + (0,) * (n - dlt), (1,) * n)
    decision = BOIN12().next_dose(data)
    assert decision.action == "stop" and decision.dose is None
    assert "dose 1 eliminated for toxicity" in decision.reason
    assert BOIN12().select(data).dose is None


def test_two_of_three_at_dose_1_de_escalates_nowhere_and_stays():
    decision = BOIN12().next_dose(trial((1, 1, 1), (1, 1, 0), (0, 0, 0)))
    assert (decision.action, decision.dose) == ("stay", 1)  # 2/3 = 0.67 >= lambda_d, not eliminated


def test_a_toxic_dose_and_every_higher_dose_are_never_given_again():
    design = BOIN12()
    data = trial((1,) * 3 + (2,) * 3 + (3,) * 3, (0,) * 6 + (1, 1, 1), (1,) * 9)
    first = design.next_dose(data)
    assert (first.action, first.dose) == ("de-escalate", 2)
    # dose 2 looks excellent, but 3, 4 and 5 are eliminated: never above 2
    data = data.add(2, (0, 0, 0), (1, 1, 1))
    assert design.next_dose(data).dose == 2
    assert design.select(data).dose in (1, 2)


def test_every_dose_futile_stops():
    design = BOIN12(n_doses=2)
    data = trial((1,) * 8 + (2,) * 8, (0,) * 16, (0,) * 16, n_doses=2)
    decision = design.next_dose(data)
    assert decision.action == "stop" and "every dose eliminated" in decision.reason
    assert design.select(data).dose is None


def test_per_dose_cap_stops_and_selects():
    design = BOIN12(n_cap=12)
    data = trial((1,) * 3 + (2,) * 12, (0,) * 3 + (0, 1, 0) * 4, (0,) * 3 + (1,) * 12)
    decision = design.next_dose(data)
    assert decision.action == "stop" and "per-dose cap 12" in decision.reason
    assert design.select(data).dose == 2
    assert BOIN12().next_dose(data).action != "stop"  # no cap by default


def test_exploration_rule_escalates_to_an_untried_dose():
    lam_e, lam_d = boin_boundaries(0.35)
    # 3/9 = 0.333 < lambda_d at dose 1, dose 2 untried -> escalate whatever the scores
    assert 3 / 9 < lam_d
    data = trial((1,) * 9, (1, 1, 1) + (0,) * 6, (1, 1) + (0,) * 7)
    decision = BOIN12().next_dose(data)
    assert (decision.action, decision.dose) == ("escalate", 2)
    assert "exploration rule" in decision.reason
    # the same dose futile (0/9 responses): no admissible dose is left to choose from, and
    # the trial stops before the exploration rule is reached (the authors' order)
    futile = trial((1,) * 9, (1, 1, 1) + (0,) * 6, (0,) * 9)
    assert BOIN12().next_dose(futile).action == "stop"


def test_no_escalation_between_the_boundaries_once_n_star_is_reached():
    lam_e, lam_d = boin_boundaries(0.35)
    assert lam_e < 2 / 6 < lam_d
    # dose 2 with 2/6 DLT and every response; dose 3 untried would score higher
    data = trial((1,) * 3 + (2,) * 6, (0,) * 3 + (1, 1, 0, 0, 0, 0), (0,) * 3 + (1,) * 6)
    decision = BOIN12().next_dose(data)
    assert decision.dose in (1, 2) and "no escalation" in decision.reason


def test_unimodal_fit_of_a_plateau_that_falls():
    # peak at dose 4: 0.6, 0.5 pool to 0.55, squared error 2 x 0.05^2 = 0.005; a peak at
    # dose 2 pools 0.5, 0.7 to 0.6 (error 0.02): the umbrella fit peaks at dose 4
    fit = unimodal(np.array([0.1, 0.6, 0.5, 0.7, 0.2]), np.array([3.0, 3, 3, 3, 3]))
    assert np.allclose(fit, [0.1, 0.55, 0.55, 0.7, 0.2])
    assert np.allclose(unimodal(np.array([0.5, 0.4, 0.3])), [0.5, 0.4, 0.3])
    assert np.allclose(unimodal(np.array([0.2, 0.4, 0.3, 0.5])), [0.2, 0.35, 0.35, 0.5])


def test_obd_is_below_the_mtd_when_efficacy_plateaus():
    # toxicity rises, efficacy plateaus from dose 2: the OBD is dose 2, not the MTD (dose 4)
    res = simulate(BOIN12(n_doses=4), (0.05, 0.08, 0.15, 0.35), 600, seed=3,
                   p_efficacy=(0.1, 0.6, 0.6, 0.6))
    assert int(np.argmax(res.selection_pct)) == 1
    assert res.selection_pct[1] > 40


def test_futile_dose_is_not_admissible_and_exposure_credits_it_only_when_asked():
    data = EscalationData(2, (1,) * 9, (0,) * 9, efficacy=(0,) * 9,
                          exposure=(50.0,) * 6 + (500.0,) * 3)
    plain = BOIN12(n_doses=2)
    assert not plain.admissible(plain.outcome_counts(data))[0]
    kinetic = BOIN12(n_doses=2, exposure_threshold=100.0)
    counts = kinetic.outcome_counts(data)
    assert counts["eff"][0] == 3
    assert kinetic.admissible(counts)[0]


# --- an independent implementation, written as the authors' trial loop -------------------
# Elimination flags are set cohort by cohort at the current dose (not recomputed from the
# data), isotonic and umbrella fits are solved as constrained least squares with scipy.


def ref_isotonic(x, w):
    k = len(x)
    return np.array([max(min(np.average(x[a:b + 1], weights=w[a:b + 1]) for b in range(i, k))
                         for a in range(i + 1)) for i in range(k)])


def ref_umbrella(x, w):
    best, err = None, math.inf
    k = len(x)
    for m in range(k):
        cons = [{"type": "ineq", "fun": (lambda f, i=i: f[i + 1] - f[i])} for i in range(m)]
        cons += [{"type": "ineq", "fun": (lambda f, i=i: f[i] - f[i + 1])} for i in range(m, k - 1)]
        res = minimize(lambda f: np.sum(w * (x - f) ** 2), x.copy(), constraints=cons,
                       method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
        if res.fun < err - 1e-10:
            best, err = res.x, res.fun
    return best


def reference_trial(p_tox, p_eff, rng, n_cohorts=10, cs=3, phi_t=0.35, phi_e=0.25, u2=40,
                    u3=60, n_cap=None):
    k = len(p_tox)
    lam_e, lam_d = boin_boundaries(phi_t)
    u_bar = 100 * phi_e * (1 - phi_t) + u2 * (1 - phi_t) * (1 - phi_e) + u3 * phi_t * phi_e
    u_b = (u_bar + (100 - u_bar) / 2) / 100
    n = np.zeros(k, int)
    yt = np.zeros(k, int)
    ye = np.zeros(k, int)
    x = np.zeros(k)
    out = np.zeros(k, bool)
    tox_out = np.zeros(k, bool)
    d, path = 0, []
    for _ in range(n_cohorts):
        path.append(d)
        t = rng.random(cs) < p_tox[d]
        e = rng.random(cs) < p_eff[d]
        n[d] += cs
        yt[d] += t.sum()
        ye[d] += e.sum()
        x[d] += np.sum(np.where(t, np.where(e, u3, 0), np.where(e, 100, u2))) / 100
        if n[d] >= 3 and 1 - beta.cdf(phi_t, 1 + yt[d], 1 + n[d] - yt[d]) > 0.95:
            out[d:] = True
            tox_out[d:] = True
        if n[d] >= 3 and beta.cdf(phi_e, 1 + ye[d], 1 + n[d] - ye[d]) > 0.90:
            out[d] = True
        if tox_out[0] or out.all():
            return path, None, (n, yt)
        if n_cap is not None and n[d] >= n_cap:
            break
        if len(path) == n_cohorts:
            break
        rds = 100 * (1 - beta.cdf(u_b, 1 + x, 1 + n - x))
        lower = [j for j in range(d) if not out[j]]
        upper = [j for j in range(d + 1, k) if not out[j]]
        p = yt[d] / n[d]
        if p >= lam_d:
            if lower:
                nxt = lower[-1]
            elif not out[d]:
                nxt = d
            else:
                return path, None, (n, yt)
        else:
            admi = ([] if out[d] else [d]) + lower[-1:]
            if n[d] < 6 or p <= lam_e:
                admi += upper[:1]
            if not admi:
                return path, None, (n, yt)
            admi.sort()
            top = max(rds[j] for j in admi)
            nxt = [j for j in admi if rds[j] == top][-1]
        if n[d] >= 9 and p < lam_d and upper and n[upper[0]] == 0:
            nxt = upper[0]
        d = nxt
    treated = n > 0
    pt = np.full(k, np.nan)
    pe = np.full(k, np.nan)
    pt[treated] = ref_isotonic((yt[treated] + 0.05) / (n[treated] + 0.1), n[treated] + 0.1)
    pe[treated] = ref_umbrella((ye[treated] + 0.05) / (n[treated] + 0.1), n[treated] * 1.0)
    dist = np.where(treated, np.abs(pt + 1e-10 * np.arange(1, k + 1) - phi_t), np.inf)
    mtd = int(np.argmin(dist))
    util = 100 * pe * (1 - pt) + u2 * (1 - pe) * (1 - pt) + u3 * pe * pt
    ok = [j for j in range(mtd + 1) if treated[j] and not out[j]]
    if not ok:
        return path, None, (n, yt)
    top = max(util[j] for j in ok)
    return path, [j for j in ok if util[j] >= top - 1e-6][0] + 1, (n, yt)


def replay(design, path, rng_seed, p_tox, p_eff):
    """Our design on the same outcomes (same random stream) as the reference trial."""
    rng = np.random.default_rng(rng_seed)
    data = EscalationData(design.n_doses)
    ours = []
    decision = design.next_dose(data)
    while decision.action != "stop" and data.n_patients < design.max_n:
        d = decision.dose - 1
        ours.append(d)
        t = rng.random(3) < p_tox[d]
        e = rng.random(3) < p_eff[d]
        data = data.add(d + 1, [int(v) for v in t], [int(v) for v in e])
        decision = design.next_dose(data)
    return ours, design.select(data).dose


SCENARIOS = [
    ((0.6, 0.7, 0.8, 0.85, 0.9), (0.3, 0.4, 0.5, 0.5, 0.5)),  # every dose too toxic
    ((0.05, 0.1, 0.15, 0.3, 0.45), (0.1, 0.3, 0.5, 0.5, 0.5)),
    ((0.1, 0.15, 0.3, 0.45, 0.6), (0.05, 0.1, 0.1, 0.1, 0.1)),  # futile
    ((0.02, 0.05, 0.08, 0.1, 0.12), (0.2, 0.4, 0.6, 0.4, 0.2)),  # efficacy peaks at dose 3
]


@pytest.mark.parametrize("scenario", range(len(SCENARIOS)))
@pytest.mark.parametrize("n_cap", [None, 12])
def test_decisions_and_selection_equal_the_independent_trial_loop(scenario, n_cap):
    p_tox, p_eff = SCENARIOS[scenario]
    design = BOIN12(n_cap=n_cap)
    for seed in range(40):
        path, sel, _ = reference_trial(p_tox, p_eff, np.random.default_rng(seed), n_cap=n_cap)
        ours, our_sel = replay(design, path, seed, p_tox, p_eff)
        assert ours == path, (scenario, seed)
        assert our_sel == sel, (scenario, seed)


def test_every_dose_too_toxic_stops_early_with_few_patients():
    """With DLT rates 0.6-0.9 the trial stops at dose 1 (issue 17: before the fix 30 patients,
    18.2 DLTs; the published rule gives about 13 patients and 8 DLTs). Reference and design
    agree within Monte Carlo error (z < 4)."""
    p_tox, p_eff = SCENARIOS[0]
    res = simulate(BOIN12(), p_tox, 3000, seed=11, p_efficacy=p_eff)
    ref = [reference_trial(p_tox, p_eff, np.random.default_rng(10_000 + s)) for s in range(600)]
    ref_n = np.array([r[2][0].sum() for r in ref])
    ref_y = np.array([r[2][1].sum() for r in ref])
    n_ours, y_ours = sum(res.mean_patients), sum(res.mean_dlts)
    assert 11 < n_ours < 15 and 6.5 < y_ours < 9.5
    assert res.stop_pct > 85
    assert abs(n_ours - ref_n.mean()) < 4 * ref_n.std() / math.sqrt(600)
    assert abs(y_ours - ref_y.mean()) < 4 * ref_y.std() / math.sqrt(600)
