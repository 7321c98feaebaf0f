"""The book adapters by methodology (:data:`DISPATCH`), their result type and :func:`margin_by_methodology`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from greeksmargin.engine.adapters import (
    deribit_pm_accounts,
    derive_pm2_accounts,
    simm_accounts,
    span_accounts,
    strategy_accounts,
)
from greeksmargin.engine.derive_srm_adapter import derive_srm_accounts
from greeksmargin.errors import InputError, ModelError

__all__ = ["DISPATCH", "AdapterMarginResult", "margin_by_methodology"]


# ========================================================================================= dispatch
#: methodology -> adapter ``(positions, market, model, **options) -> per-account DataFrame``
DISPATCH: dict[str, Callable[..., pd.DataFrame]] = {
    "simm": simm_accounts,
    "span": span_accounts,
    "deribit_pm": deribit_pm_accounts,
    "deribit-pm": deribit_pm_accounts,
    "derive_pm2": derive_pm2_accounts,
    "derive-pm2": derive_pm2_accounts,
    "cboe-strategy": strategy_accounts,
    "derive_srm": derive_srm_accounts,
    "derive-srm": derive_srm_accounts,
}


class AdapterMarginResult:
    """Result of :func:`margin_by_methodology`: the per-account table and tidy component rows.

    Attributes
    ----------
    accounts : DataFrame
        ``account, im, mm, isolated_im, saving, saving_pct, currency``, component columns, ``error``.
    components : DataFrame
        Tidy rows ``account, underlying, rule, component, amount, currency`` (per underlying where the
        methodology works per underlying; ``underlying = "ALL"`` for account totals).
    model : Model
        The model used.
    """

    def __init__(self, accounts: pd.DataFrame, components: pd.DataFrame, model: Any) -> None:
        self.accounts = accounts
        self.components = components
        self.model = model

    @property
    def by_underlying(self) -> pd.DataFrame:
        """Per account and underlying, one column per component (the tidy rows pivoted; totals left out)."""
        rows = self.components[self.components["underlying"] != "ALL"]
        if rows.empty:
            return pd.DataFrame(columns=["account", "underlying", "currency"])
        wide = rows.pivot_table(
            index=["account", "underlying", "currency"], columns="component", values="amount", aggfunc="sum", sort=False
        )
        wide.columns.name = None
        return wide.reset_index()

    def explain(self, account: str) -> str:
        """Plain-text explanation of an account's requirement (component rows)."""
        row = self.accounts[self.accounts["account"] == account]
        if row.empty:
            raise InputError(f"account '{account}' is not in the result", column="account")
        r = row.iloc[0]
        lines = [f"Account {account} under model {self.model.name} ({self.model.methodology}); amounts in "
                 f"{r['currency']}."]
        if r.get("status") == "not_computed":
            lines.append(f"  {r['reason']}")
            lines.append("  IM and MM: not computed (null), not 0: the model does not cover these positions.")
            return "\n".join(lines)
        if isinstance(r.get("error"), str) and r["error"]:
            lines.append(f"  not computed: {r['error']}")
            return "\n".join(lines)
        comp = self.components[self.components["account"] == account]
        for _, c in comp.iterrows():
            lines.append(f"  {c['underlying']:<6s} {c['component']:<28s} {c['amount']:>16,.6g}")
        lines.append(f"IM {r['im']:,.6g}  MM {r['mm']:,.6g}  isolated {r['isolated_im']:,.6g} "
                     f"(saving {r['saving_pct']:.1f}%)")
        return "\n".join(lines)

    def summary(self) -> pd.DataFrame:
        """Totals per currency: accounts, IM, MM, isolated IM, saving, failed, not_computed (computed accounts only)."""
        acc = self.accounts
        nc = acc["status"].astype(str) == "not_computed" if "status" in acc.columns else acc["error"].isna() & False
        ok = acc[acc["error"].isna() & ~nc]
        out = ok.groupby("currency", sort=True).agg(accounts=("account", "size"), im=("im", "sum"),
                                                     mm=("mm", "sum"), isolated_im=("isolated_im", "sum"))
        out["saving"] = out["isolated_im"] - out["im"]
        out["failed"] = int(self.accounts["error"].notna().sum())
        out["not_computed"] = int(nc.sum())
        return out.reset_index()


def margin_by_methodology(positions: Any, market: Any, model: Any, **options: Any) -> AdapterMarginResult:
    """Run an exchange methodology that ``compute_margin`` does not run natively on a positions book.

    Parameters
    ----------
    positions : str, Path or DataFrame
        Positions (validated here).
    market : str, Path, dict or MarketSnapshot
        Market snapshot.
    model : str, Path or Model
        A model whose methodology is in :data:`DISPATCH`.
    **options
        Passed to the adapter (e.g. ``horizon="1d"`` for SIMM, ``isolated=False``).

    Returns
    -------
    AdapterMarginResult

    Raises
    ------
    ModelError
        A methodology without an adapter.
    """
    from greeksmargin.book.market import MarketSnapshot, load_market
    from greeksmargin.book.positions import load_positions
    from greeksmargin.engine.models import load_model

    m = load_model(model)
    fn = DISPATCH.get(m.methodology)
    if fn is None:
        raise ModelError(f"no book adapter for methodology '{m.methodology}' (adapters: "
                         f"{', '.join(sorted(k for k in DISPATCH if '-' not in k))})", file=m.file,
                         key="meta.methodology")
    mk = market if isinstance(market, MarketSnapshot) else load_market(market)
    pos = load_positions(positions, valuation_time=mk.valuation_time)
    df = fn(pos, mk, m, **options)
    comps = df.attrs.get("components", pd.DataFrame(
        columns=["account", "underlying", "rule", "component", "amount", "currency"]))
    return AdapterMarginResult(df, comps, m)
