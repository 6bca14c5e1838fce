"""Sessions in the store, timeouts, lockout, throttling, password policy, security headers,
the administrators' page and CSV export without formula cells (issue 15).

Each test that changes an account makes its own user, and each that counts failed logins
logs in from its own client address, so the module's shared store and cached clients stay as
the other tests expect. Time is a fake clock handed to the app's settings: no test sleeps.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from celltrial.store import add_user, audit_trail, export_csv_dir, verify_password, write_domains
from celltrial.store.audit import now
from celltrial.store.schema import UserSession
from celltrial.store.sessions import LoginPolicy
from celltrial.store.users import get_account
from celltrial.web import create_app
from celltrial.web.auth import WRONG_LOGIN
from celltrial.web.settings import WebSettings
from tests.web.conftest import PASSWORD, STUDY, Site, form_token

S = f"/studies/{STUDY}"
LAB = {"usubjid": "01-001", "test": "NEUT", "value": 0.4, "date": "2024-01-12"}
SECRET = "security-test-secret-" + "z" * 32
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
NEW_PASSWORD = "a fresh passphrase for today"


class Clock:
    """A fake clock for the app's settings: starts now, moves only when told."""

    def __init__(self) -> None:
        self.at = now()

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


def new_user(site: Site, role: str = "investigator", site_id: str | None = "01") -> str:
    """A fresh user with the module's password (accounts changed by a test are its own)."""
    name = f"u{uuid.uuid4().hex[:10]}"
    add_user(site.store, name, role, PASSWORD, site=site_id)
    return name


def address() -> tuple[str, int]:
    """A client address of its own (failed logins are counted per address)."""
    return (f"198.51.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}", 50000)


def api_login(client: TestClient, username: str, password: str = PASSWORD):
    return client.post("/api/login", json={"username": username, "password": password})


def form_login(client: TestClient, username: str, password: str = PASSWORD):
    token = form_token(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token}, follow_redirects=False)


def writes(site: Site) -> tuple[dict[str, int], int]:
    """What is stored: records per domain and audit rows."""
    return site.counts(), len(audit_trail(site.store))


def user_audit(site: Site, username: str) -> pd.DataFrame:
    return audit_trail(site.store, table="user", record_key=username)


@pytest.fixture()
def make_app(site: Site) -> Iterator[Callable[..., object]]:
    """Another app on the module's store, with its own settings."""
    apps = []

    def make(**settings: object) -> object:
        app = create_app(site.url, secret_key=SECRET, settings=WebSettings(**settings))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.store.close()


def admin_post(site: Site, action: str, username: str, **fields: str):
    client = site.login("admin")
    token = form_token(client.get("/admin/users").text)
    return client.post(f"/admin/users/{action}", follow_redirects=False,
                       data={"csrf_token": token, "username": username, **fields})


# --- sessions -----------------------------------------------------------------------------

def test_a_cookie_replayed_after_logout_is_refused_and_writes_nothing(site) -> None:
    client = TestClient(site.app, client=address())
    token = api_login(client, "inv01").json()["csrf_token"]
    cookie = client.cookies.get("celltrial_session")
    assert client.post(f"/api{S}/labs", json=LAB, headers={"X-CSRF-Token": token}
                       ).status_code == 201
    assert client.post("/api/logout", headers={"X-CSRF-Token": token}).status_code == 200
    before = writes(site)
    thief = TestClient(site.app, cookies={"celltrial_session": cookie})
    assert thief.get("/api/me").status_code == 401
    assert thief.post(f"/api{S}/labs", json=LAB,
                      headers={"X-CSRF-Token": token}).status_code == 401
    page = TestClient(site.app, cookies={"celltrial_session": cookie}).get(
        f"{S}/subjects/01-001/labs/new", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert writes(site) == before


def test_logging_out_of_a_page_revokes_the_row_and_the_store_keeps_only_the_tokens_hash(
        site) -> None:
    here = address()
    client = TestClient(site.app, client=here, headers={"User-Agent": "test-agent/1"})
    assert form_login(client, "mon01").status_code == 303
    cookie = client.cookies.get("celltrial_session")
    key = hashlib.sha256(cookie.encode()).hexdigest()
    table = UserSession.__table__
    with site.store.engine.connect() as connection:
        row = connection.execute(sa.select(table).where(table.c.token_hash == key)).one()
        assert connection.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.token_hash == cookie)).scalar_one() == 0
    assert (row.username, row.revoked_at, row.address, row.user_agent) == (
        "mon01", None, here[0], "test-agent/1")
    assert cookie not in (row.data or "")
    logout = client.post("/logout", data={"csrf_token": form_token(client.get(S).text)},
                         follow_redirects=False)
    assert logout.status_code == 303
    with site.store.engine.connect() as connection:
        row = connection.execute(sa.select(table).where(table.c.token_hash == key)).one()
    assert row.revoked_at is not None and row.revoked_reason == "logout"
    replay = TestClient(site.app, cookies={"celltrial_session": cookie})
    assert replay.get(S, follow_redirects=False).status_code == 303


