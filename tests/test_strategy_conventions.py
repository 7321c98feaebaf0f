"""Strategy margin: one proceeds convention across the account, FINRA 4210(c) maintenance on stock, pairing.

Regression tests of issue 19 (strategy-margin part): a covered put was charged 12,750 (the deposit beyond the
short-sale proceeds) while naked shorts included their proceeds; FINRA maintenance on stock was not modelled
(mm = im); two interleaved bull call spreads were charged 621 (their net debit) where Lean and the broker report
0 margin.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from greeksmargin import io
from greeksmargin.engine.model_schemas import check_model_file
from greeksmargin.engine.params_files import load_strategy_params
from greeksmargin.errors import ModelError
from greeksmargin.methodologies.strategy import (
    Leg,
    Underlying,
    naked_short_requirement,
    stock_maintenance,
    strategy_margin,
)

ROOT = Path(__file__).resolve().parents[1]
P = load_strategy_params()
O = Leg.option  # noqa: E741
D = Decimal


# ------------------------------------------------------------------------------------------ proceeds convention
def test_covered_put_is_150_percent_of_the_short_stock():
    """Short 100 shares at 255 covering a short put: Reg T 150% of 25,500 = 38,250 (the proceeds included)."""
    und = Underlying.of(255)
    res = strategy_margin([Leg.stock(-100, 255), O("put", 250, 3, -1)], und, P)
    assert res.margin_requirement == D(38250)
    assert {ln.strategy for ln in res.lines} == {"covered_put", "short_stock"}
    # proceeds: the stock's 25,500 and the put's 300; the customer brings 50% of the stock less the put's proceeds
    assert res.short_proceeds == D(25800)
    assert res.deposit_excl_proceeds == D(12750) - D(300)
    assert res.cash_requirement is None


def test_one_account_one_convention():
    """A naked put, a covered put and a put credit spread in one account: every line includes its proceeds, so
    the requirement less the proceeds is the deposit each rule states beyond the proceeds."""
    und = Underlying.of(100)
    legs = [O("put", 90, 2, -1), Leg.stock(-100, 100), O("put", 95, 3, -1), O("put", 80, 1, -1),
            O("put", 75, 0.5, 1)]
    res = strategy_margin(legs, und, P)
    by = {ln.strategy: ln for ln in res.lines}
    assert set(by) == {"naked_short_put", "covered_put", "short_stock", "spread_group(vertical)"}
    # naked: 2 + max(20% x 100 - 10, 10% x 90) = 12 a share: 1,200, of which 200 proceeds
    assert by["naked_short_put"].margin == D(1200) and by["naked_short_put"].proceeds == D(200)
    # the dearer short put (95: 3 + 15 = 1,800 naked) is the one the stock covers: nothing on it
    assert by["covered_put"].legs == (2,) and by["covered_put"].margin == 0
    # short stock: 150% of 10,000 (10,000 proceeds)
    assert by["short_stock"].margin == D(15000) and by["short_stock"].proceeds == D(10000)
    # put credit spread: maximum loss 500 plus the long put's cost 50; proceeds 100 -> deposit 450
    assert by["spread_group(vertical)"].margin == D(550) and by["spread_group(vertical)"].proceeds == D(100)
    assert by["spread_group(vertical)"].cash == D(450)
    assert res.margin_requirement == sum((ln.margin for ln in res.lines), D(0))
    assert res.deposit_excl_proceeds == res.margin_requirement - res.short_proceeds
    # beyond the proceeds: naked 20% - OTM, stock 50% less the covered put's proceeds, spread width - credit
    assert res.deposit_excl_proceeds == D(1000) + (D(5000) - D(300)) + D(450)


def test_naked_short_requirement_is_the_same_alone_and_in_an_account_with_stock():
    und = Underlying.of(100)
    naked = O("put", 90, 2, -1)
    alone = strategy_margin([naked], und, P).margin_requirement
    with_stock = strategy_margin([naked, Leg.stock(200, 100)], und, P)
    assert alone == naked_short_requirement(naked, und, P)[0] == D(1200)
    assert with_stock.margin_requirement == alone + D(10000)  # long stock 50% of 20,000


def test_publisher_convention_is_the_requirement_with_spread_proceeds_applied():
    und = Underlying.of(255)
    debit = [O("put", 250, 3, 1), O("put", 240, 0.95, -1)]
    res = strategy_margin(debit, und, P, method="greedy")
    assert res.margin_requirement == D(300)  # the long put paid in full; the short covered by it
    assert res.spread_proceeds_applied() == D(205) == res.cash_requirement  # the public suite's figure


# ------------------------------------------------------------------------------------------ pairing
def test_interleaved_bull_call_spreads_need_no_margin():
    """QuantConnect/Lean#9638: 598/603 and 600/605 bull call spreads: no loss at any price, margin 0 (the net
    debit 621 is the premium paid, not margin)."""
    und = Underlying.of(600.4, "etf")
    legs = [O("call", 598, 8.11, 1), O("call", 603, 4.85, -1), O("call", 600, 6.72, 1), O("call", 605, 3.77, -1)]
    for method in ("optimal", "greedy"):
        res = strategy_margin(legs, und, P, method=method)
        assert res.margin_excl_long_premium == 0
        assert res.maintenance_excl_long_premium == 0
        assert res.long_premium == D(1483)
        assert res.deposit_excl_proceeds == D(621)


def test_optimal_pairing_below_greedy_on_a_put_ladder():
    """Long 544P, long 548P, short 552P: the heuristic pairs the short with the lowest long (max loss 800); the
    optimum pairs it with the 548 put (max loss 400)."""
    und = Underlying.of(548.343, "etf")
    legs = [O("put", 544, 1e-25, 1), O("put", 548, 0.02, 1), O("put", 552, 3.484, -1)]
    opt = strategy_margin(legs, und, P, method="optimal")
    greedy = strategy_margin(legs, und, P, method="greedy")
    assert opt.margin_excl_long_premium == D(400)
    assert greedy.margin_excl_long_premium == D(800)


# ------------------------------------------------------------------------------------------ FINRA maintenance
@pytest.mark.parametrize("shares, price, want", [
    (100, 50, D(1250)),        # long: 25%
    (-100, 50, D(6500)),       # short: proceeds 5,000 + 30% (1,500 > $5 x 100)
    (-100, 10, D(1500)),       # short: proceeds 1,000 + $5 a share (500 > 30% = 300)
    (-100, 3, D(600)),         # below $5: proceeds 300 + 100% (300 > $2.50 x 100)
    (-100, 2, D(450)),         # below $5: proceeds 200 + $2.50 a share (250 > 200)
])
def test_finra_4210c_stock_maintenance(shares, price, want):
    assert stock_maintenance(Leg.stock(shares, price), P) == want


def test_maintenance_differs_from_initial_only_on_stock():
    und = Underlying.of(50)
    cc = strategy_margin([Leg.stock(100, 50), O("call", 55, 1, -1), O("put", 45, 0.5, -1)], und, P)
    # initial: stock 50% + naked put; maintenance: stock 25% + the same naked put
    naked = naked_short_requirement(O("put", 45, 0.5, -1), und, P)[0]
    assert cc.margin_requirement == D(2500) + naked
    assert cc.maintenance_requirement == D(1250) + naked
    opts = strategy_margin([O("call", 55, 1, -1), O("put", 45, 0.5, -1)], und, P)
    assert opts.maintenance_requirement == opts.margin_requirement


def test_model_file_carries_the_finra_rates_and_the_schema_bounds_them():
    path = ROOT / "models" / "cboe-strategy.toml"
    raw = io.read_toml(path)
    assert raw["parameters"]["stock_maint_long_rate"] == 0.25
    assert raw["parameters"]["stock_maint_short_rate"] == 0.30
    check_model_file(raw, str(path))
    bad = {**raw, "parameters": {**raw["parameters"], "stock_maint_short_rate": 1.3}}
    with pytest.raises(ModelError, match="stock_maint_short_rate"):
        check_model_file(bad, "bad.toml")
    with pytest.raises(ModelError, match="stock_maint_long_rate"):
        load_strategy_params({"parameters": {"stock_maint_long_rate": -0.1}})
    p = load_strategy_params({"parameters": {"stock_maint_long_rate": 0.3}})
    assert stock_maintenance(Leg.stock(100, 50), p) == D(1500)


def test_book_adapter_reports_maintenance_and_proceeds():
    sys.path.insert(0, str(ROOT / "tests"))
    from margin_fixtures import book, market, row

    import greeksmargin as gm

    b = book([row("S", "SPX", "spot", quantity=-100), row("L", "SPX", "spot", quantity=100)])
    res = gm.compute_margin(b, market(), "cboe-strategy")
    acc = res.accounts.set_index("account")
    # short 100 x 6,000: initial 150% = 900,000; maintenance 600,000 + 30% = 780,000; proceeds 600,000
    assert acc.loc["S", "im"] == pytest.approx(900000.0)
    assert acc.loc["S", "mm"] == pytest.approx(780000.0)
    assert acc.loc["S", "short_proceeds"] == pytest.approx(600000.0)
    assert acc.loc["S", "deposit_excl_proceeds"] == pytest.approx(300000.0)
    assert math.isnan(acc.loc["S", "cash_requirement"])
    assert (acc.loc["L", "im"], acc.loc["L", "mm"]) == (pytest.approx(300000.0), pytest.approx(150000.0))
