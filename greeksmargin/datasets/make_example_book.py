"""Generate the bundled example book: ``example_positions.csv`` and ``example_market.json``.

Run ``python -m greeksmargin.datasets.make_example_book`` (writes into ``greeksmargin/datasets/data/``;
``--out DIR`` writes elsewhere). The output is deterministic: fixed seed (20261120), fixed valuation time
2026-11-20T08:00:00Z (a Friday).

Market (synthetic but realistic, not a historical snapshot)
-----------------------------------------------------------
* BTC (spot 95,000) and ETH (spot 3,400): coin-settled, rate 0 (as on Deribit), listed forwards per
  Deribit expiry (Fridays 08:00 UTC: two weeklies, the monthlies to Feb and the quarterlies to Sep 2027)
  with a 6% / 5% annual carry (contango); perpetual marks a few dollars above spot; vol surfaces in
  log-moneyness with a put skew and smile curvature,
  ``sigma(k, T) = atm(T) + skew(T) k + curv k^2`` with the ATM term structure rising from ~50% (BTC)
  / ~62% (ETH) at one week to ~56% / ~68% at one year.
* SPX (spot 6,000): USD-settled, rate curve 4.3% -> 3.8%, dividend yield 1.3%, surface on the third
  Fridays (16:00 New York = 21:00 UTC) with a steep equity put skew (ATM 15% -> 18.5%).
* FX: USD, USDC, USDT; the coins are valued at their spot.

Accounts (strikes on the exchange's strike grid around spot, quantities drawn with the seed)
-------------------------------------------------------------------------------------------
* ``BTC-COVCALL``: BTC covered-call fund, short OTM calls (inverse) over three expiries (the BTC cover
  is collateral, added by the collateral module).
* ``ETH-STRADDLE``: short ATM ETH straddles over three expiries with long far-OTM wings.
* ``BTC-SPREADS``: BTC calendar spreads, bull call and bear put verticals.
* ``MM-CRYPTO``: market maker quoting both sides of BTC and ETH options, delta-hedged per underlying
  with the perpetual and a quarterly future (hedge sizes from ``price_positions``).
* ``SPX-DESK``: SPX index options desk (multiplier 100, USD): put spreads, call spreads, a collar,
  delta-hedged with an E-mini future (``ES``, multiplier 50).
* ``SPX-NAKEDPUT``: short OTM SPX puts.
* ``MIXED``: USDC-settled (linear) BTC and ETH options, a linear BTC perpetual, ETH spot and an SPX call.
"""

from __future__ import annotations

import argparse
import calendar
import math
from pathlib import Path

import numpy as np
import pandas as pd

from greeksmargin import io

SEED = 20261120
VALUATION_TIME = pd.Timestamp("2026-11-20T08:00:00Z")
DATA_DIR = Path(__file__).resolve().parent / "data"
SPOTS = {"BTC": 95_000.0, "ETH": 3_400.0, "SPX": 6_000.0}
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def _last_friday(year: int, month: int, hour: int) -> pd.Timestamp:
    last = calendar.monthrange(year, month)[1]
    d = pd.Timestamp(year=year, month=month, day=last, hour=hour, tz="UTC")
    return d - pd.Timedelta(days=(d.weekday() - 4) % 7)


def _third_friday(year: int, month: int, hour: int) -> pd.Timestamp:
    d = pd.Timestamp(year=year, month=month, day=1, hour=hour, tz="UTC")
    first = d + pd.Timedelta(days=(4 - d.weekday()) % 7)
    return first + pd.Timedelta(days=14)


def deribit_expiries() -> list[pd.Timestamp]:
    """Listed crypto expiries after the valuation time: 2 weeklies, monthlies to Feb, quarterlies to Sep."""
    out = [VALUATION_TIME + pd.Timedelta(days=7), VALUATION_TIME + pd.Timedelta(days=14)]
    out += [_last_friday(y, m, 8) for y, m in ((2026, 12), (2027, 1), (2027, 2), (2027, 3), (2027, 6), (2027, 9))]
    return sorted(set(out))


