"""Issue 10, done-when: one patient of nct04762485 walked through every page of the path in a
real browser (headless Chromium, Debian packages chromium and chromium-driver, driven by
Selenium) against the app served by uvicorn, on SQLite and on PostgreSQL.

A research coordinator (investigator of site 01) screens the subject criterion by criterion,
enrols it at the open dose level, plans and records the split infusion (the second fraction
after a CRS grade 2 observation, withheld by the protocol's hold rule), records a daily
CRS/ICANS observation, a lab in another unit than the standard one, an adverse event, a
concomitant medication, a response assessment, a sample result, marks a lab entered in error,
and ends the study with the subject's death. After each step the stored records and their
audit rows are checked; each data check of issue 10 part 3 is tried with its bad entry and
must answer next to its field with nothing written (records and audit trail unchanged).

Skipped, with the reason, where no browser is installed; with ``CI=true`` a missing browser
fails instead (.ci/run installs it). With ``CELLTRIAL_SCREENSHOTS=DIR`` the SQLite walk saves
a 900-px-wide PNG of each page into DIR (docs/web/ holds those of docs/web.md).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from celltrial.store import audit_trail, count_records, read_domain

from .conftest import PASSWORD, Site
from .test_browser import _free_port
from .test_path import ELIGIBLE, STUDY
from .test_path import _seed as seed_path_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
IN_CI = os.environ.get("CI", "").lower() == "true"
S = f"/studies/{STUDY}"
WIDTH = 900

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER) and not IN_CI,
    reason="no real browser here: install Debian's chromium and chromium-driver to run the "
           "browser tests")


@contextmanager
def serve(app: object, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """``app`` served by uvicorn in a thread at ``host:port`` (a free port when None): the
    base URL while the block runs."""
    import uvicorn

    port = port or _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("CI=true but chromium/chromedriver are not installed: the browser tests "
                    "must run in CI (.ci/run installs them as root)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true but selenium is not installed (pip install -e .[test])")
        pytest.skip("selenium not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", f"--window-size={WIDTH},900", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(request, tmp_path_factory) -> Iterator[tuple[str, Site, str]]:
    """The app on a store holding nct04762485 (registered from the shipped protocol), served
    by uvicorn in a thread; SQLite and PostgreSQL (skipped when no server answers)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('walk') / 'ct.db'}"
        else:
            from tests.conftest import postgres_schema_url

            url = stack.enter_context(postgres_schema_url())
        site = seed_path_study(url)
        stack.callback(site.store.close)
        yield stack.enter_context(serve(site.app)), site, request.param


