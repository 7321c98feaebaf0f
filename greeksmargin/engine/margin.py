"""``compute_margin``: positions x market x model -> initial and maintenance margin, explained.

Pipeline (every step vectorised over positions; no Python loop per account):

1. look up the book's market arrays once (:func:`~greeksmargin.risk.greeks.market_arrays`) and value each
   position (Greeks of :func:`~greeksmargin.risk.greeks.price_positions` only on demand, ``net_greeks``);
2. sort positions by (scenario grid, account, underlying): a *risk unit* is one account x one underlying,
   its positions are contiguous;
3. per position, in the account's margin currency: the P&L under every scenario (chunks of positions,
   :func:`~greeksmargin.risk.scenarios.scenario_pnl`), finite-difference delta / gamma / vega, the P&L at
   the gamma price shocks and with the vega vol shocks when those charges use ``method = "revaluation"``
   (:func:`revaluation_pieces`), and the per-position pieces of the contingencies;
4. per unit (``np.add.reduceat`` / ``np.bincount``): scan, sensitivity charges, contingencies; the unit
   requirement is the model's combination expression;
5. per account: aggregation across underlyings (sum, correlation, TIMS offsets); MM from ``mm_factor``
   or its own expression;
6. isolated requirement: the same figures with every position its own unit and account (no extra
   revaluation: the per-position P&L is reduced on its own).

**Margin currency of an account**: the settlement currency shared by all its positions (the coin for an
all-inverse account), else USD, coin amounts converted at the current spot (``market.fx_to_usd``); in a
scenario the P&L of a coin-settled position of a USD-margined account is its USD P&L at the scenario's
coin price (position array ``fx_moves``, :mod:`greeksmargin.risk.scenarios`), in the scan, the Greeks
charges, the isolated figures and every consumer of the engine (what-if, solvency, distance to
liquidation, cascade, attribution).

**Aggregation across underlyings** with ``method = "correlation"`` is signed: each unit's requirement
carries the direction of its exposure (:func:`exposure_direction`; the formula is in
:mod:`greeksmargin.methodologies.house.combine`).

**Attribution** (:meth:`MarginResult.attribution`): the account requirement is first split across its
units (sum: each unit's requirement; correlation: Euler shares ``x_u (C x)_u / sqrt(x' C x)``, all to the
largest unit when the floor binds; TIMS offsets: proportional to the unit requirements); inside a unit
the part explained by the scan, ``min(scan, requirement)``, goes to positions by their (weighted) P&L in
the unit's worst scenario (Euler allocation of a worst-case loss), the rest proportionally to each
position's isolated requirement. The rounding residual goes to the largest contribution, so the
contributions sum to ``im`` exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.engine.models import Model, RuleSet, load_model
from greeksmargin.errors import ArgumentTypeError, GreeksMarginError, InputError, ModelError
from greeksmargin.methodologies.house import contingency as cont
from greeksmargin.methodologies.house import sensitivity as sens
from greeksmargin.methodologies.house.combine import (
    aggregate_correlation,
    correlation_matrix,
    direction_from_losses,
    evaluate,
    side_losses,
)
from greeksmargin.methodologies.house.scan import group_sum, offset_scan, scan_loss
from greeksmargin.methodologies.house.tidy import component_rows
from greeksmargin.risk.scenarios import CHUNK, ScenarioGrid, VolShockRule, scenario_pnl, sensitivities

if TYPE_CHECKING:
    from greeksmargin.engine.adapters import AdapterMarginResult

__all__ = ["MarginResult", "compute_margin", "exposure_direction", "margin_change", "unit_requirements"]

#: rule family of each figure (the ``rule`` column of the tidy rows)
RULE_OF = {
    "scan": "scan",
    "delta": "sensitivity",
    "gamma": "sensitivity",
    "vega": "sensitivity",
    "short_option_minimum": "contingency",
    "roll": "contingency",
    "contract_floor": "floor",
    "long_premium_cap": "cap",
    "option_standard_im": "standard",
    "option_standard_mm": "standard",
    "delta_one_im": "standard",
    "delta_one_mm": "standard",
}

#: ``backend="auto"`` uses the compiled kernel from this many position x scenario evaluations on
NUMBA_MIN_EVALUATIONS = 2_000_000

_GREEK_COLUMNS = ["delta_cash", "delta_1pct", "gamma_cash_1pct", "vega_1volpt", "theta_1d", "coin_delta", "value_usd"]


# ============================================================================================ result
@dataclass
class MarginResult:
    """Result of :func:`compute_margin`: tables, and methods that explain them.

    Attributes
    ----------
    accounts : DataFrame
        One row per account: ``account, im, mm, isolated_im, saving, saving_pct, currency``, one column
        per figure of the model (sum over the account's units), ``worst_scenario`` and ``error`` (None,
        or the reason an account could not be computed with ``errors="collect"``), ``status``
        (``computed``; ``error``; ``not_computed``: the account holds a position outside the model's
        domain, :class:`~greeksmargin.engine.models.Domain`, its figures are NaN, never 0) and ``reason``
        (None, the error, or the positions and the domain rule); with collateral also
        ``collateral_im, collateral_mm, excess_im, excess_mm``.
    components : DataFrame
        Tidy rows ``account, underlying, rule, component, amount, currency``: every figure of every unit,
        the unit requirements (``rule = "combination"``) and the account totals (``underlying = "ALL"``).
    by_underlying : DataFrame
        One row per (account, underlying): figures, ``im``, ``mm``, ``worst_scenario``.
    worst_scenarios : DataFrame
        Worst scenario of each unit: index, label, spot move, vol direction, weight and the weighted P&L.
    model : Model
        The model used.
    """

    accounts: pd.DataFrame
    components: pd.DataFrame
    by_underlying: pd.DataFrame
    worst_scenarios: pd.DataFrame
    model: Model
    _internals: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def net_greeks(self) -> pd.DataFrame:
        """Net cash Greeks per (account, underlying) in USD (``coin_delta`` in coin), computed on first use."""
        it = self._internals
        if "net_greeks" not in it:
            from greeksmargin.risk.greeks import price_positions

            priced = price_positions(it["positions"], it["market"])
            cols = [c for c in _GREEK_COLUMNS if c in priced.columns]
            it["net_greeks"] = priced.groupby(["account", "underlying"], sort=True)[cols].sum(min_count=1).reset_index()
        return it["net_greeks"]

    # ------------------------------------------------------------------ queries
    def _row(self, account: str) -> pd.Series:
        rows = self.accounts[self.accounts["account"] == account]
        if rows.empty:
            raise InputError(f"account '{account}' is not in the result", column="account")
        return rows.iloc[0]

    def pnl_matrix(self, account: str) -> pd.DataFrame:
        """P&L of each position of ``account`` in each scenario, in the account's margin currency.

        Returns
        -------
        DataFrame of shape (n_scenarios, n_positions)
            Index: scenario labels (of the default grid; underlyings with their own grid use theirs in
            the same order); columns: the positions' index labels. Unweighted P&L.
        """
        self._row(account)
        it = self._internals
        if not it.get("grids"):
            raise ModelError(f"model '{self.model.name}' has no scenario grid", file=self.model.file, key="grid")
        sel = np.flatnonzero(it["acc_code"] == it["account_names"].get_loc(account))
        cols = []
        for j in sel:
            g = it["grids"][it["grid_id"][j]]
            a = {k: v[j : j + 1] for k, v in it["arrays"].items()}
            vols = g.vol_rule.shocked(a["vol"], a["T"], g.vol_dir)
            cols.append(scenario_pnl(a, g.spot_move, vols)[:, 0] * it["factor"][j])
        mat = np.column_stack(cols) if cols else np.zeros((it["grids"][0].n_scenarios, 0))
        return pd.DataFrame(mat, index=list(it["grids"][0].labels), columns=it["labels"][sel])

    def explain(self, account: str) -> str:
        """Plain-text, line-by-line explanation of an account's requirement."""
        row = self._row(account)
        m = self.model
        ccy = row["currency"]
        lines = [f"Account {account} under model {m.name} ({m.methodology}); amounts in {ccy}."]
        if row.get("status") == "not_computed":
            lines.append(f"  {row['reason']}")
            lines.append("  IM and MM: not computed (null), not 0: the model does not cover these positions.")
            return "\n".join(lines)
        if row.get("error"):
            lines.append(f"  not computed: {row['error']}")
            return "\n".join(lines)
        rs: RuleSet = m.params
        lines.append(f"Per underlying, IM = {rs.im.text}")
        if rs.cap_at_isolated:
            lines.append("  (each underlying capped at the sum of its positions margined alone)")
        bu = self.by_underlying[self.by_underlying["account"] == account]
        figs = [f for f in rs.figures if f in bu.columns]
        for _, u in bu.iterrows():
            lines.append(f"  {u['underlying']}: IM {u['im']:,.6g}")
            for f in figs:
                v = u[f]
                if np.isfinite(v):
                    lines.append(f"    {f:<22s} {v:>16,.6g}   ({RULE_OF.get(f, '')})")
            if isinstance(u.get("worst_scenario"), str) and u["worst_scenario"]:
                lines.append(f"    worst scenario: {u['worst_scenario']}")
        agg = rs.aggregate["method"]
        if agg == "correlation":
            lines.extend(self._correlation_lines(account))
        elif agg == "offsets":
            lines.append("Across underlyings: scan P&L offset between classes of a product group (TIMS)")
        else:
            lines.append("Across underlyings: sum")
        lines.append(f"IM  {row['im']:,.6g} {ccy}")
        mm_rule = f"{rs.mm_factor:g} x IM" if rs.mm_factor is not None else (rs.mm.text if rs.mm else "")
        lines.append(f"MM  {row['mm']:,.6g} {ccy}   ({mm_rule})")
        lines.append(
            f"Isolated (each position alone) {row['isolated_im']:,.6g} {ccy}: cross-margin saves "
            f"{row['saving']:,.6g} ({row['saving_pct']:.1f}%)"
        )
        if "excess_im" in row.index and pd.notna(row.get("excess_im")):
            lines.append(
                f"Collateral (IM haircuts) {row['collateral_im']:,.6g}; excess over IM {row['excess_im']:,.6g}"
            )
        return "\n".join(lines)

    def _correlation_lines(self, account: str) -> list[str]:
        """The signed correlation aggregation of ``account``: directions and every correlation applied."""
        it = self._internals
        C = it.get("corr")
        a = it["account_names"].get_loc(account)
        units = np.flatnonzero(it["unit_acc"] == a)
        names = it["underlying_names"]
        lines = [
            "Across underlyings: signed correlation, max(sqrt(v' C v + 2|v|' C n + n' C n), largest unit) with "
            "v = direction x IM, n = (1 - |direction|) x IM per underlying"
        ]
        for i in units:
            d = float(it["unit_direction"][i])
            side = "loses on a fall" if d > 0 else ("loses on a rise" if d < 0 else "loses either way")
            lines.append(f"  direction {names[it['unit_und'][i]]}: {d:+.3f} ({side})")
        if C is None or units.size < 2:
            lines.append("  correlations applied: none (one underlying)")
            return lines
        codes = it["unit_und"][units]
        for x in range(codes.size):
            for y in range(x + 1, codes.size):
                i, j = codes[x], codes[y]
                lines.append(f"  correlation {names[i]}/{names[j]}: {C[i, j]:g}")
        return lines

    def summary(self) -> pd.DataFrame:
        """Totals per margin currency: accounts, IM, MM, isolated IM, saving (computed accounts only).

        ``failed`` counts the accounts that could not be computed (an error), ``not_computed`` those
        outside the model's domain; neither enters the totals.
        """
        ok = self.accounts[_computed(self.accounts)]
        g = ok.groupby("currency", sort=True)
        out = g.agg(
            accounts=("account", "size"), im=("im", "sum"), mm=("mm", "sum"), isolated_im=("isolated_im", "sum")
        )
        out["saving"] = out["isolated_im"] - out["im"]
        out["saving_pct"] = np.where(out["isolated_im"] > 0, 100 * out["saving"] / out["isolated_im"].where(
            out["isolated_im"] > 0, 1.0), 0.0)
        out["failed"] = int(self.accounts["error"].notna().sum())
        out["not_computed"] = int(_not_computed(self.accounts).sum())
        return out.reset_index()

    def attribution(self) -> pd.DataFrame:
        """Contribution of each position to its account's IM (see the module docstring for the method).

        Returns
        -------
        DataFrame
            ``account``, ``position`` (the positions table's index label), ``underlying``,
            ``contribution`` (margin currency; sums to the account's ``im`` exactly), ``currency``.
        """
        it = self._internals
        n = it["n"]
        if n == 0:
            return pd.DataFrame(columns=["account", "position", "underlying", "contribution", "currency"])
        unit = it["unit_of"]
        R = it["unit_im"]
        A = it["unit_share"]
        scan_u = it["unit_scan"]
        e = it["pos_worst_pnl"]
        iso = it["pos_iso_im"]
        sigma = np.minimum(scan_u, R) if it["has_scan"] else np.zeros_like(R)
        rest = R - sigma
        iso_sum = np.bincount(unit, weights=iso, minlength=R.size)
        cnt = np.bincount(unit, minlength=R.size).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            scan_part = np.where(scan_u[unit] > 0, sigma[unit] * e / scan_u[unit], 0.0)
            rest_w = np.where(iso_sum[unit] > 0, iso / iso_sum[unit], 1.0 / cnt[unit])
            # a unit whose scan explains nothing (scan 0) but which still has a requirement: all by isolated
            c = scan_part + rest[unit] * rest_w
            scale = np.where(R[unit] > 0, A[unit] / R[unit], 0.0)
            c = c * scale
        acc = it["acc_code"]
        n_acc = len(it["account_names"])
        im_acc = it["account_im"]
        # accounts whose requirement does not come from its units (an account-level floor): isolated weights
        tot = np.bincount(acc, weights=c, minlength=n_acc)
        iso_acc = np.bincount(acc, weights=iso, minlength=n_acc)
        cnt_acc = np.bincount(acc, minlength=n_acc).astype(float)
        off = (np.abs(tot - im_acc) > 1e-9 * np.maximum(1.0, np.abs(im_acc))) & (np.abs(tot) < 1e-300)
        if off.any():
            w = np.where(iso_acc[acc] > 0, iso / np.where(iso_acc[acc] > 0, iso_acc[acc], 1.0), 1.0 / cnt_acc[acc])
            c = np.where(off[acc], im_acc[acc] * w, c)
            tot = np.bincount(acc, weights=c, minlength=n_acc)
        c = np.where(np.isfinite(im_acc[acc]), c, np.nan)
        df = pd.DataFrame(
            {
                "account": it["account_names"][acc],
                "position": it["labels"],
                "underlying": it["underlying_names"][it["und_code"]],
                "contribution": c,
                "currency": it["acc_ccy"][acc],
                "_acc": acc,
            }
        )
        # residual to the largest |contribution| of each account: exact sums
        resid = im_acc - np.bincount(acc, weights=np.nan_to_num(c), minlength=n_acc)
        absc = np.abs(np.nan_to_num(c))
        order = np.lexsort((-absc, acc))
        first = order[np.r_[0, np.flatnonzero(np.diff(acc[order])) + 1]]
        fix = np.isfinite(resid[acc[first]])
        df.loc[df.index[first[fix]], "contribution"] += resid[acc[first[fix]]]
        # restore the input order of positions
        back = np.empty(n, dtype=np.intp)
        back[it["order"]] = np.arange(n)
        df = df.iloc[back].drop(columns="_acc").reset_index(drop=True)
        return df


