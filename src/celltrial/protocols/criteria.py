"""Eligibility rule expressions: a small, safe grammar over named patient variables.

A rule is one Python-like expression, parsed with :mod:`ast` and checked against a
whitelist; nothing is ever passed to ``eval``. The grammar::

    expr     := expr 'or' expr | expr 'and' expr | 'not' expr | '(' expr ')'
              | operand (cmpop operand)+          # chained: 12 <= age_years <= 65
              | name                              # a bool variable
    cmpop    := '<' | '<=' | '>' | '>=' | '==' | '!=' | 'in' | 'not in'
    operand  := name | number | -number | 'string' | True | False | list
    list     := '[' literal (',' literal)* ']'    # right of in / not in only

Evaluation is three-valued (Kleene logic, as in SQL): a variable that is absent, ``None``
or NaN is *unknown*; a comparison involving an unknown is unknown; ``and`` is False as soon
as one side is False, ``or`` is True as soon as one side is True, otherwise unknown wins.
:func:`evaluate` returns ``None`` for unknown, so screening can say "not assessable"
rather than guessing.
"""

from __future__ import annotations

import ast
import math
import numbers
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from celltrial.errors import ProtocolError, invalid

__all__ = ["Comparison", "comparisons", "evaluate", "parse", "variables_of"]

_CMP: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], bool]]] = {
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.In: ("in", lambda a, b: a in b),
    ast.NotIn: ("not in", lambda a, b: a not in b),
}

_ORDERING = {"<", "<=", ">", ">="}


def _syntax(rule: str, what: str) -> ProtocolError:
    return ProtocolError(f"Invalid rule `{rule}`: {what}; allowed: comparisons (chained too), "
                         "and/or/not, in/not in [list], names, numbers, strings, True/False")


