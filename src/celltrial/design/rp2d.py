"""Recommended phase II dose (RP2D) from safety, efficacy and CAR-T exposure per dose.

The registrations of the CD7 CAR-T studies choose the RP2D "from safety, efficacy and CAR-T
kinetics" without a formula; this module makes one rule explicit, its parameters protocol data
(``rp2d`` block, `celltrial.protocols.schema.RP2DSpec`; marked assumed where the registration
is silent). Per dose with treated patients (n, DLTs y, responders r, median AUC0-28d):

1. **Safety**: isotonic estimate of the DLT rate, the pool-adjacent-violators fit of
   (y + 0.05)/(n + 0.1) weighted by n (BOIN's estimator, Liu & Yuan 2015; Yuan, Hess, Hilsenbeck
   & Gilbert, Clin Cancer Res 2016;22:4291-4301; `celltrial.design.isotonic`). A dose is safe
   when the estimate is <= ``target``.
2. **Efficacy**: the response rate r/n with its exact Clopper-Pearson interval (Clopper &
   Pearson, Biometrika 1934;26:404-413) at ``conf_level``; a dose whose upper limit is below
   ``min_response`` is futile (the data exclude the lowest acceptable rate), the exact-CI form
   of BOIN12's futility rule (Lin et al., JCO Precis Oncol 2020;4:1393-1402).
3. **Exposure**: a dose whose median AUC0-28d is below ``min_auc28`` (when the protocol sets
   one) is not recommended: the product did not expand there.
4. **Utility**: among safe, non-futile, exposed doses, the highest BOIN12 utility
   U = 100 pE (1 - pT) + u2 (1 - pE)(1 - pT) + u3 pE pT (utility 100 for response without
   DLT, 0 for DLT without response; Lin et al. 2020, Table 1 defaults u2 = 40, u3 = 60), with
   pT the isotonic DLT estimate and pE the observed response rate. Ties (within 1e-9): the
   dose with the higher median AUC0-28d, then the lower dose.

No dose qualifies: no RP2D, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import beta as beta_dist

from celltrial.design.isotonic import pava
from celltrial.errors import invalid


def clopper_pearson(x: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval for x successes in n trials; (nan, nan)
    when n = 0. Same values as R ``binom.test(x, n)$conf.int``."""
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= x <= n:
        raise invalid("x", x, f"a count in 0..{n}")
    a = (1 - conf_level) / 2
    lo = 0.0 if x == 0 else float(beta_dist.ppf(a, x, n - x + 1))
    hi = 1.0 if x == n else float(beta_dist.ppf(1 - a, x + 1, n - x))
    return lo, hi


@dataclass(frozen=True)
class Recommendation:
    """The RP2D (1-based dose or None), the reason, and the per-dose table the rule read."""

    dose: int | None
    reason: str
    table: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        rows = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                for r in self.table.to_dict(orient="records")]
        return {"rp2d": self.dose, "reason": self.reason, "doses": rows}


