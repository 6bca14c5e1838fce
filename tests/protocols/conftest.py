"""Fixtures: a writable copy of a shipped protocol, to break in tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from celltrial.protocols import library_dir


@pytest.fixture
def protocol_data() -> dict[str, Any]:
    """The nct04762485 protocol as plain data (a fresh copy per test)."""
    return yaml.safe_load((library_dir() / "nct04762485.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def write_protocol(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write protocol data to a YAML file under tmp_path and return its path."""

    def write(data: dict[str, Any], name: str = "broken.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return path

    return write
