"""MarginResult: the per-account figures, tidy component rows, explain, attribution and P&L matrices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from greeksmargin.book.book import Book
from greeksmargin.engine.house_pieces import _GREEK_COLUMNS, RULE_OF
from greeksmargin.engine.models import Model, RuleSet
from greeksmargin.errors import InputError, ModelError
from greeksmargin.risk.greeks import price_positions
from greeksmargin.risk.scenarios import scenario_pnl

if TYPE_CHECKING:
    pass




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
            # the positions of a validated Book (compute_margin): trusted, not validated again
            priced = price_positions(Book._unchecked(it["positions"], it["market"]))
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
            the same order); columns: the positions' instruments (``instrument#label`` when an account holds
            one instrument on several rows). Unweighted P&L.
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
        return pd.DataFrame(mat, index=list(it["grids"][0].labels), columns=_position_names(it, sel))

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
            lines.append(f"  {u['underlying']}: IM {_amount(u['im'])}")
            for f in figs:
                v = u[f]
                if np.isfinite(v):
                    lines.append(f"    {f:<22s} {_amount(v):>16s}   ({RULE_OF.get(f, '')})")
            if isinstance(u.get("worst_scenario"), str) and u["worst_scenario"]:
                lines.append(f"    worst scenario: {u['worst_scenario']}")
        agg = rs.aggregate["method"]
        if agg == "correlation":
            lines.extend(self._correlation_lines(account))
        elif agg == "offsets":
            lines.append("Across underlyings: scan P&L offset between classes of a product group (TIMS)")
        else:
            lines.append("Across underlyings: sum")
        lines.append(f"IM  {_amount(row['im'])} {ccy}")
        mm_rule = f"{rs.mm_factor:g} x IM" if rs.mm_factor is not None else (rs.mm.text if rs.mm else "")
        lines.append(f"MM  {_amount(row['mm'])} {ccy}   ({mm_rule})")
        lines.append(
            f"Isolated (each position alone) {_amount(row['isolated_im'])} {ccy}: cross-margin saves "
            f"{_amount(row['saving'])} ({row['saving_pct']:.1f}%)"
        )
        if "excess_im" in row.index and pd.notna(row.get("excess_im")):
            lines.append(
                f"Collateral (IM haircuts) {_amount(row['collateral_im'])}; excess over IM {_amount(row['excess_im'])}"
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
            ``account``, ``instrument``, ``position`` (the positions table's index label), ``underlying``,
            ``contribution`` (margin currency; sums to the account's ``im`` exactly), ``currency``.
        """
        it = self._internals
        n = it["n"]
        if n == 0:
            return pd.DataFrame(columns=["account", "instrument", "position", "underlying", "contribution",
                                         "currency"])
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
                "instrument": _instruments(it),
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


def _instruments(it: dict[str, Any]) -> np.ndarray:
    """Instrument name of each position in the engine's order (its label when the book has no names), shape (n,).

    Read from the positions when first asked for (the engine run itself does not need the names).
    """
    if "instruments" not in it:
        pos = it.get("positions")
        it["instruments"] = (pos["instrument"].astype(str).to_numpy(dtype=object)[it["order"]]
                             if pos is not None and "instrument" in pos else it["labels"])
    return np.asarray(it["instruments"])


def _position_names(it: dict[str, Any], sel: np.ndarray) -> list[str]:
    """Instrument names of the positions ``sel`` (``instrument#label`` where an instrument repeats)."""
    names = [str(x) for x in _instruments(it)[sel]]
    labels = [str(x) for x in it["labels"][sel]]
    seen = pd.Series(names).duplicated(keep=False).to_numpy()
    return [f"{n}#{lab}" if dup else n for n, lab, dup in zip(names, labels, seen)]


def _amount(value: float) -> str:
    """An amount for ``explain``: the rule of ``reports.fmt.amount`` (separators, never scientific notation)."""
    x = float(value)
    if not np.isfinite(x):
        return str(x)
    a = abs(x)
    if a < 1e-8:
        return "0.00"
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:,.2f}"
    return f"{x:,.{min(8, 3 - int(np.floor(np.log10(a))))}f}"
