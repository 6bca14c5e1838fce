"""The dose-escalation committee (DEC): its review of the current cohort, its signed decisions,
and the enrolment they open.

The review (:func:`review`) reuses the trial's own rules, never re-implemented here: the DLT
adjudication of each patient of the current cohort (``celltrial.derive.dlt.adjudicate``, what
``celltrial dlt --study`` prints) and the design's recommendation on the live data
(``celltrial.conduct.escalation.decide``, what ``celltrial escalate`` prints).

The review is kept per study (:data:`REVIEW_CACHE`) with the version of the study's records
it was computed from (:func:`data_version`, the newest audit row on a clinical domain, read
from the database) and the protocol's fingerprint: a repeat request with no new data is
answered without rebuilding ADSL, and any write to a record makes the next one compute again.

A decision (:func:`record_decision`; table ``committee_decision``, migration 0008) is one of
:data:`ACTIONS` and the dose level it opens (none for stop). It must be consistent with the
dose of the current cohort (:func:`decision_problem`: escalate opens the next level up, never
skipping one; stay the same level; de-escalate a lower level; stop none) and may differ from
the design's recommendation only with a written reason. It is recorded by a committee member
who signs it at once (meaning ``approved``; password re-entered, celltrial.store.signatures),
and it takes effect when :data:`COMMITTEE` ``.quorum`` distinct members have signed it and
every one of those signatures is still valid (:func:`quorum_met`). Decisions and signatures
are never changed: a new decision supersedes the last.

Enrolment (:func:`enrol`) of a screened subject (DM with informed consent RFICDTC, no
ARMCD, no DS "SCREEN FAILURE") accepts only the dose level that the latest signed decision
opened (:func:`opening`); before any decision, the design's starting dose (the design's own
decision with nobody dosed). Each opening admits one cohort (``escalation.cohort_size``
enrolments, counted from the decision); a further cohort, replacing a patient included,
needs a new signed decision. A stop decision opens nothing. The enrolment sets DM.ARMCD
(dose level id) and DM.ARM (its label) through the store's audited correction path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import append_audit, audit_row, now, record_json
from celltrial.store.domains import DOMAINS
from celltrial.store.engine import Store, read_connection, write_transaction
from celltrial.store.locks import check_study
from celltrial.store.permissions import actor_of, require_scope
from celltrial.store.records import read_domains, update_record
from celltrial.store.schema import COMMITTEE_ACTIONS, TABLES, AuditRecord, CommitteeDecision
from celltrial.store.signatures import (SignatureRefused, SignatureView, authenticate_signer,
                                        content_hash, decision_content, insert_signature,
                                        signatures, LOCKOUT_AFTER)
from celltrial.store.studies import get_study
from celltrial.store.users import utc

ACTIONS: tuple[str, ...] = COMMITTEE_ACTIONS
"""What the committee may decide: escalate, stay, de-escalate, stop."""

ACTION_TEXT = {"escalate": "escalate to the next dose level",
               "stay": "stay at the current dose level",
               "de-escalate": "de-escalate to a lower dose level",
               "stop": "stop dose escalation (no further cohort)"}


@dataclass(frozen=True)
class CommitteeRule:
    """Who makes a decision effective: ``quorum`` distinct members with one of
    ``signer_roles`` signing it (meaning approved)."""

    signer_roles: tuple[str, ...] = ("investigator",)
    quorum: int = 2
    assumed: bool = True
    rationale: str = (
        "No registered protocol names its dose-escalation committee: two physician "
        "investigators must sign each decision so that no single person opens a dose "
        "(FDA guidance 'Establishment and Operation of Clinical Trial Data Monitoring "
        "Committees' 2006 and ICH E6(R3) 3.10: safety decisions by a committee, "
        "documented); site coordinators do not sign")


COMMITTEE = CommitteeRule()
"""The committee rule in force (assumed, see its rationale)."""


class EnrolmentRefused(StoreError):
    """An enrolment refused (dose not open, cohort full, subject not screened): nothing
    was written."""

    code = "CT340"


class DecisionRefused(StoreError):
    """A committee decision refused (inconsistent dose, no reason for a differing decision,
    recommendation changed since the page was read): nothing was written."""

    code = "CT341"


# ---------------------------------------------------------------- the review
@dataclass(frozen=True)
class Level:
    """A dose level of the protocol: 1-based index, id (DM.ARMCD) and label (DM.ARM)."""

    index: int
    id: str
    label: str


def levels_of(protocol: Any) -> list[Level]:
    """The protocol's dose levels, lowest first."""
    return [Level(i, lv.id, lv.label or lv.id)
            for i, lv in enumerate(protocol.dose_levels, start=1)]