def _literal(node: ast.expr, rule: str) -> object:
    """A constant operand: number, -number, string or bool."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _literal(node.operand, rule)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _syntax(rule, "unary minus applies to numbers only")
        return -value
    if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | float | str):
        return node.value
    raise _syntax(rule, f"unsupported operand `{ast.unparse(node)}`")


def _check(node: ast.expr, rule: str) -> None:
    """Reject every construct outside the grammar."""
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, rule)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, rule)
    elif isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
            if type(op) not in _CMP:
                raise _syntax(rule, f"unsupported operator in `{ast.unparse(node)}`")
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right, ast.List | ast.Tuple) or not right.elts:
                    raise _syntax(rule, "`in`/`not in` needs a non-empty list literal on the right")
                for element in right.elts:
                    _literal(element, rule)
                if isinstance(left, ast.List | ast.Tuple):
                    raise _syntax(rule, "a list may only stand right of `in`/`not in`")
        for operand in operands:
            if isinstance(operand, ast.Name):
                continue
            if isinstance(operand, ast.List | ast.Tuple):
                continue  # checked above as the right side of in / not in
            _literal(operand, rule)
    elif isinstance(node, ast.Name):
        return
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return
    else:
        raise _syntax(rule, f"unsupported expression `{ast.unparse(node)}`")


@lru_cache(maxsize=4096)
def parse(rule: str) -> ast.expr:
    """Parse and whitelist-check ``rule``; raise :class:`ProtocolError` when outside the grammar."""
    if not isinstance(rule, str) or not rule.strip():
        raise _syntax(str(rule), "empty rule")
    try:
        tree = ast.parse(rule.strip(), mode="eval")
    except SyntaxError as exc:
        raise _syntax(rule, f"not an expression ({exc.msg})") from None
    _check(tree.body, rule)
    return tree.body


def variables_of(rule: str) -> set[str]:
    """Names of the patient variables that ``rule`` reads."""
    return {node.id for node in ast.walk(parse(rule)) if isinstance(node, ast.Name)}


@dataclass(frozen=True)
class Comparison:
    """One ``variable op literal`` step of a rule, normalised with the variable on the left."""

    variable: str
    op: str
    value: object
    negated: bool  # True when it sits under a `not` (lint then skips range reasoning)


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def comparisons(rule: str) -> list[Comparison]:
    """Every ``variable op literal`` pair in ``rule`` (for lint: ranges, units, categories)."""
    found: list[Comparison] = []

    def walk(node: ast.expr, negated: bool) -> None:
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                walk(value, negated)
        elif isinstance(node, ast.UnaryOp):
            walk(node.operand, not negated)
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
                symbol = _CMP[type(op)][0]
                if isinstance(left, ast.Name) and not isinstance(right, ast.Name):
                    value: object = (tuple(_literal(e, rule) for e in right.elts)
                                     if isinstance(right, ast.List | ast.Tuple)
                                     else _literal(right, rule))
                    found.append(Comparison(left.id, symbol, value, negated))
                elif isinstance(right, ast.Name) and not isinstance(left, ast.Name):
                    found.append(Comparison(right.id, _FLIP[symbol], _literal(left, rule), negated))

    walk(parse(rule), False)
    return found


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, numbers.Real) and not _is_bool(value) and math.isnan(float(value)))


def _lookup(name: str, values: Mapping[str, object]) -> object:
    value = values.get(name)
    if _missing(value):
        return None
    if _is_bool(value):
        return bool(value)  # type: ignore[arg-type]
    if isinstance(value, numbers.Real):
        return float(value)  # type: ignore[arg-type]
    return value


def _operand(node: ast.expr, values: Mapping[str, object], rule: str) -> object:
    if isinstance(node, ast.Name):
        return _lookup(node.id, values)
    if isinstance(node, ast.List | ast.Tuple):
        return tuple(_literal(e, rule) for e in node.elts)
    return _literal(node, rule)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _compare(symbol: str, fn: Callable[[Any, Any], bool], left: object, right: object,
             node: ast.Compare) -> bool:
    name = next((n.id for n in (node.left, *node.comparators) if isinstance(n, ast.Name)), "value")
    if symbol in ("in", "not in"):
        assert isinstance(right, tuple)
        if any(_kind(left) != _kind(item) for item in right):
            raise invalid(name, left, f"comparable with {list(right)!r}")
        return fn(left, right)
    if _kind(left) != _kind(right):
        raise invalid(name, left if isinstance(node.left, ast.Name) else right,
                      f"of the same type as the literal it is compared with in `{ast.unparse(node)}`")
    if symbol in _ORDERING and _kind(left) != "number":
        raise invalid(name, left, "a number to be ordered with `" + symbol + "`")
    return fn(left, right)


def _eval(node: ast.expr, values: Mapping[str, object], rule: str) -> bool | None:
    if isinstance(node, ast.BoolOp):
        results = [_eval(v, values, rule) for v in node.values]
        decisive = isinstance(node.op, ast.Or)  # or: True decides; and: False decides
        if decisive in results:
            return decisive
        return None if None in results else not decisive
    if isinstance(node, ast.UnaryOp):
        inner = _eval(node.operand, values, rule)
        return None if inner is None else not inner
    if isinstance(node, ast.Compare):
        operands = [_operand(n, values, rule) for n in (node.left, *node.comparators)]
        unknown = False
        for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
            if left is None or right is None:
                unknown = True
                continue
            symbol, fn = _CMP[type(op)]
            if not _compare(symbol, fn, left, right, node):
                return False
        return None if unknown else True
    if isinstance(node, ast.Name):
        value = _lookup(node.id, values)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise invalid(node.id, value, "True or False (it is used as a condition)")
        return value
    assert isinstance(node, ast.Constant)
    return bool(node.value)


def evaluate(rule: str, values: Mapping[str, object]) -> bool | None:
    """Evaluate ``rule`` on one patient's ``values``; ``None`` when the answer depends on a missing value.

    >>> evaluate("12 <= age_years <= 65", {"age_years": 40})
    True
    >>> evaluate("ecog <= 2 and not cns_leukemia", {"ecog": 3})
    False
    >>> evaluate("ecog <= 2 and not cns_leukemia", {"ecog": 1}) is None
    True
    """
    return _eval(parse(rule), values, rule)
