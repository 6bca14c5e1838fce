"""Bounded load on loopback: N concurrent web sessions for T seconds, on SQLite and PostgreSQL.

The app is served by uvicorn (2 worker processes, so SQLite is shared between processes) on
127.0.0.1. Each session logs in, then loops until the deadline over: enter a lab (60 %),
read a subject (25 %), correct a lab it read, naming the version it saw (15 %; 409 when
another session corrected it first is the expected answer, not an error). With ``--hot`` every
session writes for the same subject (the worst case for --SEQ allocation).

Counted: throughput, latency p50/p95/p99 per request, server errors (5xx or no answer),
refusals (4xx other than 409), conflicts (409). Then the store is read back: every
acknowledged lab must be stored exactly once (lost = acknowledged but absent, duplicated =
two rows of one acknowledged key, stray = stored but never acknowledged), every stored LB
row must have its insert audit row, and the audit hash chain must verify. Optionally a CSV
import of ``--import-rows`` LB rows (200 new subjects) runs beside the load on the served
database (the review saw it die after ~25 s on SQLite).

Fault injection (issue 15, part 6): ``--kill-at S`` sends SIGKILL to the server's whole process
group S seconds into the load, restarts it on the same port, and lets the sessions carry on
(their sessions live in the store, so the cookies still work). Requests cut by the kill or sent
while the server was down have no answer: that is the injected fault, counted apart from
server errors. Every acknowledged write must still be stored exactly once; a write whose
answer was lost may be stored ("stray"), but then whole, with its audit row, and no more of
them than the lab writes the kill cut in flight; the audit hash chain must verify.

Usage:
    .venv/bin/python benchmarks/bench_concurrency.py --backend sqlite --sessions 20 --seconds 60
    .venv/bin/python benchmarks/bench_concurrency.py --backend postgres --sessions 50 --hot
    .venv/bin/python benchmarks/bench_concurrency.py --backend postgres --sessions 50 --kill-at 30
Goal (issue 16): 0 server errors, 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

STUDY = "cd7-zz-phase1"
PASSWORD = "load test passphrase 1"
SUBJECTS = [f"01-{i:03d}" for i in range(1, 21)]
USERS = [f"inv{i:02d}" for i in range(1, 6)]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(url: str) -> None:
    import pandas as pd

    from celltrial.protocols import load
    from celltrial.store import add_user, init_db, open_store, register_study, write_domains

    init_db(url)
    store = open_store(url)
    try:
        register_study(store, load(STUDY))
        dm = pd.DataFrame({"USUBJID": SUBJECTS, "SUBJID": [s[3:] for s in SUBJECTS],
                           "SITEID": "01", "AGE": 40, "AGEU": "YEARS", "SEX": "F",
                           "ARMCD": "DL1", "ARM": "dose level 1", "RFICDTC": "2024-01-02",
                           "RFSTDTC": "2024-01-10"})
        write_domains(store, STUDY, {"DM": dm}, user="loadtest", reason="seed")
        for user in USERS:
            add_user(store, user, "investigator", PASSWORD, site="01")
    finally:
        store.close()


def import_folder(rows: int) -> Path:
    """DM.csv with 200 new subjects and LB.csv with ``rows`` graded neutrophil counts."""
    folder = Path(tempfile.mkdtemp(prefix="ct-import-"))
    subjects = [f"09-{i:03d}" for i in range(200)]
    with open(folder / "DM.csv", "w") as f:
        f.write("USUBJID,SUBJID,SITEID,AGE,AGEU,SEX,ARMCD,ARM,RFICDTC,RFSTDTC\n")
        for s in subjects:
            f.write(f"{s},{s[3:]},09,50,YEARS,M,DL1,dose level 1,2024-01-02,2024-01-10\n")
    with open(folder / "LB.csv", "w") as f:
        f.write("USUBJID,LBCAT,LBTESTCD,LBTEST,LBSPEC,LBORRES,LBORRESU,LBSTRESN,LBSTRESU,"
                "LBORNRLO,LBORNRHI,LBTOXGR,LBDTC\n")
        for i in range(rows):
            f.write(f"{subjects[i % 200]},HEMATOLOGY,NEUT,Neutrophils,BLOOD,2.5,10^9/L,2.5,"
                    f"10^9/L,1.8,7.5,0,2024-02-{1 + i % 28:02d}\n")
    return folder


class Session(threading.Thread):
    """One logged-in user looping over entry, reading and correction until the deadline."""

    def __init__(self, base: str, index: int, deadline: float, hot: bool,
                 start: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.base, self.deadline, self.hot, self.start_barrier = base, deadline, hot, start
        self.rng = random.Random(index)
        self.user = USERS[index % len(USERS)]
        self.latencies: list[float] = []
        self.read_latencies: list[float] = []
        self.outcomes: Counter[str] = Counter()
        self.unanswered: list[tuple[float, str, str, bool]] = []  # (time, method, path, was sent)
        self.acknowledged: list[tuple[str, int]] = []
        self.problems: list[str] = []

    def _call(self, client: httpx.Client, method: str, path: str, **kw) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            response = client.request(method, self.base + path, timeout=120, **kw)
        except httpx.HTTPError as exc:
            sent = not isinstance(exc, httpx.ConnectError)  # refused: never reached a server
            self.unanswered.append((time.monotonic(), method, path, sent))
            self.outcomes["no answer"] += 1
            self.problems.append(f"{method} {path}: {exc!r}")
            time.sleep(0.05)  # a server that is down answers at once: do not spin
            return None
        self.latencies.append(time.perf_counter() - t0)
        if method == "GET":
            self.read_latencies.append(self.latencies[-1])
        code = response.status_code
        kind = ("5xx" if code >= 500 else "409" if code == 409 else
                "4xx" if code >= 400 else "2xx")
        self.outcomes[kind] += 1
        if kind in ("5xx", "4xx"):
            self.problems.append(f"{method} {path}: {code} {response.text[:200]}")
        return response

    def _login(self, client: httpx.Client, tries: int = 5) -> str:
        """Log in (retried: a server starved of CPU may drop a connection while it hashes
        passwords); returns the session's CSRF token."""
        for attempt in range(tries):
            try:
                login = client.post(self.base + "/api/login", timeout=120,
                                    json={"username": self.user, "password": PASSWORD})
                login.raise_for_status()
                return str(login.json()["csrf_token"])
            except httpx.HTTPError as exc:
                self.problems.append(f"login attempt {attempt + 1}: {exc!r}")
                time.sleep(1.0 + attempt)
        raise RuntimeError(f"{self.user} could not log in: {self.problems[-1]}")

    def run(self) -> None:
        with httpx.Client() as client:
            try:
                headers = {"X-CSRF-Token": self._login(client)}
            finally:
                self.start_barrier.wait()  # a session that cannot log in must not hang the rest
            while time.monotonic() < self.deadline:
                subject = SUBJECTS[0] if self.hot else self.rng.choice(SUBJECTS)
                roll = self.rng.random()
                if roll < 0.60:
                    value = round(self.rng.uniform(0.05, 6.0), 2)
                    r = self._call(client, "POST", f"/api/studies/{STUDY}/labs", headers=headers,
                                   json={"usubjid": subject, "test": "NEUT", "value": value,
                                         "unit": "10^9/L", "lln": 1.8, "uln": 7.5,
                                         "date": f"2024-01-{self.rng.randint(11, 28)}"})
                    if r is not None and r.status_code == 201:
                        self.acknowledged.append((subject, int(r.json()["record"]["LBSEQ"])))
                elif roll < 0.85:
                    self._call(client, "GET", f"/api/studies/{STUDY}/subjects/{subject}")
                else:
                    r = self._call(client, "GET", f"/api/studies/{STUDY}/subjects/{subject}")
                    labs = r.json()["domains"]["LB"] if r is not None and r.is_success else []
                    if labs:
                        lab = self.rng.choice(labs)
                        value = round(self.rng.uniform(0.05, 6.0), 2)
                        if value == lab["LBSTRESN"]:  # a correction must change something
                            value = round(value + 0.01, 2)
                        self._call(client, "POST", f"/api/studies/{STUDY}/corrections",
                                   headers=headers, json={
                                       "usubjid": subject, "domain": "LB",
                                       "seq": lab["LBSEQ"], "version": lab.get("version"),
                                       "reason": "load test recount",
                                       "changes": {"LBSTRESN": value}})


