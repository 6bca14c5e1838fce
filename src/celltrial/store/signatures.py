"""Electronic signatures bound to the content they sign (21 CFR 11.50, 11.70, 11.100, 11.200).

What a signature holds (table ``signature``, migration 0008), as 21 CFR 11.50(a) asks: the
signer's printed name (``full_name``, from the account) and user name, the date and time of
signing (UTC), and its meaning (:data:`MEANINGS`: authored, reviewed, approved). 11.70 asks
that a signature be linked to its record so that it cannot be moved to another: each
signature keeps the SHA-256 of its object's content at signing (:func:`content_hash`), and
is shown **valid** while the object still has that content, **broken** once it changed (a
correction, a void, a new record in a signed casebook).

The objects that can be signed (:data:`OBJECTS`):

- ``record``: one clinical record (``LB USUBJID=S1;LBSEQ=2``), its SDTM values and whether it
  was voided;
- ``casebook``: every record of one subject in every domain (voided ones included, with
  their reason): the investigator's sign-off of a subject's case report form;
- ``decision``: a dose-escalation committee decision (celltrial.store.committee).

Signing (:func:`sign`) re-enters the user name and password (21 CFR 11.200(a)(1): both
components at every signing; the user name must be the signed-in user's); the password is
verified against the account's argon2 hash. A wrong password signs nothing and counts as a
failed login towards the account's lockout (``LoginPolicy.lockout_after`` consecutive
failures lock it, audited, as for the login form); a locked or disabled account cannot sign.
Who may sign what is :data:`celltrial.store.permissions.PERMISSIONS` (``sign.record``,
``sign.casebook``, ``sign.decision``), within the signer's site for subjects; a locked study
takes no signature. Every signature is one audit row (table ``signature``).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import append_audit, audit_row, now, record_json
from celltrial.store.domains import DOMAINS, domain_of
from celltrial.store.engine import Store, read_connection, write_transaction
from celltrial.store.locks import check_study, key_text, stamp
from celltrial.store.permissions import Actor, NotPermitted, actor_of, require_scope
from celltrial.store.schema import TABLES, CommitteeDecision, Signature, User
from celltrial.store.spreadsheet import neutralise_frame
from celltrial.store.studies import get_study
from celltrial.store.users import password_matches, utc

OBJECTS: dict[str, tuple[str, ...]] = {
    "record": ("authored", "reviewed", "approved"),
    "casebook": ("reviewed", "approved"),
    "decision": ("approved",),
}
"""Signed object -> the meanings a signature on it may have."""

MEANINGS: dict[str, str] = {
    "authored": "I entered this record and it is true to the source",
    "reviewed": "I reviewed these data",
    "approved": "I approve these data as complete and correct",
}
"""Meaning -> the statement shown with the signature (21 CFR 11.50(a)(3))."""

DECISION_MEANING_TEXT = "I approve this dose-escalation decision"
"""What ``approved`` states on a committee decision."""

LOCKOUT_AFTER = 10
"""Consecutive failed password entries (logins and signings together) that lock an account,
unless the caller passes its own (the web app: ``LoginPolicy.lockout_after``)."""


class SignatureRefused(StoreError):
    """A signature refused (wrong password, locked account, no full name, duplicate, wrong
    meaning): nothing was signed (HTTP 422, or 403 for a role)."""

    code = "CT330"


@dataclass(frozen=True)
class SignatureView:
    """A stored signature with its status: ``valid`` while its object still has the content
    hash it was signed with, ``broken`` otherwise."""

    id: int
    study_id: str
    object_type: str
    object_key: str
    usubjid: str | None
    meaning: str
    username: str
    full_name: str
    role: str
    signed_at: dt.datetime
    content_hash: str
    status: str

    @property
    def valid(self) -> bool:
        return self.status == "valid"

    @property
    def statement(self) -> str:
        if self.object_type == "decision" and self.meaning == "approved":
            return DECISION_MEANING_TEXT
        return MEANINGS[self.meaning]

    def line(self) -> str:
        """``Signed by Ana Ruiz (aruiz), approved, 2026-12-02 05:01 UTC: valid``."""
        return (f"Signed by {self.full_name} ({self.username}), {self.meaning}, "
                f"{stamp(self.signed_at)}: {self.status}")


# ---------------------------------------------------------------- content and its hash
def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def content_hash(content: Any) -> str:
    """SHA-256 (hex) of ``content`` as canonical JSON (sorted keys, compact, missing values
    dropped from mappings, whole floats as integers so that SQLite and PostgreSQL give the
    same text). Pure."""
    def canon(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): canon(v) for k, v in value.items() if _plain(v) is not None}
        if isinstance(value, (list, tuple)):
            return [canon(v) for v in value]
        return _plain(value)

    text = json.dumps(canon(content), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _rows(connection: sa.Connection, study_id: str, name: str, usubjid: str,
          seq: int | None = None) -> list[dict[str, Any]]:
    spec, table = DOMAINS[name], TABLES[name]
    query = sa.select(*[table.c[c] for c in spec.columns], table.c.voided).where(
        table.c.STUDYID == study_id, table.c.USUBJID == usubjid)
    if seq is not None and spec.seq is not None:
        query = query.where(table.c[spec.seq] == int(seq))
    if spec.seq is not None:
        query = query.order_by(table.c[spec.seq])
    return [dict(row._mapping) for row in connection.execute(query)]


def record_key(domain: str, usubjid: str, seq: int | None) -> str:
    """The object key of a record: ``LB USUBJID=S1;LBSEQ=2`` (``DM USUBJID=S1``)."""
    spec = domain_of(domain)
    return f"{spec.name} {key_text(spec, usubjid, None if spec.seq is None else int(seq or 0))}"


def parse_record_key(key: str) -> tuple[str, str, int | None]:
    """(domain, USUBJID, --SEQ or None) of a record's object key. Pure."""
    name, _, rest = key.partition(" ")
    parts = dict(p.split("=", 1) for p in rest.split(";") if "=" in p)
    spec = domain_of(name)
    seq = None if spec.seq is None else int(parts[spec.seq])
    return spec.name, parts["USUBJID"], seq


