"""Make the screenshots of docs/web.md's "Signatures" and "Dose-escalation committee" sections
(the record's signing page included).

Usage: .venv/bin/python docs/web/make_committee_screenshots.py

A SQLite store in a temporary folder holds the library protocol ``cd7-tall-dlt`` (3+3, DL1-DL4)
with its first cohort infused at DL1 and followed past the 28-day DLT window without a DLT;
two investigators record and sign the escalation to DL2, one patient is enrolled at DL2, and a
casebook and its AE record, each signed before a correction and again after it, show one
broken and one valid signature. The app is
served by uvicorn on 127.0.0.1 and photographed by headless Chromium through Selenium (Debian
packages chromium and chromium-driver), 1200 px wide.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
PASSWORD = "correct horse battery"
STUDY = "cd7-tall-dlt"


def _seed(url: str) -> object:
    from celltrial.protocols import load
    from celltrial.store import (add_user, init_db, open_store, register_study, update_record,
                                 write_domains)
    from celltrial.store.committee import enrol, record_decision, sign_decision
    from celltrial.store.signatures import set_full_name, sign

    init_db(url)
    store = open_store(url)
    protocol = load(STUDY)
    register_study(store, protocol)
    cohort = ["01-001", "01-002", "01-003"]
    waiting = ["01-004", "01-005", "01-006"]
    dm = pd.DataFrame({
        "USUBJID": cohort + waiting, "SUBJID": ["001", "002", "003", "004", "005", "006"],
        "SITEID": "01", "AGE": [34, 51, 45, 29, 60, 38], "SEX": ["M", "F", "F", "M", "M", "F"],
        "DISEASE": "T-ALL", "ARMCD": ["DL1"] * 3 + [None] * 3,
        "ARM": ["0.5x10^6/kg"] * 3 + [None] * 3, "RFICDTC": "2024-01-02",
        "RFSTDTC": ["2024-01-10", "2024-01-11", "2024-01-12", None, None, None],
        "RFPENDTC": ["2024-03-01"] * 3 + [None] * 3})
    ex = pd.DataFrame({"USUBJID": cohort, "EXSEQ": 1, "EXTRT": "CD7 CAR-T", "EXDOSE": 5e5,
                       "EXDOSU": "cells/kg",
                       "EXSTDTC": ["2024-01-10", "2024-01-11", "2024-01-12"]})
    ae = pd.DataFrame({"USUBJID": ["01-001"], "AESEQ": [1],
                       "AETERM": ["Cytokine release syndrome"],
                       "AEDECOD": ["Cytokine release syndrome"], "AETOXGR": [2],
                       "AETOXSCL": ["ASTCT 2019"], "AESTDTC": ["2024-01-12"],
                       "AEENDTC": ["2024-01-15"], "AESER": ["N"], "AEREL": ["RELATED"],
                       "AEOUT": ["RECOVERED/RESOLVED"]})
    write_domains(store, STUDY, {"DM": dm, "EX": ex, "AE": ae}, user="setup",
                  reason="demonstration subjects")
    for username, name in (("inv01", "Ana Ruiz"), ("inv01b", "Dev Patel")):
        add_user(store, username, "investigator", PASSWORD, site="01")
        set_full_name(store, username, name, by="setup")
    sign(store, STUDY, "casebook", "approved", user="inv01", username="inv01",
         password=PASSWORD, usubjid="01-001")
    sign(store, STUDY, "record", "reviewed", user="inv01", username="inv01",
         password=PASSWORD, usubjid="01-001", domain="AE", seq=1)
    update_record(store, "AE", (STUDY, "01-001", 1), {"AEENDTC": "2024-01-16"},
                  user="inv01", reason="source: resolved on day 6")
    sign(store, STUDY, "casebook", "approved", user="inv01", username="inv01",
         password=PASSWORD, usubjid="01-001")
    sign(store, STUDY, "record", "approved", user="inv01", username="inv01",
         password=PASSWORD, usubjid="01-001", domain="AE", seq=1)
    decision = record_decision(store, protocol, action="escalate", dose_level="DL2",
                               reason=None, user="inv01", username="inv01",
                               password=PASSWORD)
    sign_decision(store, STUDY, decision.id, user="inv01b", username="inv01b",
                  password=PASSWORD)
    enrol(store, protocol, "01-004", "DL2", user="inv01")
    return store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    from celltrial.web import create_app

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/celltrial.db"
        store = _seed(url)
        app = create_app(url, secret_key="screenshots-" + "x" * 32)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or ""
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1200,900", "--hide-scrollbars"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")),
                                  options=options)
        base = f"http://127.0.0.1:{port}"
        try:
            driver.get(f"{base}/login")
            driver.find_element(By.NAME, "username").send_keys("inv01b")
            driver.find_element(By.NAME, "password").send_keys(PASSWORD)
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            for name, path in (("committee", f"/studies/{STUDY}/committee"),
                               ("enrol", f"/studies/{STUDY}/subjects/01-005/enrol"),
                               ("signatures", f"/studies/{STUDY}/subjects/01-001"),
                               ("record_sign",
                                f"/studies/{STUDY}/subjects/01-001/records/AE/1/sign")):
                driver.get(base + path)
                height = driver.execute_script(
                    "return Math.ceil(document.body.getBoundingClientRect().bottom) + 16")
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                    "width": 1200, "height": min(max(height, 300), 4000),
                    "deviceScaleFactor": 1, "mobile": False})
                target = HERE / f"{name}.png"
                if name == "signatures":
                    driver.find_element(By.ID, "signatures").screenshot(str(target))
                else:
                    driver.save_screenshot(str(target))
                print(target)
        finally:
            driver.quit()
            server.should_exit = True
            thread.join(timeout=10)
            store.close()


if __name__ == "__main__":
    main()