def check_store(url: str, acknowledged: list[tuple[str, int]]) -> dict[str, object]:
    import sqlalchemy as sa

    from celltrial.store import open_store, verify_audit
    from celltrial.store.schema import TABLES, AuditRecord

    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            lb = TABLES["LB"]
            stored = Counter(tuple(r) for r in connection.execute(sa.select(
                lb.c.USUBJID, lb.c.LBSEQ).where(lb.c.USUBJID.like("01-%"))))
            audit = AuditRecord.__table__
            inserts = connection.execute(sa.select(sa.func.count()).select_from(audit).where(
                audit.c.table == "lb", audit.c.action == "insert")).scalar_one()
            total_lb = connection.execute(sa.select(sa.func.count()).select_from(lb)
                                          ).scalar_one()
        chain = verify_audit(store)
    finally:
        store.close()
    acked = Counter(acknowledged)
    return {"acknowledged": len(acknowledged), "stored": sum(stored.values()),
            "lost": sum(1 for k in acked if k not in stored),
            "duplicated": sum(n - 1 for n in stored.values() if n > 1)
            + sum(n - 1 for n in acked.values() if n > 1),
            "stray": sum(1 for k in stored if k not in acked),
            "lb_rows_without_insert_audit": total_lb - inserts,
            "audit_rows": chain.rows, "audit_chain_intact": chain.intact}


def pg_schema() -> tuple[str, str]:
    import sqlalchemy as sa

    schema = f"load_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema, f"{PG_ADMIN}?options=-csearch_path%3D{schema}"


