"""Importance-sampling OFV against a closed form, and the information criteria by hand.

A linear-Gaussian mixed model ``z_ij = phi_i0 + phi_i1 t_j + eps_ij``, ``phi_i ~ N(mu, Omega)``,
``eps ~ N(0, s^2)`` has the marginal ``z_i ~ N(A mu, A Omega A' + s^2 I)`` (``A = [1, t]``);
with the last sample of some subjects below a limit ``L`` (M3) the subject's likelihood is
``N(z_obs; m_o, S_oo) * Phi((L - m_c|o) / sd_c|o)`` (conditional normal of the censored sample
given the quantified ones). The estimator must reproduce that number within its own MC SE.
"""

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from celltrial.kinetics.marginal import InformationCriteria, importance_sampling

MU = np.array([2.0, -0.3])
OMEGA = np.array([[0.5, -0.12], [-0.12, 0.09]])          # correlation -0.57
SIGMA = 0.4
TIMES = np.array([0.0, 1.0, 2.0, 4.0, 7.0])
LIMIT = -1.0                                              # censoring limit on the z scale


def _linear(phi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return phi[..., 0] + phi[..., 1] * t


def _data(n: int = 12, seed: int = 3):
    rng = np.random.default_rng(seed)
    phi = rng.multivariate_normal(MU, OMEGA, size=n)
    t = np.tile(TIMES, (n, 1))
    z = _linear(phi[:, None, :], t) + SIGMA * rng.standard_normal(t.shape)
    blq = z < LIMIT
    blq[:, :-1] = False                     # only the last sample may be censored (closed form)
    z = np.where(blq, LIMIT, z)
    mask = np.ones_like(blq)
    mask[0, 3:] = False                     # one subject with padding (3 samples)
    return t, z, blq, mask


def _exact_log_lik(t: np.ndarray, z: np.ndarray, blq: np.ndarray, mask: np.ndarray) -> float:
    total = 0.0
    for k in range(len(z)):
        keep = mask[k]
        A = np.column_stack([np.ones(keep.sum()), t[k][keep]])
        m = A @ MU
        S = A @ OMEGA @ A.T + SIGMA**2 * np.eye(len(m))
        cens = blq[k][keep]
        o, c = ~cens, cens
        total += multivariate_normal(m[o], S[np.ix_(o, o)]).logpdf(z[k][keep][o])
        if c.any():
            gain = S[np.ix_(c, o)] @ np.linalg.inv(S[np.ix_(o, o)])
            m_c = m[c] + gain @ (z[k][keep][o] - m[o])
            v_c = S[np.ix_(c, c)] - gain @ S[np.ix_(o, c)]
            total += norm.logcdf((LIMIT - m_c[0]) / np.sqrt(v_c[0, 0]))
    return total


def _proposal(t, z, mask, shift: float, inflate: float):
    """Posterior of phi given the quantified-as-if-exact samples, shifted by ``shift`` SDs and
    its covariance inflated by ``inflate`` (a deliberately imperfect proposal)."""
    means, covs = [], []
    prec0 = np.linalg.inv(OMEGA)
    for k in range(len(z)):
        A = np.column_stack([np.ones(mask[k].sum()), t[k][mask[k]]])
        post = np.linalg.inv(prec0 + A.T @ A / SIGMA**2)
        mean = post @ (prec0 @ MU + A.T @ z[k][mask[k]] / SIGMA**2)
        means.append(mean + shift * np.sqrt(np.diag(post)))
        covs.append(inflate * post)
    return np.array(means), np.array(covs)


def _is(t, z, blq, mask, seed: int, n_draws: int, shift: float = 0.3, inflate: float = 1.5):
    n = len(z)
    cond_mean, cond_cov = _proposal(t, z, mask, shift, inflate)
    return importance_sampling(t, z, blq, mask, np.tile(MU, (n, 1)), OMEGA, SIGMA, cond_mean,
                               cond_cov, n_draws=n_draws, seed=seed, predict=_linear)


def test_data_have_censored_samples():
    _, _, blq, mask = _data()
    assert 2 <= (blq & mask).sum() <= 8


def test_is_ofv_equals_the_closed_form_within_its_mc_se():
    t, z, blq, mask = _data()
    exact = -2.0 * _exact_log_lik(t, z, blq, mask)
    est = _is(t, z, blq, mask, seed=11, n_draws=20000)
    assert 0 < est.ofv_se < 0.2
    assert abs(est.ofv - exact) < 3 * est.ofv_se
    # every subject's weights carry information (Kish ESS), censored ones included
    assert np.all(est.subject_ess > 200)


def test_is_ofv_with_a_poor_proposal_is_still_unbiased_and_its_se_is_honest():
    """40 independent small runs with a badly placed proposal (1 SD off, twice too wide): the
    spread of the OFVs matches the reported MC SE, and their mean the closed form."""
    t, z, blq, mask = _data()
    exact = -2.0 * _exact_log_lik(t, z, blq, mask)
    runs = [_is(t, z, blq, mask, seed=s, n_draws=400, shift=1.0, inflate=2.0) for s in range(40)]
    ofv = np.array([r.ofv for r in runs])
    se = np.mean([r.ofv_se for r in runs])
    assert 0.6 < ofv.std(ddof=1) / se < 1.6
    assert abs(ofv.mean() - exact) < 4 * ofv.std(ddof=1) / np.sqrt(len(ofv)) + 0.05


def test_information_criteria_by_hand():
    """AIC = OFV + 2P; BIC = OFV + P log N (subjects); BICc = OFV + P_R log N + P_F log n."""
    c = InformationCriteria(ofv=1000.0, ofv_se=0.2, n_parameters=14, n_random_parameters=13,
                            n_subjects=40, n_observations=480)
    assert c.aic == 1028.0
    assert c.bic == pytest.approx(1000.0 + 14 * 3.6888794541139363, abs=1e-12)
    assert c.bicc == pytest.approx(1000.0 + 13 * 3.6888794541139363 + 6.173786103901937,
                                   abs=1e-12)