def test_a_session_idle_longer_than_the_idle_timeout_is_logged_out(make_app) -> None:
    clock = Clock()
    app = make_app(idle_timeout=dt.timedelta(minutes=30), clock=clock)
    client = TestClient(app, client=address())
    assert api_login(client, "inv01").status_code == 200
    cookie = client.cookies.get("celltrial_session")
    for _ in range(3):  # used every 29 minutes: stays logged in past the idle timeout
        clock.advance(minutes=29)
        assert client.get("/api/me").status_code == 200
    clock.advance(minutes=31)
    assert TestClient(app, cookies={"celltrial_session": cookie}).get(
        "/api/me").status_code == 401
    page = TestClient(app, cookies={"celltrial_session": cookie}).get(
        "/studies", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_session_older_than_its_lifetime_is_logged_out_however_busy(make_app) -> None:
    clock = Clock()
    app = make_app(idle_timeout=dt.timedelta(minutes=30),
                   session_lifetime=dt.timedelta(hours=2), clock=clock)
    client = TestClient(app, client=address())
    assert api_login(client, "inv01").status_code == 200
    for _ in range(5):  # 100 minutes of steady use
        clock.advance(minutes=20)
        assert client.get("/api/me").status_code == 200
    clock.advance(minutes=19)
    assert client.get("/api/me").status_code == 200
    clock.advance(minutes=2)  # 2 h 1 min after login, 2 minutes after the last request
    assert client.get("/api/me").status_code == 401


def test_settings_default_to_30_minutes_12_hours_10_failures_50_per_15_minutes() -> None:
    settings = WebSettings()
    assert settings.idle_timeout == dt.timedelta(minutes=30)
    assert settings.session_lifetime == dt.timedelta(hours=12)
    assert settings.secure_cookies is False
    assert settings.login == LoginPolicy(10, 50, dt.timedelta(minutes=15))
    env = WebSettings.from_env({"CELLTRIAL_SESSION_IDLE_MINUTES": "5",
                                "CELLTRIAL_SESSION_LIFETIME_HOURS": "1.5",
                                "CELLTRIAL_SECURE_COOKIES": "true",
                                "CELLTRIAL_LOGIN_LOCKOUT_FAILURES": "3",
                                "CELLTRIAL_LOGIN_ADDRESS_FAILURES": "20",
                                "CELLTRIAL_LOGIN_ADDRESS_WINDOW_MINUTES": "60"})
    assert (env.idle_timeout, env.session_lifetime, env.secure_cookies) == (
        dt.timedelta(minutes=5), dt.timedelta(hours=1.5), True)
    assert env.login == LoginPolicy(3, 20, dt.timedelta(minutes=60))
    from celltrial.errors import InvalidValue

    for name, value in (("CELLTRIAL_SESSION_IDLE_MINUTES", "0"),
                        ("CELLTRIAL_SECURE_COOKIES", "maybe"),
                        ("CELLTRIAL_LOGIN_LOCKOUT_FAILURES", "2.5")):
        with pytest.raises(InvalidValue, match=name):
            WebSettings.from_env({name: value})


# --- lockout and throttling ---------------------------------------------------------------

def test_ten_wrong_passwords_lock_the_account_until_an_admin_unlocks_it(site) -> None:
    name = new_user(site)
    client = TestClient(site.app, client=address())
    for attempt in range(9):
        assert api_login(client, name, f"wrong password {attempt}").status_code == 401
    assert get_account(site.store, name).locked_at is None
    answer = api_login(client, name, "wrong password 9")
    assert answer.status_code == 401 and answer.json()["detail"] == WRONG_LOGIN
    account = get_account(site.store, name)
    assert account.status == "locked" and account.failed_logins == 10
    locked = user_audit(site, name)
    assert locked[["user", "field", "old_value"]].iloc[-1].tolist() == ["system", "locked_at",
                                                                        None]
    assert "10 consecutive failed logins" in locked["reason"].iloc[-1]

    refused = api_login(client, name)  # the right password: still the same refusal
    assert refused.status_code == 401 and refused.json() == answer.json()
    page = form_login(TestClient(site.app, client=address()), name)
    assert page.status_code == 401 and WRONG_LOGIN in page.text

    assert admin_post(site, "unlock", name).status_code == 303
    unlocked = user_audit(site, name).iloc[-1]
    assert (unlocked["user"], unlocked["field"], unlocked["new_value"]) == ("admin",
                                                                           "locked_at", None)
    assert get_account(site.store, name).status == "active"
    assert api_login(client, name).status_code == 200


def test_a_success_resets_the_count_of_consecutive_failures(site) -> None:
    name = new_user(site)
    client = TestClient(site.app, client=address())
    for attempt in range(9):
        api_login(client, name, f"wrong password {attempt}")
    assert api_login(client, name).status_code == 200
    assert get_account(site.store, name).failed_logins == 0
    assert api_login(TestClient(site.app, client=address()), name, "wrong").status_code == 401
    assert get_account(site.store, name).status == "active"


def test_failures_never_say_whether_the_user_exists(site) -> None:
    client = TestClient(site.app, client=address())
    unknown = api_login(client, "nobody-at-all", "some password here")
    wrong = api_login(client, "inv01", "some password here")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json() == {"detail": WRONG_LOGIN}
    pages = [form_login(TestClient(site.app, client=address()), u, "some password here")
             for u in ("nobody-at-all", "inv01")]
    assert [p.status_code for p in pages] == [401, 401]
    assert all(WRONG_LOGIN in p.text for p in pages)


def test_too_many_failures_from_one_address_answer_429_with_retry_after(make_app) -> None:
    clock = Clock()
    app = make_app(login=LoginPolicy(address_limit=3,
                                     address_window=dt.timedelta(minutes=15)), clock=clock)
    here = address()
    client = TestClient(app, client=here)
    for attempt in range(3):
        assert api_login(client, f"guess{attempt}", "a guessed password").status_code == 401
    refused = api_login(client, "inv01")  # even the right password is not checked now
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 15 * 60
    page = form_login(TestClient(app, client=here), "inv01")
    assert page.status_code == 429 and "Too many failed logins" in page.text
    assert 0 < int(page.headers["retry-after"]) <= 15 * 60
    assert api_login(TestClient(app, client=address()), "inv01").status_code == 200
    clock.advance(minutes=15)
    assert api_login(client, "inv01").status_code == 200


# --- password policy ----------------------------------------------------------------------

@pytest.mark.parametrize(("password", "message"), [
    ("short pass", "at least 12"),
    ("QWERTY123456", "most common"),  # in the shipped list, case-insensitively
    ("1q2w3e4r5t6y", "most common"),
])
def test_the_admin_page_refuses_a_password_against_the_policy(site, password,
                                                              message) -> None:
    name = new_user(site)
    before = len(user_audit(site, name))
    answer = admin_post(site, "password", name, new_password=password)
    assert answer.status_code == 422 and message in answer.text
    assert verify_password(site.store, name, PASSWORD)
    assert len(user_audit(site, name)) == before


def test_the_admin_page_refuses_the_user_name_as_password(site) -> None:
    name = new_user(site) + "-long-name"
    add_user(site.store, name, "monitor", PASSWORD)
    answer = admin_post(site, "password", name, new_password=name.upper())
    assert answer.status_code == 422 and "user name" in answer.text
    assert verify_password(site.store, name, PASSWORD)


def test_an_admin_reset_sets_the_password_ends_the_sessions_and_is_audited(site) -> None:
    name = new_user(site)
    victim = TestClient(site.app, client=address())
    assert api_login(victim, name).status_code == 200
    assert admin_post(site, "password", name, new_password=NEW_PASSWORD).status_code == 303
    assert victim.get("/api/me").status_code == 401
    assert verify_password(site.store, name, NEW_PASSWORD)
    row = user_audit(site, name).iloc[-1]
    assert (row["user"], row["field"], row["action"]) == ("admin", "password_hash", "update")
    assert "argon2" not in str(row["old_value"]) + str(row["new_value"])
    assert api_login(TestClient(site.app, client=address()), name,
                     NEW_PASSWORD).status_code == 200


def test_a_user_changes_their_own_password_and_their_other_sessions_end(site) -> None:
    name = new_user(site)
    here = TestClient(site.app, client=address())
    other = TestClient(site.app, client=address())
    assert form_login(here, name).status_code == 303
    assert api_login(other, name).status_code == 200
    token = form_token(here.get("/account/password").text)
    refused = here.post("/account/password", data={
        "csrf_token": token, "current_password": "not my password",
        "new_password": "password1234", "confirm_password": "password1234"})
    assert refused.status_code == 422
    assert "not your password" in refused.text and "most common" in refused.text
    changed = here.post("/account/password", follow_redirects=False, data={
        "csrf_token": token, "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD})
    assert changed.status_code == 303
    assert here.get("/api/me").status_code == 200
    assert other.get("/api/me").status_code == 401
    row = user_audit(site, name).iloc[-1]
    assert (row["user"], row["field"]) == (name, "password_hash")


# --- administrators' page -----------------------------------------------------------------

def test_the_admin_page_lists_users_with_status_and_last_login(site) -> None:
    name = new_user(site, role="coordinator", site_id="02")
    api_login(TestClient(site.app, client=address()), name)
    page = site.login("admin").get("/admin/users")
    assert page.status_code == 200
    row = re.search(rf'<tr id="user-{name}".*?</tr>', page.text, re.DOTALL).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
    assert cells[:3] == [name, "coordinator", "02"]
    assert cells[3].startswith("active")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", cells[4])


def test_disabling_an_account_ends_its_sessions_and_refuses_its_logins(site) -> None:
    name = new_user(site)
    client = TestClient(site.app, client=address())
    assert api_login(client, name).status_code == 200
    assert admin_post(site, "disable", name).status_code == 303
    assert client.get("/api/me").status_code == 401
    refused = api_login(TestClient(site.app, client=address()), name)
    assert refused.status_code == 401 and refused.json()["detail"] == WRONG_LOGIN
    assert get_account(site.store, name).status == "disabled"
    disabled = user_audit(site, name).iloc[-1]
    assert (disabled["user"], disabled["field"], disabled["old_value"]) == (
        "admin", "disabled_at", None)
    assert admin_post(site, "enable", name).status_code == 303
    enabled = user_audit(site, name).iloc[-1]
    assert (enabled["field"], enabled["new_value"]) == ("disabled_at", None)
    assert api_login(TestClient(site.app, client=address()), name).status_code == 200


def test_an_admin_cannot_disable_their_own_account(site) -> None:
    answer = admin_post(site, "disable", "admin")
    assert answer.status_code == 422
    assert get_account(site.store, "admin").status == "active"


@pytest.mark.parametrize("username", ["inv01", "mon01", "stat", "coord02", "monall"])
def test_other_roles_get_403_on_the_admin_page_and_change_nothing(site, username) -> None:
    client = site.login(username)
    assert client.get("/admin/users").status_code == 403
    before = writes(site)
    token = form_token(client.get("/studies").text)
    for action in ("unlock", "disable", "enable", "password"):
        answer = client.post(f"/admin/users/{action}", data={
            "csrf_token": token, "username": "inv01", "new_password": NEW_PASSWORD})
        assert answer.status_code == 403
    assert writes(site) == before


def test_the_admin_page_needs_a_login_and_its_posts_a_csrf_token(site) -> None:
    anonymous = site.client().get("/admin/users", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    name = new_user(site)
    answer = site.login("admin").post("/admin/users/disable", data={"username": name})
    assert answer.status_code == 403
    assert get_account(site.store, name).status == "active"


# --- headers and cookies ------------------------------------------------------------------

@pytest.mark.parametrize(("who", "path", "status"), [
    (None, "/login", 200), ("inv01", "/studies", 200), ("inv01", "/api/me", 200),
    (None, "/api/me", 401), ("admin", "/admin/users", 200), (None, "/static/style.css", 200),
])
def test_security_headers_are_on_every_answer(site, who, path, status) -> None:
    client = site.login(who) if who else site.client()
    answer = client.get(path)
    assert answer.status_code == status
    assert answer.headers["content-security-policy"] == CSP
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in answer.headers
    if not path.startswith("/static/"):
        assert answer.headers["cache-control"] == "no-store"


def test_templates_have_no_inline_script_or_style_for_the_csp_to_block() -> None:
    import celltrial.web

    folder = Path(celltrial.web.__file__).with_name("templates")
    for template in folder.glob("*.html"):
        text = template.read_text(encoding="utf-8").lower()
        assert "<script" not in text and "<style" not in text, template.name
        assert not re.search(r"\sstyle=|\son[a-z]+=|javascript:", text), template.name


def test_cookies_are_httponly_lax_and_secure_only_behind_tls(site, make_app) -> None:
    plain = api_login(TestClient(site.app, client=address()), "inv01")
    cookie = plain.headers["set-cookie"].lower()
    assert "celltrial_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie
    app = make_app(secure_cookies=True)
    behind_tls = api_login(TestClient(app, client=address()), "inv01")
    assert "; secure" in behind_tls.headers["set-cookie"].lower()
    assert behind_tls.headers["strict-transport-security"].startswith("max-age=")
    login_form = TestClient(app).get("/login")
    assert "; secure" in login_form.headers["set-cookie"].lower()  # the pre-login cookie


# --- CSV export ---------------------------------------------------------------------------

FORMULA = "=cmd|' /C calc'!A0"


def test_csv_export_neutralises_formula_cells_and_keeps_numbers(site, api_post,
                                                               tmp_path) -> None:
    entered = api_post("inv01", f"/api{S}/adverse-events", {
        "usubjid": "01-002", "term": FORMULA, "decod": "Fever", "grade": 1,
        "start": "2024-01-12", "serious": "N", "related": "RELATED"})
    assert entered.status_code == 201, entered.text
    write_domains(site.store, STUDY, {"LB": pd.DataFrame({
        "USUBJID": ["01-002"], "LBSEQ": [90], "LBTESTCD": ["BE"], "LBTEST": ["Base excess"],
        "LBORRES": ["-1.5"], "LBORRESU": ["mmol/L"], "LBSTRESN": [-1.5],
        "LBSTRESU": ["mmol/L"], "LBDTC": ["2024-01-12"]})}, user="setup", reason="test")
    export_csv_dir(site.store, STUDY, tmp_path)
    ae = pd.read_csv(tmp_path / "AE.csv", dtype=str, keep_default_na=False)
    assert ("'" + FORMULA) in ae["AETERM"].tolist()
    assert FORMULA not in ae["AETERM"].tolist()
    lb = pd.read_csv(tmp_path / "LB.csv", keep_default_na=False)
    row = lb[lb["LBSEQ"] == 90].iloc[0]
    assert row["LBSTRESN"] == -1.5 and str(row["LBORRES"]) == "-1.5"
    assert ",-1.5," in (tmp_path / "LB.csv").read_text()


@pytest.mark.parametrize(("cell", "written"), [
    (FORMULA, "'" + FORMULA), ("+1+cmd|x", "'+1+cmd|x"), ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"), ("\tx", "'\tx"), ("\r=x", "'\r=x"),
    ("-1.5", "-1.5"), ("+2", "+2"), ("1e-3", "1e-3"), (-1.5, -1.5), (3, 3), (None, None),
    ("Pyrexia", "Pyrexia"), ("", ""),
])
def test_one_function_neutralises_cells(cell, written) -> None:
    from celltrial.store.spreadsheet import neutralise_cell, neutralise_frame

    assert neutralise_cell(cell) == written
    frame = neutralise_frame(pd.DataFrame({"text": [cell, "x"], "number": [-1.5, 2.0]}))
    assert frame["number"].tolist() == [-1.5, 2.0]
    if isinstance(cell, str):
        assert frame["text"].iloc[0] == written


# --- PostgreSQL: the application role ------------------------------------------------------

def test_the_application_role_keeps_sessions_and_counts_failures(site) -> None:
    """Migration 0005 grants ``celltrial_app`` the new tables: the app connected as that role
    (as in production, docs/store.md) logs in, fails, locks, unlocks and logs out."""
    if not site.url.startswith("postgresql"):
        pytest.skip("PostgreSQL roles only")
    from tests.conftest import PG_USER

    app = create_app(site.url.replace(f"//{PG_USER}@", "//celltrial_app@"), secret_key=SECRET,
                     settings=WebSettings(login=LoginPolicy(lockout_after=2)))
    try:
        with app.state.store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT current_user").scalar() == "celltrial_app"
        name = new_user(site)
        client = TestClient(app, client=address())
        assert [api_login(client, name, "wrong guess").status_code for _ in range(2)] == [401,
                                                                                        401]
        assert get_account(site.store, name).status == "locked"
        admin = TestClient(app, client=address())
        assert api_login(admin, "admin").status_code == 200
        token = form_token(admin.get("/admin/users").text)
        assert admin.post("/admin/users/unlock", data={"csrf_token": token, "username": name},
                          follow_redirects=False).status_code == 303
        token = api_login(client, name).json()["csrf_token"]
        assert client.post("/api/logout", headers={"X-CSRF-Token": token}).status_code == 200
        assert client.get("/api/me").status_code == 401
    finally:
        app.state.store.close()
