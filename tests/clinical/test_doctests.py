"""The examples in the clinical docstrings run and stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["celltrial.clinical.units", "celltrial.clinical.ctcae", "celltrial.clinical.crs_icans",
           "celltrial.clinical.response.overall", "celltrial.clinical.split_hold",
           "celltrial.clinical.icaht", "celltrial.clinical.gvhd", "celltrial.clinical.aplasia",
           "celltrial.clinical.infection", "celltrial.clinical.iec_hs"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
