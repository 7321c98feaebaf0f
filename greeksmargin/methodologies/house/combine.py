"""Combination of components, the IM/MM relation and aggregation across underlyings.

**Combination expressions.** A model states how components combine per risk unit as an expression over
component names with ``+``, ``-``, ``*``, numbers, ``max(...)`` and ``min(...)``, e.g.::

    im = "min(max(scan, delta + gamma + vega) + short_option_minimum + roll, long_premium_cap)"

:func:`parse_expression` validates it once (unknown names are reported); :func:`evaluate` computes it
on arrays of shape (n_units,) with numpy (vectorised over every unit).

**IM/MM.** Either ``mm = mm_factor x im`` or a second expression.

**Aggregation across underlyings** (per account, over its units' requirements ``x_u >= 0``):

* ``sum``: ``sum_u x_u`` (no diversification);
* ``correlation``: *signed* correlation aggregation, never below the largest unit (README, Models),
  with ``C`` the correlation matrix of the underlyings (a default correlation for pairs not listed).
  Each unit's requirement ``x_u`` is split by the direction of its exposure
  (:func:`direction_from_losses`): with ``L_down`` / ``L_up`` the unit's worst loss when its underlying
  falls / rises (scan scenarios with a spot move ``< 0`` / ``> 0``, weights applied) and ``L_flat`` its
  worst loss with the spot unchanged (vol-only scenarios), the direction is
  ``d_u = (L_down - L_up) / max(L_down, L_up, L_flat)`` in ``[-1, 1]`` (+1: loses only on a fall, i.e.
  long; -1: loses only on a rise, i.e. short; 0: loses as much either way, only on a vol move, or not
  at all). The directional part ``v_u = d_u x_u`` is signed, the rest ``n_u = (1 - |d_u|) x_u`` is not::

      total = max(sqrt(max(v' C v + 2 |v|' C n + n' C n, 0)), max_u x_u)

  so a long and a short on positively correlated underlyings offset (``v' C v`` has a negative cross
  term), a unit that loses either way (a short straddle) adds to every other as unsigned charges do, and
  with all directions equal (all long, all short) or all 0 it is the unsigned ``sqrt(x' C x)``. One
  underlying gives ``x_u`` exactly; the total does not depend on the order of the underlyings;
* ``offsets`` (TIMS): the scan is aggregated per scenario with partial offsets between the classes of a
  product group (:func:`greeksmargin.methodologies.house.scan.offset_scan`); the other components are summed, and the
  expression is evaluated once more at account level.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Expression",
    "aggregate_correlation",
    "correlation_matrix",
    "direction_from_losses",
    "evaluate",
    "parse_expression",
    "side_losses",
]

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


def side_losses(
    pnl: NDArray[np.float64], spot_move: NDArray[np.float64], weights: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Worst weighted loss of each unit when its underlying falls, rises, or stays (vol-only scenarios).

    Parameters
    ----------
    pnl : ndarray of shape (n_scenarios, n_units)
        Unit P&L per scenario (margin currency; losses negative), unweighted.
    spot_move : ndarray of shape (n_scenarios,) or (n_scenarios, n_units)
        Relative spot move of each scenario (per unit when the units have different grids).
    weights : ndarray of shape (n_scenarios,) or (n_scenarios, n_units)
        Scenario weights.

    Returns
    -------
    loss_down, loss_up, loss_flat : ndarray of shape (n_units,)
        ``max(0, max_s -w_s pnl_s)`` over the scenarios with ``spot_move < 0`` / ``> 0`` / ``== 0``.
    """
    m = spot_move if spot_move.ndim == 2 else spot_move[:, None]
    w = weights if weights.ndim == 2 else weights[:, None]
    loss = -pnl * w
    out = []
    for side in (m < 0, m > 0, m == 0):
        out.append(np.max(np.where(side, loss, 0.0), axis=0, initial=0.0) if loss.shape[0]
                   else np.zeros(loss.shape[1]))
    return out[0], out[1], out[2]