def record_content(connection: sa.Connection, study_id: str, domain: str, usubjid: str,
                   seq: int | None) -> dict[str, Any] | None:
    """One record's SDTM values and ``voided``, or None when it is not stored."""
    spec = domain_of(domain)
    rows = _rows(connection, study_id, spec.name, usubjid,
                 None if spec.seq is None else int(seq or 0))
    return rows[0] if rows else None


def casebook_content(connection: sa.Connection, study_id: str, usubjid: str
                     ) -> dict[str, list[dict[str, Any]]]:
    """Every record of a subject, by domain (domains without a record left out, so that a
    domain added to the store later does not change a signed casebook's hash)."""
    out = {}
    for name in DOMAINS:
        rows = _rows(connection, study_id, name, usubjid)
        if rows:
            out[name] = rows
    return out


DECISION_FIELDS = ("study_id", "cohort", "current_dose", "recommended_action",
                   "recommended_dose", "recommended_reason", "action", "dose", "dose_level",
                   "reason", "basis", "enrolled_before", "recorded_by")
"""The fields of a committee decision its content hash covers."""


def decision_content(row: Mapping[str, Any]) -> dict[str, Any]:
    """The signed content of a committee decision. Pure."""
    return {name: row.get(name) for name in DECISION_FIELDS}


def current_hash(connection: sa.Connection, study_id: str, object_type: str,
                 object_key: str) -> str | None:
    """The content hash of a signed object as stored now; None when it no longer exists."""
    if object_type == "record":
        domain, usubjid, seq = parse_record_key(object_key)
        content = record_content(connection, study_id, domain, usubjid, seq)
        return None if content is None else content_hash(content)
    if object_type == "casebook":
        usubjid = object_key.removeprefix("USUBJID=")
        return content_hash(casebook_content(connection, study_id, usubjid))
    if object_type == "decision":
        table = CommitteeDecision.__table__
        row = connection.execute(sa.select(table).where(
            table.c.study_id == study_id,
            table.c.id == int(object_key.removeprefix("decision=")))).first()
        return None if row is None else content_hash(decision_content(row._mapping))
    raise StoreError(f"Invalid `object`: got `{object_type!r}`, must be one of "
                     f"{', '.join(OBJECTS)}")


# ---------------------------------------------------------------- the signer
def _stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")


