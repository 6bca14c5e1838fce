"""Authentication on every data route, login, sessions and CSRF."""

from __future__ import annotations

import pytest

from tests.web.conftest import PASSWORD, STUDY, form_token

S = f"/studies/{STUDY}"
SUBJ = f"{S}/subjects/01-001"
PAGE_ROUTES = [
    ("get", "/"), ("get", "/studies"), ("get", S), ("get", SUBJ), ("get", f"{S}/audit"),
    ("get", f"{SUBJ}/labs/new"), ("post", f"{SUBJ}/labs/new"),
    ("get", f"{SUBJ}/observations/new"), ("post", f"{SUBJ}/observations/new"),
    ("get", f"{SUBJ}/adverse-events/new"), ("post", f"{SUBJ}/adverse-events/new"),
    ("get", f"{SUBJ}/records/LB/1/correct"), ("post", f"{SUBJ}/records/LB/1/correct"),
]
API_ROUTES = [
    ("get", "/api/me"), ("get", "/api/csrf"), ("get", "/api/studies"),
    ("get", f"/api{S}/subjects"), ("get", f"/api{SUBJ}"), ("get", f"/api{S}/audit"),
    ("post", f"/api{S}/labs"), ("post", f"/api{S}/observations"),
    ("post", f"/api{S}/adverse-events"), ("post", f"/api{S}/corrections"),
    ("post", "/api/logout"),
]
LAB = {"usubjid": "01-001", "test": "NEUT", "value": 0.4, "date": "2024-01-12"}


@pytest.mark.parametrize(("method", "path"), PAGE_ROUTES)
def test_pages_redirect_to_login_without_session(site, method, path) -> None:
    response = getattr(site.client(), method)(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_api_answers_401_without_session(site, method, path) -> None:
    before = site.counts()
    kwargs = {"json": LAB} if method == "post" else {}
    response = getattr(site.client(), method)(path, **kwargs)
    assert response.status_code == 401
    assert site.counts() == before


def test_login_page_and_static_css_are_public(site) -> None:
    client = site.client()
    assert client.get("/login").status_code == 200
    assert client.get("/static/style.css").status_code == 200


@pytest.mark.parametrize(("username", "password"), [("inv01", "wrong password!"),
                                                    ("nobody", PASSWORD), ("inv01", "")])
def test_wrong_login_is_refused(site, username, password) -> None:
    client = site.client()
    token = form_token(client.get("/login").text)
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    assert client.get("/api/me").status_code == 401
    api = site.client().post("/api/login", json={"username": username, "password": password})
    assert api.status_code == 401


def test_login_form_without_csrf_is_refused(site) -> None:
    client = site.client()
    client.get("/login")
    response = client.post("/login", data={"username": "inv01", "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/api/me").status_code == 401


def test_login_redirects_to_next_only_within_the_site(site) -> None:
    client = site.client()
    token = form_token(client.get("/login").text)
    response = client.post("/login", data={"username": "inv01", "password": PASSWORD,
                                           "csrf_token": token, "next": "//evil.example/x"},
                           follow_redirects=False)
    assert response.headers["location"] == "/studies"


def test_api_login_needs_json_and_returns_the_csrf_token(site) -> None:
    client = site.client()
    form = client.post("/api/login", data={"username": "inv01", "password": PASSWORD})
    assert form.status_code == 415
    response = client.post("/api/login", json={"username": "inv01", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert (body["role"], body["site_id"]) == ("investigator", "01")
    assert client.get("/api/csrf").json()["csrf_token"] == body["csrf_token"]


def test_session_cookie_is_httponly_and_samesite_lax(site) -> None:
    response = site.client().post("/api/login", json={"username": "inv01",
                                                      "password": PASSWORD})
    cookie = response.headers["set-cookie"].lower()
    assert "celltrial_session=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_logout_ends_the_session(site) -> None:
    client = site.client()
    token = client.post("/api/login", json={"username": "inv01",
                                            "password": PASSWORD}).json()["csrf_token"]
    assert client.post("/api/logout").status_code == 403  # no CSRF header
    assert client.post("/api/logout", headers={"X-CSRF-Token": token}).status_code == 200
    assert client.get("/api/me").status_code == 401


@pytest.mark.parametrize("header", [None, "", "not-the-token"])
def test_api_write_without_the_right_csrf_header_is_403_and_writes_nothing(site,
                                                                             header) -> None:
    client = site.login("inv01")
    before = site.counts()
    headers = {} if header is None else {"X-CSRF-Token": header}
    for path, body in ((f"/api{S}/labs", LAB),
                       (f"/api{S}/observations", {"usubjid": "01-001", "date": "2024-01-12",
                                                  "temperature_c": 39.0}),
                       (f"/api{S}/adverse-events", {"usubjid": "01-001", "term": "Fever",
                                                    "grade": 1, "start": "2024-01-12",
                                                    "serious": "N", "related": "RELATED"})):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 403, path
        assert "CSRF" in response.json()["detail"]
    assert site.counts() == before


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_form_post_without_the_right_csrf_token_is_403_and_writes_nothing(site, token) -> None:
    client = site.login("inv01")
    before = site.counts()
    form = {"test": "NEUT", "value": "0.4", "date": "2024-01-12"}
    if token is not None:
        form["csrf_token"] = token
    response = client.post(f"{SUBJ}/labs/new", data=form)
    assert response.status_code == 403
    assert site.counts() == before


def test_a_token_of_another_session_does_not_pass(site) -> None:
    other = site.api_token("coord02")
    client = site.login("inv01")
    before = site.counts()
    assert client.post(f"/api{S}/labs", json=LAB,
                       headers={"X-CSRF-Token": other}).status_code == 403
    assert site.counts() == before


def test_random_secret_key_warns(monkeypatch, site) -> None:
    from celltrial.web import create_app

    monkeypatch.delenv("CELLTRIAL_SECRET_KEY", raising=False)
    with pytest.warns(UserWarning, match="random per-process key"):
        create_app(site.url)
    monkeypatch.setenv("CELLTRIAL_SECRET_KEY", "from-the-environment-" + "y" * 20)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        create_app(site.url)
