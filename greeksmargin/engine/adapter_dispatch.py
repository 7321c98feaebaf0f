"""The book adapters by methodology (:data:`DISPATCH`), their result type and :func:`margin_by_methodology`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.book.book import Book, book_accounts_frame, load_book_market_collect
from greeksmargin.book.market import MarketSnapshot, load_market
from greeksmargin.engine.adapters import (
    deribit_pm_accounts,
    derive_pm2_accounts,
    simm_accounts,
    span_accounts,
    strategy_accounts,
)
from greeksmargin.engine.derive_srm_adapter import derive_srm_accounts
from greeksmargin.engine.models import load_model
from greeksmargin.engine.postcondition import enforce
from greeksmargin.errors import InputError, ModelError

__all__ = ["DISPATCH", "NO_ATTRIBUTION", "NO_PNL_MATRIX", "AdapterMarginResult", "margin_by_methodology"]


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

    def __init__(self, accounts: pd.DataFrame, components: pd.DataFrame, model: Any, *,
                 positions: pd.DataFrame | None = None, market: Any = None,
                 options: dict[str, Any] | None = None) -> None:
        self.accounts = accounts
        self.components = components
        self.model = model
        # the inputs, kept for the methodology's own break-downs (attribution by finite differences)
        self._positions = positions
        self._market = market
        self._options = dict(options or {})

    def attribution(self, *, rel_step: float = 1e-4) -> pd.DataFrame:
        """Contribution of each position to its account's IM, where the methodology defines one.

        SIMM: Euler contributions ``x_i dIM/dx_i`` by central finite differences of the whole calculation
        (every position ``i`` scaled by ``1 +- rel_step``, all accounts in one adapter call). SIMM is
        homogeneous of degree 1 in the sensitivities except where a concentration threshold binds, so the
        contributions sum to the IM up to that: the gap is reported per account (``residual`` =
        ``im - sum``), not spread over the positions.

        Returns
        -------
        DataFrame
            ``account, position, underlying, contribution, currency, residual`` (SIMM).

        Raises
        ------
        ModelError
            The other methodologies, with the reason (:data:`NO_ATTRIBUTION`).
        """
        meth = _canonical(self.model.methodology)
        if meth != "simm":
            raise ModelError(f"no attribution for methodology '{self.model.methodology}': {NO_ATTRIBUTION[meth]}",
                             file=self.model.file, key="meta.methodology")
        return _euler_attribution(self, rel_step)

    def pnl_matrix(self, account: str) -> pd.DataFrame:
        """P&L of each position of ``account`` in the methodology's scenarios, where it has scenarios.

        Deribit PM: the risk matrix, per instrument (columns; the rule nets positions of one instrument), in
        the account's margin currency: rows ``move +x% vol up|same|down`` of the standard grid, then
        ``extended move +x% vol up`` (the extended table, its fraction applied), unweighted and before the
        gain offset and dampener (:func:`greeksmargin.methodologies.deribit_pm.deribit_pm_margin`).
        SPAN: per position (columns: the positions' index labels), the 16 scenarios of each underlying's
        generated risk arrays (rows ``<underlying> s<i>: price +x% vol up|down|-``), P&L in USD with the
        extreme scenarios' weight applied (``-risk array x size``; 0 for positions of other underlyings).

        Raises
        ------
        ModelError
            The other methodologies, with the reason (:data:`NO_PNL_MATRIX`).
        """
        meth = _canonical(self.model.methodology)
        if meth == "deribit-pm":
            return _deribit_pm_matrix(self, account)
        if meth == "span":
            return _span_matrix(self, account)
        raise ModelError(f"no P&L matrix for methodology '{self.model.methodology}': {NO_PNL_MATRIX[meth]}",
                         file=self.model.file, key="meta.methodology")

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


def _canonical(methodology: str) -> str:
    return methodology.replace("_", "-")


#: why each adapter methodology has no position attribution (``AdapterMarginResult.attribution``)
NO_ATTRIBUTION = {
    "span": "the requirement is a scan risk of the combined commodity's risk arrays plus spread and short-option "
            "minimum charges; the per-position risk arrays exist but SPAN defines no split of the combined "
            "requirement (a per-position isolated figure is not an attribution)",
    "deribit-pm": "the requirement is the worst scenario of a risk matrix plus roll and delta shocks; Deribit "
                  "publishes no split of it across positions",
    "derive-pm2": "the requirement is the worst of 29 scenarios plus contingencies computed on the portfolio; "
                  "Derive defines no per-position split",
    "derive-srm": "the standard manager sums per-expiry max(isolated, max-loss) figures; no split of the max-loss "
                  "part across positions is defined",
    "cboe-strategy": "the requirement comes from an optimal pairing of legs into strategies; a leg's share of a "
                     "strategy's margin is not defined by the rule",
    "simm": "",
}

#: why each adapter methodology has no scenario P&L matrix (``AdapterMarginResult.pnl_matrix``)
NO_PNL_MATRIX = {
    "simm": "SIMM is a sensitivity-based aggregation (delta, vega, curvature, correlations), not a scenario scan",
    "derive-pm2": "PM2's scenario P&L is not a sum of per-position P&L (measured on the example book: the positions "
                  "of an underlying margined alone add up to its portfolio's scenario P&L only to 4-6%), so there "
                  "is no per-position matrix; each underlying's portfolio scenario P&L is "
                  "methodologies.derive_pm2.derive_pm2_margin(...).scenario_pnl",
    "derive-srm": "the standard manager is not scenario based",
    "cboe-strategy": "strategy-based margin has no scenarios",
}


def _deribit_pm_matrix(res: AdapterMarginResult, account: str) -> pd.DataFrame:
    """The Deribit PM risk matrix of one account, per instrument (see ``AdapterMarginResult.pnl_matrix``)."""
    from greeksmargin.engine.adapters import _deribit_rows, _fx, _model_tables
    from greeksmargin.methodologies.deribit_pm import DeribitPMParams, deribit_pm_margin
    from greeksmargin.risk.greeks import price_positions

    r = _computed_row(res, account)
    pos, mk = res._positions, res._market
    assert pos is not None and mk is not None
    sub = price_positions(pos[pos["account"].astype(str) == account], mk)
    rows_in = _deribit_rows(sub)
    raw = _model_tables(res.model, "deribit-pm model tables")
    ts_ms = float(pd.Timestamp(mk.valuation_time).value // 1_000_000)
    ccy = str(r["currency"])
    cols: dict[str, np.ndarray] = {}
    index: list[str] = []
    for coin in sorted(pd.unique(rows_in["coin"])):
        part = rows_in[rows_in["coin"] == coin].drop(columns="coin")
        und = str(sub.loc[part.index, "underlying"].iloc[0])
        p = DeribitPMParams.from_dict(raw[str(coin).lower()], strict=True)
        out = deribit_pm_margin(part, float(mk.spot(und)), p, timestamp_ms=ts_ms)
        k = _fx(mk, str(coin), ccy)
        labels = [f"{und} move {m:+.1%} vol {v}" for m in out.price_moves for v in ("up", "same", "down")]
        labels += [f"{und} extended move {m:+.1%} vol up" for m in p.extended_moves]
        for name, std in out.position_pnl.items():
            cols[name] = np.concatenate([np.asarray(std).ravel(), np.asarray(out.position_extended[name])]) * k
        index.append("|".join(labels))
    if len(index) > 1:  # one grid per coin: the rows of one coin are 0 for the other coin's instruments
        labels_all = [lab for block in index for lab in block.split("|")]
        sizes = [len(b.split("|")) for b in index]
        mat = pd.DataFrame(0.0, index=labels_all, columns=list(cols))
        start = 0
        for coin_block, n in zip(sorted(pd.unique(rows_in["coin"])), sizes):
            names = rows_in.loc[rows_in["coin"] == coin_block, "instrument"].unique()
            for nm in names:
                mat.iloc[start:start + n, mat.columns.get_loc(nm)] = cols[nm]
            start += n
        return mat
    return pd.DataFrame(cols, index=index[0].split("|") if index else [])


def _span_matrix(res: AdapterMarginResult, account: str) -> pd.DataFrame:
    """SPAN scenario P&L per position of one account (see ``AdapterMarginResult.pnl_matrix``)."""
    from greeksmargin.engine.adapters import _model_tables, _span_params_for, span_unit
    from greeksmargin.methodologies.span import scenario_grid
    from greeksmargin.risk.greeks import price_positions

    _computed_row(res, account)
    pos, mk = res._positions, res._market
    assert pos is not None and mk is not None
    priced = price_positions(pos[pos["account"].astype(str) == account], mk)
    raw = _model_tables(res.model, "span model tables")
    blocks = []
    for und, grp in priced.groupby("underlying", sort=True):
        spot = float(mk.spot(str(und)))
        params, _ = _span_params_for(raw, str(und), spot, res._options.get("product_map"))
        u = span_unit(grp, params, spot)
        dp, dv, extreme = scenario_grid(params.psr, params.vsr, params.extreme_multiple)
        labels = [f"{und} s{i + 1}: price {p / spot:+.2%} vol {'up' if v > 0 else ('down' if v < 0 else '-')}"
                  + (" (extreme, weighted)" if x else "") for i, (p, v, x) in enumerate(zip(dp, dv, extreme))]
        block = pd.DataFrame(0.0, index=labels, columns=list(priced.index))
        for key, arr in u["risk_arrays"].items():
            label = grp.index[[f"{lab}:{grp.at[lab, 'instrument']}" == key for lab in grp.index]][0]
            block[label] = -np.asarray(arr, dtype=float) * float(grp.at[label, "size"])
        blocks.append(block)
    return pd.concat(blocks) if blocks else pd.DataFrame()


def _computed_row(res: AdapterMarginResult, account: str) -> pd.Series:
    row = res.accounts[res.accounts["account"].astype(str) == account]
    if row.empty:
        raise InputError(f"account '{account}' is not in the result", column="account")
    r = row.iloc[0]
    if str(r.get("status", "computed")) != "computed" or (isinstance(r.get("error"), str) and r["error"]):
        raise ModelError(f"account '{account}' is not computed under '{res.model.name}': "
                         f"{r.get('reason') or r.get('error')}")
    if res._positions is None or res._market is None:
        raise ModelError("pnl_matrix needs the result of margin_by_methodology (positions and market kept)")
    return r


def _euler_attribution(res: AdapterMarginResult, h: float) -> pd.DataFrame:
    """Central finite differences of the account IM in each position's size (one adapter call)."""
    pos, mk = res._positions, res._market
    if pos is None or mk is None:
        raise ModelError("attribution needs the result of margin_by_methodology (positions and market kept)")
    acc = res.accounts.set_index(res.accounts["account"].astype(str))
    ok = [a for a in acc.index if str(acc.loc[a].get("status", "computed")) == "computed"
          and not (isinstance(acc.loc[a].get("error"), str) and acc.loc[a]["error"])]
    pos = pos[pos["account"].astype(str).isin(ok)]
    if pos.empty:
        return pd.DataFrame(columns=["account", "position", "underlying", "contribution", "currency", "residual"])
    parts = []
    labels = list(pos.index)
    for j, lab in enumerate(labels):
        acc_j = str(pos.at[lab, "account"])
        sub = pos[pos["account"].astype(str) == acc_j]
        for sign, tag in ((1.0, "up"), (-1.0, "dn")):
            b = sub.copy()
            b.loc[lab, "quantity"] = b.at[lab, "quantity"] * (1.0 + sign * h)
            b["account"] = f"{acc_j}\x00{j}\x00{tag}"
            parts.append(b)
    bumped = pd.concat(parts, ignore_index=True)
    fn = DISPATCH[res.model.methodology]
    out = fn(bumped, mk, res.model, **res._options).set_index("account")["im"]
    contrib = np.array([(out[f"{pos.at[lab, 'account']}\x00{j}\x00up"] - out[f"{pos.at[lab, 'account']}\x00{j}\x00dn"])
                        / (2.0 * h) for j, lab in enumerate(labels)], dtype=float)
    df = pd.DataFrame({"account": pos["account"].astype(str).to_numpy(), "position": labels,
                       "underlying": pos["underlying"].to_numpy(), "contribution": contrib})
    df["currency"] = df["account"].map(acc["currency"])
    total = df.groupby("account")["contribution"].sum()
    df["residual"] = df["account"].map(acc["im"].astype(float) - total)
    return df


def margin_by_methodology(positions: Any, market: Any = None, model: Any = None, **options: Any
                          ) -> AdapterMarginResult:
    """Run an exchange methodology that ``compute_margin`` does not run natively on a positions book.

    Parameters
    ----------
    positions : Book, str, Path or DataFrame
        A Book (trusted: its positions given to the adapter as they are; its bad accounts listed with
        status ``error``), or positions validated here once.
    market : str, Path, dict or MarketSnapshot, optional
        Market snapshot (None with a Book).
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
    m = load_model(model)
    fn = DISPATCH.get(m.methodology)
    if fn is None:
        raise ModelError(f"no book adapter for methodology '{m.methodology}' (adapters: "
                         f"{', '.join(sorted(k for k in DISPATCH if '-' not in k))})", file=m.file,
                         key="meta.methodology")
    # a malformed row raises; an account the market cannot price is listed with its reason (as before the Book)
    if isinstance(positions, Book):
        book = positions
    else:
        if market is None:
            raise InputError("argument 'market' is required with raw positions (or pass a Book from load_book)")
        mk = market if isinstance(market, MarketSnapshot) else load_market(market)
        book = load_book_market_collect(positions, mk)
    if isinstance(positions, Book) and market is not None and market is not book.market:
        raise InputError("the market given is not the Book's market (use book.with_market(moves))",
                         column="market")
    df = fn(book.positions, book.market, m, **options)
    comps = df.attrs.get("components", pd.DataFrame(
        columns=["account", "underlying", "rule", "component", "amount", "currency"]))
    if book.bad_accounts:  # accounts set aside at validation: listed with their reason, never dropped
        df = pd.concat([df, book_accounts_frame(book, [c for c in df.columns if c not in ("account", "error")])],
                       ignore_index=True)
        df = df.sort_values("account", kind="stable").reset_index(drop=True)
    enforce(df)
    return AdapterMarginResult(df, comps, m, positions=book.positions, market=book.market, options=options)
