"""Hostile and malformed requests: refused with 4xx and nothing written, never a 500.

What an outside review sent (deep-nested JSON, lone surrogates, --SEQ = 10^30, a 50 MB body)
plus every field of every write route filled with values of the wrong kind.
"""

from __future__ import annotations

import json

import pytest

from tests.web.conftest import STUDY, form_token

S = f"/studies/{STUDY}"
ROUTES = {
    "labs": {"usubjid": "01-001", "test": "NEUT", "value": 0.4, "unit": "10^9/L",
             "lln": 1.8, "uln": 7.5, "date": "2024-01-20"},
    "observations": {"usubjid": "01-001", "date": "2024-01-21", "temperature_c": 38.5,
                     "hypotension": "fluids", "ice_score": 10},
    "adverse-events": {"usubjid": "01-001", "term": "Fever", "grade": 1,
                       "start": "2024-01-12", "serious": "N", "related": "RELATED"},
    "corrections": {"usubjid": "01-001", "domain": "LB", "seq": 1, "version": 1,
                    "reason": "typo", "changes": {"LBSTRESN": 1.0}},
}
NASTY = [10**30, -(10**30), 1e308, -1e308, "\ud800", "x\udfff", "",
         " " * 3, "9" * 400, True, None, [], {}, [1, [2]], {"a": {"b": 1}}, "2099-13-45",
         "0000-00-00", "NaN", "-0", "1e999", "=cmd|' /C calc'!A0", "<script>x</script>"]


def _post_raw(site, path: str, content: bytes):  # type: ignore[no-untyped-def]
    client = site.login("inv01")
    return client.post(path, content=content, headers={
        "X-CSRF-Token": site.api_token("inv01"), "Content-Type": "application/json"})


def _post_json(site, path: str, body: dict):  # type: ignore[no-untyped-def]
    # json.dumps escapes lone surrogates as \\ud800, as a hostile client would send them
    return _post_raw(site, path, json.dumps(body).encode())


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_every_field_with_every_wrong_kind_of_value_is_refused_not_a_500(site, route):
    before = site.counts()
    body = ROUTES[route]
    for name in body:
        for value in NASTY:
            response = _post_json(site, f"/api{S}/{route}", {**body, name: value})
            assert response.status_code < 500, (name, value, response.text)
    for value in NASTY:  # and inside the changes of a correction
        response = _post_json(site, f"/api{S}/corrections",
                              {**ROUTES["corrections"], "changes": {"LBSTRESN": value}})
        assert response.status_code < 500, (value, response.text)
    counts = site.counts()
    assert all(counts[d] >= before[d] for d in counts)


@pytest.mark.parametrize("content", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"usubjid": "01-001", "test": "NEUT", "value": 0.4, "date": "\\ud800"}',
    b'{"usubjid": "\\udfff"}',
    b"\xff\xfe\x00",
    b'{"usubjid": "01-001"',
    b"",
    b"null",
    b'"text"',
    b"1e999999",
])
def test_malformed_json_of_any_shape_is_a_4xx(site, content):
    before = site.counts()
    for route in ROUTES:
        response = _post_raw(site, f"/api{S}/{route}", content)
        assert 400 <= response.status_code < 500, (route, content[:40], response.text)
    assert site.counts() == before


def test_a_seq_of_ten_to_the_thirty_is_a_422(site, api_post):
    response = api_post("inv01", f"/api{S}/corrections",
                        {**ROUTES["corrections"], "seq": 10**30})
    assert response.status_code == 422 and "seq" in response.json()["errors"]


@pytest.mark.parametrize("size", [2 * 1024 * 1024, 50 * 1024 * 1024])
def test_a_body_over_the_limit_is_refused_with_413_before_it_is_parsed(site, size):
    before = site.counts()
    body = json.dumps({**ROUTES["labs"], "padding": "x" * size}).encode()
    response = _post_raw(site, f"/api{S}/labs", body)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    client = site.login("inv01")
    page = client.get(f"{S}/subjects/01-001/labs/new")
    form = client.post(f"{S}/subjects/01-001/labs/new",
                       data={"csrf_token": form_token(page.text), "test": "NEUT",
                             "value": "0.4", "date": "2024-01-20", "padding": "x" * size})
    assert form.status_code == 413
    assert site.counts() == before


def test_a_form_with_a_lone_surrogate_or_bad_bytes_is_refused(site):
    before = site.counts()
    client = site.login("inv01")
    page = client.get(f"{S}/subjects/01-001/labs/new")
    token = form_token(page.text)
    for value in ("%ED%A0%80", "%FF%FE", "0.4%00"):
        response = client.post(
            f"{S}/subjects/01-001/labs/new",
            content=(f"csrf_token={token}&test=NEUT&value={value}&date=2024-01-20").encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code < 500, (value, response.text)
    assert site.counts() == before
