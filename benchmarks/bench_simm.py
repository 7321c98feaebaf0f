"""Benchmark (e): ISDA SIMM of a 1,000,000-row CRIF (every risk class, 10-day), end to end from a DataFrame.

The CRIF is synthetic: rows are trade-level sensitivities drawn over a fixed universe of risk factors (IR: 12
currencies x 12 tenors x 3 sub-curves, inflation, xccy basis, IR vol; FX delta and vol pairs; 3,000 equity
names with vol tenors; 200 commodities; 1,500 credit issuers x 5 tenors, base correlation, credit vol), so the
run nets 1M rows to ~26,000 risk factors and aggregates them. Timed: ``simm_margin`` (CRIF normalisation
with column checks, netting, all classes, product classes) and, separately, ``simm_by_portfolio`` over 20
portfolios.

Run: ``.venv/bin/python benchmarks/bench_simm.py [--rows 1000000] [--repeat 3]``. Target: <= 5 s.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _common import machine, median, times

from greeksmargin.engine.params_files import load_simm_params
from greeksmargin.methodologies.simm import simm_by_portfolio, simm_margin

TENORS = ["2w", "1m", "3m", "6m", "1y", "2y", "3y", "5y", "10y", "15y", "20y", "30y"]


def universe(seed: int = 1) -> pd.DataFrame:
    """The risk factors the synthetic CRIF draws from (one row each)."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, str, str, str, str, str]] = []
    ccys = ["USD", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "SEK", "BRL", "MXN", "INR", "ZAR"]
    ir_bucket = {"JPY": "2", "BRL": "3", "MXN": "3", "INR": "3", "ZAR": "3"}
    for c in ccys:
        for t in TENORS:
            for sub in ("OIS", "Libor3m", "Libor6m"):
                rows.append(("RatesFX", "Risk_IRCurve", c, ir_bucket.get(c, "1"), t, sub))
            rows.append(("RatesFX", "Risk_IRVol", c, "", t, ""))
        rows.append(("RatesFX", "Risk_Inflation", c, "", "", ""))
        rows.append(("RatesFX", "Risk_XCcyBasis", c, "", "", ""))
        if c != "USD":
            rows.append(("RatesFX", "Risk_FX", c, "", "", ""))
            for t in TENORS[:8]:
                rows.append(("RatesFX", "Risk_FXVol", "USD" + c, "", t, ""))
    for i in range(3000):
        b = str(rng.integers(1, 13)) if i % 50 else "Residual"
        rows.append(("Equity", "Risk_Equity", f"EQ{i:05d}", b, "", ""))
        for t in ("1m", "6m", "1y", "3y"):
            rows.append(("Equity", "Risk_EquityVol", f"EQ{i:05d}", b, t, ""))
    for i in range(200):
        b = str(rng.integers(1, 18))
        rows.append(("Commodity", "Risk_Commodity", f"CM{i:03d}", b, "", ""))
        for t in ("3m", "1y"):
            rows.append(("Commodity", "Risk_CommodityVol", f"CM{i:03d}", b, t, ""))
    for i in range(1500):
        b = str(rng.integers(1, 13)) if i % 40 else "Residual"
        for t in ("1y", "2y", "3y", "5y", "10y"):
            rows.append(("Credit", "Risk_CreditQ", f"ISIN:CR{i:05d}", b, t, "USD"))
        rows.append(("Credit", "Risk_CreditVol", f"ISIN:CR{i:05d}", b, "5y", "USD"))
    for i in range(300):
        b = str(rng.integers(1, 3)) if i % 30 else "Residual"
        for t in ("1y", "5y"):
            rows.append(("Credit", "Risk_CreditNonQ", f"NQ{i:04d}", b, t, "CMBX" if i % 2 else "ABX"))
    for idx in ("CDX IG", "CDX HY", "iTraxx Main", "iTraxx Xover"):
        rows.append(("Credit", "Risk_BaseCorr", idx, "", "", ""))
    return pd.DataFrame(rows, columns=["ProductClass", "RiskType", "Qualifier", "Bucket", "Label1", "Label2"])


def make_crif(n: int, seed: int = 7, portfolios: int = 20) -> pd.DataFrame:
    """``n`` trade-level CRIF rows drawn over :func:`universe` (amounts in USD)."""
    rng = np.random.default_rng(seed)
    u = universe()
    pick = rng.integers(0, len(u), n)
    crif = u.iloc[pick].reset_index(drop=True)
    crif["AmountUSD"] = rng.normal(0.0, 1.0, n) * 1e4
    crif.insert(0, "PortfolioID", (rng.integers(0, portfolios, n)).astype(str))
    crif.insert(0, "TradeID", np.char.add("T", np.arange(n).astype(str)))
    return crif


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    params = load_simm_params("2.5")
    crif = make_crif(args.rows)
    print(machine())
    print(f"CRIF: {len(crif):,} rows, {len(universe()):,} distinct risk factors, SIMM v2.5, 10-day; "
          f"{args.repeat} repeats")
    total = simm_margin(crif, params).total
    t = times(lambda: simm_margin(crif, params), args.repeat)
    print(f"simm_margin (one SIMM of the whole CRIF): median {median(t):.2f} s "
          f"(min {min(t):.2f}, max {max(t):.2f}); SIMM = {total:,.0f} USD")
    t2 = times(lambda: simm_by_portfolio(crif, params, by="PortfolioID"), 1)
    print(f"simm_by_portfolio (20 portfolios): {t2[0]:.2f} s")
    print("target: <= 5 s for 1,000,000 rows:", "met" if median(t) <= 5.0 else "NOT met")


if __name__ == "__main__":
    main()
