"""ADAE: treatment emergence, DLT category, worst grade per term, duration."""

from __future__ import annotations

import pytest

from celltrial.derive import build_adae, build_adsl
from celltrial.derive.adae import ae_category


@pytest.mark.parametrize(("term", "category"), [
    ("Cytokine release syndrome", "crs"),
    ("Immune effector cell-associated neurotoxicity syndrome", "icans"),
    ("Neutrophil count decreased", "hematologic"),
    ("Febrile neutropenia", "hematologic"),
    ("Pneumonitis", "non_hematologic"),
    ("Alanine aminotransferase increased", "non_hematologic"),
])
def test_category(term, category):
    assert ae_category(term) == category


def test_adae_rows(domains, protocol):
    adae = build_adae(domains, build_adsl(domains, protocol))
    s1 = adae[adae["USUBJID"] == "S1"].set_index("AEDECOD")
    # neutropenia started day -3 (lymphodepletion): not treatment-emergent
    assert s1.loc["Neutrophil count decreased", "TRTEMFL"] == "N"
    assert s1.loc["Cytokine release syndrome", "TRTEMFL"] == "Y"
    assert s1.loc["Cytokine release syndrome", ["ASTDY", "AENDY", "ADURN"]].tolist() == [2, 4, 3]
    s4 = adae[(adae["USUBJID"] == "S4") & (adae["ACAT"] == "crs")].sort_values("ASTDY")
    # two CRS episodes; the grade 3 one (day 2) carries the worst-grade flag
    assert s4["ATOXGRN"].tolist() == [3.0, 2.0]
    assert s4["AMAXGRFL"].tolist() == ["Y", "N"]
    assert adae.loc[adae["USUBJID"] == "S4", "TRT01A"].unique().tolist() == ["DL2"]
