"""Settings: where the database is. Read explicitly, never at import time."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATA_DIR = Path("celltrial-data")
ENV_DATABASE_URL = "CELLTRIAL_DATABASE_URL"


def default_database_url() -> str:
    """``CELLTRIAL_DATABASE_URL`` if set, else the embedded SQLite file under ``./celltrial-data/``."""
    url = os.environ.get(ENV_DATABASE_URL)
    if url:
        return url
    return f"sqlite:///{DEFAULT_DATA_DIR / 'celltrial.db'}"
