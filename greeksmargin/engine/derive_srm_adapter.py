"""Book adapter of the Derive standard manager (``derive-srm``): positions and a market snapshot in, accounts out.

One SRM market per (account, underlying): options at the market's vols and forwards (``amount = size``,
``seconds = time to expiry x 365 x 86400``, full confidences), futures and perpetuals folded into the single perp
line (size summed, price = the perpetual mark, no unsettled P&L: the book is marked), long spot as the base
asset (wETH / wBTC), short spot folded into the perp (the standard manager has no short base balance), cash 0,
USDC at 1. As for Derive PM2 (:mod:`greeksmargin.methodologies`), a coin-settled option enters as a USD option
of the same size and an inverse future or perpetual of ``Q`` coin as a perp of size ``Q``.

The rule returns *margin* figures (collateral value - requirement); the requirement against equity is
``im = MtM - IM margin``, ``mm = MtM - MM margin`` (USD, floored at 0).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from greeksmargin.engine.adapters import _AccountFigures, _finite, _model_params, _run
from greeksmargin.errors import ModelError
from greeksmargin.methodologies.derive_srm import (
    SRMExpiry,
    SRMMarket,
    SRMOption,
    SRMParams,
    SRMPortfolio,
    derive_srm_margin,
    params_from_dict,
)

__all__ = ["derive_srm_accounts", "srm_portfolio"]

SECONDS_PER_YEAR = 365.0 * 86400.0


def srm_portfolio(priced: pd.DataFrame, market: Any, underlying: str) -> SRMPortfolio:
    """The standard-manager account of one underlying's priced positions (see the module docstring).

    Parameters
    ----------
    priced : DataFrame
        Priced positions of one account and one underlying (``kind, size, strike, is_call, time_to_expiry,
        vol, forward``).
    market : MarketSnapshot
    underlying : str

    Returns
    -------
    SRMPortfolio
    """
    spot = float(market.spot(underlying))
    opts = priced[priced["kind"] == "option"]
    perp_size = float(priced.loc[priced["kind"].isin(["future", "perpetual"]), "size"].sum())
    spot_pos = priced[priced["kind"] == "spot"]
    base = float(spot_pos.loc[spot_pos["size"] > 0, "size"].sum())
    perp_size += float(spot_pos.loc[spot_pos["size"] < 0, "size"].sum())
    by_expiry: dict[int, list[SRMOption]] = {}
    forwards: dict[int, float] = {}
    for _, r in opts.iterrows():
        secs = int(round(float(r["time_to_expiry"]) * SECONDS_PER_YEAR))
        by_expiry.setdefault(secs, []).append(SRMOption(float(r["strike"]), bool(r["is_call"]), float(r["size"]),
                                                        float(r["vol"])))
        forwards.setdefault(secs, float(r["forward"]))
    expiries = tuple(SRMExpiry(s, forwards[s], tuple(o)) for s, o in sorted(by_expiry.items()))
    perp_price = float(market.perpetual_mark(underlying)) if perp_size else None
    return SRMPortfolio(0.0, (SRMMarket(underlying, spot, 1.0, expiries, perp_size, perp_price, 1.0, 0.0, base),))


def _params(model: Any) -> SRMParams:
    m, raw = _model_params(model)
    if isinstance(raw, SRMParams):
        return raw
    if isinstance(raw, dict):
        return params_from_dict(raw)
    raise ModelError(f"the derive-srm adapter needs a derive-srm model or its parameters (got {type(raw).__name__})")


def derive_srm_accounts(positions: pd.DataFrame, market: Any, model: Any = "derive-srm", *,
                        isolated: bool = True) -> pd.DataFrame:
    """Derive standard-manager requirement of every account: one market per underlying (module docstring).

    Parameters
    ----------
    positions : DataFrame
        Validated positions.
    market : MarketSnapshot
    model : str, Model, SRMParams or dict, default "derive-srm"
        The derive-srm model or its parameters (case ``parameters`` layout).
    isolated : bool, default True
        Compute ``isolated_im`` (one account per position).

    Returns
    -------
    DataFrame
        ``account, im, mm, isolated_im, saving, saving_pct, currency, option_mtm, im_margin, mm_margin, error``;
        amounts USD.
    """
    params = _params(model)

    def core(sub: pd.DataFrame) -> Any:
        im = mm = 0.0
        comps = {"option_mtm": 0.0, "im_margin": 0.0, "mm_margin": 0.0}
        rows: list[dict[str, Any]] = []
        for und, grp in sub.groupby("underlying", sort=True):
            res = derive_srm_margin(srm_portfolio(grp, market, str(und)), params)
            im += max(res.mtm - res.im, 0.0)
            mm += max(res.mtm - res.mm, 0.0)
            m = res.markets[0]
            comps["option_mtm"] += m.option_mtm
            comps["im_margin"] += res.im
            comps["mm_margin"] += res.mm
            for name in ("option_im", "option_mm", "perp_im", "perp_mm", "base_im", "base_mm", "oracle_im",
                         "depeg_im"):
                rows.append({"underlying": und, "rule": "derive_srm", "component": name,
                             "amount": float(getattr(m, name))})
        return _AccountFigures(_finite(im, "SRM IM"), mm, "USD", comps, rows)

    return _run(positions, market, core, "derive-srm", isolated=isolated, model=model)
