"""Shared loaders for the frozen R reference fixtures (tests/fixtures/*.json, made by *.R there)."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SURVIVAL_SETS = ("aml", "lung", "ties", "censored", "large", "flat", "flat_exact")
RTOL = 1e-8
ATOL = 1e-14  # for values that are exactly 0 in one program and 1e-17 in the other


SPECIAL = {"NaN": math.nan, "Inf": math.inf, "-Inf": -math.inf}


def _decode(value: Any) -> Any:
    """JSON from the R writer: numeric vectors become arrays (R's NA/NaN/Inf written as strings)."""
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        numeric = all(isinstance(v, (int, float)) or (isinstance(v, str) and v in SPECIAL)
                      for v in value)
        if value and numeric:
            return np.array([SPECIAL[v] if isinstance(v, str) else float(v) for v in value])
        return [_decode(v) for v in value]
    return value


def load_reference(name: str) -> dict[str, Any]:
    """A frozen R output; the 50,000-row set also gets its data from the csv.gz beside it."""
    path = FIXTURES / f"survival_{name}.json"
    if not path.exists():
        path = FIXTURES / f"survival_{name}.json.gz"
    text = gzip.open(path, "rt").read() if path.suffix == ".gz" else path.read_text()
    ref = _decode(json.loads(text))
    if "data" not in ref:
        frame = pd.read_csv(FIXTURES / f"survival_{name}_data.csv.gz")
        ref["data"] = {"time": frame["time"].to_numpy(float), "cause": frame["cause"].to_numpy(),
                       "group": frame["group"].astype(str).tolist()}
    data = ref["data"]
    data["cause"] = np.asarray(data["cause"]).astype(int)
    data["group"] = list(data["group"]) if len(data["group"]) == len(data["time"]) else None
    return ref


def close(actual: Any, expected: Any) -> None:
    """Equal to R within 1e-8 relative (NaN where R has NA/NaN)."""
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float),
                               rtol=RTOL, atol=ATOL, equal_nan=True)


@pytest.fixture(scope="session", params=SURVIVAL_SETS)
def reference(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_reference(request.param)