def _not_computed(acc: pd.DataFrame) -> pd.Series:
    """Rows of an accounts table whose account is outside the model's domain (status ``not_computed``)."""
    if "status" not in acc.columns:
        return pd.Series(False, index=acc.index)
    return acc["status"].astype(str) == "not_computed"


def _computed(acc: pd.DataFrame) -> pd.Series:
    """Rows of an accounts table with figures: no error and not outside the model's domain."""
    return acc["error"].isna() & ~_not_computed(acc)


# ======================================================================================= computation
def _weighted_bincount(x: NDArray[np.intp], weights: NDArray[np.float64], minlength: int) -> NDArray[np.float64]:
    """``np.bincount`` with weights: float64 sums (numpy's stub types every bincount as intp)."""
    return cast(NDArray[np.float64], np.bincount(x, weights=weights, minlength=minlength))


def _factorize_sorted(values: Any) -> tuple[NDArray[np.intp], pd.Index]:
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True)
    return codes.astype(np.intp), pd.Index(uniques)


#: per-position pieces of the delta and gamma charges (the revaluation ones only with method = "revaluation")
_PRICE_PIECES = ("delta", "gamma", "delta_up", "delta_down", "gamma_up", "gamma_down")


def price_charges(
    rs: RuleSet, need: set[str], net: Mapping[str, NDArray[np.float64]], shock: Mapping[str, NDArray[np.float64]]
) -> dict[str, NDArray[np.float64]]:
    """Delta and gamma figures of units (their summed pieces) or of positions alone, by each charge's method.

    Parameters
    ----------
    rs : RuleSet
        The model's rules.
    need : set of str
        Figures the model uses.
    net : mapping of str -> ndarray of shape (n,)
        Net ``delta`` / ``gamma`` (Taylor) or the P&L ``delta_up`` / ``delta_down`` / ``gamma_up`` /
        ``gamma_down`` at the shocks (revaluation, :func:`revaluation_pieces`), margin currency.
    shock : mapping of str -> ndarray of shape (n,)
        ``delta_down`` / ``delta_up`` (Taylor delta) and ``gamma`` price shocks of each unit / position.

    Returns
    -------
    dict of str -> ndarray of shape (n,)
    """
    out: dict[str, NDArray[np.float64]] = {}
    if "delta" in need:
        if rs.components["delta"]["method"] == "revaluation":
            out["delta"] = sens.delta_charge_revaluation(net["delta_up"], net["delta_down"])
        else:
            out["delta"] = sens.delta_charge(net["delta"], shock["delta_down"], shock["delta_up"])
    if "gamma" in need:
        h = shock["gamma"]
        if rs.components["gamma"]["method"] == "revaluation":
            out["gamma"] = sens.gamma_charge_revaluation(net["gamma_up"], net["gamma_down"], h, h)
        else:
            out["gamma"] = sens.gamma_charge(net["gamma"], h)
    return out


