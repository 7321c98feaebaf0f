"""The house rule set at shared market moves: per-contract pieces aggregated to units, the engine's figures.

At a move shared by every account (one relative move per underlying, the same market for all) two
positions of the same contract see the same prices: every per-position piece of
:func:`greeksmargin.engine.house_run._run` is a per-contract piece times the position's size x currency
factor ``w``. :class:`SharedMoveEvaluator` prices each contract once per move and aggregates with sparse
matrices built once (entries summed over the positions):

* the unit P&L over the scan grid: (units x contract rows) of ``w`` times the contracts' P&L;
* the other additive pieces (revaluation P&L at the Greeks shocks, short option minimum, roll,
  long-premium value) and the isolated requirements, per *cell* (unit x expiry, the finest grouping the
  vega buckets and the roll's expiries need): (cells x (contract row, sign of ``w``)) of ``|w|`` times
  the pieces of each (contract row, sign) at ``w = +-1``. The sign is kept apart because the
  long-premium cap counts a unit's positions that are not long options (a count matrix of ones);
* the isolated requirement of a position (``cap_at_isolated``) is positively homogeneous in ``w``:
  every figure (scan loss, revaluation charges, short option minimum, roll, premium cap) and the
  combination expression (names, ``+ - max min``, numbers only as factors; checked) scale with a positive
  factor, so it is computed per (contract row, sign) at ``w = +-1`` and multiplied by ``|w|``;
* the unit and account rules are the engine's own functions (:func:`_unit_figures`,
  :func:`unit_requirements`, :func:`exposure_direction`, ``aggregate_correlation``) on those arrays.

Several moves are evaluated at once as a book of ``k`` copies (one pricing call, block products).
The same figures as the engine (floating-point sums in another order: equal to ~1e-15 relative).
:func:`shared_move_evaluator` returns None for what it does not cover (the caller then runs the engine):
another methodology than ``greeks-stress``, figures other than scan / delta / gamma / vega (revaluation
methods) / short option minimum / roll / long-premium cap, an aggregation other than ``sum`` /
``correlation``, a combination expression not positively homogeneous, American options, accounts
outside the model's domain.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.engine.house_pieces import (
    _position_figures,
    _position_values,
    _unit_figures,
    _weighted_bincount,
    contingency_pieces,
    delta_shocks,
    exposure_direction,
    gamma_shocks,
    revaluation_pieces,
    unit_requirements,
    vega_shocks,
)
from greeksmargin.engine.models import Model, RuleSet
from greeksmargin.methodologies.house import sensitivity as sens
from greeksmargin.methodologies.house.combine import aggregate_correlation, correlation_matrix
from greeksmargin.methodologies.house.scan import group_sum, scan_loss
from greeksmargin.risk.scenarios import _distinct_scenarios, grid_pnl

#: figures the evaluator covers (the others need the quantity, multiplier or a non-homogeneous rule)
SUPPORTED_FIGURES = frozenset({"scan", "delta", "gamma", "vega", "short_option_minimum", "roll",
                               "long_premium_cap"})
#: position arrays that fix a contract's per-unit pieces at any shared move (with the underlying code)
_KEY_FIELDS = ("kind_code", "is_call", "strike", "T", "forward", "spot", "vol", "rate", "inverse", "perp_ratio",
               "fx_moves")
#: moves evaluated together hold at most this many contract-row x scenario P&L values (memory bound)
MAX_BATCH_VALUES = 2_000_000
#: inputs the caller moves (per contract row, :meth:`SharedMoveEvaluator.requirements`)
MOVED_INPUTS = ("spot", "forward", "vol", "size_scale")


def _degree(node: ast.AST) -> int | None:
    """Degree of positive homogeneity of an expression node (0 constant, 1 homogeneous); None: neither."""
    if isinstance(node, ast.Expression):
        return _degree(node.body)
    if isinstance(node, ast.Name):
        return 1
    if isinstance(node, ast.Constant):
        return 0
    if isinstance(node, ast.UnaryOp):
        return _degree(node.operand)
    if isinstance(node, ast.BinOp):
        a, b = _degree(node.left), _degree(node.right)
        if a is None or b is None:
            return None
        if isinstance(node.op, ast.Mult):
            return a + b if a + b <= 1 else None
        return a if a == b else None
    if isinstance(node, ast.Call):
        ds = {_degree(x) for x in node.args}
        return ds.pop() if len(ds) == 1 else None
    return None


def _homogeneous(expr: Any) -> bool:
    return expr is None or _degree(expr.tree) == 1


def unsupported_reason(model: Any, arrays: Mapping[str, Any] | None = None) -> str:
    """Why :func:`shared_move_evaluator` cannot evaluate ``model`` (on ``arrays``); ``""`` when it can."""
    if not isinstance(model, Model) or not isinstance(model.params, RuleSet):
        return "not a component model"
    if model.methodology != "greeks-stress":
        return f"methodology {model.methodology!r}"
    rs: RuleSet = model.params
    extra = set(rs.figures) - SUPPORTED_FIGURES
    if extra:
        return f"figures {sorted(extra)}"
    for k in ("delta", "gamma", "vega"):
        if k in rs.figures and rs.components[k]["method"] != "revaluation":
            return f"{k} method {rs.components[k]['method']!r}"
    if rs.aggregate["method"] not in ("sum", "correlation"):
        return f"aggregation {rs.aggregate['method']!r}"
    if not (_homogeneous(rs.im) and _homogeneous(rs.mm)):
        return "combination expression not positively homogeneous"
    if "scan" in rs.figures and rs.grid is None:
        return "no scenario grid"
    if arrays is not None and "american" in arrays and np.any(arrays["american"]):
        return "American options"
    return ""


def _bits(x: Any) -> NDArray[np.uint64]:
    return np.ascontiguousarray(np.asarray(x), dtype=np.float64).view(np.uint64)


def _row_codes(cols: list[NDArray[np.uint64]]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Codes of the distinct rows of ``cols`` (bitwise equal) and the first index of each; shapes (n,), (k,).

    A 64-bit hash of each row, verified exactly (a collision falls back to a sort of the rows).
    """
    n = cols[0].size
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:  # boost-style hash combine (as risk.scenarios.contract_codes), uint64 wraps
            h ^= c + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (h >> np.uint64(2))
    codes, uniq = pd.factorize(h.view(np.int64))
    codes = codes.astype(np.intp)
    first = np.full(len(uniq), n, dtype=np.intp)
    np.minimum.at(first, codes, np.arange(n, dtype=np.intp))
    rep = first[codes]
    if all(np.array_equal(c, c[rep]) for c in cols):
        return codes, first
    _, first, inv = np.unique(np.stack(cols, axis=1), axis=0, return_index=True, return_inverse=True)
    return inv.ravel().astype(np.intp), first.astype(np.intp)


