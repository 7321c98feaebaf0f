"""The validated Book (issue 16): one validation, trusted thereafter; same figures as the raw path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import greeksmargin as gm
import greeksmargin.book.book as book_mod
from greeksmargin.book.book import Book, load_book
from greeksmargin.engine.dispatch import run_model
from greeksmargin.engine.margin import compute_margin
from greeksmargin.engine.whatif import margin_change
from greeksmargin.errors import ArgumentTypeError, InputError
from greeksmargin.risk.greeks import market_arrays, price_positions
from greeksmargin.solvency.assess import assess_solvency
from greeksmargin.solvency.cascade import run_cascade

EX = gm.datasets.load_example_book()
MODELS = list(gm.list_models()["name"])


@pytest.fixture(scope="module")
def book() -> Book:
    return load_book(EX.positions, EX.market)


@pytest.mark.parametrize("model", MODELS)
def test_book_equals_raw_for_every_shipped_model(book: Book, model: str) -> None:
    raw = compute_margin(EX.positions, EX.market, model)
    via = compute_margin(book, model=model)
    pd.testing.assert_frame_equal(raw.accounts, via.accounts)
    pd.testing.assert_frame_equal(raw.components.reset_index(drop=True), via.components.reset_index(drop=True))
    assert (raw.accounts["status"] == "computed").any()


def test_public_api_and_direct_construction_refused() -> None:
    assert gm.load_book is load_book and gm.Book is Book
    with pytest.raises(TypeError, match="load_book"):
        Book(EX.positions, EX.market)


def test_arrays_computed_once_and_loader_entered_once(book: Book, monkeypatch: pytest.MonkeyPatch) -> None:
    assert book.arrays is book.arrays
    calls = {"n": 0}
    real = book_mod.check_positions

    def counting(*a: object, **k: object) -> object:
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(book_mod, "check_positions", counting)
    compute_margin(EX.positions, EX.market, "greeks-default")
    assert calls["n"] == 1
    for m in ("greeks-default", "span", "deribit-pm"):
        compute_margin(book, model=m)
    price_positions(book)
    market_arrays(book, book.market)
    assert calls["n"] == 1  # a Book is trusted: never validated again
    ref = market_arrays(EX.positions, EX.market)
    for k, v in book.arrays.items():
        np.testing.assert_array_equal(v, ref[k])
    np.testing.assert_array_equal(book.size, EX.positions["quantity"] * EX.positions["multiplier"])


def test_book_market_must_match(book: Book) -> None:
    moved = EX.market.bumped("BTC", spot_rel=0.1)
    with pytest.raises(InputError, match="not the Book's market"):
        compute_margin(book, moved, "greeks-default")
    with pytest.raises(ArgumentTypeError, match="market"):
        compute_margin(EX.positions, None, "greeks-default")


def test_with_trades_empty_is_base(book: Book) -> None:
    assert book.with_trades([]) is book
    assert book.with_trades(EX.positions.iloc[:0]) is book


def test_with_trades_equals_loading_positions_plus_trades(book: Book) -> None:
    trades = pd.DataFrame([
        {"account": "BTC-COVCALL", "instrument": "BTC-PERPETUAL", "underlying": "BTC", "kind": "perpetual",
         "quantity": 2.0, "settlement": "inverse"},
        {"account": "NEW", "instrument": "ETH-PERPETUAL", "underlying": "ETH", "kind": "perpetual",
         "quantity": -5.0},
    ])
    _ = book.arrays  # the base arrays are reused, the trades' looked up
    after = book.with_trades(trades)
    full = load_book(pd.concat([EX.positions, trades], ignore_index=True), EX.market)
    pd.testing.assert_frame_equal(after.positions, full.positions)
    for k, v in full.arrays.items():
        np.testing.assert_array_equal(after.arrays[k], v)
    for m in ("greeks-default", "span"):
        pd.testing.assert_frame_equal(compute_margin(after, model=m).accounts,
                                      compute_margin(full, model=m).accounts)
    assert len(book.positions) == len(EX.positions)  # the base is unchanged
    mc = margin_change(book, None, "greeks-default", trades)
    mc_raw = margin_change(EX.positions, EX.market, "greeks-default", trades)
    pd.testing.assert_frame_equal(mc, mc_raw)
    bad = trades.assign(quantity=[np.nan, 1.0])
    with pytest.raises(InputError, match="quantity"):
        book.with_trades(bad)


def test_with_market_moves_are_data(book: Book) -> None:
    moved = book.with_market({"BTC": {"spot": -0.2, "vol": 0.05}})
    assert moved.positions is book.positions
    ref = load_book(EX.positions, EX.market.bumped("BTC", spot_rel=-0.2, vol_abs=0.05))
    for k, v in ref.arrays.items():
        np.testing.assert_array_equal(moved.arrays[k], v)
    pd.testing.assert_frame_equal(compute_margin(moved, model="greeks-default").accounts,
                                  compute_margin(ref, model="greeks-default").accounts)
    rel = book.with_market({"ETH": {"vol_rel": 0.5}})
    eth = (book.positions["underlying"] == "ETH").to_numpy() & (book.kind_code == 0)
    np.testing.assert_allclose(rel.vol[eth], 1.5 * book.vol[eth], rtol=1e-12)
    np.testing.assert_array_equal(rel.vol[~eth & (book.kind_code == 0)], book.vol[~eth & (book.kind_code == 0)])
    assert book.with_market({}) is book
    with pytest.raises(InputError, match="unknown key 'sopt'"):
        book.with_market({"BTC": {"sopt": 0.1}})
    with pytest.raises(InputError, match="'DOGE' is not in the market"):
        book.with_market({"DOGE": {"spot": 0.1}})
    with pytest.raises(InputError, match="non-positive"):
        book.with_market({"BTC": {"spot": -1.0}})


def test_adapters_path_takes_a_book(book: Book) -> None:
    for m in ("span", "deribit-pm", "greeks-default"):
        a = run_model(book, None, m).accounts
        b = run_model(EX.positions, EX.market, m).accounts
        pd.testing.assert_frame_equal(a, b)


def test_collect_book_lists_bad_accounts_in_every_result() -> None:
    df = EX.positions.copy()
    df.loc[df.index[0], "quantity"] = np.inf
    bk = load_book(df, EX.market, errors="collect")
    acc0 = df["account"].iloc[0]
    assert list(bk.bad_accounts) == [acc0]
    for m in ("greeks-default", "span"):
        a = compute_margin(bk, model=m).accounts.set_index("account")
        assert a.loc[acc0, "status"] == "error" and np.isnan(a.loc[acc0, "im"])
        assert (a.drop(index=acc0)["status"] != "error").all()
    st = assess_solvency(bk, collateral=EX.collateral).accounts.set_index("account")
    assert st.loc[acc0, "status"] == "error" and "quantity must be finite" in st.loc[acc0, "reason"]


def test_collateral_without_price_column() -> None:
    coll = EX.collateral[["account", "asset", "amount"]].copy()
    priced = coll.assign(price=[EX.market.fx_to_usd(a) for a in coll["asset"]])
    a = assess_solvency(EX.positions, EX.market, coll).accounts
    b = assess_solvency(EX.positions, EX.market, priced).accounts
    pd.testing.assert_frame_equal(a, b)
    c = run_cascade(EX.positions, EX.market, coll, shock=-0.2, max_rounds=3)
    d = run_cascade(EX.positions, EX.market, priced, shock=-0.2, max_rounds=3)
    pd.testing.assert_frame_equal(c.rounds, d.rounds)
    via_book = assess_solvency(load_book(EX.positions, EX.market, coll)).accounts
    pd.testing.assert_frame_equal(a, via_book)
    m1 = compute_margin(EX.positions, EX.market, "greeks-default", coll).accounts
    m2 = compute_margin(load_book(EX.positions, EX.market, coll), model="greeks-default").accounts
    pd.testing.assert_frame_equal(m1, m2)


def test_distance_to_liquidation_takes_a_book() -> None:
    from greeksmargin.solvency.assess import VolReaction, distance_to_liquidation, margin_function
    from greeksmargin.solvency.book import BookValuer as SolvencyBook

    pos = EX.positions[EX.positions["account"] == "BTC-COVCALL"]
    coll = EX.collateral[EX.collateral["account"] == "BTC-COVCALL"]
    a = distance_to_liquidation(load_book(pos, EX.market, coll), underlyings=["BTC"], include_all=False)
    sb = SolvencyBook(pos, EX.market, gm.book.collateral.load_collateral(coll), margin_function("greeks-default"),
                      vol_reaction=VolReaction.from_model("greeks-default", EX.market.underlyings))
    b = distance_to_liquidation(sb, underlyings=["BTC"], include_all=False)
    pd.testing.assert_frame_equal(a, b)
    assert a["account"].tolist() == ["BTC-COVCALL"]


def test_with_trades_collect_sets_the_traded_account_aside() -> None:
    bk = load_book(EX.positions, EX.market, errors="collect")
    t = pd.DataFrame([{"account": "BTC-COVCALL", "instrument": "BTC-PERPETUAL", "underlying": "BTC",
                       "kind": "perpetual", "quantity": np.inf}])
    after = bk.with_trades(t)
    assert list(after.bad_accounts) == ["BTC-COVCALL"]
    assert "BTC-COVCALL" not in set(after.positions["account"])
    assert (after.set_aside["account"] == "BTC-COVCALL").sum() == (EX.positions["account"] == "BTC-COVCALL").sum()
    a = compute_margin(after, model="greeks-default").accounts.set_index("account")
    assert a.loc["BTC-COVCALL", "status"] == "error" and "finite" in a.loc["BTC-COVCALL", "reason"]
    assert not bk.bad_accounts  # the base is unchanged


@pytest.mark.parametrize("errors", ["raise", "collect"])
def test_arrays_from_the_validation_codes_equal_the_arrays_from_the_strings(errors: str) -> None:
    """``load_book`` hands the validation pass's codes (kind, settlement, option type, exercise, underlying) to
    the market look-ups; the arrays equal those computed from the normalised strings, key by key, also when
    messy spellings collapse to one name and accounts are set aside (codes renumbered)."""
    from greeksmargin.book.arrays import position_arrays

    raw = EX.positions.copy()
    raw["kind"] = raw["kind"].str.upper().radd(" ")
    raw["underlying"] = np.where(np.arange(len(raw)) % 3 == 0, raw["underlying"] + "  ", raw["underlying"])
    raw["settlement"] = raw["settlement"].str.title()
    raw["option_type"] = raw["option_type"].map({"call": "C", "put": "Put"}).where(raw["kind"].str.contains("OPTION"))
    spx_opt = np.flatnonzero(((raw["underlying"].str.strip() == "SPX") & raw["kind"].str.contains("OPTION")).to_numpy())
    raw["exercise"] = None
    raw.loc[raw.index[spx_opt[:2]], "exercise"] = "American"
    if errors == "collect":  # an account set aside: its rows leave, the codes of the others are kept aligned
        und = raw["underlying"].str.strip()
        first_btc = int(np.flatnonzero(und.to_numpy() == "BTC")[0])
        raw.loc[raw.index[first_btc], "quantity"] = np.inf
        # every account holding eth loses one row: eth leaves the book, the underlying codes are renumbered
        for acc in raw.loc[und == "ETH", "account"].unique():
            raw.loc[raw.index[int(np.flatnonzero(raw["account"].to_numpy() == acc)[0])], "quantity"] = np.nan
    b = load_book(raw, EX.market, errors=errors)
    assert "_codes" in b.__dict__ and (errors == "raise" or b.bad_accounts)
    got = b.arrays
    want = position_arrays(b.positions, b.market)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(want[k]), err_msg=k)
    assert got["american"].sum() >= 1 and got["inverse"].any() and got["is_call"].any()
    assert ("ETH" in list(got["underlyings"])) == (errors == "raise")