def spx_expiries() -> list[pd.Timestamp]:
    """SPX monthly expiries (third Friday, 21:00 UTC) after the valuation time."""
    return [_third_friday(y, m, 21) for y, m in ((2026, 12), (2027, 1), (2027, 3), (2027, 6), (2027, 12))]


def _code(e: pd.Timestamp) -> str:
    return f"{e.day}{MONTHS[e.month - 1]}{e.year % 100:02d}"


def _years(e: pd.Timestamp) -> float:
    return (e - VALUATION_TIME).total_seconds() / (365 * 86400)


def _iso(e: pd.Timestamp) -> str:
    return e.strftime("%Y-%m-%dT%H:%M:%SZ")


def _surface(expiries: list[pd.Timestamp], atm0: float, atm1: float, skew: float, curv: float,
             points: list[float]) -> dict:
    vols = []
    for e in expiries:
        t = _years(e)
        atm = atm1 + (atm0 - atm1) * math.exp(-t / 0.35)
        sk = skew / math.sqrt(max(t, 1 / 52) / 0.25) ** 0.5
        vols.append([round(max(atm + sk * k + curv * k * k, 0.05), 4) for k in points])
    return {"axis": "log_moneyness", "expiries": [_iso(e) for e in expiries], "points": points, "vols": vols}


def build_market() -> dict:
    """The market snapshot as a dict (``load_market`` format)."""
    crypto = deribit_expiries()
    spx = spx_expiries()
    pts_c = [-0.6, -0.4, -0.25, -0.1, 0.0, 0.1, 0.25, 0.4, 0.6]
    pts_e = [-0.4, -0.25, -0.15, -0.05, 0.0, 0.05, 0.1, 0.2]
    under = {}
    for name, carry, atm0, atm1, skew, perp in (("BTC", 0.06, 0.50, 0.56, -0.10, 95_012.5),
                                                ("ETH", 0.05, 0.62, 0.68, -0.08, 3_401.25)):
        s = SPOTS[name]
        under[name] = {
            "spot": s,
            "currency": name,
            "rate": 0.0,
            "dividend_yield": 0.0,
            "forwards": {_iso(e): round(s * math.exp(carry * _years(e)), 2) for e in crypto},
            "perpetual_mark": perp,
            "surface": _surface(crypto, atm0, atm1, skew, 0.35, pts_c),
        }
    under["SPX"] = {
        "spot": SPOTS["SPX"],
        "currency": "USD",
        "rate": {"expiries": [_iso(spx[0]), _iso(spx[-1])], "rates": [0.043, 0.038]},
        "dividend_yield": 0.013,
        "surface": _surface(spx, 0.15, 0.185, -0.45, 0.6, pts_e),
    }
    return {
        "valuation_time": _iso(VALUATION_TIME),
        "fx_to_usd": {"USD": 1.0, "USDC": 1.0, "USDT": 0.9995},
        "underlyings": under,
    }


def _opt(account: str, u: str, e: pd.Timestamp, k: float, cp: str, qty: float, *, linear: bool = False) -> dict:
    if u == "SPX":
        name = f"SPX {e:%Y-%m-%d} {int(k)} {cp.upper()}"
        return dict(account=account, instrument=name, underlying=u, kind="option", option_type=cp, strike=k,
                    expiry=_iso(e), quantity=qty, multiplier=100.0, settlement="linear", premium_currency="USD")
    prefix = f"{u}_USDC" if linear else u
    name = f"{prefix}-{_code(e)}-{int(k)}-{cp[0].upper()}"
    return dict(account=account, instrument=name, underlying=u, kind="option", option_type=cp, strike=k,
                expiry=_iso(e), quantity=qty, multiplier=0.01 if linear else 1.0,
                settlement="linear" if linear else "inverse", premium_currency="USDC" if linear else u)


