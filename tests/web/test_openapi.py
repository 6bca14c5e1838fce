"""The API's OpenAPI document declares the request body of every JSON write, and the bodies the
server accepts are valid against it (what schemathesis and API clients read)."""

from __future__ import annotations

import jsonschema
import pytest

from celltrial.store.domains import DOMAINS
from celltrial.web import create_app
from celltrial.web.capture import FIELDS
from celltrial.web.openapi import JSON_TYPES, bodies
from tests.web.conftest import SITE01, STUDY

BODYLESS = {("post", "/api/logout")}  # ends the caller's session; takes nothing


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict:
    url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'celltrial.db'}"
    return create_app(url, secret_key="openapi-test-" + "x" * 32).openapi()


def _body_schema(document: dict, method: str, path: str) -> dict:
    operation = document["paths"][path][method]
    return operation["requestBody"]["content"]["application/json"]["schema"]


def test_every_json_write_declares_its_body(document):
    writes = {(method, path) for path, item in document["paths"].items()
              if path.startswith("/api/") for method in item if method in ("post", "put",
                                                                             "patch")}
    undeclared = sorted(w for w in writes - BODYLESS
                        if "requestBody" not in document["paths"][w[1]][w[0]])
    assert not undeclared, f"API writes without a declared body: {undeclared}"


def test_declared_bodies_name_existing_operations(document):
    missing = [key for key in bodies() if key[1] not in document["paths"]
               or key[0] not in document["paths"][key[1]]]
    assert not missing


def test_body_schemas_are_valid_json_schemas(document):
    for method, path in bodies():
        jsonschema.Draft202012Validator.check_schema(_body_schema(document, method, path))


@pytest.mark.parametrize("path, domain", [("labs", "LB"), ("observations", "XC"),
                                          ("adverse-events", "AE")])
def test_entry_bodies_are_the_form_fields_with_the_store_types(document, path, domain):
    schema = _body_schema(document, "post", f"/api/studies/{{study_id}}/{path}")
    assert set(schema["properties"]) == {"usubjid", *FIELDS[domain]}
    for field, name in FIELDS[domain].items():
        declared = schema["properties"][field]
        assert declared["type"] == JSON_TYPES[DOMAINS[domain].variable(name).type]["type"]
        assert name in declared["description"]


def test_a_body_the_server_accepts_is_valid_against_the_document(site, api_post, document):
    body = {"usubjid": SITE01[0], "test": "NEUT", "value": 0.4, "unit": "10^9/L",
            "lln": 1.8, "uln": 7.5, "date": "2024-01-12"}
    jsonschema.validate(body, _body_schema(document, "post", "/api/studies/{study_id}/labs"),
                        format_checker=jsonschema.FormatChecker())
    response = api_post("inv01", f"/api/studies/{STUDY}/labs", body)
    assert response.status_code == 201, response.text