@dataclass(frozen=True)
class RP2DRule:
    """RP2D rule parameters (module docstring). Defaults: target 0.3 (the usual phase I DLT
    target), min_response 0.25 (BOIN12's default phi_E), u2 = 40, u3 = 60 (BOIN12 Table 1),
    95% exact intervals, no exposure floor."""

    target: float = 0.3
    min_response: float = 0.25
    u2: float = 40.0
    u3: float = 60.0
    conf_level: float = 0.95
    min_auc28: float | None = None

    def __post_init__(self) -> None:
        for name in ("target", "min_response", "conf_level"):
            if not 0 < getattr(self, name) < 1:
                raise invalid(name, getattr(self, name), "in (0, 1)")
        for name in ("u2", "u3"):
            if not 0 <= getattr(self, name) <= 100:
                raise invalid(name, getattr(self, name), "a utility in [0, 100]")
        if self.min_auc28 is not None and not self.min_auc28 > 0:
            raise invalid("min_auc28", self.min_auc28, "> 0 or None")

    def _arrays(self, n: Any, dlt: Any, responders: Any, auc28_median: Any = None
                ) -> dict[str, np.ndarray]:
        """The per-dose quantities of the rule as arrays (see `table`)."""
        n = np.asarray(n, dtype=np.int64)
        y = np.asarray(dlt, dtype=np.int64)
        r = np.asarray(responders, dtype=np.int64)
        k = n.size
        if y.size != k or r.size != k:
            raise invalid("counts", (n.size, y.size, r.size), "one n, DLT and responder count "
                          "per dose")
        if (y > n).any() or (r > n).any() or (n < 0).any() or (y < 0).any() or (r < 0).any():
            raise invalid("counts", "y or r > n", "0 <= DLTs, responders <= patients")
        auc = (np.full(k, np.nan) if auc28_median is None
               else np.asarray(auc28_median, dtype=np.float64))
        treated = n > 0
        pt = np.full(k, np.nan)
        if treated.any():
            w = n[treated].astype(np.float64)
            pt[treated] = pava((y[treated] + 0.05) / (w + 0.1), w)
        pe = np.where(treated, r / np.maximum(n, 1), np.nan)
        a = (1 - self.conf_level) / 2
        with np.errstate(invalid="ignore"):
            lo = np.where(r == 0, 0.0, beta_dist.ppf(a, np.maximum(r, 1), n - r + 1))
            hi = np.where(r == n, 1.0, beta_dist.ppf(1 - a, r + 1, np.maximum(n - r, 1)))
        lo = np.where(treated, lo, np.nan)
        hi = np.where(treated, hi, np.nan)
        safe = treated & (pt <= self.target + 1e-12)
        futile = treated & (hi < self.min_response)
        exposed = np.ones(k, dtype=bool) if self.min_auc28 is None else \
            np.nan_to_num(auc, nan=-np.inf) >= self.min_auc28
        util = 100 * pe * (1 - pt) + self.u2 * (1 - pe) * (1 - pt) + self.u3 * pe * pt
        return {"dose": np.arange(1, k + 1), "n": n, "dlt": y, "p_dlt_isotonic": pt,
                "safe": safe, "responders": r, "response_rate": pe, "response_lo": lo,
                "response_hi": hi, "futile": futile, "auc28_median": auc, "exposed": exposed,
                "utility": util, "eligible": safe & ~futile & exposed}

    def table(self, n: Any, dlt: Any, responders: Any, auc28_median: Any = None
              ) -> pd.DataFrame:
        """Per dose: n, DLTs, isotonic DLT estimate, safe, responders, rate and exact CI,
        futile, median AUC0-28d, exposed, utility, eligible."""
        return pd.DataFrame(self._arrays(n, dlt, responders, auc28_median))

    def choose(self, n: Any, dlt: Any, responders: Any, auc28_median: Any = None
               ) -> int | None:
        """The RP2D (1-based) or None: `recommend` without the table and the words (the
        virtual trials call it once per distinct final state)."""
        v = self._arrays(n, dlt, responders, auc28_median)
        return _pick(v)

    def recommend(self, n: Any, dlt: Any, responders: Any, auc28_median: Any = None
                  ) -> Recommendation:
        """The RP2D by the rule (module docstring)."""
        v = self._arrays(n, dlt, responders, auc28_median)
        t = pd.DataFrame(v)
        if not (t["n"] > 0).any():
            return Recommendation(None, "no patient treated", t)
        d = _pick(v)
        if d is None:
            why = []
            if not t["safe"].any():
                why.append(f"no dose with isotonic DLT estimate <= {self.target:g}")
            else:
                why.append(f"every safe dose is futile (upper {100 * self.conf_level:g}% "
                           f"exact limit of the response rate < {self.min_response:g})"
                           + ("" if self.min_auc28 is None else
                              f" or below the exposure floor AUC0-28d {self.min_auc28:g}"))
            return Recommendation(None, "no RP2D: " + "; ".join(why), t)
        row = t.iloc[d - 1]
        reason = (f"dose {d}: highest utility {row['utility']:.1f} among doses with isotonic "
                  f"DLT estimate <= {self.target:g}, response upper {100 * self.conf_level:g}% "
                  f"exact limit >= {self.min_response:g}"
                  + ("" if self.min_auc28 is None else f", median AUC0-28d >= {self.min_auc28:g}")
                  + f" (DLT {int(row['dlt'])}/{int(row['n'])}, isotonic "
                  f"{row['p_dlt_isotonic']:.3f}; response {int(row['responders'])}/"
                  f"{int(row['n'])} = {row['response_rate']:.2f} [{row['response_lo']:.2f}, "
                  f"{row['response_hi']:.2f}])")
        return Recommendation(d, reason, t)