def _lin(account: str, u: str, kind: str, qty: float, *, e: pd.Timestamp | None = None, linear: bool = False,
         instrument: str | None = None, multiplier: float = 1.0) -> dict:
    if instrument is None:
        prefix = f"{u}_USDC" if linear else u
        instrument = f"{prefix}-PERPETUAL" if kind == "perpetual" else f"{prefix}-{_code(e)}" if e else u
    return dict(account=account, instrument=instrument, underlying=u, kind=kind, option_type="", strike=np.nan,
                expiry=_iso(e) if e is not None else "", quantity=qty, multiplier=multiplier,
                settlement="linear" if linear or u == "SPX" or kind == "spot" else "inverse",
                premium_currency="USD" if u == "SPX" or kind == "spot" else ("USDC" if linear else u))


def _grid(x: float, step: float) -> float:
    return float(step * round(x / step))


def build_positions(market: dict) -> pd.DataFrame:
    """The positions table (before the market-maker and SPX hedges are sized)."""
    rng = np.random.default_rng(SEED)
    ce = deribit_expiries()
    se = spx_expiries()
    btc, eth, spx = SPOTS["BTC"], SPOTS["ETH"], SPOTS["SPX"]
    rows: list[dict] = []

    # 1. BTC covered-call fund: short OTM calls on three expiries
    for e, moneyness in ((ce[2], (1.05, 1.10, 1.15)), (ce[3], (1.10, 1.20)), (ce[5], (1.25, 1.35))):
        for m in moneyness:
            rows.append(_opt("BTC-COVCALL", "BTC", e, _grid(btc * m, 5000), "call", -float(rng.integers(5, 16))))

    # 2. ETH short-straddle seller with long wings
    for e in (ce[1], ce[2], ce[3]):
        k = _grid(eth * math.exp(0.05 * _years(e)), 100)
        q = float(rng.integers(50, 201))
        rows.append(_opt("ETH-STRADDLE", "ETH", e, k, "call", -q))
        rows.append(_opt("ETH-STRADDLE", "ETH", e, k, "put", -q))
        rows.append(_opt("ETH-STRADDLE", "ETH", e, _grid(k * 1.3, 100), "call", q / 2))
        rows.append(_opt("ETH-STRADDLE", "ETH", e, _grid(k * 0.75, 100), "put", q / 2))

    # 3. BTC calendar and vertical spreads
    for k in (90_000.0, 100_000.0, 110_000.0):
        q = float(rng.integers(2, 11))
        rows.append(_opt("BTC-SPREADS", "BTC", ce[2], k, "call", -q))
        rows.append(_opt("BTC-SPREADS", "BTC", ce[5], k, "call", q))
    for e in (ce[3], ce[4]):
        q = float(rng.integers(3, 13))
        rows.append(_opt("BTC-SPREADS", "BTC", e, 100_000.0, "call", q))
        rows.append(_opt("BTC-SPREADS", "BTC", e, 115_000.0, "call", -q))
        rows.append(_opt("BTC-SPREADS", "BTC", e, 85_000.0, "put", q))
        rows.append(_opt("BTC-SPREADS", "BTC", e, 75_000.0, "put", -q))

    # 4. market maker: both sides of BTC and ETH options (hedges added in build_book)
    for u, s, step, scale in (("BTC", btc, 1000.0, 1.0), ("ETH", eth, 50.0, 10.0)):
        for _ in range(18):
            e = ce[int(rng.integers(0, 7))]
            k = _grid(s * math.exp(rng.normal(0.0, 0.12) * math.sqrt(max(_years(e), 0.05) / 0.25)), step)
            cp = "call" if k >= s else "put"
            q = float(np.round(rng.normal(0.0, 3.0) * scale, 1)) or 0.5 * scale
            rows.append(_opt("MM-CRYPTO", u, e, k, cp, q))

    # 5. SPX desk: put spreads, call spreads, a collar
    for e in (se[0], se[1], se[2]):
        q = float(rng.integers(20, 81))
        rows.append(_opt("SPX-DESK", "SPX", e, _grid(spx * 0.97, 25), "put", q))
        rows.append(_opt("SPX-DESK", "SPX", e, _grid(spx * 0.90, 25), "put", -q))
    for e in (se[1], se[3]):
        q = float(rng.integers(10, 41))
        rows.append(_opt("SPX-DESK", "SPX", e, _grid(spx * 1.03, 25), "call", -q))
        rows.append(_opt("SPX-DESK", "SPX", e, _grid(spx * 1.07, 25), "call", q))
    rows.append(_opt("SPX-DESK", "SPX", se[4], _grid(spx * 0.85, 50), "put", 30.0))
    rows.append(_opt("SPX-DESK", "SPX", se[4], _grid(spx * 1.15, 50), "call", -30.0))

    # 6. naked short puts on SPX
    for e in se[:4]:
        for m in (0.92, 0.85):
            rows.append(_opt("SPX-NAKEDPUT", "SPX", e, _grid(spx * m, 25), "put", -float(rng.integers(5, 26))))

    # 7. mixed USD account: USDC-linear crypto options, linear perp, ETH spot, an SPX call
    for u, s, step in (("BTC", btc, 1000.0), ("ETH", eth, 50.0)):
        for e, m, cp in ((ce[2], 1.1, "call"), (ce[3], 0.9, "put"), (ce[4], 1.0, "call")):
            q = float(rng.integers(-300, 301)) or 100.0
            rows.append(_opt("MIXED", u, e, _grid(s * m, step), cp, q, linear=True))
    rows.append(_lin("MIXED", "BTC", "perpetual", -2000.0, linear=True, multiplier=0.001))
    rows.append(_lin("MIXED", "ETH", "spot", 40.0, instrument="ETH"))
    rows.append(_opt("MIXED", "SPX", se[2], _grid(spx * 1.05, 25), "call", 3.0))
    return pd.DataFrame(rows)


