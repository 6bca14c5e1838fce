"""celltrial.derive: ADaM-shaped analysis datasets and every protocol endpoint from SDTM frames.

Builders are pure pandas functions (docs/derive.md has the rules and censoring options)."""

from celltrial.derive.adae import build_adae
from celltrial.derive.adis import build_adis
from celltrial.derive.adlb import build_adlb
from celltrial.derive.adpc import build_adpc, build_adpp
from celltrial.derive.adrs import build_adrs
from celltrial.derive.adsl import build_adsl
from celltrial.derive.adtte import build_adtte
from celltrial.derive.analysis import Analysis, analyze, derive_datasets, write_analysis
from celltrial.derive.endpoints import (
    DERIVATION_FUNCTIONS, EndpointResult, compute_endpoint, compute_endpoints,
)

__all__ = [
    "DERIVATION_FUNCTIONS", "Analysis", "EndpointResult", "analyze", "build_adae", "build_adis",
    "build_adlb", "build_adpc", "build_adpp", "build_adrs", "build_adsl", "build_adtte",
    "compute_endpoint", "compute_endpoints", "derive_datasets", "write_analysis",
]
