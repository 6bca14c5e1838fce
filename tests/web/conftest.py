"""A real store per test module (SQLite, and PostgreSQL when it answers) with one study,
three subjects on two sites and one user per role; logged-in clients are cached per module
(argon2 hashing and verification are deliberately slow)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from celltrial.store import (Store, add_user, count_records, init_db, open_store,
                             register_study, write_domains)
from celltrial.web import create_app

STUDY = "cd7-web-test"
PASSWORD = "correct horse battery"
USERS = {  # username: (role, site)
    "admin": ("admin", None),
    "inv01": ("investigator", "01"),
    "coord02": ("coordinator", "02"),
    "mon01": ("monitor", "01"),
    "monall": ("monitor", None),
    "stat": ("statistician", None),
    "dm": ("data_manager", None),
}
SITE01 = ("01-001", "01-002")
SITE02 = ("02-001",)


@dataclass
class Site:
    """The app on a seeded store, and logged-in clients by user name."""

    url: str
    store: Store
    app: object
    clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self) -> TestClient:
        return TestClient(self.app)

    def login(self, username: str) -> TestClient:
        if username not in self.clients:
            client = self.client()
            token = form_token(client.get("/login").text)
            response = client.post("/login", data={"username": username, "password": PASSWORD,
                                                   "csrf_token": token},
                                   follow_redirects=False)
            assert response.status_code == 303, response.text
            self.clients[username] = client
        return self.clients[username]

    def api_token(self, username: str) -> str:
        return self.login(username).get("/api/csrf").json()["csrf_token"]

    def counts(self) -> dict[str, int]:
        return count_records(self.store, STUDY)


def form_token(html: str) -> str:
    """The CSRF token of the first form of a page."""
    return form_value(html, "csrf_token")


def form_value(html: str, name: str) -> str:
    """The value of the first input named ``name`` on a page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} field on the page"
    return found.group(1)


def _seed(url: str) -> Site:
    init_db(url)
    store = open_store(url)
    register_study(store, STUDY, "CD7 CAR-T web test study")
    dm = pd.DataFrame({"USUBJID": [*SITE01, *SITE02], "SUBJID": ["001", "002", "001"],
                       "SITEID": ["01", "01", "02"], "AGE": [34, 51, 16], "SEX": ["M", "F", "M"],
                       "ARMCD": ["DL1", "DL2", "DL1"], "RFSTDTC": ["2024-01-10", None,
                                                                    "2024-02-01"]})
    write_domains(store, STUDY, {"DM": dm}, user="setup", reason="test subjects")
    for username, (role, site) in USERS.items():
        add_user(store, username, role, PASSWORD, site=site)
    return Site(url, store, create_app(url, secret_key="test-secret-" + "x" * 32))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request, tmp_path_factory) -> Iterator[Site]:
    """The seeded app, on SQLite and on PostgreSQL (skipped when no server answers)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'celltrial.db'}"
        seeded = _seed(url)
        yield seeded
        seeded.store.close()
    else:
        from tests.conftest import postgres_schema_url

        with postgres_schema_url() as url:
            seeded = _seed(url)
            yield seeded
            seeded.store.close()


@pytest.fixture()
def api_post(site: Site) -> Callable[..., object]:
    """POST JSON as a logged-in user with the session's CSRF header."""
    def post(username: str, path: str, body: dict) -> object:
        client = site.login(username)
        return client.post(path, json=body, headers={"X-CSRF-Token": site.api_token(username)})
    return post
