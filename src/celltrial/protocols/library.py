"""Finding, reading and validating protocol files (the five studies ship in ``library/``)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from celltrial.errors import ProtocolError
from celltrial.protocols.schema import Protocol

__all__ = ["field_path", "library_dir", "list_ids", "load", "read", "resolve", "validate"]


def library_dir() -> Path:
    """The folder holding the shipped protocol files."""
    return Path(str(resources.files("celltrial.protocols") / "library"))


def list_ids() -> list[str]:
    """Ids of the shipped protocols, sorted."""
    return sorted(p.stem for p in library_dir().glob("*.yaml"))


def resolve(id_or_path: str | Path) -> Path:
    """The file for a protocol id or a path; :class:`ProtocolError` when there is none."""
    text = str(id_or_path)
    if isinstance(id_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise ProtocolError(f"Invalid `protocol`: got `{text!r}`, must be an existing YAML "
                                "file or one of " + ", ".join(list_ids()))
        return path
    path = library_dir() / f"{text}.yaml"
    if not path.is_file():
        raise ProtocolError(f"Invalid `protocol`: got `{text!r}`, must be one of "
                            + ", ".join(list_ids()) + " or a path to a YAML file")
    return path


def field_path(loc: tuple[int | str, ...]) -> str:
    """Pydantic's error location as ``eligibility.inclusion[3].rule``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProtocolError(f"{path}:{where} not valid YAML: "
                            f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: Invalid `(file)`: got `{type(data).__name__}`, must be a "
                            "mapping of protocol fields")
    return data


def validate(path: Path) -> tuple[Protocol | None, list[tuple[str, str]]]:
    """Schema-validate one file: the protocol, or ``None`` and ``(field path, message)`` pairs."""
    try:
        data = _yaml(path)
    except ProtocolError as exc:
        return None, [("(file)", exc.message)]
    try:
        return Protocol.model_validate(data), []
    except ValidationError as exc:
        return None, [(field_path(err["loc"]), err["msg"]
                       + (f" (got `{err['input']!r}`)" if err["type"] != "missing"
                          and not isinstance(err["input"], dict | list) else ""))
                      for err in exc.errors()]


def read(id_or_path: str | Path) -> Protocol:
    """Parse and schema-validate a protocol file, without the semantic checks of lint.

    Raises :class:`ProtocolError` naming the file and each failing field path.
    """
    path = resolve(id_or_path)
    protocol, problems = validate(path)
    if protocol is None:
        raise ProtocolError(f"Invalid protocol file {path} ({len(problems)} error(s)):\n  "
                            + "\n  ".join(f"{path}: {where}: {msg}" for where, msg in problems))
    return protocol


@lru_cache(maxsize=32)
def _load_cached(path: str, mtime_ns: int) -> Protocol:
    protocol = read(Path(path))
    from celltrial.protocols.lint import lint  # lint builds on this module

    errors = [m for m in lint(protocol, path=Path(path)) if m.level == "error"]
    if errors:
        raise ProtocolError(f"Protocol {path} fails lint with {len(errors)} error(s):\n  "
                            + "\n  ".join(m.format() for m in errors))
    return protocol


def load(id_or_path: str | Path) -> Protocol:
    """Load a protocol by id (``cd7-aml-mll`` ...) or path, schema-validated and lint-clean.

    A file with lint *errors* (unknown variable, impossible range, endpoint without a
    known derivation, unit mismatch ...) is refused with :class:`ProtocolError`; lint
    warnings do not stop loading. Protocols are frozen; the same object is returned for
    an unchanged file.

    >>> load("nct04762485").eligibility.inclusion[1].rule
    '12 <= age_years <= 65'
    """
    path = resolve(id_or_path).resolve()
    return _load_cached(str(path), path.stat().st_mtime_ns)