def build_book() -> tuple[pd.DataFrame, dict]:
    """Positions (with delta hedges sized from ``price_positions``) and the market dict."""
    from greeksmargin.book.market import load_market
    from greeksmargin.book.positions import load_positions
    from greeksmargin.risk.greeks import price_positions

    market_d = build_market()
    market = load_market(market_d)
    pos = build_positions(market_d)
    priced = price_positions(load_positions(pos, valuation_time=market.valuation_time), market)
    ce = deribit_expiries()
    hedges = []
    for u in ("BTC", "ETH"):
        sel = (priced["account"] == "MM-CRYPTO") & (priced["underlying"] == u)
        d = float((priced.loc[sel, "delta"] * priced.loc[sel, "size"]).sum())  # units of underlying
        fut = round(-0.4 * d, 1)
        fwd_ratio = market.forward(u, [_years(ce[5])])[0] / market.spot(u)
        hedges.append(_lin("MM-CRYPTO", u, "future", fut, e=ce[5]))
        hedges.append(_lin("MM-CRYPTO", u, "perpetual", round(-d - fut * fwd_ratio, 1)))
    sel = priced["account"] == "SPX-DESK"
    d = float((priced.loc[sel, "delta"] * priced.loc[sel, "size"]).sum())
    es_exp = _third_friday(2027, 3, 13) + pd.Timedelta(minutes=30)
    es_ratio = market.forward("SPX", [_years(es_exp)])[0] / market.spot("SPX")
    hedges.append(_lin("SPX-DESK", "SPX", "future", float(round(-d / (50 * es_ratio))), e=es_exp,
                       instrument="ESH7", multiplier=50.0))
    pos = pd.concat([pos, pd.DataFrame(hedges)], ignore_index=True)
    pos = pos.sort_values(["account", "underlying", "kind", "expiry", "strike"], kind="stable").reset_index(drop=True)
    return pos, market_d


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder (default: the package data)")
    args = parser.parse_args(argv)
    pos, market_d = build_book()
    market_d["description"] = "greeksmargin example market, generated by greeksmargin.datasets.make_example_book"
    io.write_table(pos, args.out / "example_positions.csv")
    io.write_json(market_d, args.out / "example_market.json")
    print(f"wrote {len(pos)} positions, {pos['account'].nunique()} accounts to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
