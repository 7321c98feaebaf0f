"""The house model's cap at isolated margin holds in the incremental what-if as in the full engine.

Hand-made book where the cap binds under ``greeks-default``: a long-dated calendar spread of BTC futures
(2031 / 2036). Alone each future carries no roll charge (``scope = "calendar"``: only exposure that offsets
across expiries is charged); together the roll charge ``sum |B_e| - |sum B_e|`` grows with the expiry
(``annual_move x T``) and exceeds the two futures margined alone, so ``cap_at_isolated`` cuts the unit's
requirement to the sum of its positions' isolated requirements.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin.engine.incremental import AccountState
from greeksmargin.engine.models import load_model


def _row(kind: str, q: float, *, exp: str | None = None, ot: str | None = None, k: float | None = None,
         settle: str = "inverse") -> dict:
    return dict(account="CAL", instrument=f"BTC-{kind}-{exp}-{ot}-{k}", underlying="BTC", kind=kind,
                option_type=ot, strike=k, expiry=exp, quantity=q, multiplier=1.0, settlement=settle)


@pytest.fixture(scope="module")
def setup():
    mk = gm.datasets.load_example_book().market
    m = load_model("greeks-default")
    uncapped = dataclasses.replace(m, params=dataclasses.replace(m.params, cap_at_isolated=False))
    return mk, m, uncapped


@pytest.mark.parametrize("settle", ["inverse", "linear"])
def test_cap_binds_and_incremental_equals_full(setup, settle):
    mk, m, uncapped = setup
    assert m.params.cap_at_isolated
    base = pd.DataFrame([_row("future", 10, exp="2031-12-26T08:00:00Z", settle=settle),
                         _row("future", -10, exp="2036-12-26T08:00:00Z", settle=settle)])
    trade = pd.DataFrame([_row("option", 2, exp="2026-12-25T08:00:00Z", ot="call", k=120000.0, settle=settle)])
    book = pd.concat([base, trade], ignore_index=True)
    full = gm.compute_margin(book, mk, m).accounts.iloc[0]
    raw = gm.compute_margin(book, mk, uncapped).accounts.iloc[0]
    # the cap binds: without it the requirement is well above the positions margined alone
    assert raw["im"] > 1.5 * full["im"]
    assert full["im"] == pytest.approx(full["isolated_im"], rel=1e-12)
    state = AccountState.from_positions(base, mk, m)
    b0 = gm.compute_margin(base, mk, m).accounts.iloc[0]
    assert state.margin()[0] == pytest.approx(b0["im"], rel=1e-9)
    assert state.margin()[1] == pytest.approx(b0["mm"], rel=1e-9)
    for tr in (trade, trade.to_dict("records")):
        im, mm = state.with_trades(tr)
        assert im == pytest.approx(full["im"], rel=1e-9)
        assert mm == pytest.approx(full["mm"], rel=1e-9)
    # through the public what-if (incremental path) too
    ch = gm.margin_change(base, mk, m, trade).iloc[0]
    assert ch["im_after"] == pytest.approx(full["im"], rel=1e-9)
    assert ch["im_before"] == pytest.approx(b0["im"], rel=1e-9)
    assert ch["im_change"] == pytest.approx(full["im"] - b0["im"], rel=1e-9, abs=1e-9 * full["im"])


def test_uncapped_model_is_not_capped_incrementally(setup):
    """The incremental cap follows the model: a rule set without ``cap_at_isolated`` is not capped."""
    mk, _, uncapped = setup
    base = pd.DataFrame([_row("future", 10, exp="2031-12-26T08:00:00Z")])
    trade = [_row("future", -10, exp="2036-12-26T08:00:00Z")]
    full = gm.compute_margin(pd.concat([base, pd.DataFrame(trade)], ignore_index=True), mk, uncapped).accounts.iloc[0]
    assert full["im"] > full["isolated_im"] * 1.5
    im, _ = AccountState.from_positions(base, mk, uncapped).with_trades(trade)
    assert im == pytest.approx(full["im"], rel=1e-9)
