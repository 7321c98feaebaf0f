"""Combination of components, the IM/MM relation and aggregation across underlyings.

**Combination expressions.** A model states how components combine per risk unit as an expression over
component names with ``+``, ``-``, ``*``, numbers, ``max(...)`` and ``min(...)``, e.g.::

    im = "min(max(scan, delta + gamma + vega) + short_option_minimum + roll, long_premium_cap)"

:func:`parse_expression` validates it once (unknown names are reported); :func:`evaluate` computes it
on arrays of shape (n_units,) with numpy (vectorised over every unit).

**IM/MM.** Either ``mm = mm_factor x im`` or a second expression.

**Aggregation across underlyings** (per account, over its units' requirements ``x_u >= 0``):

* ``sum``: ``sum_u x_u`` (no diversification);
* ``correlation``: ``max(sqrt(x' C x), max_u x_u)`` with ``C`` the correlation matrix of the
  underlyings (a default correlation for pairs not listed);
* ``offsets`` (TIMS): the scan is aggregated per scenario with partial offsets between the classes of a
  product group (:func:`greeksmargin.rules.scan.offset_scan`); the other components are summed, and the
  expression is evaluated once more at account level.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["Expression", "aggregate_correlation", "correlation_matrix", "evaluate", "parse_expression"]

_FUNCS = {"max": np.maximum, "min": np.minimum}


class Expression:
    """A validated combination expression.

    Parameters
    ----------
    text : str
        The expression.
    tree : ast.Expression
        Its syntax tree (only names, numbers, ``+ - *``, ``max``, ``min``).
    names : frozenset of str
        Component names it uses.
    """

    def __init__(self, text: str, tree: ast.Expression, names: frozenset[str]) -> None:
        self.text = text
        self.tree = tree
        self.names = names

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def parse_expression(text: str, allowed: Sequence[str]) -> Expression:
    """Parse and validate a combination expression.

    Parameters
    ----------
    text : str
        The expression.
    allowed : sequence of str
        Component names that may appear.

    Returns
    -------
    Expression

    Raises
    ------
    ValueError
        Syntax error, a construct other than names / numbers / ``+ - *`` / ``max`` / ``min``, or an
        unknown component name (the message names it).
    """
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid expression {text!r}: {exc.msg}") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS) or node.keywords:
                raise ValueError(f"invalid expression {text!r}: only max(...) and min(...) may be called")
            if len(node.args) < 2:
                raise ValueError(f"invalid expression {text!r}: max/min need at least two arguments")
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
                raise ValueError(f"invalid expression {text!r}: only +, - and * are allowed")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise ValueError(f"invalid expression {text!r}: constant {node.value!r} is not a number")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.USub):
                raise ValueError(f"invalid expression {text!r}: only unary minus is allowed")
        elif not isinstance(node, (ast.Expression, ast.Load, ast.Add, ast.Sub, ast.Mult, ast.USub)):
            raise ValueError(f"invalid expression {text!r}: {type(node).__name__} is not allowed")
    names -= set(_FUNCS)
    unknown = sorted(names - set(allowed))
    if unknown:
        raise ValueError(
            f"expression {text!r} names unknown component(s) {', '.join(unknown)} "
            f"(components of this model: {', '.join(sorted(allowed))})"
        )
    return Expression(text, tree, frozenset(names))


def evaluate(expr: Expression, values: Mapping[str, NDArray[np.float64]]) -> NDArray[np.float64]:
    """Evaluate ``expr`` on arrays (broadcasting); ``values`` maps each component name to its array."""

    def ev(node: ast.AST) -> NDArray[np.float64]:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Name):
            return np.asarray(values[node.id], dtype=float)
        if isinstance(node, ast.Constant):
            assert isinstance(node.value, (int, float))  # parse admits numeric constants only
            return np.asarray(float(node.value))
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            with np.errstate(invalid="ignore"):
                return np.where((a == 0) | (b == 0), 0.0, a * b)  # 0 x inf = 0 (an absent cap)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            f = _FUNCS[node.func.id]
            out = ev(node.args[0])
            for arg in node.args[1:]:
                out = f(out, ev(arg))
            return out
        raise ValueError(f"cannot evaluate {ast.dump(node)}")  # pragma: no cover (parse rejects it)

    return ev(expr.tree)


def correlation_matrix(
    underlyings: Sequence[str], default: float, pairs: Mapping[tuple[str, str], float]
) -> NDArray[np.float64]:
    """Correlation matrix of ``underlyings`` (shape (n, n)): 1 on the diagonal, listed pairs, else ``default``."""
    n = len(underlyings)
    c = np.full((n, n), float(default))
    pos = {u: i for i, u in enumerate(underlyings)}
    for (a, b), rho in pairs.items():
        if a in pos and b in pos:
            c[pos[a], pos[b]] = c[pos[b], pos[a]] = float(rho)
    np.fill_diagonal(c, 1.0)
    return c


def aggregate_correlation(
    x: NDArray[np.float64], account: NDArray[np.intp], underlying: NDArray[np.intp], n_accounts: int,
    corr: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Aggregate unit requirements per account with a correlation matrix, never below the largest unit.

    Parameters
    ----------
    x : ndarray of shape (n_units,)
        Unit requirements (>= 0).
    account, underlying : ndarray of shape (n_units,)
        Account code (``0..n_accounts-1``) and underlying code (index into ``corr``) of each unit.
    n_accounts : int
        Number of accounts.
    corr : ndarray of shape (n_underlyings, n_underlyings)
        Correlation matrix.

    Returns
    -------
    total : ndarray of shape (n_accounts,)
        ``max(sqrt(x' C x), max_u x_u)``.
    euler : ndarray of shape (n_units,)
        Euler allocation of ``total`` to the units: ``x_u (C x)_u / sqrt(x' C x)`` (sums to the total),
        or the whole total to the largest unit when the floor binds.
    """
    X = np.zeros((n_accounts, corr.shape[0]))
    np.add.at(X, (account, underlying), x)
    cx = X @ corr
    q = np.maximum(np.einsum("ak,ak->a", X, cx), 0.0)
    root = np.sqrt(q)
    largest = X.max(axis=1) if X.shape[1] else np.zeros(n_accounts)
    total = np.maximum(root, largest)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(root[account] > 0, x * cx[account, underlying] / root[account], 0.0)
    floor_binds = largest > root * (1 + 1e-15)
    if floor_binds.any():
        # the largest unit of such accounts carries the whole total
        top = np.argmax(X, axis=1)
        fb = floor_binds[account]
        share = np.where(fb, np.where(underlying == top[account], total[account], 0.0), share)
        # two units with the same underlying in one account cannot occur (a unit is account x underlying)
    return total, share
