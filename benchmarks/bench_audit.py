"""Time appending audit rows to the hash chain: N rows in one write transaction, SQLite and
PostgreSQL (a fresh migrated store each; PostgreSQL at 127.0.0.1:5432, a scratch schema).

Usage: .venv/bin/python benchmarks/bench_audit.py [--rows 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid

import sqlalchemy as sa

from celltrial.store import init_db, open_store, write_transaction
from celltrial.store.audit import append_audit, audit_row, now

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def time_append(url: str, n: int) -> float:
    init_db(url)
    store = open_store(url)
    at = now()
    rows = [audit_row(at=at, user="bench", study_id="s", table="lb",
                      key=f"USUBJID=S{i};LBSEQ=1", action="insert", reason="import",
                      source="csv", new='{"LBTESTCD":"NEUT","LBSTRESN":1.5}')
            for i in range(n)]
    try:
        start = time.perf_counter()
        with write_transaction(store.engine) as connection:
            append_audit(connection, rows)
        return time.perf_counter() - start
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    n = ap.parse_args().rows
    print(f"SQLite: {time_append(f'sqlite:///{tempfile.mkdtemp()}/a.db', n):.2f} s for {n:,} rows")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        seconds = time_append(f"{PG}?options=-csearch_path%3D{schema}", n)
        print(f"PostgreSQL: {seconds:.2f} s for {n:,} rows")
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
