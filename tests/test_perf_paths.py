"""The fast paths of issue 16 give the figures of the reference paths to the last bit.

* each option contract priced once (``contract_codes`` + ``scenario_pnl(contracts=)``, ``grid_pnl``, the
  compiled scan's contract table) vs position by position;
* ``margin_requirements`` (IM / MM only) vs ``compute_margin``;
* the distance to liquidation of "ALL" taken from the single-underlying search vs searched again.
"""

import numpy as np
import pandas as pd
import pytest

from greeksmargin.book.collateral import load_collateral
from greeksmargin.book.market import load_market
from greeksmargin.book.positions import load_positions
from greeksmargin.datasets import load_example_book
from greeksmargin.engine.margin import compute_margin, margin_requirements
from greeksmargin.engine.models import load_model
from greeksmargin.risk.greeks import market_arrays, price_positions
from greeksmargin.risk.scenarios import contract_codes, grid_pnl, scenario_pnl, sensitivities
from greeksmargin.solvency.assess import BookValuer, _single_underlying, distance_to_liquidation, margin_function

BOOK = load_example_book()
MODEL = load_model("greeks-default")


def _arrays_with_repeats():
    """The example book's arrays, every position repeated 3 times (contracts shared), some riding FX."""
    a = market_arrays(BOOK.positions, BOOK.market)
    n = len(a["size"])
    rep = np.tile(np.arange(n), 3)
    out = {k: (v if k == "underlyings" else np.asarray(v)[rep]) for k, v in a.items()}
    out["size"] = out["size"] * np.repeat([1.0, -2.5, 0.3], n)
    ride = np.zeros(3 * n, dtype=bool)
    ride[n:2 * n] = out["inverse"][n:2 * n]  # coin-settled positions of a USD account in the middle copy
    out["fx_moves"] = ride
    return out


def test_contract_codes_group_exactly_the_identical_options():
    a = _arrays_with_repeats()
    codes, first = contract_codes(a, a["underlying_code"])
    n = len(a["size"]) // 3
    opt = np.asarray(a["kind_code"]) == 0
    # a copy shares the code of its original unless it rides FX differently; non-options never share
    same = codes[:n] == codes[2 * n:]
    assert same[opt[:n]].all() and not same[~opt[:n]].any()
    assert (codes[first] == np.arange(first.size)).all()
    assert first.size < codes.size


def test_pricing_per_contract_is_bitwise_the_pricing_per_position():
    a = _arrays_with_repeats()
    c = contract_codes(a, a["underlying_code"])
    g = MODEL.params.grid
    vols = g.vol_rule.shocked(a["vol"], a["T"], g.vol_dir)
    ref = scenario_pnl(a, g.spot_move, vols)
    assert np.array_equal(scenario_pnl(a, g.spot_move, vols, contracts=c), ref, equal_nan=True)
    assert np.array_equal(grid_pnl(a, g, contracts=c), ref, equal_nan=True)
    for x, y in zip(sensitivities(a, contracts=c), sensitivities(a)):
        assert np.array_equal(x, y, equal_nan=True)


def test_compiled_scan_with_the_contract_table_is_bitwise_the_kernel():
    pytest.importorskip("numba")
    from greeksmargin.risk._scan_kernel import fused_scan

    a = _arrays_with_repeats()
    a = {k: v for k, v in a.items() if k != "underlyings"}
    a["vol"] = np.nan_to_num(a["vol"])
    n = len(a["size"])
    starts = np.arange(0, n, 7)
    factor = np.linspace(0.5, 2.0, n)
    g = MODEL.params.grid
    ref = fused_scan(a, factor, starts, g, 0.8, want_scan=True, want_sens=False)
    got = fused_scan(a, factor, starts, g, 0.8, want_scan=True, want_sens=False,
                     contracts=contract_codes(a, a["underlying_code"]))
    for k in ("unit_pnl", "pos_scan", "pos_worst", "unit_scan", "unit_worst"):
        assert np.array_equal(got[k], ref[k]), k


