"""Typing frames read back from transport files by the domain table (as :func:`read_domains`
returns them): text and dates ``object`` with ``None``; numbers ``float64``."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from celltrial.errors import StoreError
from celltrial.store.domains import DOMAINS, Domain


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value)
    return text if text.strip() else None


def _numbers(values: pd.Series, column: str, origin: str) -> pd.Series:
    """A numeric column as float64 (missing = NaN); StoreError naming the first row that is
    not a number."""
    numbers = pd.to_numeric(values.astype(object), errors="coerce").astype("float64")
    bad = numbers.isna().to_numpy() & values.map(lambda v: _text(v) is not None).to_numpy()
    if bad.any():
        row = int(bad.argmax())
        raise StoreError(f"{origin} row {row + 1}, column {column}: Invalid `{column}`: got "
                         f"`{values.iloc[row]!r}`, must be a number")
    return numbers.reset_index(drop=True)


def conform(name: str, frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """``frame`` typed and ordered as domain ``name``; StoreError on unknown domain/columns."""
    domain: Domain | None = DOMAINS.get(name.upper())
    if domain is None:
        raise StoreError(f"Invalid `dataset`: got `{name!r}` in {origin}, must be one of "
                         f"{', '.join(DOMAINS)}")
    unknown = [c for c in frame.columns if c not in domain.columns]
    if unknown:
        raise StoreError(f"{origin}, column {unknown[0]}: Invalid `{unknown[0]}`: got "
                         f"`{unknown[0]!r}`, must be one of the {domain.name} variables")
    data = {}
    for var in domain.variables:
        values = frame[var.name] if var.name in frame.columns else pd.Series(
            [None] * len(frame), dtype=object)
        if var.type in ("int", "float"):
            data[var.name] = _numbers(values, var.name, origin)
        else:
            data[var.name] = pd.Series([_text(v) for v in values.astype(object).tolist()],
                                       dtype=object)
    return pd.DataFrame(data, columns=list(domain.columns))
