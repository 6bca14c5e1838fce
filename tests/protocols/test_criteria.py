"""Rule grammar and three-valued evaluation (celltrial.protocols.criteria)."""

from __future__ import annotations

import math

import pytest

from celltrial.errors import InvalidValue, ProtocolError
from celltrial.protocols.criteria import comparisons, evaluate, variables_of

AGE = "12 <= age_years <= 65"
HEART = "lvef >= 0.5 or nyha_class <= 2"
LIVER = "ast_x_uln <= 3 and alt_x_uln <= 3 and bilirubin_mg_dl <= 2.0"


@pytest.mark.parametrize(("rule", "values", "expected"), [
    # chained comparison, both edges inclusive
    (AGE, {"age_years": 12}, True),
    (AGE, {"age_years": 65}, True),
    (AGE, {"age_years": 11.9}, False),
    (AGE, {"age_years": 66}, False),
    (AGE, {}, None),
    (AGE, {"age_years": None}, None),
    (AGE, {"age_years": math.nan}, None),
    # or: True decides, else unknown wins over False
    (HEART, {"lvef": 0.6, "nyha_class": 4}, True),
    (HEART, {"lvef": 0.4, "nyha_class": 2}, True),
    (HEART, {"lvef": 0.4, "nyha_class": 3}, False),
    (HEART, {"nyha_class": 1}, True),
    (HEART, {"nyha_class": 3}, None),
    (HEART, {"lvef": 0.4}, None),
    (HEART, {}, None),
    # and: False decides, else unknown wins over True
    (LIVER, {"ast_x_uln": 1, "alt_x_uln": 1, "bilirubin_mg_dl": 1.0}, True),
    (LIVER, {"ast_x_uln": 3.1, "alt_x_uln": 1, "bilirubin_mg_dl": 1.0}, False),
    (LIVER, {"ast_x_uln": 3.1}, False),
    (LIVER, {"ast_x_uln": 1, "alt_x_uln": 1}, None),
    # not
    ("not cns_leukemia", {"cns_leukemia": False}, True),
    ("not cns_leukemia", {"cns_leukemia": True}, False),
    ("not cns_leukemia", {}, None),
    # in / not in with list literals
    ("diagnosis not in ['T-ALL', 'T-LBL']", {"diagnosis": "AML"}, True),
    ("diagnosis not in ['T-ALL', 'T-LBL']", {"diagnosis": "T-LBL"}, False),
    ("diagnosis in ['AML', 'MPAL']", {"diagnosis": "MPAL"}, True),
    ("diagnosis in ['AML', 'MPAL']", {}, None),
    ("relapsed_refractory and diagnosis in ['AML']", {"diagnosis": "B-ALL"}, False),
    ("ecog == 0 or ecog != 1", {"ecog": 1}, False),
    ("x > -1", {"x": -0.5}, True),
    ("True", {}, True),
])
def test_truth_table(rule: str, values: dict[str, object], expected: bool | None) -> None:
    assert evaluate(rule, values) is expected


def test_numpy_and_pandas_scalars_are_accepted() -> None:
    np = pytest.importorskip("numpy")
    assert evaluate(AGE, {"age_years": np.int64(30)}) is True
    assert evaluate("not cns_leukemia", {"cns_leukemia": np.bool_(False)}) is True
    assert evaluate(AGE, {"age_years": np.float64("nan")}) is None


def test_variables_of() -> None:
    assert variables_of(HEART) == {"lvef", "nyha_class"}
    assert variables_of("not cns_leukemia and diagnosis in ['AML']") == {"cns_leukemia", "diagnosis"}
    assert variables_of("True") == set()


def test_comparisons_put_the_variable_left() -> None:
    found = comparisons(AGE)
    assert [(c.variable, c.op, c.value) for c in found] == [("age_years", ">=", 12),
                                                            ("age_years", "<=", 65)]
    assert comparisons("not (ecog > 2)")[0].negated is True


@pytest.mark.parametrize("rule", [
    "__import__('os').system('true')",
    "age_years.real > 3",
    "ages[0] > 3",
    "age_years + 1 > 3",
    "diagnosis in other_list",
    "lambda: 1",
    "f(x)",
    "x is None",
    "None",
    "x > None",
    "[1, 2] in [1]",
    "diagnosis in []",
    "",
    "age_years >",
])
def test_outside_the_grammar_is_a_protocol_error(rule: str) -> None:
    with pytest.raises(ProtocolError, match=r"^Invalid rule `"):
        evaluate(rule, {})


@pytest.mark.parametrize(("rule", "values", "name"), [
    ("ecog <= 2", {"ecog": "two"}, "ecog"),
    ("not cns_leukemia", {"cns_leukemia": 1}, "cns_leukemia"),
    ("diagnosis < 'B'", {"diagnosis": "AML"}, "diagnosis"),
    ("diagnosis in ['AML']", {"diagnosis": 3}, "diagnosis"),
])
def test_wrongly_typed_value_names_the_variable(rule: str, values: dict[str, object],
                                                name: str) -> None:
    with pytest.raises(InvalidValue, match=rf"^Invalid `{name}`: got "):
        evaluate(rule, values)
