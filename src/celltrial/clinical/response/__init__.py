"""Response criteria: AML ELN 2022 (and NCT04762485's wording), adult ALL BBMT 2010,
extramedullary Lugano 2014, overall response and per-patient summaries."""

from celltrial.clinical.response.extramedullary import assess_extramedullary, spd
from celltrial.clinical.response.overall import (
    CRITERIA,
    RANK,
    RESPONDERS,
    assess_response,
    best_overall_response,
    first_response_day,
    overall_response,
    relapse_day,
)
from celltrial.clinical.response.table import ResponseResult

__all__ = ["CRITERIA", "RANK", "RESPONDERS", "ResponseResult", "assess_extramedullary",
           "assess_response", "best_overall_response", "first_response_day",
           "overall_response", "relapse_day", "spd"]
