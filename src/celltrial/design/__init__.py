"""celltrial.design: dose-escalation designs (3+3, BOIN, CRM, BOIN12-style OBD), live
decisions and fast simulation of operating characteristics."""

from celltrial.design.boin import BOIN
from celltrial.design.boin12 import BOIN12
from celltrial.design.boundaries import boin_boundaries, decision_table, write_decision_table_csv
from celltrial.design.crm import CRM
from celltrial.design.data import Decision, DoseDesign, EscalationData, Selection
from celltrial.design.simulate import SimulationResult, simulate
from celltrial.design.three_plus_three import ThreePlusThree, exact_operating_characteristics

__all__ = [
    "BOIN",
    "BOIN12",
    "CRM",
    "Decision",
    "DoseDesign",
    "EscalationData",
    "Selection",
    "SimulationResult",
    "ThreePlusThree",
    "boin_boundaries",
    "decision_table",
    "exact_operating_characteristics",
    "simulate",
    "write_decision_table_csv",
]