def _unit_figures(
    rs: RuleSet,
    need: set[str],
    P: dict[str, NDArray[np.float64]],
    unit: NDArray[np.intp],
    starts: NDArray[np.intp],
    n_units: int,
    unit_und_shock: dict[str, NDArray[np.float64]],
    bucket: NDArray[np.intp] | None,
    n_buckets: int,
    expiry_code: NDArray[np.intp] | None,
    n_expiry: int,
) -> dict[str, NDArray[np.float64]]:
    """Per-unit figures from per-position pieces (``unit`` codes with contiguous ``starts``)."""
    out: dict[str, NDArray[np.float64]] = {}
    if "scan" in need:
        out["scan"] = P["unit_scan"]
    if need & {"delta", "gamma"}:
        net = {k: group_sum(P[k], starts) for k in _PRICE_PIECES if k in P}
        out.update(price_charges(rs, need, net, unit_und_shock))
    if "vega" in need:
        assert bucket is not None
        lam = rs.components["vega"]["cross_bucket_netting"]
        if rs.components["vega"]["method"] == "revaluation":
            out["vega"] = sens.vega_charge_revaluation(
                P["vega_up"], P["vega_down"], unit, bucket, n_units, n_buckets, lam
            )
        else:
            out["vega"] = sens.vega_charge(
                P["vega_base"], unit, bucket, n_units, n_buckets, lam,
                shock_up=unit_und_shock["vega_up"], shock_down=unit_und_shock["vega_down"],
            )
    if "short_option_minimum" in need:
        out["short_option_minimum"] = np.maximum(group_sum(P["som"], starts), 0.0)
    if "roll" in need:
        assert expiry_code is not None
        key = unit * n_expiry + expiry_code
        b = np.bincount(key, weights=P["roll"], minlength=n_units * n_expiry).reshape(n_units, n_expiry)
        out["roll"] = cont.roll_unit_charge(b, rs.components["roll"]["scope"])
    if "contract_floor" in need:
        out["contract_floor"] = group_sum(P["contract_floor"], starts)
    if "long_premium_cap" in need:
        val = group_sum(P["cap_value"], starts)
        other = group_sum(P["cap_other"], starts)
        out["long_premium_cap"] = np.where(other > 0, np.inf, val)
    for f in ("option_standard_im", "option_standard_mm", "delta_one_im", "delta_one_mm"):
        if f in need:
            out[f] = group_sum(P[f], starts)
    return out


def _position_figures(
    rs: RuleSet, need: set[str], P: dict[str, NDArray[np.float64]], shock: dict[str, NDArray[np.float64]]
) -> dict[str, NDArray[np.float64]]:
    """The same figures with every position alone (isolated margin)."""
    out: dict[str, NDArray[np.float64]] = {}
    if "scan" in need:
        out["scan"] = P["pos_scan"]
    out.update(price_charges(rs, need, P, shock))
    if "vega" in need:
        if rs.components["vega"]["method"] == "revaluation":
            out["vega"] = sens.vega_loss(P["vega_up"], P["vega_down"])
        else:
            e = P["vega_base"]
            out["vega"] = np.maximum(e, 0.0) * shock["vega_down"] + np.maximum(-e, 0.0) * shock["vega_up"]
    if "short_option_minimum" in need:
        out["short_option_minimum"] = np.maximum(P["som"], 0.0)
    if "roll" in need:
        out["roll"] = cont.roll_unit_charge(P["roll"][:, None], rs.components["roll"]["scope"])
    if "contract_floor" in need:
        out["contract_floor"] = P["contract_floor"]
    if "long_premium_cap" in need:
        out["long_premium_cap"] = np.where(P["cap_other"] > 0, np.inf, P["cap_value"])
    for f in ("option_standard_im", "option_standard_mm", "delta_one_im", "delta_one_mm"):
        if f in need:
            out[f] = P[f]
    return out