def start_dose(protocol: Any) -> int:
    """The design's starting dose: its own decision with nobody dosed (BOIN, CRM, 3+3:
    their ``start_dose``, dose 1 unless set)."""
    from celltrial.design.data import EscalationData
    from celltrial.design.live import escalation_spec, make_design

    n = len(protocol.dose_levels)
    decision = make_design(escalation_spec(protocol), n).next_dose(EscalationData(n))
    return int(decision.dose or 1)


@dataclass(frozen=True)
class Review:
    """What the committee looks at: the current cohort, each of its patients' DLT
    adjudication, the dose counts and the design's recommendation."""

    study: str
    cohort: Any  # celltrial.conduct.escalation.Cohort | None
    patients: list[dict[str, Any]]
    current_dose: int
    action: str
    dose: int | None
    reason: str
    phase: str
    design: str
    design_note: str
    counts: list[dict[str, Any]]
    window_days: float

    @property
    def recommendation(self) -> tuple[str, int | None]:
        return self.action, self.dose

    def basis(self) -> dict[str, Any]:
        """What a decision keeps of the review (JSON-ready)."""
        cohort = None if self.cohort is None else {
            "number": self.cohort.number, "dose": self.cohort.dose, "level": self.cohort.level,
            "subjects": list(self.cohort.subjects),
            "first_infusion": self.cohort.first_infusion.isoformat()}
        return {"cohort": cohort, "design": self.design, "phase": self.phase,
                "patients": [{k: p[k] for k in ("usubjid", "dose_level", "dlt_evaluable",
                                                 "evaluable_reason", "dlt", "rules",
                                                 "exceptions", "decision")}
                             for p in self.patients],
                "counts": self.counts}


def review(domains: Mapping[str, pd.DataFrame], protocol: Any) -> Review:
    """The committee's review of a study from its records (module docstring)."""
    from celltrial.cli.dlt import as_dict
    from celltrial.conduct.escalation import cohorts, decide
    from celltrial.derive import build_adsl
    from celltrial.derive.dlt import adjudicate

    adsl = build_adsl(domains, protocol)
    body = as_dict(protocol, adjudicate(domains, protocol, adsl))
    found = cohorts(adsl, protocol)
    cohort = found[-1] if found else None
    members = set(cohort.subjects) if cohort else set()
    patients = [p for p in body["patients"] if p["usubjid"] in members]
    verdict = decide(domains, protocol, adsl)
    live = verdict.live
    counts = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
              for row in live.counts.to_dict("records")]
    current = live.data.current_dose or start_dose(protocol)
    return Review(str(protocol.id), cohort, patients, int(current), verdict.decision.action,
                  verdict.decision.dose, verdict.decision.reason, verdict.phase, live.design,
                  live.spec.note, counts, float(body["window_days"]))


def review_study(store: Store, protocol: Any) -> Review:
    """:func:`review` on the study's records in the store, answered from
    :data:`REVIEW_CACHE` when neither the records nor the protocol changed since it was
    computed (:func:`data_version`, :func:`protocol_fingerprint`)."""
    return REVIEW_CACHE.get(store, protocol)


# ---------------------------------------------------------------- the review's cache
DataVersion = tuple[int, str]
"""(id, chain hash) of the newest audit row of a study's clinical records."""