def direction_from_losses(
    loss_down: NDArray[np.float64], loss_up: NDArray[np.float64], loss_flat: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """Direction of exposure of each unit: ``(L_down - L_up) / max(L_down, L_up, L_flat)``, 0 without loss.

    Parameters
    ----------
    loss_down, loss_up : ndarray of shape (n_units,)
        Worst loss (>= 0) when the underlying falls / rises (:func:`side_losses`, or the delta charge's
        losses at its fall / rise).
    loss_flat : ndarray of shape (n_units,), optional
        Worst loss with the spot unchanged (a unit losing mostly on a vol move is mostly non-directional).

    Returns
    -------
    ndarray of shape (n_units,)
        In ``[-1, 1]``: +1 loses on a fall only (long), -1 on a rise only (short), 0 either way.
    """
    ld = np.maximum(np.asarray(loss_down, dtype=float), 0.0)
    lu = np.maximum(np.asarray(loss_up, dtype=float), 0.0)
    top = np.maximum(ld, lu)
    if loss_flat is not None:
        top = np.maximum(top, np.asarray(loss_flat, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(top > 0, (ld - lu) / np.where(top > 0, top, 1.0), 0.0)
    return np.clip(d, -1.0, 1.0)


def aggregate_correlation(
    x: NDArray[np.float64], account: NDArray[np.intp], underlying: NDArray[np.intp], n_accounts: int,
    corr: NDArray[np.float64], direction: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Aggregate unit requirements per account with a correlation matrix, signed, never below the largest unit.

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
    direction : ndarray of shape (n_units,), optional
        Direction of each unit's exposure in ``[-1, 1]`` (:func:`direction_from_losses`); None: 0 for
        every unit (unsigned aggregation ``sqrt(x' C x)``).

    Returns
    -------
    total : ndarray of shape (n_accounts,)
        ``max(sqrt(max(v' C v + 2 |v|' C n + n' C n, 0)), max_u x_u)`` with ``v = d x``,
        ``n = (1 - |d|) x`` (module docstring).
    euler : ndarray of shape (n_units,)
        Euler allocation of ``total`` to the units (sums to the total; a hedging unit's share may be
        negative): ``(v_u (C v)_u + |v_u| (C n)_u + n_u (C |v|)_u + n_u (C n)_u) / root``, or the whole
        total to the largest unit when the floor binds.
    """
    x = np.asarray(x, dtype=float)
    d = np.zeros(x.shape) if direction is None else np.clip(np.asarray(direction, dtype=float), -1.0, 1.0)
    k = corr.shape[0]
    X = np.zeros((n_accounts, k))
    V = np.zeros((n_accounts, k))
    N = np.zeros((n_accounts, k))
    np.add.at(X, (account, underlying), x)
    np.add.at(V, (account, underlying), d * x)
    np.add.at(N, (account, underlying), (1.0 - np.abs(d)) * x)
    A = np.abs(V)
    cv, cn, ca = V @ corr, N @ corr, A @ corr
    q = np.einsum("ak,ak->a", V, cv) + 2.0 * np.einsum("ak,ak->a", A, cn) + np.einsum("ak,ak->a", N, cn)
    q = np.maximum(q, 0.0)
    root = np.sqrt(q)
    largest = X.max(axis=1) if X.shape[1] else np.zeros(n_accounts)
    # at most the sum (|C| <= 1): exactly x_u for one underlying, whatever the rounding of the split
    total = np.minimum(np.maximum(root, largest), X.sum(axis=1))
    a_u, u_u = account, underlying
    num = (V[a_u, u_u] * cv[a_u, u_u] + A[a_u, u_u] * cn[a_u, u_u] + N[a_u, u_u] * ca[a_u, u_u]
           + N[a_u, u_u] * cn[a_u, u_u])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(root[account] > 0, num / np.where(root[account] > 0, root[account], 1.0), 0.0)
    floor_binds = largest > root * (1 + 1e-15)
    if floor_binds.any():
        # the largest unit of such accounts carries the whole total (split evenly between units tied for
        # largest, so the allocation does not depend on the order of the underlyings)
        n_top = (X >= largest[:, None]).sum(axis=1)
        is_top = X[account, underlying] >= largest[account]
        fb = floor_binds[account]
        share = np.where(fb, np.where(is_top, total[account] / np.maximum(n_top[account], 1), 0.0), share)
        # two units with the same underlying in one account cannot occur (a unit is account x underlying)
    return total, share