def unit_requirements(
    rs: RuleSet,
    figures: dict[str, NDArray[np.float64]],
    n: int,
    *,
    isolated_im: NDArray[np.float64] | None = None,
    isolated_mm: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """IM and MM of each unit from its figures: the model's expressions, floored at 0, then capped.

    Parameters
    ----------
    rs : RuleSet
        The model's rules.
    figures : dict of str -> ndarray of shape (n,)
        Figures of each unit (names of ``rs.figures``).
    n : int
        Number of units.
    isolated_im, isolated_mm : ndarray of shape (n,), optional
        Sum of the isolated requirements of each unit's positions; with ``rs.cap_at_isolated`` the unit
        requirement is capped at it (a unit never needs more than its positions margined alone).

    Returns
    -------
    im, mm : ndarray of shape (n,)
        ``mm = mm_factor x im`` when the model has a factor, else its own expression (capped likewise).
    """
    im = np.maximum(evaluate(rs.im, figures) * np.ones(n), 0.0)
    mm = np.maximum(evaluate(rs.mm, figures) * np.ones(n), 0.0) if rs.mm is not None else None
    if rs.cap_at_isolated and isolated_im is not None:
        im = np.minimum(im, isolated_im)
        if mm is not None and isolated_mm is not None:
            mm = np.minimum(mm, isolated_mm)
    if mm is None:
        mm = rs.mm_factor * im
    return im, mm


def exposure_direction(
    rs: RuleSet,
    *,
    pnl: NDArray[np.float64] | None = None,
    spot_move: NDArray[np.float64] | None = None,
    weights: NDArray[np.float64] | None = None,
    net: Mapping[str, NDArray[np.float64]] | None = None,
    shock: Mapping[str, NDArray[np.float64]] | None = None,
) -> NDArray[np.float64] | None:
    """Direction of each unit's exposure for the signed correlation aggregation (in ``[-1, 1]``).

    From the scan when the model has one: the worst loss on the falling and on the rising side of the
    unit's grid and with the spot unchanged (:func:`greeksmargin.methodologies.house.combine.side_losses`); else from
    the delta charge: the loss at its fall / rise (revaluation: ``-delta_down``, ``-delta_up``; Taylor:
    ``max(+-delta, 0) x shock``); else None (every unit non-directional: the unsigned aggregation).
    :func:`greeksmargin.methodologies.house.combine.direction_from_losses` turns the losses into the direction.

    Parameters
    ----------
    rs : RuleSet
        The model's rules.
    pnl : ndarray of shape (n_scenarios, n_units), optional
        Unit P&L per scenario (with a scan).
    spot_move, weights : ndarray of shape (n_scenarios, n_units), optional
        Spot move and weight of each scenario of each unit's grid.
    net : mapping, optional
        Unit sums ``delta`` (Taylor) or ``delta_up`` / ``delta_down`` (revaluation), margin currency.
    shock : mapping, optional
        ``delta_down`` / ``delta_up`` price shocks per unit (Taylor delta).

    Returns
    -------
    ndarray of shape (n_units,) or None
    """
    need = set(rs.figures)
    if "scan" in need and pnl is not None and spot_move is not None and weights is not None:
        return direction_from_losses(*side_losses(pnl, spot_move, weights))
    if "delta" in need and net is not None:
        if rs.components["delta"]["method"] == "revaluation" and "delta_up" in net:
            return direction_from_losses(-net["delta_down"], -net["delta_up"])
        if "delta" in net and shock is not None:
            d = net["delta"]
            return direction_from_losses(np.maximum(d, 0.0) * shock["delta_down"],
                                         np.maximum(-d, 0.0) * shock["delta_up"])
    return None


def _position_values(
    pos: pd.DataFrame, arr: Mapping[str, Any], market: Any, order: NDArray[np.intp]
) -> dict[str, NDArray[Any]]:
    """Price, value in the margin currency and margin currency of each position (sorted by ``order``).

    The same definitions as :func:`greeksmargin.risk.greeks.price_positions` (module docstring there) without
    the Greeks: option price Black-76 discounted; future: forward; perpetual: mark; spot: spot;
    ``value_ccy`` = price x size (options, spot), / F for coin-settled options, 0 for futures / perpetuals.
    """
    from greeksmargin.pricing import black76_price

    kc = np.asarray(arr["kind_code"])[order]
    F = np.asarray(arr["forward"], dtype=float)[order]
    S = np.asarray(arr["spot"], dtype=float)[order]
    size = np.asarray(arr["size"], dtype=float)[order]
    inv = np.asarray(arr["inverse"], dtype=bool)[order]
    opt = kc == 0
    price = np.select([kc == 1, kc == 2], [F, S * np.asarray(arr["perp_ratio"], dtype=float)[order]], default=S)
    if opt.any():
        o = np.flatnonzero(opt)
        price[o] = black76_price(np.asarray(arr["is_call"])[order][o], F[o], np.asarray(arr["strike"])[order][o],
                                 np.asarray(arr["T"])[order][o], np.asarray(arr["vol"])[order][o],
                                 np.asarray(arr["rate"])[order][o])
    value_usd = np.where(opt | (kc == 3), price * size, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value_inv = np.select([opt, kc == 3], [price / F * size, value_usd / S], default=0.0)
    names = arr["underlyings"]
    ccy_of = np.array([market.currency(u) if market.currency(u) != "USD" else u for u in names], dtype=object)
    und = np.asarray(arr["underlying_code"])[order]
    margin_ccy = np.where(inv, ccy_of[und] if len(names) else "USD", "USD").astype(object)
    return {
        "price": price,
        "value_ccy": np.where(inv, value_inv, value_usd),
        "margin_currency": margin_ccy,
        "quantity": pos["quantity"].to_numpy(dtype=float)[order],
        "multiplier": pos["multiplier"].to_numpy(dtype=float)[order],
    }


def delta_shocks(params: dict[str, Any], underlyings: Sequence[str], side: str) -> NDArray[np.float64]:
    """Price shock of the delta charge per underlying in one direction (``side`` "down" or "up").

    ``price_shock_<side>_by_underlying[u]``, else ``price_shock_<side>``, else the symmetric
    ``price_shock_by_underlying[u]`` / ``price_shock`` of the ``[components.delta]`` table; shape (n,).
    """
    by_side = params.get(f"price_shock_{side}_by_underlying") or {}
    sym_by = params.get("price_shock_by_underlying") or {}
    side_default = params.get(f"price_shock_{side}")
    out = []
    for u in underlyings:
        if u in by_side:
            out.append(float(by_side[u]))
        elif side_default is not None and u not in sym_by:
            out.append(float(side_default))
        else:
            out.append(float(sym_by.get(u, params["price_shock"])))
    return np.asarray(out, dtype=float)


def gamma_shocks(params: dict[str, Any], underlyings: Sequence[str]) -> NDArray[np.float64]:
    """Price shock of the gamma charge per underlying: ``price_shock_by_underlying[u]``, else ``price_shock``."""
    by = params.get("price_shock_by_underlying") or {}
    return np.asarray([float(by.get(u, params["price_shock"])) for u in underlyings], dtype=float)


def vega_shocks(params: dict[str, Any], underlyings: Sequence[str], side: str) -> NDArray[np.float64]:
    """Vol shock of the vega charge per underlying in one direction (``side`` "up" or "down").

    Up (charged on net short vega): ``shock_by_underlying[u]``, else ``shock``. Down (charged on net long
    vega): ``shock_down_by_underlying[u]``, else ``shock_down``, else the up shock (symmetric); shape (n,).
    """
    up_by = params.get("shock_by_underlying") or {}
    up = np.asarray([float(up_by.get(u, params["shock"])) for u in underlyings], dtype=float)
    if side == "up":
        return up
    down_by = params.get("shock_down_by_underlying") or {}
    d0 = params.get("shock_down")
    return np.asarray(
        [float(down_by[u]) if u in down_by else (float(d0) if d0 is not None and u not in up_by else up[i])
         for i, u in enumerate(underlyings)],
        dtype=float,
    )


def contingency_pieces(
    rs: RuleSet,
    arrays: Mapping[str, Any],
    *,
    kinds: NDArray[Any],
    size: NDArray[np.float64],
    unit_price: NDArray[np.float64],
    d1_price: NDArray[np.float64],
    value_ccy: NDArray[np.float64],
    quantity: NDArray[np.float64],
    multiplier: NDArray[np.float64],
    factor: NDArray[np.float64],
    currency_to_account: Callable[[str], Any],
) -> dict[str, NDArray[Any]]:
    """Per-position pieces of the contingency and standard figures, in the account's margin currency.

    The engine (:func:`compute_margin`) and the incremental what-if (:mod:`greeksmargin.engine.incremental`)
    both build them here. Keys, present for the figures the model uses: ``som`` (short option minimum,
    ``-rate x size x unit price`` per option, summed and floored at 0 per unit), ``roll`` and
    ``expiry_key`` (roll amount ``size x price x max(min_annual_move, annual_move T)`` and the expiry in
    seconds it nets in), ``contract_floor``, ``cap_value`` / ``cap_other`` (long-premium cap),
    ``option_standard_im`` / ``_mm``, ``delta_one_im`` / ``_mm``.

    Parameters
    ----------
    rs : RuleSet
        The model's rules.
    arrays : mapping of str -> ndarray of shape (n,)
        Position arrays (``kind_code``, ``is_call``, ``T``, ``spot``, ``strike``).
    kinds : ndarray of object, shape (n,)
        Kind names.
    size, unit_price, d1_price, value_ccy, quantity, multiplier, factor : ndarray of shape (n,)
        Quantity x multiplier; one unit of underlying in the position's currency (1 for coin-settled);
        the delta-one price (1 for coin-settled); the position's value in its currency; quantity;
        multiplier; position currency -> account margin currency.
    currency_to_account : callable
        ``ccy -> factor`` (scalar or shape (n,)) converting an amount in ``ccy`` to each position's
        account margin currency (the contract floor's currency).

    Returns
    -------
    dict of str -> ndarray of shape (n,)
    """
    need = set(rs.figures)
    is_opt = np.asarray(arrays["kind_code"]) == 0
    P: dict[str, NDArray[Any]] = {}
    if "short_option_minimum" in need:
        rate = rs.components["short_option_minimum"]["rate"]
        P["som"] = np.where(is_opt, -rate * size * unit_price * factor, 0.0)
    if "roll" in need:
        c = rs.components["roll"]
        applies = np.isin(kinds, c["kinds"])
        t = np.nan_to_num(np.asarray(arrays["T"], dtype=float), nan=0.0)
        move = np.maximum(c["min_annual_move"], c["annual_move"] * t)
        P["roll"] = np.where(applies, size * d1_price * move * factor, 0.0)
        P["expiry_key"] = np.round(t * 365 * 24 * 3600).astype(np.int64)
    if "contract_floor" in need:
        c = rs.components["contract_floor"]
        applies = np.isin(kinds, c["kinds"])
        amt = cont.contract_floor(applies, quantity, multiplier, c["per_contract"])
        P["contract_floor"] = amt * currency_to_account(c["currency"])
    if "long_premium_cap" in need:
        P["cap_value"], P["cap_other"] = cont.long_premium_cap(value_ccy * factor, is_opt & (size > 0))
    if "option_standard_im" in need:
        c = rs.components["option_standard"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mark = np.where(size != 0, value_ccy / np.where(size != 0, size, 1.0), 0.0)
        im_s, mm_s = cont.option_standard_margin(
            is_opt, arrays["is_call"], size, arrays["spot"], arrays["strike"], mark, unit_price,
            im_base=c["im_base"], im_min=c["im_min"], mm_base=c["mm_base"], long_premium=c["long_premium"],
        )
        P["option_standard_im"], P["option_standard_mm"] = im_s * factor, mm_s * factor
    if "delta_one_im" in need:
        c = rs.components["delta_one"]
        applies = np.isin(kinds, c["kinds"])
        im_d, mm_d = cont.delta_one_margin(applies, size, d1_price, c["im_rate"], c["mm_rate"])
        P["delta_one_im"], P["delta_one_mm"] = im_d * factor, mm_d * factor
    return P


#: floor of a shocked-down vol in the revaluation vega charge (a term-scaled fall may exceed 100%)
REVAL_MIN_VOL = 1e-4


def revaluation_pieces(
    rs: RuleSet, arrays: Mapping[str, Any], underlying: Sequence[str] | NDArray[Any], factor: NDArray[np.float64]
) -> dict[str, NDArray[np.float64]]:
    """Per-position P&L of the revaluation Greeks charges, in the account's margin currency.

    ``delta_up`` / ``delta_down``: P&L at ``+h_up`` / ``-h_down`` (vol unchanged), the delta component's
    shocks of the position's underlying (:func:`delta_shocks`); ``gamma_up`` / ``gamma_down``: P&L at
    ``+h`` / ``-h`` (vol unchanged), ``h`` the gamma price shock; ``vega_up`` / ``vega_down``: P&L with
    the option's vol shocked up / down by the vega component's term-dependent shock of its underlying (up:
    ``shock``, down: the down shock as :func:`vega_shocks`; relative ``sigma (1 +- s mult(T))`` or absolute
    ``sigma +- s mult(T)``, a shocked-down vol floored at :data:`REVAL_MIN_VOL`), spot unchanged; 0 for
    non-options. Empty when no component uses ``method = "revaluation"``. Additive over positions (the
    unit sums are sums).
    """
    need = set(rs.figures)
    want = {k: k in need and rs.components[k]["method"] == "revaluation" for k in ("delta", "gamma", "vega")}
    if not any(want.values()):
        return {}
    und = np.asarray(underlying, dtype=object)
    n = und.size
    names, inv_code = np.unique(und.astype(str), return_inverse=True)
    names_l = [str(u) for u in names]
    vol = np.nan_to_num(np.asarray(arrays["vol"], dtype=float))
    # rows of (relative spot move, vol) per position, revalued in one call of the scan's kernel
    moves: list[NDArray[np.float64]] = []
    vols: list[NDArray[np.float64]] = []
    rows: dict[str, int] = {}

    def row(key: str, move: NDArray[np.float64], v: NDArray[np.float64]) -> None:
        move = np.broadcast_to(move, (n,))
        for i, (m_i, v_i) in enumerate(zip(moves, vols)):  # e.g. the delta and gamma rise share one shock
            if np.array_equal(m_i, move) and np.array_equal(v_i, v):
                rows[key] = i
                return
        rows[key] = len(moves)
        moves.append(move)
        vols.append(v)

    if want["delta"]:
        c = rs.components["delta"]
        row("delta_up", delta_shocks(c, names_l, "up")[inv_code], vol)
        row("delta_down", -delta_shocks(c, names_l, "down")[inv_code], vol)
    if want["gamma"]:
        c = rs.components["gamma"]
        h = gamma_shocks(c, names_l)[inv_code]
        row("gamma_up", h, vol)
        row("gamma_down", -h, vol)
    if want["vega"]:
        c = rs.components["vega"]
        rule = VolShockRule(kind=c["kind"], short_power=c["short_power"], long_power=c["long_power"],
                            pivot_days=c["pivot_days"], floor_days=c["floor_days"])
        mult = rule.multiplier(np.asarray(arrays["T"], dtype=float))
        su = vega_shocks(c, names_l, "up")[inv_code] * mult
        sd = vega_shocks(c, names_l, "down")[inv_code] * mult
        if c["kind"] == "relative":
            vu, vd = vol * (1.0 + su), vol * (1.0 - sd)
        else:
            vu, vd = vol + su, vol - sd
        vd = np.maximum(vd, np.minimum(vol, REVAL_MIN_VOL))
        row("vega_up", np.zeros(n), vu)
        row("vega_down", np.zeros(n), vd)
    p = scenario_pnl(arrays, np.stack(moves), np.stack(vols)) * np.asarray(factor, dtype=float)[None, :]
    is_opt = np.asarray(arrays["kind_code"]) == 0
    # non-options carry no vol risk: their rows of the vol shocks are 0 by definition, not by revaluation
    return {k: (np.where(is_opt, p[i], 0.0) if k.startswith("vega") else p[i]) for k, i in rows.items()}


def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover
        return False
    return True


def _run(
    pos: pd.DataFrame,
    market: Any,
    model: Model,
    *,
    chunk: int = CHUNK,
    backend: str = "auto",
    arrays: Mapping[str, Any] | None = None,
) -> MarginResult:
    """Core computation on validated positions (every account computable)."""
    from greeksmargin.risk.greeks import market_arrays

    rs: RuleSet = model.params
    need = set(rs.figures)
    n = len(pos)
    arr = market_arrays(pos, market) if arrays is None else arrays
    und_names_all = arr["underlyings"]

    acc_code0, account_names = _factorize_sorted(pos["account"].to_numpy(dtype=object))
    und_code0, underlying_names = _factorize_sorted(pos["underlying"].to_numpy(dtype=object))
    # grid of each underlying
    grids: list[ScenarioGrid] = []
    grid_of_und = np.zeros(len(underlying_names), dtype=np.intp)
    if rs.grid is not None:
        for ui, u in enumerate(underlying_names):
            g = rs.grid_for(str(u))
            assert g is not None
            for gi, h in enumerate(grids):
                if h is g:
                    grid_of_und[ui] = gi
                    break
            else:
                grids.append(g)
                grid_of_und[ui] = len(grids) - 1
    grid_id0 = grid_of_und[und_code0]
    order = np.lexsort((und_code0, acc_code0, grid_id0))
    acc_code = acc_code0[order]
    und_code = und_code0[order]
    grid_id = grid_id0[order]
    del und_names_all
    A: dict[str, NDArray[Any]] = {
        k: np.asarray(arr[k])[order]
        for k in ("kind_code", "is_call", "strike", "T", "forward", "spot", "vol", "rate", "size", "inverse",
                  "perp_ratio")
    }
    pr = _position_values(pos, arr, market, order)
    labels = pos.index.to_numpy()[order]

    # ---- units and currencies
    n_und = len(underlying_names)
    ukey = acc_code.astype(np.int64) * max(n_und, 1) + und_code
    if n:
        brk = np.r_[True, (ukey[1:] != ukey[:-1]) | (grid_id[1:] != grid_id[:-1])]
    else:
        brk = np.zeros(0, dtype=bool)
    starts = np.flatnonzero(brk)
    n_units = starts.size
    unit = np.cumsum(brk) - 1
    unit_acc = acc_code[starts]
    unit_und = und_code[starts]
    unit_grid = grid_id[starts]

    ccy_pos = pr["margin_currency"].astype(object)
    ccy_code, ccy_names = _factorize_sorted(ccy_pos)
    n_acc = len(account_names)
    cmin = np.full(n_acc, np.iinfo(np.intp).max)
    cmax = np.full(n_acc, -1)
    np.minimum.at(cmin, acc_code, ccy_code)
    np.maximum.at(cmax, acc_code, ccy_code)
    single = cmin == cmax
    acc_ccy = np.where(single, np.asarray(ccy_names, dtype=object)[np.clip(cmin, 0, max(len(ccy_names) - 1, 0))]
                       if len(ccy_names) else "USD", "USD").astype(object)
    fx = {c: market.fx_to_usd(c) for c in ccy_names}
    fx_acc = {c: (fx[c] if c in fx else market.fx_to_usd(c)) for c in set(acc_ccy)}
    pos_fx = np.array([fx[c] for c in ccy_names], dtype=float)[ccy_code] if n else np.zeros(0)
    acc_fx = np.array([fx_acc[c] for c in acc_ccy], dtype=float)
    factor = pos_fx / acc_fx[acc_code] if n else np.zeros(0)  # position currency -> account currency
    # a coin-settled position of an account margined in another currency: its coin's price moves with each
    # scenario's spot (scenarios.scenario_pnl), so its P&L is the account-currency P&L at the scenario's spot
    A["fx_moves"] = A["inverse"].astype(bool) & (ccy_pos != acc_ccy[acc_code]) if n else np.zeros(0, dtype=bool)

    kc = A["kind_code"]
    is_opt = kc == 0
    inv = A["inverse"].astype(bool)
    size = A["size"].astype(float)
    unit_price = np.where(inv, 1.0, A["spot"])  # one unit of underlying in the position's currency
    d1_price = np.where(inv, 1.0, pr["price"].astype(float))  # delta-one: future / mark / spot price
    kinds = np.array(["option", "future", "perpetual", "spot"], dtype=object)[np.clip(kc, 0, 3)] if n else np.zeros(0)

    P: dict[str, NDArray[np.float64]] = {}
    # ---- scenario P&L, chunked along unit boundaries of one grid
    has_scan = "scan" in need
    n_s = grids[0].n_scenarios if grids else 0
    unit_pnl = np.zeros((n_s, n_units))
    pos_scan = np.zeros(n)
    pos_worst = np.zeros(n)
    unit_scan = np.zeros(n_units)
    unit_worst = np.zeros(n_units, dtype=np.intp)
    need_sens = bool(need & {"delta", "gamma", "vega"})
    dlt = np.zeros(n)
    gam = np.zeros(n)
    veg = np.zeros(n)
    gain = rs.components["scan"]["gain_offset"] if has_scan else 1.0
    # auto: the compiled kernel pays off (and is worth its one-off compilation) on large books only
    big = n * max(n_s, 1) >= NUMBA_MIN_EVALUATIONS
    use_numba = backend == "numba" or (backend == "auto" and big and _numba_available())
    if (has_scan or need_sens) and use_numba:
        from greeksmargin.risk._scan_kernel import fused_scan

        u0 = 0
        while u0 < n_units:
            gcur = unit_grid[u0]
            same = np.flatnonzero(unit_grid[u0:] != gcur)
            u1 = u0 + int(same[0]) if same.size else n_units
            p0, p1 = starts[u0], (starts[u1] if u1 < n_units else n)
            sl = slice(p0, p1)
            g = grids[gcur] if grids else ScenarioGrid(np.zeros(1), np.zeros(1, np.int8), np.ones(1))
            a = {k: v[sl] for k, v in A.items()}
            if has_scan:
                ko = fused_scan(a, factor[sl], starts[u0:u1] - p0, g, gain, want_scan=True, want_sens=False)
                unit_pnl[:, u0:u1] = ko["unit_pnl"]
                unit_scan[u0:u1] = ko["unit_scan"]
                unit_worst[u0:u1] = ko["unit_worst"]
                pos_scan[sl] = ko["pos_scan"]
                pos_worst[sl] = ko["pos_worst"]
            if need_sens:
                # finite differences with the numpy kernel on both backends: the compiled erfc and scipy's
                # ndtr differ by an ulp, which a 1e-8 divisor would turn into ~1e-9 noise between backends
                d, gm, v = sensitivities(a)
                f = factor[sl]
                dlt[sl], gam[sl], veg[sl] = d * f, gm * f, np.nan_to_num(v) * f
            u0 = u1
    elif has_scan or need_sens:
        u0 = 0
        while u0 < n_units:
            gcur = unit_grid[u0]
            # last unit of this chunk: same grid, positions within the chunk size (at least one unit)
            p0 = starts[u0]
            u1 = int(np.searchsorted(starts, p0 + chunk, side="right"))
            u1 = max(u1, u0 + 1)
            same = np.flatnonzero(unit_grid[u0:u1] != gcur)
            if same.size:
                u1 = u0 + int(same[0])
            p1 = starts[u1] if u1 < n_units else n
            sl = slice(p0, p1)
            a = {k: v[sl] for k, v in A.items()}
            f = factor[sl]
            if has_scan:
                g = grids[gcur]
                vols = g.vol_rule.shocked(a["vol"], a["T"], g.vol_dir)
                pnl = scenario_pnl(a, g.spot_move, vols)
                pnl *= f[None, :]
                loc_starts = starts[u0:u1] - p0
                up = group_sum(pnl, loc_starts)
                unit_pnl[:, u0:u1] = up
                us, uw = scan_loss(up, g.weights, gain)
                unit_scan[u0:u1] = us
                unit_worst[u0:u1] = uw
                ps, _ = scan_loss(pnl, g.weights, gain)
                pos_scan[sl] = ps
                loc_unit = unit[sl] - u0
                pos_worst[sl] = -pnl[uw[loc_unit], np.arange(p1 - p0)] * g.weights[uw[loc_unit]]
                del pnl
            if need_sens:
                d, gm, v = sensitivities(a)
                dlt[sl], gam[sl], veg[sl] = d * f, gm * f, np.nan_to_num(v) * f
            u0 = u1
    P.update(revaluation_pieces(rs, A, np.asarray(underlying_names, dtype=object)[und_code], factor))
    P["unit_scan"] = unit_scan
    P["pos_scan"] = pos_scan
    P["delta"] = dlt
    P["gamma"] = gam
    shock: dict[str, NDArray[np.float64]] = {}
    unit_shock: dict[str, NDArray[np.float64]] = {}
    und_str = [str(u) for u in underlying_names]
    if "delta" in need:
        for side in ("down", "up"):
            per_side = delta_shocks(rs.components["delta"], und_str, side)
            shock[f"delta_{side}"] = per_side[und_code]
            unit_shock[f"delta_{side}"] = per_side[unit_und]
    if "gamma" in need:
        per_und = gamma_shocks(rs.components["gamma"], und_str)
        shock["gamma"] = per_und[und_code]
        unit_shock["gamma"] = per_und[unit_und]
    bucket = None
    n_buckets = 1
    if "vega" in need:
        c = rs.components["vega"]
        rule = VolShockRule(
            kind=c["kind"], up=c["shock"], short_power=c["short_power"], long_power=c["long_power"],
            pivot_days=c["pivot_days"], floor_days=c["floor_days"],
        )
        mult = rule.multiplier(A["T"])
        base = mult * (np.nan_to_num(A["vol"]) if c["kind"] == "relative" else 1.0)
        # signed vega per unit of vol shock; the shock of the losing direction is applied per unit / position
        P["vega_base"] = np.where(is_opt, veg * base, 0.0)
        for side in ("up", "down"):
            per_side = vega_shocks(c, und_str, side)
            shock[f"vega_{side}"] = per_side[und_code]
            unit_shock[f"vega_{side}"] = per_side[unit_und]
        bucket = sens.expiry_bucket(A["T"], c["bucket_days"])
        n_buckets = len(c["bucket_days"]) + 1
    P.update(contingency_pieces(
        rs, A, kinds=kinds, size=size, unit_price=unit_price, d1_price=d1_price,
        value_ccy=pr["value_ccy"].astype(float), quantity=pr["quantity"].astype(float),
        multiplier=pr["multiplier"].astype(float), factor=factor,
        currency_to_account=lambda ccy: market.fx_to_usd(ccy) / acc_fx[acc_code],
    ))
    expiry_code = None
    n_expiry = 1
    if "roll" in need:
        expiry_code, exp_names = _factorize_sorted(P["expiry_key"])
        n_expiry = max(len(exp_names), 1)

    # ---- unit figures, requirements
    UF = _unit_figures(rs, need, P, unit, starts, n_units, unit_shock, bucket, n_buckets, expiry_code, n_expiry)
    # ---- isolated: every position alone
    PF = _position_figures(rs, need, P, shock)
    pos_im, pos_mm = unit_requirements(rs, PF, n)
    isolated = np.bincount(acc_code, weights=pos_im, minlength=n_acc)
    unit_im, unit_mm = unit_requirements(
        rs, UF, n_units, isolated_im=group_sum(pos_im, starts), isolated_mm=group_sum(pos_mm, starts)
    )

    # ---- aggregation across underlyings
    method = rs.aggregate["method"]
    direction: NDArray[np.float64] | None = None
    C = None
    if method == "sum" or n_units == 0:
        im_acc = _weighted_bincount(unit_acc, unit_im, n_acc)
        mm_acc = _weighted_bincount(unit_acc, unit_mm, n_acc)
        share = unit_im.copy()
    elif method == "correlation":
        C = correlation_matrix([str(u) for u in underlying_names], rs.aggregate["default_correlation"],
                               rs.aggregate["correlations"])
        if has_scan:
            direction = exposure_direction(
                rs, pnl=unit_pnl, spot_move=np.stack([grids[k].spot_move for k in unit_grid], axis=1),
                weights=np.stack([grids[k].weights for k in unit_grid], axis=1),
            )
        else:
            direction = exposure_direction(
                rs, net={k: group_sum(P[k], starts) for k in ("delta", "delta_up", "delta_down") if k in P},
                shock=unit_shock,
            )
        im_acc, share = aggregate_correlation(unit_im, unit_acc, unit_und, n_acc, C, direction)
        if rs.mm is not None:
            mm_acc, _ = aggregate_correlation(unit_mm, unit_acc, unit_und, n_acc, C, direction)
    else:  # offsets (TIMS)
        groups = np.array([rs.group_of(str(u)) for u in underlying_names], dtype=object)
        pct_of = {g: float(rs.aggregate["offsets"].get(g, 0.0)) for g in set(groups)}
        unit_group = groups[unit_und]
        pct = np.array([pct_of[g] for g in unit_group], dtype=float)
        gkey = np.where(
            pct > 0,
            pd.factorize(pd.Series(list(zip(unit_acc, unit_group))))[0],
            -1 - np.arange(n_units),
        )
        cg, _ = pd.factorize(pd.Series(gkey))
        cg = cg.astype(np.intp)
        n_cg = int(cg.max()) + 1 if cg.size else 0
        w = np.stack([grids[k].weights for k in unit_grid], axis=1) if n_units else np.zeros((n_s, 0))
        g_scan, _ = offset_scan(unit_pnl, w, cg, pct, n_cg)
        cg_acc = np.zeros(n_cg, dtype=np.intp)
        cg_acc[cg] = unit_acc
        AF = {k: _weighted_bincount(unit_acc, np.where(np.isinf(v), 0.0, v), n_acc) for k, v in UF.items()}
        for k, v in UF.items():
            if np.isinf(v).any():
                AF[k] = np.where(np.bincount(unit_acc, weights=np.isinf(v).astype(float), minlength=n_acc) > 0,
                                 np.inf, AF[k])
        AF["scan"] = _weighted_bincount(cg_acc, g_scan, n_acc)
        im_acc = np.maximum(evaluate(rs.im, AF) * np.ones(n_acc), 0.0)
        if rs.mm is not None:
            mm_acc = np.maximum(evaluate(rs.mm, AF) * np.ones(n_acc), 0.0)
        tot_u = np.bincount(unit_acc, weights=unit_im, minlength=n_acc)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(tot_u[unit_acc] > 0, unit_im / tot_u[unit_acc] * im_acc[unit_acc], 0.0)
    if rs.mm is None:  # MM = mm_factor x IM (the model has exactly one of mm and mm_factor)
        assert rs.mm_factor is not None
        mm_acc = rs.mm_factor * im_acc

    # ---- tables
    acc_names_arr = np.asarray(account_names, dtype=object)
    und_names_arr = np.asarray(underlying_names, dtype=object)
    figs = list(UF)
    labels_grid = [np.asarray(g.labels, dtype=object) for g in grids]
    if has_scan and n_units:
        unit_worst_label = np.array([labels_grid[g][s] for g, s in zip(unit_grid, unit_worst)], dtype=object)
        unit_worst_label[unit_scan <= 0] = ""  # no loss in any scenario: no worst scenario to name
    else:
        unit_worst_label = np.full(n_units, "", dtype=object)
    by_und = pd.DataFrame({"account": acc_names_arr[unit_acc], "underlying": und_names_arr[unit_und],
                           "currency": acc_ccy[unit_acc]})
    for k in figs:
        by_und[k] = np.where(np.isinf(UF[k]), np.nan, UF[k]) if k == "long_premium_cap" else UF[k]
    by_und["im"] = unit_im
    by_und["mm"] = unit_mm
    by_und["worst_scenario"] = unit_worst_label

    acc_fig = {k: np.bincount(unit_acc, weights=np.where(np.isinf(v), 0.0, v), minlength=n_acc) for k, v in UF.items()}
    if "long_premium_cap" in acc_fig:
        anyinf = np.bincount(unit_acc, weights=np.isinf(UF["long_premium_cap"]).astype(float), minlength=n_acc) > 0
        acc_fig["long_premium_cap"] = np.where(anyinf, np.nan, acc_fig["long_premium_cap"])
    # worst scenario of the account: that of its unit with the largest scan
    acc_worst = np.full(n_acc, "", dtype=object)
    if has_scan and n_units:
        o = np.lexsort((-unit_scan, unit_acc))
        first = o[np.r_[0, np.flatnonzero(np.diff(unit_acc[o])) + 1]]
        acc_worst[unit_acc[first]] = [
            f"{und_names_arr[unit_und[i]]}: {unit_worst_label[i]}" if unit_worst_label[i] else "" for i in first
        ]
    saving = isolated - im_acc
    saving = np.where(np.abs(saving) <= 1e-12 * np.maximum(np.abs(isolated), 1e-300), 0.0, saving)
    with np.errstate(invalid="ignore", divide="ignore"):
        saving_pct = np.where(isolated > 0, 100.0 * saving / np.where(isolated > 0, isolated, 1.0), 0.0)
    accounts = pd.DataFrame(
        {
            "account": acc_names_arr,
            "im": im_acc,
            "mm": mm_acc,
            "isolated_im": isolated,
            "saving": saving,
            "saving_pct": saving_pct,
            "currency": acc_ccy,
        }
    )
    for k in figs:
        accounts[k] = acc_fig[k]
    accounts["worst_scenario"] = acc_worst
    accounts["error"] = None

    # tidy rows: unit figures, unit requirements, account totals
    components = pd.concat(
        [
            component_rows(acc_names_arr[unit_acc], und_names_arr[unit_und], acc_ccy[unit_acc], UF, RULE_OF),
            component_rows(acc_names_arr[unit_acc], und_names_arr[unit_und], acc_ccy[unit_acc],
                           {"unit_im": unit_im, "unit_mm": unit_mm}, "combination"),
            component_rows(acc_names_arr, "ALL", acc_ccy, {"im": im_acc, "mm": mm_acc, "isolated_im": isolated},
                           "aggregation"),
        ],
        ignore_index=True,
    )

    if has_scan and n_units:
        wv = np.array([grids[g].weights[s] for g, s in zip(unit_grid, unit_worst)])
        worst = pd.DataFrame({
            "account": acc_names_arr[unit_acc],
            "underlying": und_names_arr[unit_und],
            "scenario": unit_worst,
            "label": unit_worst_label,
            "spot_move": [grids[g].spot_move[s] for g, s in zip(unit_grid, unit_worst)],
            "vol_dir": [int(grids[g].vol_dir[s]) for g, s in zip(unit_grid, unit_worst)],
            "weight": wv,
            "pnl": unit_pnl[unit_worst, np.arange(n_units)],
            "scan": unit_scan,
            "currency": acc_ccy[unit_acc],
        })
    else:
        worst = pd.DataFrame(columns=["account", "underlying", "scenario", "label", "spot_move", "vol_dir",
                                      "weight", "pnl", "scan", "currency"])


    internals = {
        "n": n,
        "order": order,
        "labels": labels,
        "acc_code": acc_code,
        "und_code": und_code,
        "grid_id": grid_id,
        "grids": grids,
        "arrays": A,
        "factor": factor,
        "account_names": pd.Index(account_names),
        "underlying_names": und_names_arr,
        "acc_ccy": acc_ccy,
        "unit_of": unit,
        "unit_im": unit_im,
        "unit_share": share,
        "unit_scan": unit_scan,
        "unit_pnl": unit_pnl,
        "pos_worst_pnl": pos_worst,
        "pos_iso_im": pos_im,
        "account_im": im_acc,
        "has_scan": has_scan,
        "unit_acc": unit_acc,
        "unit_und": unit_und,
        "unit_grid": unit_grid,
        # the correlation matrix and unit directions the aggregation used (explain() prints these)
        "corr": C,
        "unit_direction": np.zeros(n_units) if direction is None else direction,
    }
    internals["positions"] = pos
    internals["market"] = market
    return MarginResult(accounts, components, by_und, worst, model, internals)


def _check_model(model: str | Any) -> Model:
    m = load_model(model)
    if not m.runnable:
        raise ModelError(
            f"model '{m.name}' uses methodology '{m.methodology}', which compute_margin cannot run on a positions "
            f"book (use its own module in greeksmargin.methodologies.house); runnable methodologies: greeks-stress, "
            f"deribit-standard, tims-pm",
            file=m.file,
            key="meta.methodology",
        )
    return m


def _prepare(positions: Any, market: Any) -> tuple[pd.DataFrame, Any]:
    from greeksmargin.book.market import MarketSnapshot, load_market
    from greeksmargin.book.positions import load_positions

    mk = market if isinstance(market, MarketSnapshot) else load_market(market)
    if _is_normalised(positions):
        return positions, mk  # already validated by load_positions: do not pay for it twice
    pos = load_positions(positions, valuation_time=mk.valuation_time)
    return pos, mk


def _is_normalised(positions: Any) -> bool:
    """True for a DataFrame in the normalised schema of :func:`~greeksmargin.book.positions.load_positions`."""
    from greeksmargin.book.positions import COLUMNS, KINDS

    if not isinstance(positions, pd.DataFrame):
        return False
    return bool(
        list(positions.columns[: len(COLUMNS)]) == list(COLUMNS)
        and isinstance(positions["expiry"].dtype, pd.DatetimeTZDtype)
        and positions["strike"].dtype == float
        and positions["quantity"].dtype == float
        and positions["multiplier"].dtype == float
        and positions["kind"].isin(KINDS).all()
        and positions.index.is_unique
    )


def _find_bad_accounts(pos: pd.DataFrame, market: Any) -> dict[str, str]:
    """Accounts that cannot be computed, with the reason (only called with ``errors="collect"``)."""
    from greeksmargin.risk.greeks import market_arrays

    bad: dict[str, str] = {}
    try:
        market_arrays(pos, market)
        return bad
    except GreeksMarginError:
        pass
    for acc, sub in pos.groupby("account", sort=False):  # error path only: isolate the failing accounts
        try:
            market_arrays(sub, market)
        except GreeksMarginError as exc:
            bad[str(acc)] = str(exc)
    return bad


def compute_margin(
    positions: Any,
    market: Any,
    model: str | Any = "greeks-default",
    collateral: Any = None,
    *,
    errors: Literal["raise", "collect"] = "raise",
    chunk: int = CHUNK,
    backend: Literal["auto", "numpy", "numba"] = "auto",
    arrays: Mapping[str, Any] | None = None,
) -> MarginResult:
    """Initial and maintenance margin of every account of a positions book.

    Parameters
    ----------
    positions : str, Path or DataFrame
        Positions table (validated by :func:`greeksmargin.book.positions.load_positions`).
    market : str, Path, dict or MarketSnapshot
        Market snapshot.
    model : str, Path or Model
        A shipped model's name (``"greeks-default"``, ``"deribit-sm"``, ``"tims-pm"``), a TOML file, or a
        loaded model of a component methodology.
    collateral : str, Path or DataFrame, optional
        Collateral table (:func:`greeksmargin.book.collateral.load_collateral`): adds ``collateral_im``,
        ``collateral_mm`` (after haircuts, margin currency), ``excess_im``, ``excess_mm`` to ``accounts``.
    errors : {"raise", "collect"}
        ``"collect"``: an account that cannot be computed (e.g. an option whose underlying has no vol) gets
        a row with ``error`` set and NaN figures; the others are computed.
    chunk : int
        Positions revalued at once by the numpy backend (memory: about ``n_scenarios x chunk x 8`` bytes
        per array).
    backend : {"auto", "numpy", "numba"}
        ``"numpy"``: chunked broadcasting (the reference); ``"numba"``: the compiled fused kernel of
        :mod:`greeksmargin.risk._scan_kernel` (no scenario x position matrix); ``"auto"``: numba when
        installed and the book has at least :data:`NUMBA_MIN_EVALUATIONS` position x scenario evaluations.
        Both give the same figures (tested to 1e-12 relative; the finite-difference Greeks use the numpy
        kernel on both backends).

    arrays : mapping of str to ndarray, optional
        The book's market inputs as :func:`greeksmargin.risk.greeks.market_arrays` returns them, one entry per
        row of ``positions`` in order, to be used instead of looking them up in ``market`` (e.g. inputs
        moved per position, so that every account is margined at its own moved market in one call; the
        market then serves only FX). Engine methodologies only, with ``errors="raise"``.

    Returns
    -------
    MarginResult
        Amounts in each account's margin currency (see the module docstring). Models whose methodology
        is not scenario-based on the engine's components (SIMM, SPAN, Deribit PM, Derive PM2) run
        through :mod:`greeksmargin.engine.adapters` and return its ``AdapterMarginResult`` (``.accounts``,
        ``.components``, ``.explain()``, ``.summary()``; no P&L matrix or attribution).

    Raises
    ------
    ModelError
        Bad model file, or a methodology that does not run on a positions book.
    InputError, MarketDataError
        Bad positions, or (``errors="raise"``) a position the market cannot price.
    """
    _check_args(positions, market, model, collateral)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise InputError(f"argument 'chunk' must be a positive int (got {chunk!r})")
    loaded = load_model(model)
    if not loaded.runnable:
        from greeksmargin.engine.adapters import DISPATCH, margin_by_methodology

        if loaded.methodology in DISPATCH:  # SIMM, SPAN, Deribit PM, Derive PM2: through their book adapters
            adapted = margin_by_methodology(positions, market, loaded)
            if collateral is not None:
                _add_collateral(adapted, collateral, _prepare(positions, market)[1])
            return adapted  # type: ignore[return-value]
    m = _check_model(loaded)
    if errors not in ("raise", "collect"):
        raise InputError(f"argument 'errors' must be 'raise' or 'collect', got {errors!r}")
    bad: dict[str, str] = {}
    if errors == "collect" and not _is_normalised(positions):  # a bad row sets its account aside
        from greeksmargin.book.market import MarketSnapshot, load_market
        from greeksmargin.book.positions import load_positions_collect

        mk = market if isinstance(market, MarketSnapshot) else load_market(market)
        pos, bad = load_positions_collect(positions, valuation_time=mk.valuation_time)
    else:
        pos, mk = _prepare(positions, market)
    if backend not in ("auto", "numpy", "numba"):
        raise InputError(f"backend must be 'auto', 'numpy' or 'numba', got {backend!r}")
    if arrays is not None:
        if errors != "raise":
            raise InputError("arrays= needs errors='raise' (rows must align with the positions given)")
        if len(np.asarray(arrays["spot"])) != len(pos):
            raise InputError(f"arrays= has {len(np.asarray(arrays['spot']))} rows for {len(pos)} positions")
    # accounts holding a position outside the model's domain: not computed (NaN figures + reason), never 0
    pos_all = pos
    outside = m.domain.not_computed(pos, m.name)
    if outside:
        keep = ~pos["account"].astype(str).isin(list(outside)).to_numpy()
        pos = pos[keep]
        if arrays is not None:
            arrays = {k: (v if k == "underlyings" else np.asarray(v)[keep]) for k, v in arrays.items()}
    if errors == "collect":  # accounts the market cannot price, beside those with a bad row
        bad.update(_find_bad_accounts(pos, mk))
    good = pos[~pos["account"].isin(list(bad))] if bad else pos
    res = _run(good, mk, m, chunk=chunk, backend=backend, arrays=arrays)
    res.accounts["status"] = "computed"
    res.accounts["reason"] = None
    extras = [pd.DataFrame({"account": list(bad), "error": list(bad.values()), "status": "error",
                            "reason": list(bad.values())})] if bad else []
    if outside:
        extras.append(pd.DataFrame({"account": list(outside), "error": None, "status": "not_computed",
                                    "reason": list(outside.values())}))
    if extras:
        extra = pd.concat(extras, ignore_index=True)
        for c in res.accounts.columns:
            if c not in extra:
                extra[c] = np.nan if c not in ("currency", "worst_scenario") else ""
        if outside:
            ccy = _currency_of_accounts(pos_all, mk)
            extra.loc[extra["status"] == "not_computed", "currency"] = [
                ccy.get(a, "USD") for a in extra.loc[extra["status"] == "not_computed", "account"]]
        res.accounts = pd.concat([res.accounts, extra[res.accounts.columns]], ignore_index=True)
        res.accounts = res.accounts.sort_values("account", kind="stable").reset_index(drop=True)
    if collateral is not None:
        _add_collateral(res, collateral, mk)
    return res


def _currency_of_accounts(positions_all: pd.DataFrame, market: Any) -> dict[str, str]:
    """Margin currency of each account by the engine's rule (the coin of an all-inverse one-coin account, else USD)."""
    from greeksmargin.solvency.assess import account_currency

    return {str(k): str(v) for k, v in account_currency(positions_all, market).items()}


def _check_args(positions: Any, market: Any, model: Any, collateral: Any = None) -> None:
    """Argument types of the public entry points (ArgumentTypeError naming the argument)."""
    from greeksmargin.book.market import MarketSnapshot
    from greeksmargin.engine.models import Model

    if not isinstance(positions, (pd.DataFrame, str, Path)):
        raise ArgumentTypeError("positions", "a positions DataFrame or file path (str or Path)", positions)
    if not isinstance(market, (MarketSnapshot, Mapping, str, Path)):
        raise ArgumentTypeError("market", "a MarketSnapshot, a market dict or a market file path", market)
    if not isinstance(model, (Model, str, Path)):
        raise ArgumentTypeError("model", "a model name, a model file path or a Model", model)
    if collateral is not None and not isinstance(collateral, (pd.DataFrame, str, Path)):
        raise ArgumentTypeError("collateral", "a collateral DataFrame or file path, or None", collateral)


def _add_collateral(res: MarginResult | AdapterMarginResult, collateral: Any, market: Any) -> None:
    from greeksmargin.book.collateral import load_collateral, value_collateral

    coll = load_collateral(collateral)
    acc = res.accounts
    ccy = dict(zip(acc["account"], acc["currency"].replace("", "USD")))
    vals = value_collateral(coll, market, margin_currency=ccy, accounts=list(acc["account"]))
    acc["collateral_im"] = vals["im_value"].reindex(acc["account"]).to_numpy()
    acc["collateral_mm"] = vals["mm_value"].reindex(acc["account"]).to_numpy()
    acc["excess_im"] = acc["collateral_im"] - acc["im"]
    acc["excess_mm"] = acc["collateral_mm"] - acc["mm"]


def margin_change(
    positions: Any, market: Any, model: str | Any, trades: Any, *, backend: Literal["auto", "numpy", "numba"] = "auto"
) -> pd.DataFrame:
    """Margin before and after adding ``trades``, for the accounts the trades touch only.

    Parameters
    ----------
    positions : str, Path or DataFrame
        Current positions.
    market : str, Path, dict or MarketSnapshot
        Market snapshot.
    model : str, Path or Model
        The model.
    trades : str, Path or DataFrame
        New positions (same schema), appended to the accounts' positions.
    backend : {"auto", "numpy", "numba"}
        As in :func:`compute_margin` (both agree to 1e-12 relative).

    Returns
    -------
    DataFrame
        ``account, currency, im_before, im_after, mm_before, mm_after, im_change, mm_change, status,
        reason``, one row per touched account (accounts absent before start from 0). An account holding a
        position outside the model's domain (before or after) has NaN figures, status ``not_computed``
        and the reason.
    """
    _check_args(positions, market, model)
    if not isinstance(trades, (pd.DataFrame, str, Path)):
        raise ArgumentTypeError("trades", "a trades DataFrame or file path (str or Path)", trades)
    m = _check_model(model)
    pos, mk = _prepare(positions, market)
    from greeksmargin.book.positions import load_positions

    tr = load_positions(trades, valuation_time=mk.valuation_time)
    touched = list(pd.unique(tr["account"]))
    before_pos = pos[pos["account"].isin(touched)]
    after_pos = pd.concat([before_pos, tr], ignore_index=True)
    after_pos = load_positions(after_pos, valuation_time=mk.valuation_time)
    # an account holding (before or after the trades) a position outside the model's domain: NaN + reason
    outside = m.domain.not_computed(after_pos, m.name)
    if outside:
        after_pos = after_pos[~after_pos["account"].astype(str).isin(list(outside))]
        before_pos = before_pos[~before_pos["account"].astype(str).isin(list(outside))]
    after = _run(after_pos, mk, m, backend=backend).accounts.set_index("account")
    if len(before_pos):
        before = _run(before_pos, mk, m, backend=backend).accounts.set_index("account")
    else:
        before = pd.DataFrame(columns=["im", "mm"])
    out = pd.DataFrame({"account": touched})
    out["currency"] = after["currency"].reindex(touched).to_numpy()
    out["im_before"] = before["im"].reindex(touched).fillna(0.0).to_numpy(dtype=float)
    out["im_after"] = after["im"].reindex(touched).to_numpy(dtype=float)
    out["mm_before"] = before["mm"].reindex(touched).fillna(0.0).to_numpy(dtype=float)
    out["mm_after"] = after["mm"].reindex(touched).to_numpy(dtype=float)
    out["im_change"] = out["im_after"] - out["im_before"]
    out["mm_change"] = out["mm_after"] - out["mm_before"]
    nc = out["account"].astype(str).isin(list(outside))
    out.loc[nc, ["im_before", "im_after", "mm_before", "mm_after", "im_change", "mm_change"]] = np.nan
    out["status"] = np.where(nc, "not_computed", "computed")
    out["reason"] = [outside.get(str(a)) for a in out["account"]]
    return out


def accounts_table(result: MarginResult, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The accounts table with the model's figures in model order (for printing)."""
    cols = list(columns) if columns else ["account", "currency", "im", "mm", "isolated_im", "saving", "saving_pct"]
    acc = result.accounts
    declared = getattr(result.model.params, "figures", None)
    if declared is None:  # adapter methodologies: their component columns, as they come
        declared = [c for c in acc.columns
                    if c not in cols and c not in ("error", "left_out_positions", "status", "reason")]
    figs = [f for f in declared if f in acc.columns and f not in cols]
    extra = [c for c in ("collateral_im", "excess_im", "worst_scenario") if c in acc.columns]
    if "status" in acc.columns and (acc["status"].astype(str) != "computed").any():
        extra += ["status", "reason"]
    elif "error" in acc.columns and acc["error"].notna().any():
        extra.append("error")
    return acc[cols + figs + extra]
