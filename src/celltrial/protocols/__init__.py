"""Protocol-as-code: the schema, rule expressions, derivation vocabulary, lint and the five studies."""

from celltrial.protocols.derivations import DERIVATIONS, Derivation
from celltrial.protocols.library import library_dir, list_ids, load, read
from celltrial.protocols.lint import LintMessage, lint
from celltrial.protocols.schema import (
    STANDARD_VARIABLES,
    BagLimits,
    Criterion,
    DLTCensoring,
    DLTDefinition,
    DLTException,
    DLTRule,
    DoseLevel,
    Eligibility,
    Endpoint,
    HoldRule,
    Intervention,
    Options,
    Protocol,
    Schedule,
    SplitFraction,
    Variable,
)

__all__ = [
    "DERIVATIONS", "STANDARD_VARIABLES", "BagLimits", "Criterion", "DLTCensoring",
    "DLTDefinition",
    "DLTException", "DLTRule", "Derivation", "DoseLevel", "Eligibility", "Endpoint",
    "HoldRule", "Intervention", "LintMessage", "Options", "Protocol", "Schedule", "SplitFraction",
    "Variable", "library_dir", "lint", "list_ids", "load", "read",
]
