"""AccountState keeps each trade instrument's market look-ups: a repeated or a different trade gives the same
figures as a fresh state and as compute_margin (no stale look-up)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from greeksmargin.datasets import load_example_book
from greeksmargin.engine.incremental import AccountState
from greeksmargin.engine.margin import compute_margin


def _trade(pos: pd.DataFrame, i: int, strike_mult: float = 1.0) -> dict:
    r = pos[pos["kind"] == "option"].iloc[i].to_dict()
    r["strike"] = float(r["strike"]) * strike_mult
    r["quantity"] = -2.0
    return r


def test_repeated_and_new_instruments_match_fresh_state_and_compute_margin():
    ex = load_example_book()
    pos, mk = ex.positions, ex.market
    acc = "MM-CRYPTO"
    mine = pos[pos["account"] == acc]
    st = AccountState.from_positions(pos, mk, account=acc)
    trades = [_trade(mine, 0), _trade(mine, 0), _trade(mine, 0, 1.1), _trade(mine, 1), _trade(mine, 0, 1.1)]
    for tr in trades:
        got = st.with_trades(tr)
        fresh = AccountState.from_positions(pos, mk, account=acc).with_trades(tr)
        assert got == fresh  # the kept look-ups give bit-identical figures
        full = compute_margin(pd.concat([mine, pd.DataFrame([tr])], ignore_index=True), mk).accounts.iloc[0]
        np.testing.assert_allclose(got, (full["im"], full["mm"]), rtol=1e-9)
    assert len(st._lookups) == 3  # three distinct instruments looked up, the repeats served from the state
