"""Form fields as data, and reading a submitted form with plain messages by field.

A :class:`FormField` says what a person sees (``label``, ``hint``, the readable text of each
choice), what the store calls the value (``sdtm``: shown only as the field's tooltip) and how
it is read (``kind``, ``required``, ``low``/``high``). :func:`read_form` turns the submitted
text into typed values and collects one plain message per refused field ("Enter a number",
"Required", "Choose one of the options"), so that a page shows each message next to its field
and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["text", "number", "integer", "date", "datetime", "select", "yesno"]

YES_NO: tuple[tuple[str, str], ...] = (("Y", "Yes"), ("N", "No"))


@dataclass(frozen=True)
class FormField:
    """One input of a form.

    ``kind``: ``text``, ``number``, ``integer``, ``date`` (``<input type=date>``,
    YYYY-MM-DD), ``datetime`` (``<input type=datetime-local>``, YYYY-MM-DDThh:mm, a date alone
    accepted), ``select`` (``choices``: (stored value, readable text)) or ``yesno`` (Y/N,
    read as True/False). ``low``/``high``: the range a number may take (inclusive).
    """

    name: str
    label: str
    sdtm: str = ""
    kind: Kind = "text"
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    hint: str = ""
    unit: str = ""
    low: float | None = None
    high: float | None = None

    @property
    def input_type(self) -> str:
        return {"date": "date", "datetime": "datetime-local", "number": "number",
                "integer": "number"}.get(self.kind, "text")

    @property
    def options(self) -> tuple[tuple[str, str], ...]:
        return YES_NO if self.kind == "yesno" else self.choices


class FormProblems(Exception):
    """Fields refused: ``{field: plain message}`` (``_form`` for the form as a whole)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?")


def _number_text(value: float) -> str:
    return f"{value:g}"


def read_field(f: FormField, raw: Any) -> tuple[Any, str | None]:
    """(typed value or None, plain message or None) of one submitted value."""
    text = "" if raw is None else str(raw).strip()
    if not text:
        return None, ("Required" if f.required else None)
    if f.kind in ("number", "integer"):
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            return None, "Enter a number" + (f" (in {f.unit})" if f.unit else "")
        if not math.isfinite(number):
            return None, "Enter a number" + (f" (in {f.unit})" if f.unit else "")
        if f.kind == "integer":
            if not number.is_integer():
                return None, "Enter a whole number"
            number = int(number)
        unit = f" {f.unit}" if f.unit else ""
        if f.low is not None and number < f.low:
            if f.high is not None:
                return None, (f"Must be between {_number_text(f.low)} and "
                              f"{_number_text(f.high)}{unit}")
            return None, f"Must be at least {_number_text(f.low)}{unit}"
        if f.high is not None and number > f.high:
            if f.low is not None:
                return None, (f"Must be between {_number_text(f.low)} and "
                              f"{_number_text(f.high)}{unit}")
            return None, f"Must be at most {_number_text(f.high)}{unit}"
        return number, None
    if f.kind == "date":
        if not _DATE.fullmatch(text):
            return None, "Enter a date as YYYY-MM-DD"
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            return None, "No such date"
        return text, None
    if f.kind == "datetime":
        if not _DATETIME.fullmatch(text):
            return None, "Enter a date (YYYY-MM-DD) and, if known, a time (hh:mm)"
        try:
            dt.datetime.fromisoformat(text)
        except ValueError:
            return None, "No such date or time"
        return text[:16], None
    if f.kind in ("select", "yesno"):
        allowed = [value for value, _ in f.options]
        if text not in allowed:
            return None, "Choose one of the options"
        return (text == "Y") if f.kind == "yesno" else text, None
    return text, None


def read_form(fields: tuple[FormField, ...], form: Mapping[str, Any]
              ) -> tuple[dict[str, Any], dict[str, str]]:
    """(typed values by field name, plain messages by field name) of a submitted form."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        value, problem = read_field(f, form.get(f.name))
        if problem:
            errors[f.name] = problem
        else:
            values[f.name] = value
    return values, errors


def echo(fields: tuple[FormField, ...], form: Mapping[str, Any]) -> dict[str, str]:
    """The submitted text by field, to show the form again as the person typed it."""
    return {f.name: str(form.get(f.name) or "") for f in fields}


def day_of(value: str | None) -> dt.date | None:
    """The date part of an ISO 8601 date or date-time (None when absent or unreadable)."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