def _count_failure(store: Store, username: str, *, at: dt.datetime, lockout_after: int
                   ) -> bool:
    """One more consecutive failed password entry for ``username`` (committed on its own:
    the signature itself is refused); locks the account at ``lockout_after``, audited.
    Returns whether this failure locked it."""
    users = User.__table__
    with write_transaction(store.engine) as connection:
        row = connection.execute(sa.select(users).where(users.c.username == username)).first()
        if row is None:
            return False
        failures = int(row.failed_logins or 0) + 1
        values: dict[str, Any] = {"failed_logins": failures}
        locked_now = failures >= lockout_after and row.locked_at is None
        if locked_now:
            values["locked_at"] = at
            append_audit(connection, audit_row(
                at=at, user="system", study_id=None, table="user", key=username,
                action="update", field="locked_at", old=None, new=_stamp(at),
                reason=f"account locked after {failures} consecutive failed password entries "
                       "(the last when signing)", source="web"))
        connection.execute(users.update().where(users.c.username == username).values(**values))
    return locked_now


WRONG_PASSWORD = ("Wrong user name or password: nothing was signed (repeated failures lock "
                  "the account)")


def authenticate_signer(store: Store, signed_in: str, username: str, password: str, *,
                        at: dt.datetime, lockout_after: int = LOCKOUT_AFTER) -> str:
    """Check the signature's two components (21 CFR 11.200(a)(1)): ``username`` must be the
    signed-in user ``signed_in`` and ``password`` their password. Returns the account's full
    name. A wrong password counts towards the lockout; SignatureRefused otherwise."""
    users = User.__table__
    if (username or "").strip() != signed_in:
        raise SignatureRefused("Invalid `username`: got another user name than the signed-in "
                               f"user's, must be `{signed_in}`: a signature is made only by "
                               "the person signed in; nothing was signed")
    with read_connection(store.engine) as connection:
        row = connection.execute(sa.select(users).where(users.c.username == signed_in)).first()
    if row is None or row.disabled_at is not None:
        raise NotPermitted(f"Invalid `user`: got `{signed_in!r}`, must be an active user")
    if row.locked_at is not None:
        raise SignatureRefused("The account is locked after repeated failed password entries: "
                               "an administrator must unlock it; nothing was signed")
    if not password_matches(row.password_hash, password or ""):
        locked = _count_failure(store, signed_in, at=at, lockout_after=lockout_after)
        raise SignatureRefused(WRONG_PASSWORD + ("; the account is now locked" if locked
                                                 else ""))
    if not (row.full_name or "").strip():
        raise SignatureRefused(f"The account {signed_in} has no full name recorded: an "
                               "administrator must record it (a signature shows the signer's "
                               "printed name, 21 CFR 11.50); nothing was signed")
    if row.failed_logins:
        with write_transaction(store.engine) as connection:
            connection.execute(users.update().where(users.c.username == signed_in).values(
                failed_logins=0))
    return str(row.full_name).strip()


def set_full_name(store: Store, username: str, full_name: str, *, by: str,
                  source: str = "api") -> None:
    """Record the printed name shown with ``username``'s signatures; audited."""
    name = " ".join((full_name or "").split())
    if not name or len(name) > 200:
        raise StoreError(f"Invalid `full_name`: got `{full_name!r}`, must be the person's "
                         "name (1 to 200 characters)")
    users = User.__table__
    with write_transaction(store.engine) as connection:
        row = connection.execute(sa.select(users.c.full_name).where(
            users.c.username == username)).first()
        if row is None:
            raise StoreError(f"Invalid `username`: got `{username!r}`, must name a user")
        if row.full_name == name:
            return
        connection.execute(users.update().where(users.c.username == username).values(
            full_name=name))
        append_audit(connection, audit_row(
            at=now(), user=by, study_id=None, table="user", key=username, action="update",
            field="full_name", old=row.full_name, new=name, reason="full name recorded",
            source=source))


def full_names(store: Store) -> dict[str, str | None]:
    """User name -> the printed name recorded for their signatures (None: not recorded)."""
    users = User.__table__
    with read_connection(store.engine) as connection:
        return {row.username: row.full_name for row in connection.execute(
            sa.select(users.c.username, users.c.full_name))}


