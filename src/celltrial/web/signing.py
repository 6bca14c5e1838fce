"""Electronic signatures in the web app (21 CFR 11.50, 11.70, 11.200; issue 15 part 4): the
investigator signs a subject's casebook (page ``/studies/{study_id}/subjects/{usubjid}/sign``:
the meaning chosen, user name and password re-entered), the subject page lists the subject's
signatures, each valid or broken (broken once the casebook or record changed after signing),
and ``/api/studies/{study_id}/signatures`` lists and makes them as JSON.

The store decides (:mod:`celltrial.store.signatures`): who may sign what
(:data:`celltrial.store.permissions.PERMISSIONS`: casebooks the investigator, records the
investigator or coordinator, within their site), the password check with its lockout count,
and the content hash a signature is bound to. A wrong password answers 422 next to the
password field with nothing signed; a role 403; a subject outside the user's site 404; a
locked study 423.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from celltrial.store import DOMAINS, Store, UserInfo
from celltrial.store.permissions import may
from celltrial.store.signatures import MEANINGS, OBJECTS, SignatureView, sign, signatures
from celltrial.web import data
from celltrial.web.api import _body
from celltrial.web.auth import check_api_csrf, current_user, store_of
from celltrial.web.committee import field_of, lockout_of, posted_form, store_refusal

router = APIRouter()
api_router = APIRouter(prefix="/api")


def signature_json(s: SignatureView) -> dict[str, Any]:
    """A signature as JSON, with its statement and status (valid or broken) now."""
    return jsonable_encoder({
        "id": s.id, "object_type": s.object_type, "object_key": s.object_key,
        "usubjid": s.usubjid, "meaning": s.meaning, "statement": s.statement,
        "username": s.username, "full_name": s.full_name, "role": s.role,
        "signed_at": s.signed_at, "content_hash": s.content_hash, "status": s.status})


def subject_context(store: Store, study_id: str, usubjid: str, user: UserInfo
                    ) -> dict[str, Any]:
    """What the subject page shows of signatures: the subject's signatures (casebook and
    records), newest first, and whether the user may sign the casebook."""
    return {"signatures": list(reversed(signatures(store, study_id, usubjid=usubjid))),
            "can_sign_casebook": may(user.role, "sign.casebook")}


def _page(request: Request, study_id: str, usubjid: str, *, values: dict[str, str] | None = None,
          errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    from celltrial.web.pages import render

    store = store_of(request)
    user = current_user(request)
    domains = data.subject_domains(store, study_id, usubjid, user)
    counts = {name: sum(1 for r in rows if not r.get("voided"))
              for name, rows in domains.items() if rows}
    mine = [s for s in signatures(store, study_id, object_type="casebook",
                                  object_key=f"USUBJID={usubjid}")]
    return render(request, "sign.html", status_code=status_code, study_id=study_id,
                  usubjid=usubjid, meanings={m: MEANINGS[m] for m in OBJECTS["casebook"]},
                  counts=counts, labels=DOMAINS, signed=list(reversed(mine)),
                  can_sign=may(user.role, "sign.casebook"), values=values or {},
                  errors=errors or {})


@router.get("/studies/{study_id}/subjects/{usubjid}/sign")
def sign_page(request: Request, study_id: str, usubjid: str) -> Response:
    user = current_user(request)
    data.subject_or_404(store_of(request), study_id, usubjid, user)
    return _page(request, study_id, usubjid)


@router.post("/studies/{study_id}/subjects/{usubjid}/sign")
async def sign_submit(request: Request, study_id: str, usubjid: str) -> Response:
    user, form, store = await posted_form(request)
    await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
    values = {"meaning": str(form.get("meaning") or ""),
              "username": str(form.get("username") or "")}
    _signed, error = await store_refusal(lambda: sign(
        store, study_id, "casebook", values["meaning"], user=user.username,
        username=values["username"], password=str(form.get("password") or ""),
        usubjid=usubjid, lockout_after=lockout_of(request), source="web"))
    if error:
        return await run_in_threadpool(lambda: _page(
            request, study_id, usubjid, values=values, errors={field_of(error): error},
            status_code=422))
    return RedirectResponse(f"/studies/{study_id}/subjects/{usubjid}#signatures",
                            status_code=303)


@api_router.get("/studies/{study_id}/signatures")
def signatures_json(request: Request, study_id: str, usubjid: str | None = None
                    ) -> list[dict[str, Any]]:
    """The study's signatures on subjects the user sees (``usubjid``: one subject's), each
    valid or broken now; committee decisions' signatures are in ``/committee``."""
    user = current_user(request)
    store = store_of(request)
    data.study_or_404(store, study_id)
    if usubjid is not None:
        if "\x00" in usubjid:  # no subject id holds a NUL (PostgreSQL text cannot)
            raise data.NotFound(usubjid)
        data.subject_or_404(store, study_id, usubjid, user)
    seen = {s["USUBJID"] for s in data.subjects(store, study_id, user)}
    return [signature_json(s) for s in signatures(store, study_id, usubjid=usubjid)
            if s.usubjid is not None and s.usubjid in seen]


@api_router.post("/studies/{study_id}/signatures")
async def sign_json(request: Request, study_id: str) -> Response:
    """``{"object": "casebook" | "record", "usubjid", "domain", "seq", "meaning",
    "username", "password"}`` -> 201 the signature."""
    user = current_user(request)
    check_api_csrf(request)
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    usubjid = body.get("usubjid") if isinstance(body.get("usubjid"), str) else ""
    store = store_of(request)
    await run_in_threadpool(data.subject_or_404, store, study_id, usubjid, user)
    kind = body.get("object")
    if kind not in ("casebook", "record"):
        return JSONResponse({"detail": f"Invalid `object`: got `{kind!r}`, must be casebook "
                                       "or record", "field": "object"}, status_code=422)
    seq = body.get("seq")
    if kind == "record" and (body.get("domain") not in data.SUBJECT_DOMAINS or (
            seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)
                                 or not 0 <= seq < 2**31))):
        return JSONResponse({"detail": "Invalid `record`: must give `domain` (a subject "
                                       "domain) and `seq` (the record's --SEQ)",
                             "field": "record"}, status_code=422)
    text = {name: body.get(name) if isinstance(body.get(name), str) else ""
            for name in ("meaning", "username", "password")}
    result, error = await store_refusal(lambda: sign(
        store, study_id, str(kind), text["meaning"], user=user.username,
        username=text["username"], password=text["password"], usubjid=usubjid,
        domain=body.get("domain") if kind == "record" else None,
        seq=seq if kind == "record" else None, lockout_after=lockout_of(request),
        source="api"))
    if error:
        return JSONResponse({"detail": error, "field": field_of(error)}, status_code=422)
    return JSONResponse(signature_json(result), status_code=201)


def subject_signatures(request: Request, study_id: str, usubjid: str) -> dict[str, Any]:
    """:func:`subject_context` for the signed-in user (the subject page calls it as the
    template global ``subject_signatures``; the page already checked the subject's scope)."""
    return subject_context(store_of(request), study_id, usubjid, current_user(request))


def install(templates: Any) -> None:
    """Make :func:`subject_signatures` a global of ``templates`` (the pages' Jinja2)."""
    templates.env.globals["subject_signatures"] = subject_signatures