def drop_pg_schema(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def serve(port: int, workers: int, env: dict[str, str]) -> subprocess.Popen:
    """uvicorn serving the app on 127.0.0.1:``port``, in its own process group."""
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "celltrial.web.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--log-level", "warning"], env=env, start_new_session=True)


def wait_ready(base: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(base + "/login", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server at {base} did not answer within 60 s")


def run(backend: str, sessions: int, seconds: float, hot: bool, import_rows: int,
        workers: int, kill_at: float | None = None) -> dict[str, object]:
    schema = None
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='ct-load-')}/celltrial.db"
        served = url
    else:
        schema, url = pg_schema()
        # The app runs as the role that owns nothing, as docs/store.md prescribes.
        served = url.replace("//postgres@", "//celltrial_app@")
    seed(url)
    port = _free_port()
    env = {**os.environ, "CELLTRIAL_DATABASE_URL": served,
           "CELLTRIAL_SECRET_KEY": uuid.uuid4().hex * 2}
    server = serve(port, workers, env)
    base = f"http://127.0.0.1:{port}"
    kill: dict[str, Any] | None = None
    try:
        wait_ready(base)
        barrier = threading.Barrier(sessions + 1)
        deadline = time.monotonic() + 3600
        threads = [Session(base, i, deadline, hot, barrier) for i in range(sessions)]
        for t in threads:
            t.start()
        barrier.wait()
        started = time.monotonic()
        for t in threads:
            t.deadline = started + seconds
        importer = None
        if import_rows:
            folder = import_folder(import_rows)
            time.sleep(min(5.0, seconds / 4))
            import_started = time.monotonic()
            importer = subprocess.Popen(
                [str(Path(sys.executable).with_name("celltrial")), "db", "import", str(folder), "--study",
                 STUDY, "--db", url, "--user", "loadtest", "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        if kill_at is not None:
            time.sleep(kill_at)
            killed = time.monotonic()
            os.killpg(server.pid, signal.SIGKILL)  # uvicorn and its workers, no clean-up
            server.wait()
            time.sleep(1.0)
            server = serve(port, workers, env)
            wait_ready(base)
            kill = {"killed_at_s": round(killed - started, 1),
                    "back_after_s": round(time.monotonic() - killed, 1),
                    "window": (killed, time.monotonic() + 1.0)}
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        import_result = None
        if importer is not None:
            out, err = importer.communicate(timeout=1800)
            import_result = {"rows": import_rows, "exit": importer.returncode,
                             "seconds": round(time.monotonic() - import_started, 1),
                             "message": (err or out).strip().splitlines()[-1:]}
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = sorted(x for t in threads for x in t.latencies)
    reads = sorted(x for t in threads for x in t.read_latencies)
    rq = statistics.quantiles(reads, n=100) if len(reads) > 1 else [0.0] * 99
    outcomes = sum((t.outcomes for t in threads), Counter())
    acknowledged = [k for t in threads for k in t.acknowledged]
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    result = {"backend": backend, "sessions": sessions, "seconds": round(elapsed, 1),
              "hot_subject": hot, "workers": workers, "requests": len(latencies),
              "per_second": round(len(latencies) / elapsed, 1),
              "p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1),
              "p99_ms": round(q[98] * 1000, 1), "reads": len(reads),
              "read_p50_ms": round(rq[49] * 1000, 1), "read_p99_ms": round(rq[98] * 1000, 1),
              "outcomes": dict(outcomes), **check_store(url, acknowledged),
              "import": import_result,
              "first_problems": [p for t in threads for p in t.problems][:5]}
    unanswered = [u for t in threads for u in t.unanswered]
    if kill is not None:
        start, end = kill.pop("window")
        # A request cut by the kill, or sent while the server was down, has no answer: that
        # is the fault injected, not a server error. Its write may or may not have committed
        # (the answer was lost): such a row is "stray" and must be whole (audit row, chain).
        outage = [u for u in unanswered if start <= u[0] <= end]
        kill["unanswered_in_outage"] = len(outage)
        kill["refused_while_down"] = sum(1 for u in outage if not u[3])
        kill["lab_writes_cut"] = sum(1 for u in outage if u[3] and u[2].endswith("/labs"))
        kill["stray_explained"] = result["stray"] <= kill["lab_writes_cut"]
        unanswered = [u for u in unanswered if not start <= u[0] <= end]
        result["kill"] = kill
    result["server_errors"] = outcomes["5xx"] + len(unanswered)
    if schema:
        drop_pg_schema(schema)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--hot", action="store_true", help="every session writes one subject")
    ap.add_argument("--import-rows", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-at", type=float, default=None, metavar="SECONDS",
                    help="SIGKILL the server (all its processes) this many seconds into the "
                         "load, restart it, and let the sessions carry on")
    args = ap.parse_args()
    result = run(args.backend, args.sessions, args.seconds, args.hot, args.import_rows,
                 args.workers, args.kill_at)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