# ---------------------------------------------------------------- signing
def _check_meaning(object_type: str, meaning: str) -> None:
    if object_type not in OBJECTS:
        raise SignatureRefused(f"Invalid `object`: got `{object_type!r}`, must be one of "
                               f"{', '.join(OBJECTS)}")
    if meaning not in OBJECTS[object_type]:
        raise SignatureRefused(f"Invalid `meaning`: got `{meaning!r}`, must be one of "
                               f"{', '.join(OBJECTS[object_type])} for a {object_type}")


def _audit_key(signature_id: int, object_type: str, object_key: str,
               usubjid: str | None) -> str:
    where = f"USUBJID={usubjid}" if usubjid else object_key
    return f"signature={signature_id};{where}"


def insert_signature(connection: sa.Connection, actor: Actor, study_id: str, *,
                     object_type: str, object_key: str, usubjid: str | None, meaning: str,
                     full_name: str, digest: str, at: dt.datetime, source: str) -> int:
    """Insert one signature and its audit row inside the caller's write transaction (the
    signer already authenticated); refuses a duplicate of a valid signature."""
    table = Signature.__table__
    twin = connection.execute(sa.select(table.c.id).where(
        table.c.study_id == study_id, table.c.object_type == object_type,
        table.c.object_key == object_key, table.c.username == actor.username,
        table.c.meaning == meaning, table.c.content_hash == digest)).first()
    if twin is not None:
        raise SignatureRefused(f"{actor.username} already signed {object_key} as {meaning} "
                               "and it has not changed since; nothing was signed")
    values = {"study_id": study_id, "object_type": object_type, "object_key": object_key,
              "usubjid": usubjid, "meaning": meaning, "username": actor.username,
              "full_name": full_name, "role": actor.role, "signed_at": at,
              "content_hash": digest}
    signature_id = connection.execute(table.insert().returning(table.c.id),
                                      values).scalar_one()
    statement = DECISION_MEANING_TEXT if object_type == "decision" else MEANINGS[meaning]
    append_audit(connection, audit_row(
        at=at, user=actor.username, study_id=study_id, table="signature",
        key=_audit_key(signature_id, object_type, object_key, usubjid), action="insert",
        reason=f"electronic signature, {meaning}: {statement}", source=source,
        new=record_json({**values, "signed_at": _stamp(at)})))
    return int(signature_id)


def sign(store: Store, study_id: str, object_type: str, meaning: str, *, user: str,
         username: str, password: str, usubjid: str | None = None,
         domain: str | None = None, seq: int | None = None, decision: int | None = None,
         lockout_after: int = LOCKOUT_AFTER, source: str = "api") -> SignatureView:
    """Sign a record (``usubjid``, ``domain``, ``seq``), a subject's casebook (``usubjid``)
    or a committee decision (``decision``) as the signed-in ``user``, who re-enters
    ``username`` and ``password``. Returns the signature (valid). SignatureRefused,
    NotPermitted or Locked when refused; nothing is signed then."""
    _check_meaning(object_type, meaning)
    get_study(store, study_id)
    at = now()
    if object_type == "record":
        if not usubjid or not domain:
            raise SignatureRefused("Invalid `record`: must give the subject, domain and --SEQ")
        object_key = record_key(domain, usubjid, seq)
    elif object_type == "casebook":
        if not usubjid:
            raise SignatureRefused("Invalid `subject`: must name the subject whose casebook "
                                   "is signed")
        object_key = f"USUBJID={usubjid}"
    else:
        if decision is None:
            raise SignatureRefused("Invalid `decision`: must name the decision signed")
        object_key, usubjid = f"decision={int(decision)}", None
    with read_connection(store.engine) as connection:  # the role first: no password check
        actor_of(connection, user, f"sign.{object_type}")  # for a role that may never sign
    full_name = authenticate_signer(store, user, username, password, at=at,
                                    lockout_after=lockout_after)
    with write_transaction(store.engine) as connection:
        actor = actor_of(connection, user, f"sign.{object_type}")
        if usubjid is not None:
            require_scope(connection, actor, study_id, usubjid)
        check_study(connection, study_id, f"sign {object_key}")
        digest = current_hash(connection, study_id, object_type, object_key)
        if digest is None:
            raise SignatureRefused(f"Invalid `object`: got `{object_key}`, must be a stored "
                                   f"{object_type} of study {study_id}; nothing was signed")
        if object_type == "record":
            spec = domain_of(str(domain))
            state = record_content(connection, study_id, spec.name, str(usubjid), seq)
            if state is not None and state.get("voided") is not None:
                raise SignatureRefused(f"{object_key} was voided as entered in error; it "
                                       "cannot be signed")
        signature_id = insert_signature(
            connection, actor, study_id, object_type=object_type, object_key=object_key,
            usubjid=usubjid, meaning=meaning, full_name=full_name, digest=digest, at=at,
            source=source)
    found = signatures(store, study_id, object_type=object_type, object_key=object_key)
    return next(s for s in found if s.id == signature_id)


