"""The protocol schema: frozen pydantic models for one study protocol (protocol-as-code).

One YAML file per study (``library/<id>.yaml``) validates against :class:`Protocol`.
Every value the registration does not state carries ``assumed: true`` and a one-line
``rationale`` (see docs/protocols.md). Field names are the contract other packages read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from celltrial.errors import ProtocolError
from celltrial.protocols import criteria

__all__ = [
    "BagLimits", "Criterion", "DLTCensoring", "DLTDefinition", "DLTException", "DLTRule",
    "CD7Editing", "DoseLevel",
    "Eligibility", "Endpoint", "Intervention", "Options", "Protocol", "Schedule",
    "HoldRule", "LintReading", "SplitFraction", "STANDARD_VARIABLES", "Variable",
]

ResponseCriteria = Literal["aml_eln2022", "all_bbmt2010", "extramedullary_lugano2014"]
ToxCategory = Literal["hematologic", "non_hematologic", "crs", "icans"]
DIAGNOSES = ["AML", "MPAL", "T-ALL", "T-LBL", "ETP-ALL", "B-ALL", "other"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Assumable(_Frozen):
    """A value that is either from the registration or an assumption with its rationale."""

    assumed: bool = False
    rationale: str | None = None

    @model_validator(mode="after")
    def _assumed_needs_rationale(self) -> _Assumable:
        if self.assumed and not (self.rationale and self.rationale.strip()):
            raise ValueError("an assumed value needs a one-line `rationale`")
        return self


class Variable(_Frozen):
    """A patient variable eligibility rules read; ``min``/``max`` bound what is physically possible."""

    name: str
    type: Literal["number", "bool", "category"]
    unit: str | None = None
    categories: list[str] | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Variable:
        if self.type == "category" and not self.categories:
            raise ValueError(f"category variable `{self.name}` needs `categories`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"variable `{self.name}`: min {self.min} > max {self.max}")
        return self


def _v(name: str, type_: str, unit: str | None, lo: float | None, hi: float | None,
       description: str, categories: list[str] | None = None) -> Variable:
    return Variable(name=name, type=type_, unit=unit, min=lo, max=hi,  # type: ignore[arg-type]
                    description=description, categories=categories)


_BOOLS = {
    "relapsed_refractory": "Relapsed or refractory disease",
    "pregnant_or_lactating": "Pregnant or lactating",
    "congenital_immunodeficiency": "Congenital immunodeficiency",
    "cns_leukemia": "Central nervous system leukemia",
    "uncontrolled_infection": "Uncontrolled active infection",
    "active_hbv_hcv": "Active hepatitis B or hepatitis C infection",
    "hiv_infection": "HIV infection",
    "thrombosis_embolism": "Arterial or venous thrombosis or embolism",
    "recent_mi_or_arrhythmia": "Myocardial infarction or severe arrhythmia in the last 6 months",
    "investigator_unsuitable": "Comorbidity the investigator considers unsuitable for the study",
}

STANDARD_VARIABLES: dict[str, Variable] = {v.name: v for v in (
    _v("age_years", "number", "years", 0, 120, "Age at screening"),
    _v("ecog", "number", None, 0, 5, "ECOG performance status"),
    _v("cd7_blast_pct", "number", "%", 0, 100, "Percentage of leukemic blasts CD7+ by flow cytometry"),
    _v("lvef", "number", "fraction", 0, 1, "Left ventricular ejection fraction by echocardiography"),
    _v("nyha_class", "number", None, 1, 4, "New York Heart Association class"),
    _v("ast_x_uln", "number", "x ULN", 0, 1000, "AST as a multiple of the upper limit of normal"),
    _v("alt_x_uln", "number", "x ULN", 0, 1000, "ALT as a multiple of the upper limit of normal"),
    _v("bilirubin_mg_dl", "number", "mg/dL", 0, 60, "Total bilirubin"),
    _v("diagnosis", "category", None, None, None, "Diagnosis", DIAGNOSES),
    _v("weight_kg", "number", "kg", 1, 350, "Body weight"),
    *(_v(name, "bool", None, None, None, text) for name, text in _BOOLS.items()),
)}


class Criterion(_Assumable):
    """One eligibility criterion: registration wording plus an evaluable rule.

    Inclusion: met when ``rule`` is true. Exclusion: ``rule`` describes the condition that
    excludes (patient excluded when true). ``units`` optionally states the unit each
    variable's literals are written in; lint checks it against the variable's unit.
    """

    id: str
    text: str
    rule: str
    reading: str | None = None
    units: dict[str, str] = Field(default_factory=dict)

    @field_validator("rule")
    @classmethod
    def _parses(cls, rule: str) -> str:
        try:
            criteria.parse(rule)
        except ProtocolError as exc:
            raise ValueError(exc.message) from None
        return rule


class Eligibility(_Frozen):
    inclusion: list[Criterion]
    exclusion: list[Criterion] = Field(default_factory=list)


class DoseLevel(_Assumable):
    id: str
    cells_per_kg: float = Field(gt=0)
    label: str = ""


class SplitFraction(_Assumable):
    day: int = Field(ge=0)
    fraction: float = Field(gt=0, le=1)


class BagLimits(_Assumable):
    min_volume_ml: float = Field(gt=0)
    max_volume_ml: float = Field(gt=0)
    min_bags: int = Field(ge=1)
    max_bags: int = Field(ge=1)


HoldSign = Literal["crs", "icans", "uncontrolled_infection"]


class HoldRule(_Assumable):
    """A split-infusion hold rule: the next fraction is withheld when, between the first
    fraction and the next one, ``sign`` was seen at ``min_grade`` or worse (ASTCT 2019 grade
    for CRS/ICANS; ``uncontrolled_infection`` is present/absent). A withheld fraction is not
    given later and every later fraction is withheld with it (``celltrial.clinical.
    split_hold``)."""

    id: str
    description: str
    sign: HoldSign
    min_grade: int = Field(default=1, ge=1, le=5)
    action: Literal["withhold"] = "withhold"


CD7Editing = Literal["knockout", "pebl", "natural_selection", "none", "unknown"]
"""How the product keeps its CAR-T cells from killing each other through CD7 (fratricide):
``knockout`` (CD7 gene disrupted, e.g. CRISPR; Gomes-Silva et al. Blood 2017), ``pebl``
(a protein expression blocker keeps CD7 off the surface; Png et al. Blood Adv 2017),
``natural_selection`` (no editing; the CAR masks CD7 and CD7-negative CAR-T cells survive
culture; NS7CAR), ``none`` (no step against fratricide) or ``unknown``. Only ``knockout`` and
``pebl`` are CD7-edited: the mechanistic model's fratricide rate is zero for them and takes
its typical value otherwise (``celltrial.kinetics.parameters.fratricide_rate``)."""


ProductOrigin = Literal["autologous", "donor_prior_hsct", "donor_new", "unknown"]
"""Whose T cells the product is made of: ``autologous`` (the patient's own),
``donor_prior_hsct`` (the donor of the patient's earlier allogeneic HSCT) or ``donor_new``
(a new HLA-matched donor), the two donor-derived sources of Pan 2021 JCO (NCT04689659;
../shared/CLINICAL_REFERENCE.md section 6), or ``unknown``. Donor-derived T cells can cause
graft-versus-host disease (GVHD grade 1-2 in 60% of Pan 2021), so acute GVHD is assessed
(:mod:`celltrial.clinical.gvhd`) only when :func:`gvhd_assessed` says so."""

DONOR_DERIVED: tuple[str, ...] = ("donor_prior_hsct", "donor_new")


def gvhd_assessed(origin: str) -> bool:
    """Whether acute GVHD (MAGIC) is assessed for a product of ``origin``: donor-derived
    products, and an ``unknown`` origin (donor T cells cannot be ruled out); never an
    autologous product (its T cells are the patient's own: no allo-reactivity)."""
    if origin not in ("autologous", *DONOR_DERIVED, "unknown"):
        raise ValueError(f"Invalid `product_origin`: got `{origin!r}`, must be one of "
                         "autologous, donor_prior_hsct, donor_new, unknown")
    return origin != "autologous"


class Intervention(_Frozen):
    """Product, its origin (``product_origin``, :data:`ProductOrigin`), its CD7 editing
    (``cd7_editing``, :data:`CD7Editing`), dose levels (CAR+ cells/kg), split-infusion
    fractions, the hold rules between fractions, and bag limits."""

    product: str
    product_origin: ProductOrigin = "unknown"
    product_origin_assumed: bool = False
    product_origin_rationale: str | None = None
    cd7_editing: CD7Editing = "unknown"
    cd7_editing_assumed: bool = False
    cd7_editing_rationale: str | None = None
    dose_levels: list[DoseLevel] = Field(min_length=1)
    split: list[SplitFraction] = Field(min_length=1)
    hold_rules: list[HoldRule] = Field(default_factory=list)
    bags: BagLimits
    weight_cap_kg: float | None = Field(default=None, gt=0)
    weight_cap_assumed: bool = False
    weight_cap_rationale: str | None = None
    dose_tolerance: float = Field(ge=0, lt=1)
    dose_tolerance_assumed: bool = False
    dose_tolerance_rationale: str | None = None

    @model_validator(mode="after")
    def _cd7_editing_needs_rationale(self) -> Intervention:
        if self.cd7_editing_assumed and not (self.cd7_editing_rationale
                                             and self.cd7_editing_rationale.strip()):
            raise ValueError("an assumed `cd7_editing` needs a one-line `cd7_editing_rationale`")
        if self.product_origin_assumed and not (self.product_origin_rationale
                                                and self.product_origin_rationale.strip()):
            raise ValueError("an assumed `product_origin` needs a one-line "
                             "`product_origin_rationale`")
        return self

    @property
    def gvhd_assessed(self) -> bool:
        """Whether acute GVHD is assessed for this product (:func:`gvhd_assessed`)."""
        return gvhd_assessed(self.product_origin)


class Schedule(_Assumable):
    """Assessment days (study day 0 = first infusion; negative = before it)."""

    kinetics_days: list[int]
    cytokine_days: list[int]
    cd7_days: list[int]
    marrow_days: list[int]
    ada_days: list[int] = Field(default_factory=list)
    followup_days: list[int]


class DLTRule(_Frozen):
    id: str
    description: str
    scale: Literal["ctcae", "astct"]
    terms: list[str] | None = None
    categories: list[ToxCategory] | None = None
    min_grade: int = Field(ge=1, le=5)


class DLTException(_Frozen):
    """A toxicity a rule matched that is not a DLT. It applies when ``terms``/``categories``
    match (absent = any) and ``grade`` equals the toxicity's grade (absent = any), and then
    at most one condition decides (none = always excused):

    - ``resolves_to_grade_at_most`` + ``within_hours``: excused when the grade fell to that
      level within the hours (e.g. grade 3 CRS improving to grade <= 2 within 72 h);
    - ``counts_only_if_persists_beyond_day``: excused when it ended by that study day
      (e.g. grade 4 cytopenia persisting beyond day 28);
    - ``counts_only_if_lasts_more_than_days``: excused when the episode at >= ``grade`` lasted
      at most that many days from the day it first reached it (e.g. grade 4 neutropenia
      lasting > 14 days).

    ``celltrial.clinical.evaluate_dlt`` applies them (docs/clinical.md, DLT).
    """

    id: str
    description: str
    terms: list[str] | None = None
    categories: list[ToxCategory] | None = None
    grade: int | None = Field(default=None, ge=1, le=5)
    resolves_to_grade_at_most: int | None = Field(default=None, ge=0, le=4)
    within_hours: float | None = Field(default=None, gt=0)
    counts_only_if_persists_beyond_day: int | None = Field(default=None, ge=0)
    counts_only_if_lasts_more_than_days: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_condition(self) -> DLTException:
        if self.within_hours is not None and self.resolves_to_grade_at_most is None:
            raise ValueError(f"DLT exception `{self.id}`: `within_hours` needs "
                             "`resolves_to_grade_at_most`")
        conditions = [name for name in ("resolves_to_grade_at_most",
                                        "counts_only_if_persists_beyond_day",
                                        "counts_only_if_lasts_more_than_days")
                      if getattr(self, name) is not None]
        if len(conditions) > 1:
            raise ValueError(f"DLT exception `{self.id}`: one condition per exception, got "
                             f"{conditions}; write one exception per condition")
        return self


CensoringEvent = Literal["hsct", "new_anticancer_therapy", "withdrawal"]


class DLTCensoring(_Assumable):
    """Events after which a patient's toxicities no longer count for the DLT assessment
    (``hsct``: allogeneic HSCT; ``new_anticancer_therapy``; ``withdrawal``). A toxicity that
    first meets a DLT rule after the event is not counted, and a patient censored inside the
    window without a DLT is not DLT-evaluable. In YAML either ``censored_by: [hsct, ...]`` or
    ``censored_by: {events: [...], assumed: true, rationale: ...}``."""

    events: list[CensoringEvent] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        return {"events": data} if isinstance(data, list) else data

    @field_validator("events")
    @classmethod
    def _unique(cls, events: list[str]) -> list[str]:
        if len(set(events)) != len(events):
            raise ValueError(f"censoring events repeat: {events}")
        return events


class DLTDefinition(_Assumable):
    """A toxicity is a DLT if within ``window_days`` it matches a rule and no exception excuses
    it; ``censored_by`` names the events that end the DLT observation early (none = no
    censoring)."""

    window_days: int = Field(gt=0)
    definition: str
    rules: list[DLTRule] = Field(min_length=1)
    exceptions: list[DLTException] = Field(default_factory=list)
    censored_by: DLTCensoring | None = None


class Endpoint(_Assumable):
    """One outcome measure, named and timed as registered, with its derivation key.

    ``measure`` is the registration's outcome-measure number (1-based, in listed order);
    a registered measure with several parts (e.g. Cmax by flow and by qPCR) is split into
    several endpoints sharing ``measure`` and ``name``. ``derivation`` may be missing in a
    file under construction; lint reports that as an error.
    """

    id: str
    measure: int = Field(ge=1)
    name: str
    description: str = ""
    kind: Literal["primary", "secondary"]
    time_frame: str
    time_frame_days: int = Field(gt=0)
    derivation: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None


class Escalation(_Assumable):
    """Which dose-escalation rule the study follows (read by ``celltrial escalate``).

    ``design`` is one of ``3+3`` (Storer 1989), ``boin`` (Liu & Yuan 2015), ``crm`` (power
    model), ``boin12`` (Lin et al. 2020, optimal biological dose from toxicity and efficacy),
    ``tite-boin`` (Yuan et al. 2018) or ``tite-crm`` (Cheung & Chappell 2000): the time-to-event
    versions that let patients still inside the DLT window count by their follow-up;
    ``target`` is the target DLT rate (phi, or phi_T for BOIN12), ``efficacy_target`` the
    lowest acceptable response rate (phi_E, BOIN12 only), ``exposure_threshold`` an AUC0-28d
    (copies*day/ug) above which a patient counts as "expanded" for the BOIN12 utility.
    ``max_n`` caps the patients dosed during escalation; after it ends the recommended dose is
    expanded until it holds ``expansion_n`` patients in all (no expansion when absent).
    ``n_cap`` stops escalation once that many patients are at the current dose (BOIN's
    ``n.earlystop``, BOIN12's per-dose cap; none when absent).
    """

    design: Literal["3+3", "boin", "crm", "boin12", "tite-boin", "tite-crm"]
    target: float = Field(default=0.3, gt=0, lt=1)
    cohort_size: int = Field(default=3, ge=1)
    max_n: int | None = Field(default=None, ge=1)
    skeleton: list[float] | None = None
    efficacy_target: float | None = Field(default=None, gt=0, lt=1)
    exposure_threshold: float | None = Field(default=None, gt=0)
    expansion_n: int | None = Field(default=None, ge=1)
    n_cap: int | None = Field(default=None, ge=1)


class RP2DSpec(_Assumable):
    """How the recommended phase II dose is chosen (``celltrial rp2d``; rule in
    `celltrial.design.rp2d`): safe when the isotonic DLT estimate is <= ``target``; futile when
    the exact ``conf_level`` upper limit of the response rate is < ``min_response``; not
    exposed when the median AUC0-28d is < ``min_auc28`` (copies*day/ug; no floor when absent);
    among the rest, the highest BOIN12 utility with weights ``u2`` (neither response nor
    DLT) and ``u3`` (response with DLT) (Lin et al. 2020). ``sources`` names where each value
    comes from."""

    target: float = Field(default=0.3, gt=0, lt=1)
    min_response: float = Field(default=0.25, gt=0, lt=1)
    u2: float = Field(default=40.0, ge=0, le=100)
    u3: float = Field(default=60.0, ge=0, le=100)
    conf_level: float = Field(default=0.95, gt=0, lt=1)
    min_auc28: float | None = Field(default=None, gt=0)
    sources: list[str] = Field(default_factory=list)


class Options(_Frozen):
    censor_at_transplant: bool
    censor_at_transplant_rationale: str
    death_in_remission_competing: bool = True
    efs_landmark_days: int | None = Field(default=None, gt=0)
    efficacy_evaluable: str


class LintReading(_Frozen):
    """A lint warning the protocol answers: the check ``code`` (e.g. ``W241``), the field path
    ``where`` lint names (without the file name, e.g. ``eligibility.exclusion[6] (E7).text``)
    and ``reading``, how the project reads the registration's words there. Lint still prints
    the finding, followed by "marked: <reading>" (docs/protocols.md, Lint)."""

    code: str = Field(pattern=r"^W\d{3}$")
    where: str = Field(min_length=1)
    reading: str = Field(min_length=1)


class Protocol(_Frozen):
    """One study protocol. Load with :func:`celltrial.protocols.load`."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    version: str = "1"
    title: str
    registration: str | None = None
    source: str | None = None  # registration file in shared/seeds
    phase: str
    design: str
    target_enrollment: int = Field(gt=0)
    target_enrollment_assumed: bool = False
    target_enrollment_rationale: str | None = None
    # the sites' country, ISO 3166-1 alpha-3 (SDTM DM.COUNTRY, Req): registered, or assumed
    # with a rationale for the virtual cohort's sites
    country: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    country_assumed: bool = False
    country_rationale: str | None = None
    conditions: list[str]
    target_antigen: str = "CD7"
    arm_label: str | None = None
    notes: list[str] = Field(default_factory=list)
    variables: dict[str, Variable] = Field(default_factory=dict)
    eligibility: Eligibility
    intervention: Intervention
    schedule: Schedule
    dlt: DLTDefinition
    response_criteria: list[ResponseCriteria] = Field(min_length=1)
    response_definitions: str | None = None
    endpoints: list[Endpoint] = Field(min_length=1)
    escalation: Escalation | None = None
    rp2d: RP2DSpec | None = None
    options: Options
    lint_readings: list[LintReading] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _standard_variables(cls, data: Any) -> Any:
        """Start from the standard vocabulary; a file may add variables or narrow one."""
        if isinstance(data, dict):
            declared = data.get("variables") or {}
            if isinstance(declared, dict):
                merged: dict[str, Any] = {k: v.model_dump() for k, v in STANDARD_VARIABLES.items()}
                for name, spec in declared.items():
                    base = merged.get(name, {"name": name})
                    merged[name] = {**base, **(spec or {}), "name": name}
                data = {**data, "variables": merged}
        return data

    @model_validator(mode="after")
    def _country_reason(self) -> Protocol:
        if self.country_assumed and not (self.country_rationale and
                                         self.country_rationale.strip()):
            raise ValueError("an assumed `country` needs a one-line `country_rationale`")
        return self

    @property
    def dose_levels(self) -> list[DoseLevel]:
        return self.intervention.dose_levels

    def dose_level(self, level_id: str) -> DoseLevel:
        for level in self.intervention.dose_levels:
            if level.id == level_id:
                return level
        raise ProtocolError(f"Invalid `dose level`: got `{level_id!r}`, must be one of "
                            f"{[d.id for d in self.intervention.dose_levels]} in `{self.id}`")

    def endpoint(self, endpoint_id: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.id == endpoint_id:
                return endpoint
        raise ProtocolError(f"Invalid `endpoint`: got `{endpoint_id!r}`, must be one of "
                            f"{[e.id for e in self.endpoints]} in `{self.id}`")
