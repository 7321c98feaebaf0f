"""Net cash Greeks by account / underlying / expiry bucket, and CRIF export for SIMM.

Expiry buckets (calendar days ``d = T x 365`` from the valuation time, left-closed)::

    "0-7d" [0, 7)   "7-30d" [7, 30)   "30-90d" [30, 90)   "90-180d" [90, 180)   "180-365d" [180, 365)
    ">1y" [365, inf)   "none" (perpetual, spot: no expiry)

CRIF (:func:`to_crif`): ``ProductClass`` "Equity"; ``Risk_Equity`` rows hold the value change for a +1%
relative move of the underlying (USD, ``delta_1pct``), one per qualifier, ``Label1`` empty;
``Risk_EquityVol`` rows hold the raw vega per 1 vol point (USD, ``vega_1volpt``, i.e. dV/dsigma x 0.01,
the ISDA SIMM methodology), one per qualifier and SIMM tenor. An option of expiry ``T`` puts its vega on the
two surrounding SIMM tenors (2w, 1m, 3m, 6m, 1y, 2y, 3y, 5y, 10y, 15y, 20y, 30y) with weights linear in
time (all on 2w below 2 weeks, all on 30y beyond 30 years): the tenor split sums to the vega.

Default SIMM equity bucket (:data:`DEFAULT_BUCKETS`): broad equity indices (SPX, NDX, RUT, SX5E, ...)
-> "11" (indexes, funds, ETFs), volatility indices (VIX, VSTOXX) -> "12", everything else, crypto
included (SIMM v2.5 has no crypto bucket) -> "Residual". Override with ``bucket_map``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from greeksmargin.errors import ArgumentTypeError, InputError, expect_type

__all__ = [
    "CASH_GREEKS",
    "DEFAULT_BUCKETS",
    "EXPIRY_BUCKETS",
    "SIMM_TENORS",
    "aggregate_greeks",
    "expiry_bucket",
    "tenor_weights",
    "to_crif",
]

CASH_GREEKS = ("delta_cash", "delta_1pct", "gamma_cash_1pct", "vega_1volpt", "theta_1d", "value_usd")

#: bucket labels and their lower bounds in days
EXPIRY_BUCKETS = (("0-7d", 0.0), ("7-30d", 7.0), ("30-90d", 30.0), ("90-180d", 90.0), ("180-365d", 180.0),
                  (">1y", 365.0))

#: SIMM vega tenors and their length in years
SIMM_TENORS = (
    ("2w", 14 / 365),
    ("1m", 1 / 12),
    ("3m", 0.25),
    ("6m", 0.5),
    ("1y", 1.0),
    ("2y", 2.0),
    ("3y", 3.0),
    ("5y", 5.0),
    ("10y", 10.0),
    ("15y", 15.0),
    ("20y", 20.0),
    ("30y", 30.0),
)

DEFAULT_BUCKETS: dict[str, str] = {
    **{k: "11" for k in ("SPX", "SPY", "NDX", "QQQ", "RUT", "IWM", "DJX", "DIA", "ES", "NQ", "SX5E", "DAX",
                         "UKX", "NKY", "HSI", "XSP", "MXEF", "MXEA")},
    **{k: "12" for k in ("VIX", "VSTOXX", "V2X", "VXN")},
}


def expiry_bucket(t_years: ArrayLike) -> NDArray[np.object_]:
    """Expiry bucket label of each time to expiry (see the module docstring).

    Parameters
    ----------
    t_years : array-like of shape (n,)
        Years to expiry (ACT/365); NaN for perpetual / spot.

    Returns
    -------
    ndarray of object of shape (n,)
        Labels ``"0-7d"`` ... ``">1y"``, ``"none"`` where T is NaN.
    """
    t = np.atleast_1d(np.asarray(t_years, dtype=float))
    days = t * 365.0
    labels = np.array([b[0] for b in EXPIRY_BUCKETS], dtype=object)
    bounds = np.array([b[1] for b in EXPIRY_BUCKETS[1:]])
    idx = np.searchsorted(bounds, np.nan_to_num(days, nan=0.0), side="right")
    return np.where(np.isnan(t), "none", labels[idx]).astype(object)


def aggregate_greeks(priced: pd.DataFrame, by: Sequence[str] | str = ("account", "underlying")) -> pd.DataFrame:
    """Sum the cash Greeks of priced positions by groups.

    Parameters
    ----------
    priced : DataFrame
        Output of :func:`~greeksmargin.risk.greeks.price_positions`.
    by : sequence of str or str
        Grouping columns of ``priced`` and/or ``"expiry_bucket"`` (computed from ``time_to_expiry``);
        a comma-separated string is accepted. Empty: one total row.

    Returns
    -------
    DataFrame of shape (n_groups, len(by) + 7 + n_coins)
        The ``by`` columns, ``n_positions``, the sums of :data:`CASH_GREEKS` (USD), and one
        ``coin_delta_<COIN>`` column per margin coin of inverse positions (sum of the premium-adjusted
        coin delta; NaN for groups without positions in that coin). Sorted by the ``by`` columns
        (expiry buckets from the shortest to ``"none"``).
    """
    expect_type(priced, "priced", pd.DataFrame, "a DataFrame of priced positions (price_positions)")
    if not isinstance(by, (str, list, tuple)) or not all(isinstance(c, str) for c in by):
        raise ArgumentTypeError("by", "a column name, a comma-separated string or a list of column names", by)
    cols = [c.strip() for c in by.split(",") if c.strip()] if isinstance(by, str) else list(by)
    df = priced.copy()
    if "expiry_bucket" in cols:
        order = [b[0] for b in EXPIRY_BUCKETS] + ["none"]
        df["expiry_bucket"] = pd.Categorical(
            expiry_bucket(df["time_to_expiry"].to_numpy(dtype=float)), categories=order, ordered=True
        )
    for c in cols:
        if c not in df.columns:
            raise InputError(f"cannot group by unknown column (known: {', '.join(map(str, priced.columns))})",
                             column=c)
    inverse = (df["settlement"] == "inverse").to_numpy()
    coins = sorted(set(df.loc[inverse, "margin_currency"]))
    for c in coins:
        df[f"coin_delta_{c}"] = np.where(inverse & (df["margin_currency"] == c).to_numpy(),
                                         df["coin_delta"].to_numpy(dtype=float), np.nan)
    df["n_positions"] = 1
    sums = ["n_positions", *CASH_GREEKS]
    coin_cols = [f"coin_delta_{c}" for c in coins]
    if not cols:
        row = {c: df[c].sum() for c in sums}
        row.update({c: df[c].sum(min_count=1) for c in coin_cols})
        return pd.DataFrame([row])
    g = df.groupby(cols, sort=True, dropna=False, observed=True)
    out = g[sums].sum()
    if coin_cols:
        out = out.join(g[coin_cols].sum(min_count=1))
    out = out.reset_index()
    if "expiry_bucket" in cols:
        out["expiry_bucket"] = out["expiry_bucket"].astype(str)
    return out


def tenor_weights(t_years: ArrayLike) -> NDArray[np.float64]:
    """Linear split of each expiry onto the SIMM vega tenors.

    Parameters
    ----------
    t_years : array-like of shape (n,)
        Years to expiry.

    Returns
    -------
    ndarray of shape (n, 12)
        Weights on :data:`SIMM_TENORS` (rows sum to 1): the two surrounding tenors, linear in time;
        all on 2w below 2 weeks and all on 30y beyond.
    """
    t = np.atleast_1d(np.asarray(t_years, dtype=float))
    nodes = np.array([x for _, x in SIMM_TENORS])
    tc = np.clip(t, nodes[0], nodes[-1])
    j = np.clip(np.searchsorted(nodes, tc, side="right"), 1, len(nodes) - 1)
    a = (tc - nodes[j - 1]) / (nodes[j] - nodes[j - 1])
    w = np.zeros((t.size, len(nodes)))
    rows = np.arange(t.size)
    w[rows, j - 1] = 1.0 - a
    w[rows, j] += a
    return w


def to_crif(
    priced: pd.DataFrame,
    *,
    qualifier_map: Mapping[str, str] | None = None,
    bucket_map: Mapping[str, str] | None = None,
    trade_ids: bool = False,
) -> pd.DataFrame:
    """Equity delta and vega sensitivities of priced positions as CRIF rows (ISDA SIMM input).

    Parameters
    ----------
    priced : DataFrame
        Output of :func:`~greeksmargin.risk.greeks.price_positions` (pass one account / portfolio at a time).
    qualifier_map : mapping, optional
        Underlying -> SIMM qualifier (default: the underlying name, e.g. ISIN mapping).
    bucket_map : mapping, optional
        Qualifier (or underlying) -> SIMM equity bucket; overrides :data:`DEFAULT_BUCKETS`; unknown names
        go to ``"Residual"``.
    trade_ids : bool, default False
        One set of rows per trade: columns ``TradeID`` (the ``trade_id`` column when present, else the
        instrument) and ``PortfolioID`` (the account) first, rows netted per trade instead of per book, so
        that a SIMM per portfolio (``greeksmargin simm --by portfolio``) or per trade can be run on the export.

    Returns
    -------
    DataFrame of shape (n_rows, 7) (9 with ``trade_ids``)
        Columns ProductClass, RiskType, Qualifier, Bucket, Label1, Label2, AmountUSD; one
        ``Risk_Equity`` row per qualifier (AmountUSD = sum of ``delta_1pct``) then ``Risk_EquityVol``
        rows per qualifier and tenor with non-zero weight (AmountUSD = vega per vol point). Zero rows
        are dropped.
    """
    expect_type(priced, "priced", pd.DataFrame, "a DataFrame of priced positions (price_positions)")
    qmap = dict(qualifier_map or {})
    bmap = {**DEFAULT_BUCKETS, **dict(bucket_map or {})}
    und = priced["underlying"].astype(str)
    qual = und.map(lambda u: qmap.get(u, u))

    def bucket(q: str, u: str) -> str:
        return bmap.get(q, bmap.get(u, "Residual"))

    ids: dict[str, np.ndarray] = {}
    if trade_ids:
        tid = priced["trade_id"] if "trade_id" in priced.columns else priced["instrument"]
        ids = {"TradeID": tid.astype(str).to_numpy(), "PortfolioID": priced["account"].astype(str).to_numpy()}
    keys = list(ids)
    delta = priced["delta_1pct"].to_numpy(dtype=float).copy()
    d = pd.DataFrame({**ids, "Qualifier": qual.to_numpy(), "u": und.to_numpy(), "AmountUSD": delta})
    d = d.groupby(keys + ["Qualifier", "u"], sort=True)["AmountUSD"].sum().reset_index()
    d["RiskType"] = "Risk_Equity"
    d["Label1"] = ""

    opt = (priced["kind"] == "option").to_numpy()
    vega = priced["vega_1volpt"].to_numpy(dtype=float)[opt]
    w = tenor_weights(priced["time_to_expiry"].to_numpy(dtype=float)[opt])
    labels = [lab for lab, _ in SIMM_TENORS]
    v = pd.DataFrame(w * vega[:, None], columns=labels)
    for k, a in ids.items():
        v[k] = a[opt]
    v["Qualifier"] = qual.to_numpy()[opt]
    v["u"] = und.to_numpy()[opt]
    v = v.melt(id_vars=keys + ["Qualifier", "u"], var_name="Label1", value_name="AmountUSD")
    v = v[(np.asarray(w.T.reshape(-1)) > 0)] if len(v) else v
    v["Label1"] = pd.Categorical(v["Label1"], categories=labels, ordered=True)
    v = v.groupby(keys + ["Qualifier", "u", "Label1"], sort=True, observed=True)["AmountUSD"].sum().reset_index()
    v["Label1"] = v["Label1"].astype(str)
    v["RiskType"] = "Risk_EquityVol"

    out = pd.concat([d, v], ignore_index=True)
    out = out[out["AmountUSD"] != 0.0]
    out["Bucket"] = [bucket(q, u) for q, u in zip(out["Qualifier"], out["u"])]
    out["ProductClass"] = "Equity"
    out["Label2"] = ""
    return out[keys + ["ProductClass", "RiskType", "Qualifier", "Bucket", "Label1", "Label2", "AmountUSD"]].reset_index(
        drop=True
    )
