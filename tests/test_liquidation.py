from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.book.collateral import load_collateral, load_example_collateral
from greeksmargin.datasets import load_example_book
from greeksmargin.errors import InputError
from greeksmargin.solvency.assess import AT_MM_RTOL, simple_scan_margin
from greeksmargin.solvency.liquidation import liquidate_account

BOOK = load_example_book()
POS, MKT = BOOK.positions, BOOK.market
COLL = load_example_collateral()
FN = simple_scan_margin()

# engine mechanics pinned on fixed parameters: the shipped greeks-default as of 2026-11 (before the out-of-sample
# recalibration); the shipped model's own figures are pinned in tests/pins
MODEL_2026_11 = str(Path(__file__).parent / "data" / "greeks-default-2026-11.toml")


def check_end_state(r):
    # nothing created or lost
    assert r.equity_before == pytest.approx(r.equity_after + r.realised_cost, rel=1e-9, abs=1e-9)
    assert r.realised_cost >= 0
    if r.status == "bankrupt":
        assert r.equity_after <= 0
        assert r.shortfall == pytest.approx(-r.equity_after)
    else:
        assert r.status in ("restored", "not_needed")
        assert r.equity_after >= r.mm_after * (1 - AT_MM_RTOL) - 1e-12
        assert r.shortfall == 0.0
    if len(r.trades):
        assert r.trades["cost"].sum() == pytest.approx(r.realised_cost)
        assert (np.diff(np.r_[r.equity_before, r.trades["equity_after"]]) <= 1e-9 * abs(r.equity_before)).all()


def test_below_mm_account_is_restored_with_the_engine():
    r = liquidate_account(POS, MKT, COLL, "ETH-STRADDLE", MODEL_2026_11)
    assert r.mm_before > r.equity_before > 0
    assert r.status == "restored" and len(r.trades) >= 1
    check_end_state(r)
    # the first position closed is the largest contributor to the requirement
    from greeksmargin.engine.margin import compute_margin

    att = compute_margin(POS[POS["account"] == "ETH-STRADDLE"], MKT, MODEL_2026_11).attribution()
    assert r.trades["position"].iloc[0] == att.loc[att["contribution"].idxmax(), "position"]


def test_healthy_account_is_not_touched():
    r = liquidate_account(POS, MKT, COLL, "MIXED", margin_fn=FN)
    assert r.status == "not_needed" and len(r.trades) == 0
    assert r.equity_after == r.equity_before


def test_bankrupt_account_reports_shortfall():
    coll = load_collateral(pd.DataFrame({"account": ["SPX-NAKEDPUT"], "asset": ["USD"], "amount": [1e5]}))
    r = liquidate_account(POS, MKT, coll, "SPX-NAKEDPUT", margin_fn=FN)
    assert r.status == "bankrupt" and r.shortfall > 0
    check_end_state(r)


@settings(max_examples=12, deadline=None)
@given(
    account=st.sampled_from(["SPX-NAKEDPUT", "SPX-DESK", "ETH-STRADDLE", "BTC-COVCALL", "MIXED"]),
    move=st.floats(-0.6, 0.6),
    slippage=st.floats(0.0, 0.02),
    step=st.sampled_from([1.0, 0.5]),
)
def test_liquidation_restores_mm_or_ends_bankrupt_and_conserves_equity(account, move, slippage, step):
    u = POS.loc[POS["account"] == account, "underlying"].iloc[0]
    r = liquidate_account(POS, MKT, COLL, account, margin_fn=FN, moves={u: move}, slippage=slippage,
                          step_fraction=step)
    check_end_state(r)


def test_untradable_positions_are_delta_hedged():
    acct = "SPX-DESK"
    labels = list(POS.index[POS["account"] == acct])
    r = liquidate_account(POS, MKT, COLL, acct, margin_fn=FN, moves={"SPX": -0.3}, untradable=labels)
    assert r.mm_before > r.equity_before
    assert (r.trades["action"] == "hedge").all() and len(r.trades) == 1
    assert r.status in ("restored", "stuck", "bankrupt")
    assert r.equity_before == pytest.approx(r.equity_after + r.realised_cost, rel=1e-9)
    assert r.trades["kind"].iloc[0] == "future"


def test_bad_arguments():
    with pytest.raises(InputError, match="step_fraction"):
        liquidate_account(POS, MKT, COLL, "MIXED", margin_fn=FN, step_fraction=0.0)
    with pytest.raises(InputError, match="NOPE"):
        liquidate_account(POS, MKT, COLL, "NOPE", margin_fn=FN)


def test_cli_liquidate(capsys):
    import json

    from greeksmargin.cli import main
    from greeksmargin.datasets import example_paths

    p = example_paths()
    coll = p["positions"].parent / "example_collateral.csv"
    assert main(["liquidate", str(p["positions"]), str(p["market"]), "--collateral", str(coll),
                 "--account", "ETH-STRADDLE", "--format", "json", "--model", MODEL_2026_11]) == 0
    doc = json.loads(capsys.readouterr().out)
    s = doc["summary"]
    assert s["status"] == "restored" and len(doc["trades"]) == s["n_trades"] >= 1
    assert s["equity_before"] == pytest.approx(s["equity_after"] + s["realised_cost"], rel=1e-9)
