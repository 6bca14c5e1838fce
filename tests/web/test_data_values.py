"""How a stored cell is shown by the API (celltrial.web.data.stored_value)."""

from decimal import Decimal

import numpy as np
import pytest

from celltrial.web.data import stored_value


@pytest.mark.parametrize(("value", "kind", "shown"), [
    (None, "int", None),
    (float("nan"), "float", None),
    (np.float64("nan"), "int", None),
    (2.0, "int", 2),           # a whole number of an int variable (e.g. --SEQ) is an int
    (2.5, "int", 2.5),         # never rounded
    (np.int64(7), "int", 7),
    (Decimal("3"), "int", 3),  # PostgreSQL numeric
    (3, "float", 3.0),
    ("2024-01-15", "date", "2024-01-15"),
    ("NEUT", "text", "NEUT"),
])
def test_stored_value(value, kind, shown):
    got = stored_value(value, kind)
    assert got == shown and type(got) is type(shown)
