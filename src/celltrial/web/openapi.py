"""Request bodies of the JSON API, declared in its OpenAPI document (/api/openapi.json).

The API's handlers read their JSON bodies themselves (so that a malformed body is answered
400/422 with the field named, never 500), which leaves FastAPI's generated document without
request bodies. This module declares them, so that clients and API fuzzers (schemathesis, as
``benchmarks/bench_schemathesis.py`` runs it) see the fields each write takes. The entry
bodies are built from the web form's own field table (:data:`celltrial.web.capture.FIELDS`)
and the store's variable types (:data:`celltrial.store.domains.DOMAINS`), so the document
cannot drift from what the server reads; the server, not this schema, is the validator.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from celltrial.store.domains import DOMAINS

JSON_TYPES: dict[str, dict[str, Any]] = {
    "float": {"type": "number"}, "int": {"type": "integer"},
    "date": {"type": "string", "format": "date"}, "text": {"type": "string"},
}
"""Store variable type -> JSON Schema type."""

_RECORD_REF: dict[str, Any] = {
    "usubjid": {"type": "string", "description": "USUBJID of the subject"},
    "domain": {"type": "string", "description": "SDTM domain of the record (e.g. LB)"},
    "seq": {"type": "integer", "minimum": 0, "description": "the record's --SEQ"},
}


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


def entry_body(domain: str) -> dict[str, Any]:
    """The body of a new-record entry of ``domain`` (LB, XC, AE): one property per form field."""
    from celltrial.web.capture import FIELDS

    variables = DOMAINS[domain]
    properties: dict[str, Any] = {"usubjid": _RECORD_REF["usubjid"]}
    for field, name in FIELDS[domain].items():
        var = variables.variable(name)
        properties[field] = {**JSON_TYPES[var.type], "description": f"{var.label} ({name})"}
    return _object(properties, ("usubjid",))


def bodies() -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) -> the JSON Schema of its request body."""
    reason = {"type": "string", "description": "why (kept in the audit trail)"}
    version = {"type": "integer", "description": "the record version the client saw"}
    return {
        ("post", "/api/login"): _object({"username": {"type": "string"},
                                         "password": {"type": "string"}},
                                        ("username", "password")),
        ("post", "/api/studies/{study_id}/labs"): entry_body("LB"),
        ("post", "/api/studies/{study_id}/observations"): entry_body("XC"),
        ("post", "/api/studies/{study_id}/adverse-events"): entry_body("AE"),
        ("post", "/api/studies/{study_id}/corrections"): _object(
            {**_RECORD_REF, "version": version, "reason": reason,
             "changes": {"type": "object", "description": "SDTM variable -> new value"}},
            ("usubjid", "domain", "seq", "changes")),
        ("post", "/api/studies/{study_id}/voids"): _object(
            {**_RECORD_REF, "version": version, "reason": reason},
            ("usubjid", "domain", "seq", "reason")),
        ("post", "/api/studies/{study_id}/queries"): _object(
            {**_RECORD_REF, "field": {"type": "string"}, "text": {"type": "string"}},
            ("usubjid", "domain", "text")),
        ("post", "/api/studies/{study_id}/queries/{query_id}/{action}"): _object(
            {"text": {"type": "string"},
             "correction": {"type": "object", "description": "a correction made with the "
                                                               "answer"}}),
        ("post", "/api/studies/{study_id}/sdv"): _object(
            {**_RECORD_REF, "verified": {"type": "boolean"}, "reason": reason},
            ("usubjid", "domain", "verified")),
        ("post", "/api/studies/{study_id}/locks"): _object(
            {"level": {"type": "string", "enum": ["record", "subject", "study"]},
             "locked": {"type": "boolean"}, **_RECORD_REF, "reason": reason},
            ("level", "locked")),
        **signature_bodies(),
    }


def signature_bodies() -> dict[tuple[str, str], dict[str, Any]]:
    """The bodies of electronic signatures, committee decisions and enrolment (the user name
    and password re-entered at every signing, 21 CFR 11.200)."""
    from celltrial.store.committee import ACTIONS
    from celltrial.store.signatures import OBJECTS

    signer = {"username": {"type": "string", "description": "the signed-in user's name, "
                                                            "entered again"},
              "password": {"type": "string", "format": "password"}}
    meanings = sorted({m for ms in OBJECTS.values() for m in ms})
    return {
        ("post", "/api/studies/{study_id}/signatures"): _object(
            {"object": {"type": "string", "enum": ["casebook", "record"]},
             **_RECORD_REF, "meaning": {"type": "string", "enum": meanings}, **signer},
            ("object", "usubjid", "meaning", "username", "password")),
        ("post", "/api/studies/{study_id}/committee/decisions"): _object(
            {"action": {"type": "string", "enum": list(ACTIONS)},
             "dose_level": {"type": ["string", "null"],
                            "description": "the dose level id it opens (none for stop)"},
             "reason": {"type": "string", "description": "required when the decision "
                                                         "differs from the recommendation"},
             "seen": _object({"action": {"type": "string"},
                              "dose": {"type": ["integer", "null"]}}), **signer},
            ("action", "username", "password")),
        ("post", "/api/studies/{study_id}/committee/decisions/{decision_id}/signatures"):
            _object(signer, ("username", "password")),
        ("post", "/api/studies/{study_id}/enrolments"): _object(
            {"usubjid": _RECORD_REF["usubjid"],
             "dose_level": {"type": "string", "description": "the dose level id open now"}},
            ("usubjid", "dose_level")),
    }


def install(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with the request bodies of :func:`bodies` added."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 routes=app.routes)
            for (method, path), body in bodies().items():
                operation = schema.get("paths", {}).get(path, {}).get(method)
                if operation is not None and "requestBody" not in operation:
                    operation["requestBody"] = {
                        "required": True, "content": {"application/json": {"schema": body}}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
