"""schemathesis against /api/openapi.json with authenticated clients (issue 15, part 6).

The app is served by uvicorn on 127.0.0.1 over a fresh store (SQLite, or PostgreSQL as the
role that owns nothing) seeded with one study, 20 subjects and one user per role. For each
role, the script logs in through /api/login and runs ``schemathesis run`` on the app's OpenAPI
document with that session's cookie and CSRF header, every phase (examples, coverage,
fuzzing, stateful), positive and negative data, checking that no answer is a server error
(``not_a_server_error``: any 5xx). /api/login and /api/logout are left out (logout would end
the client's own session; login fuzzing is the lockout's job and is tested in tests/web).
Then the store's audit hash chain is verified: fuzzed writes that were accepted must be
complete records with their audit rows.

Usage:
    .venv/bin/pip install -e '.[bench]'   # schemathesis (not needed to run celltrial)
    .venv/bin/python benchmarks/bench_schemathesis.py --backend sqlite --max-examples 50
Goal (issue 15): 0 server errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_concurrency import (PASSWORD, STUDY, _free_port, drop_pg_schema,  # noqa: E402
                               pg_schema, seed)

ROLES = {"inv01": "investigator", "mon01": "monitor", "dm01": "data_manager",
         "adm01": "admin"}
CASES = re.compile(r"(\d+) generated, (.*)")
CONFIG = f"""# path parameters fixed to the seeded study and subject, so that the fuzzed
# bodies and queries reach the code behind the 404 of an unknown study
[parameters]
"path.study_id" = "{STUDY}"
"path.usubjid" = "01-001"
"""


def add_roles(url: str) -> None:
    from celltrial.store import add_user, open_store

    store = open_store(url)
    try:
        for name, role in ROLES.items():
            if name != "inv01":  # seed() made the investigators inv01..inv05
                add_user(store, name, role, PASSWORD, site=None if role != "investigator"
                         else "01")
    finally:
        store.close()


def fuzz(base: str, user: str, max_examples: int, seed_: int, report: Path) -> dict[str, object]:
    client = httpx.Client()
    login = client.post(base + "/api/login", json={"username": user, "password": PASSWORD})
    login.raise_for_status()
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    config = report.with_suffix(".toml")
    config.write_text(CONFIG)
    command = [str(Path(sys.executable).with_name("schemathesis")), "--config-file",
               str(config), "run",
               base + "/api/openapi.json", "--checks", "not_a_server_error",
               "-H", f"Cookie: {cookie}", "-H", f"X-CSRF-Token: {login.json()['csrf_token']}",
               "--exclude-path-regex", "^/api/log(in|out)$", "--max-examples",
               str(max_examples), "--seed", str(seed_), "--workers", "1", "--no-color",
               "--suppress-health-check", "all", "--generation-database", "none",
               "--report", "junit",
               "--report-junit-path", str(report)]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    cases = CASES.search(done.stdout)
    return {"user": user, "role": ROLES[user], "exit": done.returncode,
            "seconds": round(time.monotonic() - started, 1),
            "test_cases": int(cases.group(1)) if cases else None,
            "outcome": cases.group(2).strip() if cases else done.stdout[-500:],
            "server_errors": len(re.findall(r"Server error", done.stdout)),
            "tail": done.stdout.strip().splitlines()[-12:]}


def run(backend: str, max_examples: int, seed_: int) -> dict[str, object]:
    from celltrial.store import open_store, verify_audit

    schema = None
    if backend == "sqlite":
        url = served = f"sqlite:///{tempfile.mkdtemp(prefix='ct-fuzz-')}/celltrial.db"
    else:
        schema, url = pg_schema()
        served = url.replace("//postgres@", "//celltrial_app@")
    seed(url)
    add_roles(url)
    port = _free_port()
    env = {**os.environ, "CELLTRIAL_DATABASE_URL": served,
           "CELLTRIAL_SECRET_KEY": uuid.uuid4().hex * 2}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "celltrial.web.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env)
    base = f"http://127.0.0.1:{port}"
    reports = Path(tempfile.mkdtemp(prefix="ct-fuzz-report-"))
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        runs = []
        for user in ROLES:  # each role's summary as it finishes (a long run is readable early)
            runs.append(fuzz(base, user, max_examples, seed_, reports / f"{user}.xml"))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "tail"}),
                  file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    store = open_store(url)
    try:
        chain = verify_audit(store)
    finally:
        store.close()
    if schema:
        drop_pg_schema(schema)
    return {"backend": backend, "max_examples": max_examples, "seed": seed_, "runs": runs,
            "server_errors": sum(int(r["server_errors"]) for r in runs),
            "audit_rows": chain.rows, "audit_chain_intact": chain.intact,
            "junit_reports": str(reports)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--max-examples", type=int, default=50)
    ap.add_argument("--seed", type=int, default=20261202)
    args = ap.parse_args()
    result = run(args.backend, args.max_examples, args.seed)
    print(json.dumps(result, indent=1))
    sys.exit(1 if result["server_errors"] else 0)


if __name__ == "__main__":
    main()