@dataclass
class SharedMoveEvaluator:
    """IM and MM of every account at shared moves, from per-contract pieces (module docstring).

    Attributes
    ----------
    rows : ndarray of int, shape (n_rows,)
        A position (index into the book's rows) of each contract row: the caller gives the moved inputs
        of these positions (:meth:`requirements`).
    row_of : ndarray of int, shape (n_positions,)
        Contract row of each position (book order).
    account_names : Index
        Accounts of the figures (sorted), as the engine names them.
    currency : ndarray of object, shape (n_accounts,)
        Margin currency of each account (the engine's).
    """

    rows: NDArray[np.intp]
    row_of: NDArray[np.intp]
    account_names: pd.Index
    currency: NDArray[Any]
    _s: dict[str, Any]

    def requirements(self, moved: Mapping[str, NDArray[np.float64]]) -> tuple[NDArray[np.float64],
                                                                               NDArray[np.float64]]:
        """IM and MM (the account's margin currency) of every account at shared moves.

        Parameters
        ----------
        moved : mapping of str -> ndarray of shape (n_rows,) or (k, n_rows)
            ``spot``, ``forward``, ``vol`` of the positions ``rows`` at the move (one row per move), and
            ``size_scale`` (their sizes' factor at the move, e.g. a moved conversion rate).

        Returns
        -------
        im, mm : ndarray of shape (n_accounts,) or (k, n_accounts)
        """
        one = np.ndim(moved["spot"]) == 1
        k = 1 if one else int(np.shape(moved["spot"])[0])
        n_acc = len(self.account_names)
        per_move = self._s["n_rows"] * max(self._s["n_s"], 1)
        step = max(1, min(k, MAX_BATCH_VALUES // max(per_move, 1)))  # memory: k copies of the P&L table
        im = np.empty((k, n_acc))
        mm = np.empty((k, n_acc))
        for j0 in range(0, k, step):
            j1 = min(k, j0 + step)
            flat = {key: np.asarray(moved[key], dtype=float).reshape(k, -1)[j0:j1].ravel() for key in MOVED_INPUTS}
            i_, m_ = self._requirements(self._tiled(j1 - j0), flat)
            im[j0:j1], mm[j0:j1] = i_.reshape(j1 - j0, n_acc), m_.reshape(j1 - j0, n_acc)
        return (im[0], mm[0]) if one else (im, mm)

    def _tiled(self, k: int) -> dict[str, Any]:
        """The layout of ``k`` copies of the book (copy ``j`` at the ``j``-th move) as one book."""
        s = self._s
        if k == 1:
            return s
        cache = s["tiled"]
        if k in cache:
            return cache[k]
        j = np.arange(k)

        def off(x: NDArray[Any], step: int) -> NDArray[Any]:
            return (np.asarray(x)[None, :] + step * j[:, None]).ravel()

        def rep(x: Any) -> Any:
            if x is None:
                return None
            x = np.asarray(x)
            return np.tile(x, k) if x.ndim == 1 else np.tile(x, (1, k))

        n_rows, n_units, n_acc = s["n_rows"], s["n_units"], s["n_acc"]
        n_q, n_cells = s["q_row"].size, s["c_unit"].size
        t = dict(s)
        t.update({
            "k": k, "n_units": k * n_units, "n_acc": k * n_acc,
            "row_arrays": {key: rep(v) for key, v in s["row_arrays"].items()},
            "row_und": rep(s["row_und"]), "kinds": rep(s["kinds"]),
            "rows_of_grid": [off(r, n_rows) for r in s["rows_of_grid"]],
            "units_of_grid": [off(u, n_units) for u in s["units_of_grid"]],
            "q_of_grid": [off(q, n_q) for q in s["q_of_grid"]],
            "q_row": off(s["q_row"], n_rows), "q_sign": rep(s["q_sign"]),
            "q_shock": {key: rep(v) for key, v in s["q_shock"].items()},
            "unit_shock": {key: rep(v) for key, v in s["unit_shock"].items()},
            "c_unit": off(s["c_unit"], n_units), "c_starts": off(s["c_starts"], n_cells),
            "c_bucket": rep(s["c_bucket"]), "c_expiry": rep(s["c_expiry"]),
            "row_pos": pd.DataFrame({c: rep(s["row_pos"][c].to_numpy()) for c in ("quantity", "multiplier")}),
            "row_arr": {key: (v if key == "underlyings" else rep(v)) for key, v in s["row_arr"].items()},
            "row_id": np.arange(k * n_rows), "unit_acc": off(s["unit_acc"], n_acc), "unit_und": rep(s["unit_und"]),
        })
        for key in ("unit_spot_move", "unit_weights"):
            if key in s:
                t[key] = rep(s[key])
        if len(cache) > 2:  # a few batch sizes kept (memory)
            cache.clear()
        cache[k] = t
        return t

    def _requirements(self, s: dict[str, Any], moved: Mapping[str, NDArray[np.float64]]) -> tuple[
            NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`requirements` on a layout (``_tiled``: ``k`` copies) and its flat moved inputs."""
        rs: RuleSet = s["rs"]
        need: set[str] = s["need"]
        a = dict(s["row_arrays"])
        for k in ("spot", "forward", "vol"):
            a[k] = np.asarray(moved[k], dtype=float)
        scale = np.asarray(moved["size_scale"], dtype=float)
        n_rows, n_units = scale.size, s["n_units"]
        q_row, q_sign = s["q_row"], s["q_sign"]
        # ---- per contract row (size 1, factor 1): scan P&L, revaluation P&L, price and value
        unit_pnl = None
        pnl_c = np.zeros((s["n_s"], n_rows))
        if "scan" in need:
            for gi, g in enumerate(s["grids"]):
                rr = s["rows_of_grid"][gi]
                if rr.size:
                    pnl_c[:, rr] = grid_pnl({k: v[rr] for k, v in a.items()}, g)
            x = pnl_c if np.all(scale == 1.0) else pnl_c * scale[None, :]
            # scenarios with the same P&L (e.g. a vol fall of 0): summed once, taken for each (the same sums)
            same = _distinct_scenarios(np.zeros(x.shape[0]), x)
            up = _block_product(s["S"], (x if same is None else x[same[0]]).T, s["k"]).T
            unit_pnl = up if same is None else up[same[1]]  # (n_s, n_units)
        rev = revaluation_pieces(rs, a, s["und_names"], np.ones(n_rows), underlying_code=s["row_und"])
        pr = _position_values(s["row_pos"], s["row_arr"] | {"spot": a["spot"], "forward": a["forward"],
                                                             "vol": a["vol"]}, s["market"], s["row_id"])
        price, value1 = pr["price"].astype(float), pr["value_ccy"].astype(float)
        inv = a["inverse"].astype(bool)
        unit_price = np.where(inv, 1.0, a["spot"])
        d1_price = np.where(inv, 1.0, price)
        # ---- per (contract row, sign) at w = +-1: contingency pieces and the position alone
        ra = s["row_arrays"]
        qa = {"kind_code": ra["kind_code"][q_row], "T": ra["T"][q_row], "is_call": ra["is_call"][q_row],
              "spot": a["spot"][q_row], "strike": ra["strike"][q_row]}
        ones = np.ones(q_row.size)
        Q: dict[str, NDArray[np.float64]] = contingency_pieces(
            rs, qa, kinds=s["kinds"][q_row], size=q_sign, unit_price=unit_price[q_row],
            d1_price=d1_price[q_row], value_ccy=value1[q_row] * q_sign, quantity=ones, multiplier=ones,
            factor=ones, currency_to_account=_no_floor,
        )
        for k, v in rev.items():
            Q[k] = v[q_row] * q_sign
        if "scan" in need:
            q_pnl = pnl_c[:, q_row] * q_sign[None, :]
            q_scan = np.zeros(q_row.size)
            for gi, g in enumerate(s["grids"]):
                qq = s["q_of_grid"][gi]
                if qq.size:
                    q_scan[qq] = scan_loss(q_pnl[:, qq], g.weights, s["gain"])[0]
            Q["pos_scan"] = q_scan
        q_im, q_mm = unit_requirements(rs, _position_figures(rs, need, Q, s["q_shock"]), q_row.size)
        # ---- cells (unit, expiry): sums over their positions of |w| x the (row, sign) figures
        linear = [k for k in (*rev, "som", "roll", "cap_value") if k in Q]
        X = np.stack([Q[k] for k in linear] + [q_im, q_mm], axis=1) * scale[q_row][:, None]
        Y = _block_product(s["Gq"], X, s["k"])
        P: dict[str, NDArray[np.float64]] = {k: Y[:, j] for j, k in enumerate(linear)}
        if "cap_other" in Q:
            # positions other than long options
            P["cap_other"] = _block_product(s["Gcount"], Q["cap_other"][:, None], s["k"])[:, 0]
        if unit_pnl is not None:
            unit_scan = np.zeros(n_units)
            for gi, g in enumerate(s["grids"]):
                uu = s["units_of_grid"][gi]
                if uu.size:
                    unit_scan[uu] = scan_loss(unit_pnl[:, uu], g.weights, s["gain"])[0]
            P["unit_scan"] = unit_scan
        starts = s["c_starts"]
        UF = _unit_figures(rs, need, P, s["c_unit"], starts, n_units, s["unit_shock"], s["c_bucket"],
                           s["n_buckets"], s["c_expiry"], s["n_expiry"])
        unit_im, unit_mm = unit_requirements(rs, UF, n_units, isolated_im=group_sum(Y[:, -2], starts),
                                             isolated_mm=group_sum(Y[:, -1], starts))
        # ---- aggregation across underlyings (house_run._run)
        n_acc = s["n_acc"]
        unit_acc, unit_und = s["unit_acc"], s["unit_und"]
        if rs.aggregate["method"] == "sum" or n_units == 0:
            im_acc = _weighted_bincount(unit_acc, unit_im, n_acc)
            mm_acc = _weighted_bincount(unit_acc, unit_mm, n_acc)
        else:
            if unit_pnl is not None:
                direction = exposure_direction(rs, pnl=unit_pnl, spot_move=s["unit_spot_move"],
                                               weights=s["unit_weights"])
            else:
                direction = exposure_direction(
                    rs, net={k: group_sum(P[k], starts) for k in ("delta", "delta_up", "delta_down") if k in P},
                    shock=s["unit_shock"])
            im_acc, _ = aggregate_correlation(unit_im, unit_acc, unit_und, n_acc, s["C"], direction)
            if rs.mm is not None:
                mm_acc, _ = aggregate_correlation(unit_mm, unit_acc, unit_und, n_acc, s["C"], direction)
        if rs.mm is None:
            assert rs.mm_factor is not None
            mm_acc = rs.mm_factor * im_acc
        return im_acc, mm_acc


def _block_product(M: Any, X: NDArray[np.float64], k: int) -> NDArray[np.float64]:
    """``M`` (r, m) applied to each of ``k`` stacked blocks of rows of ``X``: (k m, c) -> (k r, c)."""
    if k == 1:
        return np.asarray(M @ X)
    m, c = M.shape[1], X.shape[1]
    Y = np.asarray(M @ X.reshape(k, m, c).transpose(1, 0, 2).reshape(m, k * c))
    return Y.reshape(-1, k, c).transpose(1, 0, 2).reshape(-1, c)


def _no_floor(ccy: str) -> Any:  # pragma: no cover - contract_floor is not a supported figure
    raise AssertionError("contract floor is not evaluated at shared moves")


def shared_move_evaluator(
    positions: pd.DataFrame,
    market: Any,
    model: Any,
    arrays: Mapping[str, Any],
    *,
    key: list[NDArray[Any]] | None = None,
    account_codes: tuple[NDArray[np.intp], pd.Index] | None = None,
    underlying_codes: tuple[NDArray[np.intp], pd.Index] | None = None,
) -> SharedMoveEvaluator | None:
    """A :class:`SharedMoveEvaluator` of a book, or None when the model or book is not covered.

    Parameters
    ----------
    positions : DataFrame
        Validated positions (rows of a Book), every account computable.
    market : MarketSnapshot
        Today's market (the currencies of coin amounts; the moves come with :meth:`~SharedMoveEvaluator.requirements`).
    model : Model
        A loaded model.
    arrays : mapping of str -> ndarray of shape (n,)
        Today's market arrays of the positions (:func:`greeksmargin.risk.greeks.market_arrays`).
    key : list of ndarray of shape (n,), optional
        Further per-position values two positions of one contract row must share (how the caller moves
        their inputs: the underlying's index in the move vector, the vol reaction, currency links).
    account_codes, underlying_codes : (ndarray of int, Index), optional
        Sorted factorisations of the positions' accounts / underlyings (as for ``margin_requirements``).

    Returns
    -------
    SharedMoveEvaluator or None
    """
    from greeksmargin.engine.house_run import _run

    if unsupported_reason(model, arrays) or len(positions) == 0:
        return None
    if model.domain.not_computed(positions, model.name):
        return None
    rs: RuleSet = model.params
    need = set(rs.figures)
    res = _run(positions, market, model, arrays=arrays, tables=False, account_codes=account_codes,
               underlying_codes=underlying_codes, layout_only=True)
    it = res._internals
    order = np.asarray(it["order"], dtype=np.intp)
    A = it["arrays"]
    und_code = np.asarray(it["und_code"], dtype=np.intp)
    unit = np.asarray(it["unit_of"], dtype=np.intp)
    factor = np.asarray(it["factor"], dtype=float)
    n = order.size
    # ---- contract rows: positions whose per-unit pieces agree at every shared move
    cols = [_bits(A[k]) for k in _KEY_FIELDS] + [und_code.astype(np.uint64)]
    cols += [_bits(np.asarray(k_)[order]) for k_ in (key or [])]
    row_sorted, first = _row_codes(cols)
    n_rows = first.size
    rows = order[first]  # book index of each row's representative
    row_of = np.empty(n, dtype=np.intp)
    row_of[order] = row_sorted
    # ---- (contract row, sign of w) pairs: the pieces at w = +-1
    w0 = A["size"].astype(float) * factor
    sgn = np.sign(w0).astype(np.int64) + 1  # 0 negative, 1 zero, 2 positive
    qkeys, pos_q = np.unique(row_sorted.astype(np.int64) * 3 + sgn, return_inverse=True)
    pos_q = pos_q.ravel()
    q_row = (qkeys // 3).astype(np.intp)
    q_sign = (qkeys % 3 - 1).astype(float)
    # ---- cells: (unit, expiry) of the positions, sorted by unit (the units' sums by expiry bucket / expiry)
    n_units = int(it["unit_acc"].size)
    t_code, _ = pd.factorize(_bits(A["T"]))
    ckeys, pos_c = np.unique(unit.astype(np.int64) * (int(t_code.max()) + 1) + t_code, return_inverse=True)
    pos_c = pos_c.ravel()
    c_first = np.zeros(ckeys.size, dtype=np.intp)
    c_first[pos_c[::-1]] = np.arange(n)[::-1]
    c_unit = unit[c_first]
    c_T = np.asarray(A["T"], dtype=float)[c_first]
    c_starts = np.flatnonzero(np.r_[True, c_unit[1:] != c_unit[:-1]]) if n else np.zeros(0, np.intp)
    # ---- sparse sums (entries summed over positions): units x rows of w, cells x pairs of |w| and of 1
    from scipy import sparse

    S = sparse.csr_matrix((w0, (unit, row_sorted)), shape=(n_units, n_rows))
    Gq = sparse.csr_matrix((np.abs(w0), (pos_c, pos_q)), shape=(ckeys.size, qkeys.size))
    Gcount = sparse.csr_matrix((np.ones(n), (pos_c, pos_q)), shape=(ckeys.size, qkeys.size))
    for mat in (S, Gq):
        mat.eliminate_zeros()  # a position of size 0 adds nothing (and 0 x inf is not 0)
    row_arrays = {k: np.asarray(A[k])[first] for k in ("kind_code", "is_call", "strike", "T", "forward", "spot",
                                                       "vol", "rate", "inverse", "perp_ratio", "fx_moves")}
    row_arrays["size"] = np.ones(n_rows)
    row_und = und_code[first]
    und_names = np.asarray(it["underlying_names"], dtype=object)
    und_str = [str(u) for u in und_names]
    grids = list(it["grids"])
    unit_grid = np.asarray(it["unit_grid"], dtype=np.intp)
    grid_of_row = np.asarray(it["grid_id"], dtype=np.intp)[first]
    unit_und = np.asarray(it["unit_und"], dtype=np.intp)
    unit_shock: dict[str, NDArray[np.float64]] = {}
    q_shock: dict[str, NDArray[np.float64]] = {}
    if "delta" in need:
        for side in ("down", "up"):
            per = delta_shocks(rs.components["delta"], und_str, side)
            unit_shock[f"delta_{side}"], q_shock[f"delta_{side}"] = per[unit_und], per[row_und[q_row]]
    if "gamma" in need:
        per = gamma_shocks(rs.components["gamma"], und_str)
        unit_shock["gamma"], q_shock["gamma"] = per[unit_und], per[row_und[q_row]]
    c_bucket, n_buckets = None, 1
    if "vega" in need:
        c = rs.components["vega"]
        for side in ("up", "down"):
            per = vega_shocks(c, und_str, side)
            unit_shock[f"vega_{side}"], q_shock[f"vega_{side}"] = per[unit_und], per[row_und[q_row]]
        c_bucket = sens.expiry_bucket(c_T, c["bucket_days"])
        n_buckets = len(c["bucket_days"]) + 1
    c_expiry, n_expiry = None, 1
    if "roll" in need:
        t = np.nan_to_num(c_T, nan=0.0)
        names, c_expiry = np.unique(np.round(t * 365 * 24 * 3600).astype(np.int64), return_inverse=True)
        c_expiry = c_expiry.astype(np.intp).ravel()
        n_expiry = max(len(names), 1)
    kinds = np.array(["option", "future", "perpetual", "spot"], dtype=object)[np.clip(row_arrays["kind_code"], 0, 3)]
    # the price and value of each row by the engine's own function (book order of its representatives)
    row_arr = {k: np.asarray(v)[rows] for k, v in arrays.items() if k != "underlyings" and np.ndim(v) == 1
               and len(v) == n}
    row_arr["underlyings"] = arrays["underlyings"]
    row_arr["size"] = np.ones(n_rows)
    s: dict[str, Any] = {
        "rs": rs, "need": need, "row_arrays": row_arrays, "row_und": row_und, "und_names": und_names,
        "q_row": q_row, "q_sign": q_sign, "q_shock": q_shock, "S": S, "Gq": Gq, "Gcount": Gcount,
        "c_unit": c_unit, "c_starts": c_starts, "c_bucket": c_bucket, "n_buckets": n_buckets,
        "c_expiry": c_expiry, "n_expiry": n_expiry, "n_units": n_units, "k": 1, "tiled": {},
        "n_rows": n_rows, "n_acc": len(it["account_names"]),
        "grids": grids, "n_s": grids[0].n_scenarios if grids else 0,
        "rows_of_grid": [np.flatnonzero(grid_of_row == gi) for gi in range(len(grids))],
        "units_of_grid": [np.flatnonzero(unit_grid == gi) for gi in range(len(grids))],
        "q_of_grid": [np.flatnonzero(grid_of_row[q_row] == gi) for gi in range(len(grids))],
        "gain": rs.components["scan"]["gain_offset"] if "scan" in need else 1.0,
        "unit_shock": unit_shock, "kinds": kinds, "market": market,
        "row_pos": positions.iloc[rows], "row_arr": row_arr, "row_id": np.arange(n_rows),
        "unit_acc": np.asarray(it["unit_acc"], dtype=np.intp), "unit_und": unit_und,
        "C": None if rs.aggregate["method"] != "correlation" else correlation_matrix(
            und_str, rs.aggregate["default_correlation"], rs.aggregate["correlations"]),
    }
    if grids and n_units:
        s["unit_spot_move"] = np.stack([g.spot_move for g in grids], axis=1)[:, unit_grid]
        s["unit_weights"] = np.stack([g.weights for g in grids], axis=1)[:, unit_grid]
    return SharedMoveEvaluator(rows=rows, row_of=row_of, account_names=pd.Index(it["account_names"]),
                               currency=np.asarray(it["acc_ccy"], dtype=object), _s=s)