CHOICE_TEXT: dict[str, dict[str, str]] = {
    "hypotension": {
        "none": "No hypotension",
        "fluids": "Hypotension not requiring vasopressors (fluids only)",
        "one_vasopressor": "Hypotension requiring one vasopressor (with or without vasopressin)",
        "multiple_vasopressors": "Hypotension requiring multiple vasopressors (excluding "
                                 "vasopressin)"},
    "oxygen": {
        "none": "No oxygen needed",
        "low_flow": "Low-flow nasal cannula (<= 6 L/min) or blow-by",
        "high_flow": "High-flow nasal cannula (> 6 L/min), facemask, non-rebreather or Venturi "
                     "mask",
        "positive_pressure": "Positive pressure (CPAP, BiPAP, intubation and mechanical "
                             "ventilation)"},
    "consciousness": {
        "alert": "Alert",
        "awakens_spontaneously": "Awakens spontaneously",
        "awakens_to_voice": "Awakens to voice",
        "awakens_to_touch": "Awakens only to tactile stimulus",
        "unarousable": "Unarousable, or needs vigorous or repetitive stimuli; stupor or coma"},
    "seizure": {
        "none": "No seizure",
        "rapidly_resolving": "Clinical seizure that resolves rapidly, or non-convulsive "
                             "seizures on EEG that resolve with intervention",
        "prolonged": "Life-threatening prolonged seizure (> 5 min), or repetitive seizures "
                     "without return to baseline in between"},
    "motor": {
        "none": "No motor findings",
        "focal_weakness": "Deep focal motor weakness (hemiparesis or paraparesis)"},
    "edema": {
        "none": "No cerebral edema",
        "focal": "Focal or local edema on neuroimaging",
        "diffuse": "Diffuse cerebral edema on neuroimaging; decerebrate or decorticate "
                   "posturing; cranial nerve VI palsy; papilledema; or Cushing's triad"},
    "grade": {"1": "1 - Mild", "2": "2 - Moderate", "3": "3 - Severe",
              "4": "4 - Life-threatening", "5": "5 - Death related to the adverse event"},
    "related": {"RELATED": "Related to the CAR-T product", "NOT RELATED": "Not related"},
    "outcome": {"RECOVERED/RESOLVED": "Recovered / resolved",
                "RECOVERING/RESOLVING": "Recovering / resolving",
                "NOT RECOVERED/NOT RESOLVED": "Not recovered / not resolved",
                "RECOVERED/RESOLVED WITH SEQUELAE": "Recovered / resolved with sequelae",
                "FATAL": "Fatal", "UNKNOWN": "Unknown"},
    "scale": {"CTCAE v5.0": "NCI CTCAE v5.0", "ASTCT 2019": "ASTCT 2019 (CRS, ICANS)",
              "MAGIC 2016": "MAGIC 2016 (acute GVHD)"},
}
"""Readable text of the coded choices of the entry forms (the code stays the submitted value
and the option's tooltip). CRS and ICANS: the wording of the ASTCT 2019 consensus grading
tables (Lee DW et al. Biol Blood Marrow Transplant 2019;25:625-638, tables 4 and 6); AE
grades: CTCAE v5.0's general grade descriptions; outcomes: CDISC CT code list OUT."""


def choices_of(name: str, codes: Any) -> tuple[tuple[str, str], ...]:
    """(code, readable text) of ``codes`` by :data:`CHOICE_TEXT` (the code where unlisted)."""
    text = CHOICE_TEXT.get(name, {})
    return tuple((str(c), text.get(str(c), str(c))) for c in codes)


_TECHNICAL = re.compile(r"^Invalid `[^`]+`(?: \(\w+\))?: got `(.*?)`, must be (.*)$", re.S)


def plain_message(message: str) -> str:
    """A rule's message as a person reads it next to the field: ``Invalid `value`: got
    `'-3'`, must be a finite number >= 0`` -> ``Must be a finite number >= 0 (entered: -3)``;
    other messages as they are."""
    found = _TECHNICAL.match(message.strip())
    if not found:
        return message
    got, rule = found.groups()
    got = got.strip("'\"")
    shown = "" if got in ("None", "") else f" (entered: {got})"
    return f"Must be {rule}{shown}"
