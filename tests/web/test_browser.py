"""End to end in a real browser: headless Chromium (Debian packages chromium and
chromium-driver) driven by Selenium against the app served by uvicorn on a real SQLite store.

A site investigator logs in, enters an ANC of 0.4 x10^9/L and sees CTCAE grade 4; a wrong
entry is refused next to its field with the input kept and nothing written; a cross-site POST
without the form's CSRF token is refused. Skipped, with the reason, where no browser is
installed (``apt-get install chromium chromium-driver``)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from celltrial.store import count_records

from .conftest import PASSWORD, STUDY, Site, _seed

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

IN_CI = os.environ.get("CI", "").lower() == "true"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not IN_CI,
    reason="no real browser here: install Debian's chromium and chromium-driver to run the "
           "browser tests")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, Site]]:
    """The app on a seeded SQLite store, served by uvicorn in a thread."""
    import uvicorn

    site = _seed(f"sqlite:///{tmp_path_factory.mktemp('browser') / 'celltrial.db'}")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(site.app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", site
    server.should_exit = True
    thread.join(timeout=10)
    site.store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM and CHROMEDRIVER):  # only with CI=true: the browser tests must run there
        pytest.fail("CI=true but chromium/chromedriver are not installed (.ci/run installs "
                    "them as root)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _login(browser, base: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{base}/studies")
    assert "/login" in browser.current_url            # not logged in: sent to the login page
    browser.find_element(By.NAME, "username").send_keys(username)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    try:  # the click returns before the POST (argon2 verification) has answered
        WebDriverWait(browser, 10).until(lambda d: "/login" not in d.current_url)
    except TimeoutException:
        pass
    assert "/login" not in browser.current_url


def _set(browser, name: str, value: str) -> None:
    """A date picker (``<input type=datetime-local>``) set as the browser submits it."""
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.NAME, name)
    browser.execute_script("arguments[0].value = arguments[1]", field, value)


def test_investigator_enters_a_lab_value_and_sees_its_grade(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, site = served
    _login(browser, base, "inv01")
    browser.get(f"{base}/studies/{STUDY}/subjects/01-001")
    assert "01-001" in browser.page_source
    before = count_records(site.store, STUDY).get("LB", 0)
    browser.get(f"{base}/studies/{STUDY}/subjects/01-001/labs/new")
    Select(browser.find_element(By.NAME, "test")).select_by_value("NEUT")
    browser.find_element(By.NAME, "value").send_keys("0.4")
    browser.find_element(By.NAME, "lln").send_keys("1.8")
    _set(browser, "date", "2024-01-12T08:00")
    browser.find_element(By.CSS_SELECTOR, "form.entry button[type=submit]").click()
    grade = browser.find_element(By.CSS_SELECTOR, ".result .grade")
    assert grade.text == "4"
    assert "Neutrophil count decreased" in browser.page_source
    assert count_records(site.store, STUDY)["LB"] == before + 1
    browser.get(f"{base}/studies/{STUDY}/audit")
    assert "inv01" in browser.page_source


def test_bad_entry_is_refused_by_its_field_and_keeps_the_input(served, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, site = served
    _login(browser, base, "inv01")
    before = count_records(site.store, STUDY).get("LB", 0)
    browser.get(f"{base}/studies/{STUDY}/subjects/01-001/labs/new")
    Select(browser.find_element(By.NAME, "test")).select_by_value("NEUT")
    browser.find_element(By.NAME, "value").send_keys("-3")
    _set(browser, "date", "2024-01-13T08:00")
    browser.find_element(By.CSS_SELECTOR, "form.entry button[type=submit]").click()
    assert browser.find_element(By.ID, "error-value").text
    assert browser.find_element(By.NAME, "value").get_attribute("value") == "-3"
    assert "Nothing was saved" in browser.page_source
    assert count_records(site.store, STUDY).get("LB", 0) == before


def test_cross_site_form_without_the_token_is_refused(served, browser):
    """A page on another origin posts a lab entry to the app while the user is logged in: the
    SameSite=Lax cookie is not sent and the form carries no CSRF token, so nothing is written."""
    from selenium.webdriver.common.by import By

    base, site = served
    _login(browser, base, "inv01")
    before = count_records(site.store, STUDY).get("LB", 0)
    target = f"{base}/studies/{STUDY}/subjects/01-001/labs/new"
    browser.get("data:text/html,<form method=post action='" + target + "'>"
                "<input name=test value=NEUT><input name=value value=0.1>"
                "<input name=date value=2024-01-14><button id=go>go</button></form>")
    browser.find_element(By.ID, "go").click()
    assert count_records(site.store, STUDY).get("LB", 0) == before
