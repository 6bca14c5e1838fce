"""docs/web.md's curl examples run as written (issue 10, done-when), and its page screenshots
exist.

Every fenced block of docs/web.md that starts with ``B=http://127.0.0.1:8000`` is run by bash,
line by line as a person would paste it, against the app served by uvicorn on that address
with the store the examples assume: study nct04762485 (registered from the shipped
protocol), user ``inv01`` (investigator, site 01) with the password the block types, subject
01-001 consented on 2024-01-02 and infused on 2024-01-10. Each answer must be JSON without
an error; the commented ``# ->`` lines are checked against the answer above them."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .test_path_browser import serve

DOCS = Path(__file__).parents[2] / "docs"
WEB_MD = DOCS / "web.md"
ADDRESS = ("127.0.0.1", 8000)


def _blocks() -> list[str]:
    text = WEB_MD.read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    return [b for b in blocks if b.startswith(f"B=http://{ADDRESS[0]}:{ADDRESS[1]}")]


def _commands(block: str) -> list[str]:
    """The block's commands (continuation lines joined), comments left out."""
    out: list[str] = []
    for line in block.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1].rstrip() + " " + line.strip()
        else:
            out.append(line.strip())
    return out


def test_docs_have_curl_examples_and_a_screenshot_of_each_path_page() -> None:
    assert _blocks(), "docs/web.md has no curl block starting with B=http://127.0.0.1:8000"
    text = WEB_MD.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]+\]\((web/[a-z_]+\.png)\)", text)
    for page in ("screening", "enrol", "infusion", "observation", "lab", "lab_upload",
                 "adverse_event",
                 "medication", "response", "sample", "disposition", "subject", "dashboard"):
        assert f"web/{page}.png" in images, page
    for image in images:
        path = DOCS / image
        assert path.is_file(), image
        assert path.stat().st_size < 250_000, f"{image} is {path.stat().st_size} bytes"


def _port_free() -> bool:
    with socket.socket() as s:
        try:
            s.bind(ADDRESS)
        except OSError:
            return False
    return True


def test_curl_examples_work_as_written(tmp_path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    if not _port_free():
        pytest.skip(f"{ADDRESS[0]}:{ADDRESS[1]} is in use: the examples address it")
    from celltrial.protocols import load
    from celltrial.store import add_user, init_db, open_store, register_study, write_domains
    from celltrial.web import create_app

    blocks = _blocks()
    password = re.search(r'"password":"([^"]+)"', blocks[0]).group(1)
    url = f"sqlite:///{tmp_path / 'docs.db'}"
    init_db(url)
    store = open_store(url)
    register_study(store, load("nct04762485"))
    add_user(store, "inv01", "investigator", password, site="01")
    write_domains(store, "nct04762485", {"DM": pd.DataFrame([{
        "USUBJID": "01-001", "SUBJID": "001", "SITEID": "01", "AGE": 40, "AGEU": "YEARS",
        "SEX": "F", "ARMCD": "DL1", "ARM": "0.5x10^6/kg", "RFICDTC": "2024-01-02",
        "RFSTDTC": "2024-01-10"}])}, user="setup", reason="docs example subject")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    app = create_app(url, secret_key="docs-" + "x" * 40)
    with serve(app, *ADDRESS):
        for block in blocks:
            script = "set -eo pipefail\n"
            for command in _commands(block):
                script += command + "\nprintf '\\n<<<END>>>\\n'\n"
            done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            answers = [a.strip() for a in done.stdout.split("<<<END>>>")[:-1]]
            commands = [c for c in _commands(block) if "curl" in c and "$(curl" not in c]
            assert len(answers) == len(_commands(block))
            for command, answer in zip(_commands(block), answers, strict=True):
                if "curl" not in command or command.startswith("TOKEN="):
                    continue
                body = json.loads(answer)
                assert not (isinstance(body, dict) and "detail" in body), (command, body)
            assert commands
            _check_shown_answers(block, answers)
    store.close()


def _check_shown_answers(block: str, answers: list[str]) -> None:
    """Each ``#  -> 201 {...}`` comment: its literal JSON fragments (``"key":value``) occur
    in the answer of the command above it (a command starts at column 0; its continuation
    lines are indented)."""
    index = -1
    for line in block.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if "->" in stripped and index >= 0:
                flat = json.dumps(json.loads(answers[index]), separators=(",", ":"))
                for fragment in re.findall(r'"\w+":(?:"[^"]*"|-?[\d.]+|null|true|false)',
                                           stripped):
                    assert fragment in flat, (fragment, flat[:500])
            continue
        if not line[0].isspace():
            index += 1
