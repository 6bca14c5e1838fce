"""Product origin (autologous, donor-derived from the prior HSCT donor, new donor) as protocol
data: what each registration says, the reading stated where it says nothing, and whether acute
GVHD is assessed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from celltrial.protocols import load
from celltrial.protocols.schema import Intervention, gvhd_assessed

SEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"

# id -> (registration file, origin, assumed?, words of the registration that state it or None)
ORIGINS = {
    "cd7-tall-dlt": ("004_11b440b42624ca47.txt", "autologous", False,
                     "transfected into autologous T cells"),
    "cd7-zz-phase1": ("003_08db03101628a513.txt", "autologous", False,
                      "T cell injection targeting CD7 autologous chimeric antigen receptor"),
    "cd7-aml-mll": ("000_a62d0871cbea2cda.txt", "autologous", True, None),
    "cd7-tall-phase1": ("001_43bc80a192156edd.txt", "autologous", True, None),
    "nct04762485": ("002_310252d8081801c5.txt", "autologous", True, None),
}


@pytest.mark.parametrize("pid", sorted(ORIGINS))
def test_origin_is_registered_or_assumed_with_its_reason(pid):
    seed, origin, assumed, words = ORIGINS[pid]
    intervention = load(pid).intervention
    text = (SEEDS / seed).read_text(encoding="utf-8")
    assert intervention.product_origin == origin
    assert intervention.product_origin_assumed is assumed
    if assumed:
        assert intervention.product_origin_rationale.startswith("Not registered")
        for word in ("autologous", "allogeneic", "donor"):
            assert word not in text.lower(), word
    else:
        assert words in text
    assert intervention.gvhd_assessed is False


# (origin, acute GVHD assessed)
GVHD = [
    ("autologous", False),
    ("donor_prior_hsct", True),
    ("donor_new", True),
    ("unknown", True),
]


@pytest.mark.parametrize(("origin", "assessed"), GVHD)
def test_gvhd_is_assessed_only_when_donor_t_cells_are_possible(origin, assessed):
    assert gvhd_assessed(origin) is assessed


def test_unknown_origin_word_is_refused():
    with pytest.raises(ValueError, match="Invalid `product_origin`.*donor_prior_hsct"):
        gvhd_assessed("allogeneic")
    data = load("cd7-tall-dlt").intervention.model_dump()
    with pytest.raises(ValidationError, match="product_origin"):
        Intervention.model_validate({**data, "product_origin": "allogeneic"})
    with pytest.raises(ValidationError, match="needs a one-line `product_origin_rationale`"):
        Intervention.model_validate({**data, "product_origin": "donor_new",
                                     "product_origin_assumed": True,
                                     "product_origin_rationale": " "})