# ---------------------------------------------------------------- driving the pages
class Walk:
    """The browser on the served app, with the store to check what each page wrote."""

    def __init__(self, driver, base: str, site: Site, backend: str) -> None:
        self.driver, self.base, self.site, self.backend = driver, base, site, backend
        folder = os.environ.get("CELLTRIAL_SCREENSHOTS")
        self.shots = Path(folder) if folder and backend == "sqlite" else None

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def login(self, username: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.delete_all_cookies()
        self.open("/login")
        self.driver.find_element(By.NAME, "username").send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        self.driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(self.driver, 15).until(lambda d: "/login" not in d.current_url)

    def fill(self, values: dict[str, str]) -> None:
        """Type into the fields by name: a dropdown by its option's value, a date picker set
        as the browser submits it (YYYY-MM-DD, YYYY-MM-DDThh:mm), other inputs typed."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        for name, value in values.items():
            field = self.driver.find_element(By.NAME, name)
            if field.tag_name == "select":
                Select(field).select_by_value(value)
            elif field.get_attribute("type") in ("date", "datetime-local"):
                self.driver.execute_script("arguments[0].value = arguments[1]", field, value)
            else:
                field.clear()
                if value:
                    field.send_keys(value)

    def press(self, css: str = "form.entry button[type=submit]") -> None:
        """Click a button and wait for the next page: a mark set on this page's window is gone
        (a new document has a new window object) and the new page has loaded. (Selenium's
        ``staleness_of`` asks the old element, which Chromium may answer mid-navigation with an
        inspector error instead of "stale".)"""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def arrived(driver: Any) -> bool:
            try:
                return bool(driver.execute_script(
                    "return !window.__leaving && document.readyState === 'complete'"))
            except WebDriverException:  # between two documents
                return False

        self.driver.execute_script("window.__leaving = true")
        self.driver.find_element(By.CSS_SELECTOR, css).click()
        WebDriverWait(self.driver, 20).until(arrived)

    def action(self, value: str) -> None:
        self.press(f"button[name=action][value={value}]")

    def text(self, css: str) -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css).text

    @property
    def page(self) -> str:
        return self.driver.page_source

    def shot(self, name: str) -> None:
        """A PNG of the whole page, WIDTH px wide, reduced to 64 colours (a few tens of kB)."""
        if self.shots is None:
            return
        import base64

        from PIL import Image

        self.shots.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        cdp = self.driver.execute_cdp_cmd
        cdp("Emulation.setDeviceMetricsOverride", {
            "width": WIDTH, "height": min(int(height), 3000), "deviceScaleFactor": 1,
            "mobile": False})
        shot = cdp("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
        cdp("Emulation.clearDeviceMetricsOverride", {})
        target = self.shots / f"{name}.png"
        target.write_bytes(base64.b64decode(shot["data"]))

        with Image.open(target) as image:
            small = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
        small.save(target, optimize=True)

    # ------------------------------------------------------------ the store
    def rows(self, domain: str, usubjid: str) -> list[dict]:
        frame = read_domain(self.site.store, STUDY, domain)
        return frame[frame["USUBJID"] == usubjid].to_dict("records")

    def state(self) -> tuple[dict[str, int], int]:
        """(records per domain, audit rows): what a refused entry must leave unchanged."""
        return count_records(self.site.store, STUDY), len(audit_trail(self.site.store, STUDY))

    def audited(self, table: str, usubjid: str, *, action: str = "insert") -> set[str]:
        trail = audit_trail(self.site.store, STUDY, table=table)
        mine = trail[trail["record_key"].str.contains(f"USUBJID={usubjid}", regex=False)
                     & (trail["action"] == action)]
        assert set(mine["user"]) == {"inv01"} and set(mine["source"]) == {"web"}, mine
        return set(mine["record_key"])

    def refused(self, path: str, values: dict[str, str], field: str, message: str, *,
                button: str = "form.entry button[type=submit]") -> None:
        """Open ``path``, submit ``values``: the page answers 'nothing was saved' with
        ``message`` next to ``field`` (``_form`` for the form) and the database is unchanged."""
        before = self.state()
        self.open(path)
        self.fill(values)
        self.press(button)
        assert "Nothing was saved" in self.page or field == "_form", self.page[:2000]
        shown = self.text(f"#error-{field}")
        assert message in shown, (message, shown)
        assert self.state() == before, f"{path} wrote something for a refused entry"


# ---------------------------------------------------------------- the walk
def test_one_patient_from_screening_to_death(served, browser, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    base, site, backend = served
    started, cpu_started = time.monotonic(), time.process_time()
    w = Walk(browser, base, site, backend)
    w.login("inv01")
    subject = "01-201"
    me = f"{S}/subjects/{subject}"

    # screening: every criterion shown with its finding, then registered
    screening = {**ELIGIBLE, "subject": "201"}
    w.refused(S + "/screening", {**screening, "consent": "2099-01-01"}, "consent",
              "Cannot be after today", button="button[name=action][value=save]")
    w.open(S + "/screening")
    w.fill(screening)
    w.action("check")
    findings = w.text("#screening-result")
    assert "E1" in findings and "absent" in findings and "satisfied" in findings
    assert w.state()[0].get("DM", 0) == 0                 # checking writes nothing
    w.shot("screening")
    w.action("save")
    assert "Saved: Screening" in w.page and "Eligible" in w.page
    dm = w.rows("DM", subject)
    assert dm[0]["RFICDTC"] == "2024-03-01" and not dm[0]["ARMCD"]
    assert {r["SCTESTCD"] for r in w.rows("SC", subject)} >= {"ecog", "cd7_blast_pct"}
    assert w.audited("dm", subject)
    w.open(me)
    assert w.text("#subject-status") == "Screened, waiting for enrolment"
    w.refused(f"{me}/infusion", {"weight": "70", "concentration": "5e5", "available": "100"},
              "_form", "not enrolled", button="button[name=action][value=plan]")

    # a second subject fails screening (age 80): no trial data after that day
    w.open(S + "/screening")
    w.fill({**screening, "subject": "202", "age": "80"})
    w.action("save")
    assert "Not eligible" in w.page and "I2" in w.page
    assert w.rows("DS", "01-202")[0]["DSDECOD"] == "SCREEN FAILURE"
    w.refused(f"{S}/subjects/01-202/labs/new",
              {"test": "NEUT", "value": "1.0", "date": "2024-03-05T08:00"}, "date",
              "failed screening")

    # enrolment at the dose level open now (the committee's page; DL1, the first cohort)
    w.open(f"{me}/enrol")
    w.shot("enrol")
    w.press()
    assert w.rows("DM", subject)[0]["ARMCD"] == "DL1"
    assert w.audited("dm", subject, action="update")

    # infusion: the dose plan, fraction 1; a CRS grade 2 then withholds fraction 2 (hold rule)
    infusion = f"{me}/infusion"
    plan = {"weight": "70", "concentration": "5e5", "available": "100"}
    w.refused(infusion, {**plan, "date": "2024-03-10T09:00", "volume": "40", "bags": "1"},
              "volume", "outside the protocol", button="button[name=action][value=save]")
    w.open(infusion)
    w.fill(plan)
    w.action("plan")
    assert "Dose plan (DL1" in w.text("#dose-plan")
    w.fill({"date": "2024-03-10T09:00", "volume": "21", "bags": "1"})
    w.shot("infusion")
    w.action("save")
    assert "Fraction 1 given" in w.page
    ex = w.rows("EX", subject)
    assert [(r["EXFRACN"], r["EXVOL"]) for r in ex] == [(1, 21.0)]
    assert w.rows("DM", subject)[0]["RFSTDTC"] == "2024-03-10T09:00"
    w.open(w.driver.current_url.removeprefix(base))   # the saved page reloaded: nothing new
    assert len(w.rows("EX", subject)) == 1

    # daily CRS/ICANS: an empty observation is refused, not stored as grade 0
    observe = f"{me}/observations/new"
    w.refused(observe, {"date": "2024-03-10T20:00"}, "_form", "Nothing was assessed")
    w.open(observe)
    assert "Hypotension not requiring vasopressors" in w.page and ">fluids<" not in w.page
    w.fill({"date": "2024-03-10T20:00", "temperature_c": "39.0", "hypotension": "fluids",
            "oxygen": "none"})
    w.shot("observation")
    w.press()
    xc = w.rows("XC", subject)
    assert xc[0]["XCCRSGR"] == 2 and pd.isna(xc[0]["XCICAGR"])  # ICANS not assessed
    assert w.audited("xc", subject)
    w.open(infusion)
    assert "withhold" in w.text("#hold-decision")
    w.fill({**plan, "date": "2024-03-11T09:00", "volume": "49", "bags": "1",
            "infection": "N"})
    w.action("save")
    assert "Fraction 2 withheld" in w.page
    ex = w.rows("EX", subject)
    assert ex[1]["EXDOSE"] == 0 and ex[1]["EXADJ"].startswith("WITHHELD: H1")
    assert len(w.audited("ex", subject)) == 2

    # labs: the date checks, then a count in cells/uL stored in the SDTM variables of its unit
    labs = f"{me}/labs/new"
    lab = {"test": "NEUT", "value": "400", "unit": "cells/uL", "lln": "1800", "uln": "7500"}
    w.refused(labs, {**lab, "date": "2099-01-01T08:00"}, "date", "today")
    w.refused(labs, {**lab, "date": "2024-02-01T08:00"}, "date", "informed consent")
    w.open(labs)
    w.fill({**lab, "date": "2024-03-12T08:00"})
    w.shot("lab")
    w.press()
    assert w.text(".result .grade") == "4"
    lb = [r for r in w.rows("LB", subject) if r["LBTESTCD"] == "NEUT"]
    assert (lb[0]["LBORRES"], lb[0]["LBORRESU"], lb[0]["LBORNRLO"]) == ("400", "cells/uL",
                                                                       1800.0)
    assert (lb[0]["LBSTRESN"], lb[0]["LBSTNRLO"]) == (pytest.approx(0.4), pytest.approx(1.8))
    # a batch of lab results from a CSV file: graded line by line, stored whole or not at all
    bad_file, good_file = tmp_path / "labs-bad.csv", tmp_path / "labs.csv"
    bad_file.write_text("test,value,unit,lln,date\nPLAT,90,,150,2099-01-01\n")
    good_file.write_text("test,value,unit,lln,date\nPLAT,90,,150,2024-03-13T08:00\n"
                         "HGB,95,g/L,120,2024-03-13T08:00\n")
    before = w.state()
    w.open(f"{me}/labs/upload")
    w.driver.find_element(By.NAME, "file").send_keys(str(bad_file))
    w.press("button[name=action][value=save]")
    assert "line 2, date" in w.text("#error-file") and w.state() == before
    w.open(f"{me}/labs/upload")
    w.driver.find_element(By.NAME, "file").send_keys(str(good_file))
    w.shot("lab_upload")
    w.press("button[name=action][value=save]")
    assert "2 lab result(s) stored" in w.page
    graded = {r["LBTESTCD"]: r["LBTOXGR"] for r in w.rows("LB", subject)}
    assert (graded["PLAT"], graded["HGB"]) == (1, 2)
    # entered in error: voided with its reason, audited, kept
    key = f"USUBJID={subject};LBSEQ={int(lb[0]['LBSEQ'])}"
    w.open(f"{me}/records/LB/{int(lb[0]['LBSEQ'])}/void")
    w.fill({"reason": "entered for the wrong patient"})
    w.press()
    assert not [r for r in w.rows("LB", subject) if r["LBTESTCD"] == "NEUT"]  # out of analysis
    trail = audit_trail(site.store, STUDY, table="lb", record_key=key)
    assert trail.iloc[-1][["field", "new_value", "user"]].tolist() == [
        "voided", "entered for the wrong patient", "inv01"]

    # adverse events: CTCAE term list and grades, grade 5 serious and fatal
    events = f"{me}/adverse-events/new"
    event = {"grade": "2", "start": "2024-03-10", "serious": "N", "related": "RELATED",
             "outcome": "RECOVERED/RESOLVED"}
    w.refused(events, {**event, "term": "sore arm lol"}, "decod", "CTCAE")
    w.refused(events, {**event, "term": "Headache", "grade": "5", "serious": "Y",
                       "outcome": "FATAL"}, "grade", "Headache")
    w.refused(events, {**event, "term": "Sepsis", "grade": "5", "outcome": "FATAL"}, "serious",
              "grade 5")
    w.open(events)
    w.fill({**event, "term": "Cytokine release syndrome", "end": "2024-03-12"})
    w.shot("adverse_event")
    w.press()
    ae = w.rows("AE", subject)
    assert (ae[0]["AEDECOD"], ae[0]["AETOXGR"], ae[0]["AETOXSCL"]) == (
        "Cytokine release syndrome", 2, "ASTCT 2019")
    assert w.audited("ae", subject)

    # concomitant medication: tocilizumab from the drug list
    meds = f"{me}/medications/new"
    toci = {"drug": "TOCILIZUMAB", "indication": "CRS grade 2", "dose": "560", "unit": "mg",
            "route": "INTRAVENOUS", "start": "2024-03-11"}
    w.refused(meds, {**toci, "end": "2024-03-09"}, "end", "before the start")
    w.open(meds)
    w.fill(toci)
    w.shot("medication")
    w.press("button[name=action][value=save]")
    cm = w.rows("CM", subject)
    assert (cm[0]["CMDECOD"], cm[0]["CMCAT"], cm[0]["CMDOSE"]) == (
        "TOCILIZUMAB", "CRS/ICANS MANAGEMENT", 560.0)
    assert w.audited("cm", subject)

    # response assessment: the ELN 2022 category computed and stored
    response = f"{me}/response/new"
    marrow = {"criteria": "aml_eln2022", "bm_blasts_pct": "2", "marrow_adequate": "Y",
              "circulating_blasts": "N", "auer_rods": "N", "emd": "N", "anc": "1.5",
              "platelets": "150"}
    w.refused(response, {**marrow, "date": "2024-03-05"}, "date", "before the first infusion",
              button="button[name=action][value=save]")
    w.open(response)
    w.fill({**marrow, "date": "2024-04-08"})
    w.shot("response")
    w.action("save")
    assert "Complete remission (CR)" in w.page
    assert {r["RSTESTCD"]: r["RSSTRESC"] for r in w.rows("RS", subject)} == {
        "MARROW": "CR", "OVRLRESP": "CR"}
    assert w.audited("rs", subject)

    # samples: CAR transgene by qPCR; a value under the limit of quantitation is refused
    samples = f"{me}/samples/new"
    w.refused(samples, {"test": "CARTQPCR", "date": "2024-03-17T08:00", "value": "10"},
              "value", "limit of quantitation", button="button[name=action][value=save]")
    w.open(samples)
    w.fill({"test": "CARTQPCR", "date": "2024-03-17T08:00", "value": "12000"})
    w.shot("sample")
    w.action("save")
    pc = w.rows("PC", subject)
    assert (pc[0]["PCTESTCD"], pc[0]["PCSTRESN"], pc[0]["PCLLOQ"]) == ("CARTQPCR", 12000.0,
                                                                      50.0)
    assert w.audited("pc", subject)
    # a batch of sample results from a CSV file (flow, anti-CAR antibodies, a cytokine): every
    # line checked by the sample form's rules, stored whole or not at all
    bad_file, good_file = tmp_path / "samples-bad.csv", tmp_path / "samples.csv"
    header = "test,date,value,below,lloq,antibody\n"
    bad_file.write_text(header + "CARTABS,2024-03-24T08:00,0.5,,,\n")
    good_file.write_text(header + "CARTABS,2024-03-24T08:00,35,,,\n"
                         "ADACAR,2024-03-24,,,,NEGATIVE\nIL6,2024-03-24T08:00,152.5,,,\n")
    before = w.state()
    w.open(f"{me}/samples/upload")
    w.driver.find_element(By.NAME, "file").send_keys(str(bad_file))
    w.press("button[name=action][value=save]")
    assert "line 2, value" in w.text("#error-file") and w.state() == before
    w.open(f"{me}/samples/upload")
    w.driver.find_element(By.NAME, "file").send_keys(str(good_file))
    w.press("button[name=action][value=save]")
    assert [r["PCTESTCD"] for r in w.rows("PC", subject)][-1] == "CARTABS"
    assert w.rows("IS", subject)[-1]["ISSTRESC"] == "NEGATIVE"
    il6 = [r for r in w.rows("LB", subject) if r["LBTESTCD"] == "IL6"]
    assert (il6[-1]["LBCAT"], il6[-1]["LBSTRESN"]) == ("CYTOKINE", 152.5)

    # end of study: a death needs its cause
    end = f"{me}/disposition/new"
    w.refused(end, {"event": "DEATH", "date": "2024-05-01"}, "reason", "cause of death",
              button="button[name=action][value=save]")
    w.open(end)
    w.fill({"event": "DEATH", "date": "2024-05-01", "reason": "Disease progression"})
    w.shot("disposition")
    w.action("save")
    ds = w.rows("DS", subject)
    assert (ds[0]["DSDECOD"], ds[0]["DSTERM"]) == ("DEATH", "Disease progression")
    dm = w.rows("DM", subject)[0]
    assert (dm["DTHFL"], dm["DTHDTC"], dm["RFPENDTC"]) == ("Y", "2024-05-01", "2024-05-01")
    assert w.audited("ds", subject)

    # the subject page and the site dashboard
    w.open(me)
    assert w.text("#subject-status") == "Died"
    w.shot("subject")
    w.open(f"{S}/dashboard")
    assert subject in w.page and "Screen failure" in w.page
    w.shot("dashboard")
    # the walk's own CPU (this process: the server thread, the store, the checks): under 90 s
    # per backend; the wall time depends on the machine's load and is only printed
    cpu = time.process_time() - cpu_started
    print(f"walk on {backend}: {time.monotonic() - started:.1f} s wall, {cpu:.1f} s CPU")
    assert cpu < 90, f"the walk used {cpu:.0f} s of CPU on {backend}"
