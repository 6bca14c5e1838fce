"""celltrial.stats: survival, competing risks, binomial intervals, NCA and clinical summaries.

Every estimator is checked against R (survival 3.5, cmprsk 2.2, binom.test/prop.test) with the
frozen outputs in tests/fixtures; see docs/stats.md.
"""

from celltrial.stats.binomial import Interval, clopper_pearson, wilson
from celltrial.stats.competing import CIFResult, cumulative_incidence
from celltrial.stats.immunogenicity import AdaSummary, ada_summary
from celltrial.stats.nca import NCA_PARAMETERS, NCAParameter, NCAResult, nca
from celltrial.stats.pharmacodynamics import (
    CD7Response,
    CytokineResponse,
    cd7_response,
    cd7_table,
    cytokine_response,
    cytokine_table,
)
from celltrial.stats.result import Estimate, Missing, is_missing, reason_of, value_of
from celltrial.stats.safety import ae_incidence, crs_icans_summary
from celltrial.stats.survival import KaplanMeierResult, LogRankResult, kaplan_meier, logrank_test

__all__ = [
    "NCA_PARAMETERS", "AdaSummary", "CD7Response", "CIFResult", "CytokineResponse", "Estimate",
    "Interval", "KaplanMeierResult", "LogRankResult", "Missing", "NCAParameter", "NCAResult",
    "ada_summary", "ae_incidence", "cd7_response", "cd7_table", "clopper_pearson",
    "crs_icans_summary", "cumulative_incidence", "cytokine_response", "cytokine_table",
    "is_missing", "kaplan_meier", "logrank_test", "nca", "reason_of", "value_of", "wilson",
]