@pytest.mark.parametrize("model", ["greeks-default", "deribit-sm", "tims-pm"])
def test_margin_requirements_equal_compute_margin(model):
    ref = compute_margin(BOOK.positions, BOOK.market, model).accounts.set_index("account")
    got = margin_requirements(BOOK.positions, BOOK.market, load_model(model))
    assert list(got.index) == list(ref.index)
    for col in ("im", "mm"):
        assert np.array_equal(got[col].to_numpy(dtype=float), ref[col].to_numpy(dtype=float), equal_nan=True)
    assert list(got["currency"]) == list(ref["currency"])
    assert list(got["status"]) == list(ref["status"])


def _surface(level):
    return {"axis": "log_moneyness", "expiries": ["2026-12-25T08:00:00Z", "2027-03-26T08:00:00Z"],
            "points": [-0.5, 0.0, 0.5], "vols": [[level + 0.1, level, level + 0.05]] * 2}


def test_distance_of_all_taken_from_the_single_underlying_search_is_the_search():
    mkt = load_market({
        "valuation_time": "2026-11-20T08:00:00Z",
        "underlyings": {
            "BTC": {"spot": 95000.0, "currency": "BTC", "rate": 0.0, "surface": _surface(0.55)},
            "ETH": {"spot": 3200.0, "currency": "ETH", "rate": 0.0, "surface": _surface(0.7)},
        },
    })
    rows = []
    for i in range(6):
        und = "BTC" if i < 3 else ("ETH" if i < 5 else "BTC")
        s = 95000.0 if und == "BTC" else 3200.0
        for k, (ot, q) in enumerate([("put", -3.0), ("call", -2.0)]):
            rows.append({"account": f"A{i}", "instrument": f"{und}-{k}-{i}", "underlying": und, "kind": "option",
                         "option_type": ot, "strike": s * (0.9 if ot == "put" else 1.1),
                         "expiry": "2026-12-25T08:00:00Z", "quantity": q * (1 + i / 10), "multiplier": 1.0,
                         "settlement": "linear", "premium_currency": "USD"})
    rows.append({"account": "A5", "instrument": "ETH-X", "underlying": "ETH", "kind": "option",
                 "option_type": "put", "strike": 3000.0, "expiry": "2026-12-25T08:00:00Z", "quantity": -4.0,
                 "multiplier": 1.0, "settlement": "linear", "premium_currency": "USD"})
    pos = load_positions(pd.DataFrame(rows), valuation_time=mkt.valuation_time)
    mm = compute_margin(pos, mkt, MODEL).accounts.set_index("account")["mm"]
    mtm = price_positions(pos, mkt).assign(account=pos["account"]).groupby("account")["value_usd"].sum()
    amount = mm.to_numpy() * np.linspace(1.3, 2.5, mm.size) - mtm.reindex(mm.index).to_numpy()
    coll = load_collateral(pd.DataFrame({"account": mm.index, "asset": "USD", "amount": amount}))
    fn = margin_function(MODEL)
    book = BookValuer(pos, mkt, coll, fn)
    # the accounts whose ALL search is taken from their single underlying's (A5 holds BTC and ETH)
    assert _single_underlying(book) == {"A0": "BTC", "A1": "BTC", "A2": "BTC", "A3": "ETH", "A4": "ETH"}
    fast = distance_to_liquidation(book)

    def plain(p, m):  # the same margin function without the hint that enables the shortcut
        return fn(p, m)

    plain.batched = fn.batched  # type: ignore[attr-defined]
    slow = distance_to_liquidation(BookValuer(pos, mkt, coll, plain))
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    f = fast.set_index(["account", "underlying"])
    # one-underlying accounts: the ALL row is the row of their underlying (A5 holds both: searched itself)
    for acct, und in [("A0", "BTC"), ("A3", "ETH")]:
        assert np.isfinite(f.loc[(acct, und), "move"]) and f.loc[(acct, und), "method"] == "root"
        assert f.loc[(acct, "ALL"), "move"] == f.loc[(acct, und), "move"]