def data_version(connection: sa.Connection, study_id: str) -> DataVersion | None:
    """The version of a study's clinical records: the id and chain hash of the newest audit
    row on a domain table of the study (None: no record was ever written).

    Every write to a record (entry, import, correction, void, delete, enrolment) appends its
    audit row in the same transaction (:mod:`celltrial.store.audit`; 21 CFR 11.10(e)), and
    writers are serialized (:func:`celltrial.store.engine.write_transaction`), so the
    version changes exactly when what :func:`celltrial.store.records.read_domains` returns
    may have changed, and it is read from the database: every worker process of the web app
    sees the same value. The chain hash (over the row's time to the microsecond and the
    previous hash) tells a database recreated with the same ids from the one read before.
    Signatures, queries, SDV flags, locks and committee decisions write no domain table and
    leave the version as it is: the review does not read them."""
    audit = AuditRecord.__table__
    row = connection.execute(
        sa.select(audit.c.id, audit.c.hash)
        .where(audit.c.study_id == study_id, audit.c.table.in_(DOMAIN_TABLES))
        .order_by(audit.c.id.desc()).limit(1)).first()
    return None if row is None else (int(row.id), str(row.hash or ""))


DOMAIN_TABLES: tuple[str, ...] = tuple(domain.table for domain in DOMAINS.values())
"""The audit trail's table names of the clinical domains (what the review reads)."""


def protocol_fingerprint(protocol: Any) -> str:
    """SHA-256 of the protocol's canonical JSON (its DLT rules, dose levels and design: all
    the review reads of it). Protocols are frozen; computed once per loaded object."""
    known = _FINGERPRINTS.get(id(protocol))
    if known is not None and known[0] is protocol:
        return known[1]
    text = protocol.model_dump_json() if hasattr(protocol, "model_dump_json") else repr(protocol)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if len(_FINGERPRINTS) > 64:
        _FINGERPRINTS.clear()
    _FINGERPRINTS[id(protocol)] = (protocol, digest)  # the object kept: its id is not reused
    return digest


_FINGERPRINTS: dict[int, tuple[Any, str]] = {}


MAX_REVIEWS = 64
"""Studies (per database) whose last review a process keeps."""