def _pick(v: dict[str, np.ndarray]) -> int | None:
    """Highest utility among eligible doses; ties (1e-9): higher median AUC0-28d, then the
    lower dose."""
    ok = np.flatnonzero(v["eligible"])
    if ok.size == 0:
        return None
    util = v["utility"][ok]
    tied = ok[util >= util.max() - 1e-9]
    auc = np.nan_to_num(v["auc28_median"][tied], nan=-np.inf)
    return int(tied[auc >= auc.max()][0]) + 1


def rule_of(protocol: Any) -> tuple[RP2DRule, bool, str]:
    """The protocol's RP2D rule, whether it is assumed, and the note (defaults when the
    protocol has no ``rp2d`` block; then the DLT target is the escalation target)."""
    block = getattr(protocol, "rp2d", None)
    if block is None:
        from celltrial.design.live import escalation_spec

        spec = escalation_spec(protocol)
        return (RP2DRule(target=spec.target, min_response=spec.efficacy_target or 0.25), True,
                "protocol has no rp2d block: default rule (BOIN12 utility weights, target of "
                "the escalation) assumed")
    rule = RP2DRule(block.target, block.min_response, block.u2, block.u3, block.conf_level,
                    block.min_auc28)
    note = "from the protocol" + (f" (assumed: {block.rationale})" if block.assumed else "")
    return rule, bool(block.assumed), note


def recommend_from_adam(protocol: Any, adsl: pd.DataFrame, adrs: pd.DataFrame | None,
                        adpp: pd.DataFrame | None) -> Recommendation:
    """The RP2D of a study from its analysis datasets: DLT-evaluable patients per dose and
    their DLTs (ADSL TRT01AN, DLTEVLFL, DLTFL), responders among them (ADRS best overall
    response in `celltrial.design.live.RESPONDER_CATEGORIES`), median AUC0-28d by qPCR of the
    infused (ADPP AUC28_QPCR), then the protocol's rule (`rule_of`)."""
    from celltrial.design.live import efficacy_by_subject, exposure_by_subject

    k = len(protocol.dose_levels)
    rule, _, _ = rule_of(protocol)
    dose = pd.to_numeric(adsl["TRT01AN"], errors="coerce")
    ev = adsl[(adsl["DLTEVLFL"].astype(str) == "Y") & dose.notna()]
    d_ev = pd.to_numeric(ev["TRT01AN"]).astype(int).to_numpy()
    n = np.bincount(d_ev - 1, minlength=k)[:k]
    y = np.bincount(d_ev - 1, (ev["DLTFL"].astype(str) == "Y").to_numpy(float),
                    minlength=k)[:k].astype(int)
    resp = efficacy_by_subject(adrs)
    r = np.bincount(d_ev - 1, np.array([resp.get(str(u), 0) for u in ev["USUBJID"]], float),
                    minlength=k)[:k].astype(int)
    expo = exposure_by_subject(adpp)
    infused = adsl[dose.notna()]
    auc = np.full(k, np.nan)
    for d in range(1, k + 1):
        vals = [expo[str(u)] for u in infused.loc[dose[dose.notna()] == d, "USUBJID"]
                if str(u) in expo]
        if vals:
            auc[d - 1] = float(np.median(vals))
    return rule.recommend(n, y, r, auc)