# ---------------------------------------------------------------- reading
def signatures(store: Store, study_id: str, *, object_type: str | None = None,
               object_key: str | None = None, usubjid: str | None = None
               ) -> list[SignatureView]:
    """The study's signatures, oldest first, each with its status (valid/broken) computed
    from its object's content now; optionally of one object type, object, or subject."""
    table = Signature.__table__
    query = sa.select(table).where(table.c.study_id == study_id).order_by(table.c.id)
    if object_type is not None:
        query = query.where(table.c.object_type == object_type)
    if object_key is not None:
        query = query.where(table.c.object_key == object_key)
    if usubjid is not None:
        query = query.where(table.c.usubjid == usubjid)
    out = []
    with read_connection(store.engine) as connection:
        hashes: dict[tuple[str, str], str | None] = {}
        for row in connection.execute(query).all():
            key = (row.object_type, row.object_key)
            if key not in hashes:
                hashes[key] = current_hash(connection, study_id, *key)
            status = "valid" if hashes[key] == row.content_hash else "broken"
            data = dict(row._mapping)
            data["signed_at"] = utc(data["signed_at"])
            out.append(SignatureView(**data, status=status))
    return out


@dataclass(frozen=True)
class RecordSignatures:
    """One record's signatures as its signing page shows them: the record's key, the SHA-256
    of its content now (None: no such record), whether it was voided, and its signatures
    oldest first, each valid while its bound hash equals ``content_hash`` (21 CFR 11.70)."""

    key: str
    content_hash: str | None
    voided: bool
    signatures: tuple[SignatureView, ...]

    def matches(self, signature: SignatureView) -> bool:
        """Whether ``signature`` is bound to the record's content as stored now."""
        return self.content_hash is not None and signature.content_hash == self.content_hash


def record_signatures(store: Store, study_id: str, domain: str, usubjid: str,
                      seq: int | None) -> RecordSignatures:
    """The signatures of one record with its content hash now (:class:`RecordSignatures`)."""
    key = record_key(domain, usubjid, seq)
    with read_connection(store.engine) as connection:
        content = record_content(connection, study_id, domain, usubjid, seq)
    return RecordSignatures(
        key, None if content is None else content_hash(content),
        content is not None and content.get("voided") is not None,
        tuple(signatures(store, study_id, object_type="record", object_key=key)))


EXPORT_COLUMNS = ("id", "study_id", "object_type", "object_key", "usubjid", "meaning",
                  "statement", "username", "full_name", "role", "signed_at", "content_hash",
                  "status")


def signatures_frame(store: Store, study_id: str) -> Any:
    """Every signature of the study as a DataFrame (:data:`EXPORT_COLUMNS`; ``signed_at``
    ISO 8601 UTC; ``status`` valid or broken now)."""
    import pandas as pd

    rows = []
    for s in signatures(store, study_id):
        data = asdict(s)
        data["signed_at"] = s.signed_at.isoformat(timespec="seconds")
        data["statement"] = s.statement
        rows.append({name: data[name] for name in EXPORT_COLUMNS})
    return pd.DataFrame(rows, columns=list(EXPORT_COLUMNS), dtype=object)


def export_signatures_csv(store: Store, study_id: str, out_dir: str | Path) -> Path:
    """Write ``signatures.csv``: every signature with its status now (formula-leading text
    neutralised as in every CSV the package writes)."""
    get_study(store, study_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    file = out / "signatures.csv"
    neutralise_frame(signatures_frame(store, study_id)).to_csv(
        file, index=False, quoting=csv.QUOTE_MINIMAL)
    return file