@dataclass
class ReviewCache:
    """The last :class:`Review` of each study, with the (data version, protocol
    fingerprint) it was computed at (issue 15: the committee's page and API rebuilt ADSL and
    the design's decision on every request, ~2.5 s).

    :meth:`get` reads the study's :func:`data_version` first, then answers from the cache
    when the version and the protocol are those of the stored review, and otherwise
    computes it (one computation per study at a time; concurrent requests wait for it) and
    keeps it. The version is read before the records, so a kept review is never older than
    its key: a write that commits in between only makes the next request compute again.
    ``hits`` and ``misses`` count the answers (a miss is one computation of :func:`review`).
    Each worker process keeps its own cache, keyed by values read from the database, so
    none of them answers from data another worker changed."""

    entries: dict[tuple[str, str], tuple[DataVersion | None, str, Review]] = field(
        default_factory=dict)
    hits: int = 0
    misses: int = 0
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _computing: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)

    def _lock_of(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._computing.setdefault(key, threading.Lock())

    def get(self, store: Store, protocol: Any) -> Review:
        study_id = str(protocol.id)
        key = (store.engine.url.render_as_string(hide_password=True), study_id)
        fingerprint = protocol_fingerprint(protocol)
        with self._lock_of(key):
            with read_connection(store.engine) as connection:
                version = data_version(connection, study_id)
            kept = self.entries.get(key)
            if kept is not None and kept[0] == version and kept[1] == fingerprint:
                with self._guard:
                    self.hits += 1
                return kept[2]
            found = review(read_domains(store, study_id), protocol)
            with self._guard:
                self.misses += 1
                if key not in self.entries and len(self.entries) >= MAX_REVIEWS:
                    self.entries.pop(next(iter(self.entries)))  # the oldest study kept
                self.entries[key] = (version, fingerprint, found)
            return found

    def clear(self) -> None:
        """Forget every kept review (the counters too)."""
        with self._guard:
            self.entries.clear()
            self.hits = self.misses = 0


REVIEW_CACHE = ReviewCache()
"""The process's cache of committee reviews (:class:`ReviewCache`)."""


# ---------------------------------------------------------------- rules of a decision
def dose_opened(action: str, current: int, n_doses: int, dose: int | None) -> str | None:
    """Why ``dose`` cannot be opened by ``action`` when the current cohort was dosed at
    ``current`` (of ``n_doses``), or None when it can. Pure.

    ============  ==========================================
    action        dose opened
    ============  ==========================================
    escalate      current + 1 (never skipping a level)
    stay          current
    de-escalate   a lower level (1 .. current - 1)
    stop          none
    ============  ==========================================
    """
    if action not in ACTIONS:
        return f"Invalid `action`: got `{action!r}`, must be one of {', '.join(ACTIONS)}"
    if action == "stop":
        return None if dose is None else "Invalid `dose`: a stop decision opens no dose level"
    if dose is None or not 1 <= dose <= n_doses:
        return (f"Invalid `dose`: got `{dose!r}`, must be a dose level of the protocol "
                f"(1..{n_doses})")
    if action == "escalate" and dose != current + 1:
        if current >= n_doses:
            return (f"Invalid `action`: got `escalate`, the current dose level {current} is "
                    "the highest of the protocol")
        return (f"Invalid `dose`: got level {dose}, escalate opens the next level up "
                f"({current + 1}), never skipping one")
    if action == "stay" and dose != current:
        return f"Invalid `dose`: got level {dose}, stay keeps the current level ({current})"
    if action == "de-escalate" and not dose < current:
        return (f"Invalid `dose`: got level {dose}, de-escalate opens a level below the "
                f"current one ({current})")
    return None


def decision_problem(action: str, dose: int | None, reason: str | None, *, current: int,
                     n_doses: int, recommended: tuple[str, int | None]) -> str | None:
    """Why a committee decision is refused, or None (consistency of action and dose, and a
    written reason whenever it differs from the design's recommendation). Pure."""
    problem = dose_opened(action, current, n_doses, dose)
    if problem:
        return problem
    if (action, dose) != tuple(recommended) and not (reason or "").strip():
        rec_action, rec_dose = recommended
        what = rec_action + ("" if rec_dose is None else f" to dose level {rec_dose}")
        return (f"Invalid `reason`: the decision differs from the design's recommendation "
                f"({what}): a written reason is required")
    return None


def quorum_met(signed: Sequence[SignatureView], rule: CommitteeRule = COMMITTEE) -> bool:
    """Whether ``signed`` (a decision's signatures) holds ``rule.quorum`` valid approvals by
    distinct users of the signer roles. Pure."""
    members = {s.username for s in signed
               if s.valid and s.meaning == "approved" and s.role in rule.signer_roles}
    return len(members) >= rule.quorum


# ---------------------------------------------------------------- decisions
@dataclass(frozen=True)
class DecisionView:
    """A stored decision with its signatures and whether it is in effect."""

    id: int
    study_id: str
    cohort: int | None
    current_dose: int | None
    recommended_action: str
    recommended_dose: int | None
    recommended_reason: str
    action: str
    dose: int | None
    dose_level: str | None
    reason: str | None
    basis: dict[str, Any]
    enrolled_before: int
    recorded_by: str
    recorded_at: dt.datetime
    content_hash: str
    intact: bool
    """Whether the stored decision still has the content hash it was recorded with."""
    signatures: tuple[SignatureView, ...] = field(default_factory=tuple)

    @property
    def signed(self) -> bool:
        """In effect: intact and signed by the committee's quorum (valid signatures)."""
        return self.intact and quorum_met(self.signatures)

    @property
    def follows_recommendation(self) -> bool:
        return (self.action, self.dose) == (self.recommended_action, self.recommended_dose)

    @property
    def key(self) -> str:
        return f"decision={self.id}"


def _enrolled(connection: sa.Connection, study_id: str) -> int:
    dm = TABLES["DM"]
    return int(connection.execute(sa.select(sa.func.count()).select_from(dm).where(
        dm.c.STUDYID == study_id, dm.c.ARMCD.is_not(None), dm.c.ARMCD != "")).scalar_one())


def record_decision(store: Store, protocol: Any, *, action: str, dose_level: str | None,
                    reason: str | None, user: str, username: str, password: str,
                    seen: tuple[str, int | None] | None = None,
                    lockout_after: int = LOCKOUT_AFTER, source: str = "api") -> DecisionView:
    """Record the committee's decision on the current cohort and the recorder's signature
    (approved), in one transaction; the review is that of the stored records
    (:func:`review_study`), read again under the write lock so that the decision keeps the
    basis of the data as they are when it is written. ``seen``: the recommendation (action,
    dose) the member read; refused when it changed since. Returns the decision (in effect
    once the quorum has signed)."""
    study_id = str(protocol.id)
    get_study(store, study_id)
    levels = levels_of(protocol)
    by_id = {lv.id: lv for lv in levels}
    level = None
    if dose_level:
        level = by_id.get(dose_level)
        if level is None:
            raise DecisionRefused(f"Invalid `dose_level`: got `{dose_level!r}`, must be one of "
                                  f"{', '.join(by_id)}")
    text = (reason or "").strip() or None
    if text is not None and len(text) > 4000:
        raise DecisionRefused("Invalid `reason`: must be at most 4000 characters")
    with read_connection(store.engine) as connection:  # the role before the password
        actor_of(connection, user, "sign.decision")
    now_review = review_study(store, protocol)
    if seen is not None and tuple(seen) != now_review.recommendation:
        raise DecisionRefused(
            "The design's recommendation changed since you opened the page (new data: now "
            f"{now_review.action}" + ("" if now_review.dose is None else
                                       f" to dose level {now_review.dose}") +
            "); review the cohort again; nothing was written")
    problem = decision_problem(action, None if level is None else level.index, text,
                               current=now_review.current_dose, n_doses=len(levels),
                               recommended=now_review.recommendation)
    if problem:
        raise DecisionRefused(problem + "; nothing was written")
    at = now()
    full_name = authenticate_signer(store, user, username, password, at=at,
                                    lockout_after=lockout_after)
    table = CommitteeDecision.__table__
    with write_transaction(store.engine) as connection:
        actor = actor_of(connection, user, "sign.decision")
        check_study(connection, study_id, "record a committee decision")
        # the review again under the write lock (from the cache unless a record changed
        # since): the decision keeps the basis of the data as they are when it is written
        locked_review = review_study(store, protocol)
        if (locked_review.recommendation, locked_review.current_dose) != (
                now_review.recommendation, now_review.current_dose):
            raise DecisionRefused(
                "The design's recommendation changed while the decision was being recorded "
                "(new data); review the cohort again; nothing was written")
        now_review = locked_review
        values = {
            "study_id": study_id,
            "cohort": None if now_review.cohort is None else now_review.cohort.number,
            "current_dose": now_review.current_dose,
            "recommended_action": now_review.action, "recommended_dose": now_review.dose,
            "recommended_reason": now_review.reason, "action": action,
            "dose": None if level is None else level.index,
            "dose_level": None if level is None else level.id, "reason": text,
            "basis": json.dumps(now_review.basis(), sort_keys=True, separators=(",", ":"),
                                default=str),
            "enrolled_before": _enrolled(connection, study_id),
            "recorded_by": actor.username}
        digest = content_hash(decision_content(values))
        decision_id = int(connection.execute(table.insert().returning(table.c.id), {
            **values, "content_hash": digest, "recorded_at": at}).scalar_one())
        append_audit(connection, audit_row(
            at=at, user=actor.username, study_id=study_id, table="committee_decision",
            key=f"decision={decision_id}", action="insert",
            reason=text or "as the design recommends", source=source,
            new=record_json({**values, "content_hash": digest})))
        insert_signature(connection, actor, study_id, object_type="decision",
                         object_key=f"decision={decision_id}", usubjid=None,
                         meaning="approved", full_name=full_name, digest=digest, at=at,
                         source=source)
    return get_decision(store, study_id, decision_id)


def _view(row: Any, signed: Sequence[SignatureView]) -> DecisionView:
    data = dict(row._mapping)
    stored = data.pop("content_hash")
    intact = content_hash(decision_content(data)) == stored
    data["basis"] = json.loads(data["basis"] or "{}")
    data["recorded_at"] = utc(data["recorded_at"])
    return DecisionView(**data, content_hash=stored, intact=intact, signatures=tuple(signed))


def decisions(store: Store, study_id: str) -> list[DecisionView]:
    """Every committee decision of the study, oldest first, with its signatures."""
    table = CommitteeDecision.__table__
    with read_connection(store.engine) as connection:
        rows = connection.execute(sa.select(table).where(
            table.c.study_id == study_id).order_by(table.c.id)).all()
    signed = signatures(store, study_id, object_type="decision")
    return [_view(row, [s for s in signed if s.object_key == f"decision={row.id}"])
            for row in rows]


def get_decision(store: Store, study_id: str, decision_id: int) -> DecisionView:
    """One decision of the study; StoreError when there is none."""
    for found in decisions(store, study_id):
        if found.id == int(decision_id):
            return found
    raise StoreError(f"Invalid `decision`: got `{decision_id!r}`, must be a committee "
                     f"decision of study {study_id}")


def sign_decision(store: Store, study_id: str, decision_id: int, *, user: str, username: str,
                  password: str, lockout_after: int = LOCKOUT_AFTER,
                  source: str = "api") -> DecisionView:
    """A further committee member signs a decision (approved)."""
    from celltrial.store.signatures import sign

    get_decision(store, study_id, decision_id)
    sign(store, study_id, "decision", "approved", user=user, username=username,
         password=password, decision=decision_id, lockout_after=lockout_after, source=source)
    return get_decision(store, study_id, decision_id)


def committee_decisions(store: Store, study_id: str) -> pd.DataFrame:
    """The study's committee decisions as a table for reports, oldest first: id, recorded_at
    (UTC), cohort, current_dose, recommended_action, recommended_dose, recommended_reason,
    action, dose, dose_level, reason, follows_recommendation, signed (in effect), intact,
    signers (``Full Name (user), ...`` of the valid approvals), broken_signatures."""
    columns = ("id", "recorded_at", "cohort", "current_dose", "recommended_action",
               "recommended_dose", "recommended_reason", "action", "dose", "dose_level",
               "reason", "follows_recommendation", "signed", "intact", "signers",
               "broken_signatures")
    rows = []
    for d in decisions(store, study_id):
        valid = [s for s in d.signatures if s.valid and s.meaning == "approved"]
        rows.append({
            "id": d.id, "recorded_at": d.recorded_at, "cohort": d.cohort,
            "current_dose": d.current_dose, "recommended_action": d.recommended_action,
            "recommended_dose": d.recommended_dose,
            "recommended_reason": d.recommended_reason, "action": d.action, "dose": d.dose,
            "dose_level": d.dose_level, "reason": d.reason,
            "follows_recommendation": d.follows_recommendation, "signed": d.signed,
            "intact": d.intact,
            "signers": ", ".join(f"{s.full_name} ({s.username})" for s in valid),
            "broken_signatures": sum(not s.valid for s in d.signatures)})
    frame = pd.DataFrame(rows, columns=list(columns))
    for name in ("cohort", "current_dose", "recommended_dose", "dose"):
        frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
    frame["recorded_at"] = pd.to_datetime(frame["recorded_at"], utc=True)
    return frame


# ---------------------------------------------------------------- enrolment
@dataclass(frozen=True)
class Opening:
    """The dose level enrolment may use now (None: none), the decision that opened it (None:
    the first cohort at the starting dose), the enrolments left in its cohort, and why."""

    level: Level | None
    decision: int | None
    slots: int
    reason: str
    pending: tuple[int, ...] = ()
    """Decisions recorded after the one in force and still awaiting signatures."""

    @property
    def open(self) -> bool:
        return self.level is not None and self.slots > 0


def opening(store: Store, protocol: Any) -> Opening:
    """What enrolment may use now (module docstring)."""
    from celltrial.design.live import escalation_spec

    study_id = str(protocol.id)
    levels = levels_of(protocol)
    size = escalation_spec(protocol).cohort_size
    found = decisions(store, study_id)
    in_force = next((d for d in reversed(found) if d.signed), None)
    pending = tuple(d.id for d in found if d.id > (in_force.id if in_force else 0)
                    and not d.signed)
    with read_connection(store.engine) as connection:
        enrolled = _enrolled(connection, study_id)
    if in_force is None:
        level = levels[start_dose(protocol) - 1]
        left = max(0, size - enrolled)
        why = (f"first cohort at the starting dose {level.id} ({level.label}): "
               f"{left} of {size} places left")
        if not left:
            why = (f"the first cohort ({size} patients) is enrolled: the dose-escalation "
                   "committee must record and sign its decision before the next enrolment")
        return Opening(level, None, left, why, pending)
    if in_force.action == "stop" or in_force.dose is None:
        return Opening(None, in_force.id, 0, f"committee decision {in_force.id} stopped dose "
                       "escalation: no dose level is open", pending)
    level = levels[in_force.dose - 1]
    left = max(0, size - (enrolled - in_force.enrolled_before))
    why = (f"committee decision {in_force.id} ({in_force.action}) opened {level.id} "
           f"({level.label}): {left} of {size} places left")
    if not left:
        why = (f"the cohort opened by committee decision {in_force.id} ({size} patients at "
               f"{level.id}) is enrolled: the committee must record and sign its next "
               "decision before the next enrolment")
    return Opening(level, in_force.id, left, why, pending)


def screening_problem(dm: Mapping[str, Any] | None, screen_failed: bool) -> str | None:
    """Why a subject cannot be enrolled, or None when it is screened and not yet enrolled.
    Pure."""
    if dm is None:
        return "no such subject"
    if dm.get("ARMCD"):
        return f"already enrolled at {dm['ARMCD']}"
    if not dm.get("RFICDTC"):
        return "no informed consent recorded (DM RFICDTC): screen the subject first"
    if screen_failed:
        return "the subject failed screening (DS SCREEN FAILURE)"
    return None


def screened_subjects(store: Store, study_id: str) -> list[dict[str, Any]]:
    """The study's subjects that may be enrolled now (screened, not enrolled, not failed)."""
    dm, ds = TABLES["DM"], TABLES["DS"]
    with read_connection(store.engine) as connection:
        failed = set(connection.execute(sa.select(ds.c.USUBJID).where(
            ds.c.STUDYID == study_id, ds.c.voided.is_(None),
            ds.c.DSDECOD == "SCREEN FAILURE")).scalars())
        rows = connection.execute(sa.select(dm.c.USUBJID, dm.c.SITEID, dm.c.RFICDTC,
                                            dm.c.ARMCD).where(
            dm.c.STUDYID == study_id).order_by(dm.c.USUBJID)).all()
    return [dict(r._mapping) for r in rows
            if screening_problem(dict(r._mapping), r.USUBJID in failed) is None]


def _subject_state(connection: sa.Connection, study_id: str, usubjid: str
                   ) -> tuple[dict[str, Any] | None, bool]:
    dm, ds = TABLES["DM"], TABLES["DS"]
    row = connection.execute(sa.select(dm.c.USUBJID, dm.c.RFICDTC, dm.c.ARMCD).where(
        dm.c.STUDYID == study_id, dm.c.USUBJID == usubjid)).first()
    failed = connection.execute(sa.select(ds.c.USUBJID).where(
        ds.c.STUDYID == study_id, ds.c.USUBJID == usubjid, ds.c.voided.is_(None),
        ds.c.DSDECOD == "SCREEN FAILURE")).first() is not None
    return (None if row is None else dict(row._mapping)), failed


def enrolment_problem(store: Store, study_id: str, usubjid: str) -> str | None:
    """Why the subject cannot be enrolled now whatever the dose (:func:`screening_problem`
    on the stored DM and DS), or None."""
    with read_connection(store.engine) as connection:
        dm, failed = _subject_state(connection, study_id, usubjid)
    return screening_problem(dm, failed)


def enrol(store: Store, protocol: Any, usubjid: str, dose_level: str, *, user: str,
          source: str = "api") -> dict[str, Any]:
    """Enrol a screened subject at ``dose_level`` (a dose level id) when it is the level
    open now (:func:`opening`); sets DM.ARMCD/ARM (audited). EnrolmentRefused otherwise,
    nothing written. Returns the DM record as stored."""
    study_id = str(protocol.id)
    get_study(store, study_id)
    by_id = {lv.id: lv for lv in levels_of(protocol)}
    with write_transaction(store.engine) as connection:
        actor = actor_of(connection, user, "enrol")
        require_scope(connection, actor, study_id, usubjid)
        check_study(connection, study_id, f"enrol subject {usubjid}")
        dm, failed = _subject_state(connection, study_id, usubjid)
        problem = screening_problem(dm, failed)
        if problem:
            raise EnrolmentRefused(f"Subject {usubjid} cannot be enrolled: {problem}; "
                                   "nothing was written")
        now_open = opening(store, protocol)  # read inside the write lock: no race
        if not now_open.open:
            raise EnrolmentRefused(f"No dose level is open for enrolment: {now_open.reason}; "
                                   "nothing was written")
        assert now_open.level is not None
        if dose_level != now_open.level.id:
            asked = by_id.get(dose_level)
            what = f"{dose_level} ({asked.label})" if asked else repr(dose_level)
            raise EnrolmentRefused(
                f"Dose level {what} is not open: only {now_open.level.id} "
                f"({now_open.level.label}) may be given now ({now_open.reason}); nothing "
                "was written")
        origin = (f"committee decision {now_open.decision}" if now_open.decision
                  else "the starting dose (first cohort)")
        return update_record(store, "DM", (study_id, usubjid),
                             {"ARMCD": now_open.level.id, "ARM": now_open.level.label},
                             user=actor.username, source=source,
                             reason=f"enrolled at {now_open.level.id}, opened by {origin}")


def export_decisions_csv(store: Store, study_id: str, out_dir: Any) -> Any:
    """Write ``committee_decisions.csv`` (:func:`committee_decisions`, times ISO 8601 UTC,
    formula-leading text neutralised)."""
    import csv
    from pathlib import Path

    from celltrial.store.spreadsheet import neutralise_frame

    get_study(store, study_id)
    frame = committee_decisions(store, study_id)
    frame["recorded_at"] = frame["recorded_at"].map(
        lambda t: t.isoformat(timespec="seconds") if pd.notna(t) else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    file = out / "committee_decisions.csv"
    neutralise_frame(frame.astype(object)).to_csv(file, index=False, quoting=csv.QUOTE_MINIMAL)
    return file


__all__ = ["ACTIONS", "COMMITTEE", "CommitteeRule", "DecisionRefused", "DecisionView",
           "EnrolmentRefused", "Level", "Opening", "Review", "committee_decisions",
           "decision_problem", "decisions", "dose_opened", "enrol", "enrolment_problem",
           "export_decisions_csv",
           "get_decision", "levels_of", "opening", "quorum_met", "record_decision", "review",
           "REVIEW_CACHE", "ReviewCache", "data_version", "protocol_fingerprint",
           "review_study", "screened_subjects", "screening_problem", "sign_decision",
           "start_dose", "SignatureRefused"]
