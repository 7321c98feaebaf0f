import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.book.collateral import (
    DEFAULT_HAIRCUTS,
    collateral_exposure,
    load_collateral,
    load_example_collateral,
    value_collateral,
)
from greeksmargin.datasets import load_example_book
from greeksmargin.errors import InputError, MarketDataError

BOOK = load_example_book()
MKT = BOOK.market


def table():
    return load_collateral(
        pd.DataFrame(
            {
                "account": ["U", "U", "C", "C"],
                "asset": ["usdc", "BTC", "BTC", "USD"],
                "amount": [1000.0, 2.0, 3.0, 95000.0],
            }
        )
    )


def test_defaults_and_normalisation():
    t = table()
    assert list(t.columns) == ["account", "asset", "amount", "price", "im_haircut", "mm_haircut"]
    assert t["asset"].tolist() == ["USDC", "BTC", "BTC", "USD"]
    assert t["price"].isna().all()


def test_value_usd_account_with_coin_collateral_and_haircuts():
    v = value_collateral(table(), MKT, margin_currency={"U": "USD", "C": "BTC"})
    s = MKT.spot("BTC")
    h_im, h_mm = DEFAULT_HAIRCUTS["BTC"]
    assert v.loc["U", "value_usd"] == pytest.approx(1000 + 2 * s)
    assert v.loc["U", "mm_value_usd"] == pytest.approx(1000 + 2 * s * (1 - h_mm))
    assert v.loc["U", "im_value"] == pytest.approx(1000 + 2 * s * (1 - h_im))
    # coin-margined: own coin has no haircut, USD converted into BTC
    assert v.loc["C", "margin_currency"] == "BTC"
    assert v.loc["C", "mm_value"] == pytest.approx(3.0 + 95000.0 / s)


def test_collateral_moves_with_its_underlying():
    mc = {"U": "USD", "C": "BTC"}
    v0 = value_collateral(table(), MKT, margin_currency=mc)
    v1 = value_collateral(table(), MKT, margin_currency=mc, moves={"BTC": -0.1})
    s = MKT.spot("BTC")
    assert v1.loc["U", "value_usd"] == pytest.approx(1000 + 2 * s * 0.9)
    # in coin: the BTC balance is constant, the USD balance is worth more coin after a fall
    assert v1.loc["C", "value"] == pytest.approx(3.0 + 95000.0 / (0.9 * s))
    assert v1.loc["C", "value"] > v0.loc["C", "value"]
    # an ETH move does not touch BTC collateral
    v2 = value_collateral(table(), MKT, margin_currency=mc, moves={"ETH": -0.5})
    assert v2.loc["U", "value_usd"] == pytest.approx(v0.loc["U", "value_usd"])


def test_explicit_price_and_haircut_win():
    t = load_collateral(
        pd.DataFrame({"account": ["A"], "asset": ["BTC"], "amount": [1.0], "price": [50000.0], "mm_haircut": [0.5]})
    )
    v = value_collateral(t, MKT)
    assert v.loc["A", "mm_value_usd"] == pytest.approx(25000.0)


def test_negative_balance_counts_in_full():
    t = load_collateral(pd.DataFrame({"account": ["A", "A"], "asset": ["BTC", "USDC"], "amount": [-1.0, 200000.0]}))
    v = value_collateral(t, MKT)
    assert v.loc["A", "mm_value_usd"] == pytest.approx(200000.0 - MKT.spot("BTC"))


@settings(max_examples=30, deadline=None)
@given(m_btc=st.floats(-0.8, 2.0), m_eth=st.floats(-0.8, 2.0))
def test_exposure_matches_valuation(m_btc, m_eth):
    t = table()
    accts = ["U", "C"]
    mc = {"U": "USD", "C": "BTC"}
    fixed, linked = collateral_exposure(t, MKT, accts, margin_currency=mc, haircut="mm")
    mv = np.array([{"BTC": m_btc, "ETH": m_eth}.get(u, 0.0) for u in MKT.underlyings])
    usd = fixed + linked @ (1 + mv)
    v = value_collateral(t, MKT, margin_currency=mc, moves={"BTC": m_btc, "ETH": m_eth})
    np.testing.assert_allclose(usd, v.loc[accts, "mm_value_usd"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("frame", "column", "row", "text"),
    [
        ({"account": ["A"], "asset": ["BTC"]}, "amount", None, "missing column"),
        ({"account": ["A", "B"], "asset": ["BTC", "ETH"], "amount": [1.0, "x"]}, "amount", 1, "must be a number"),
        ({"account": ["A"], "asset": ["BTC"], "amount": [1.0], "price": [-3.0]}, "price", 0, "price must be positive"),
        ({"account": ["A"], "asset": ["BTC"], "amount": [1.0], "im_haircut": [1.5]}, "im_haircut", 0, "[0, 1)"),
        ({"account": [""], "asset": ["BTC"], "amount": [1.0]}, "account", 0, "non-empty"),
        ({"account": ["A"], "asset": ["BTC"], "amount": [1.0], "colour": ["red"]}, "colour", None, "unknown column"),
    ],
)
def test_errors_name_row_and_column(frame, column, row, text):
    with pytest.raises(InputError) as ei:
        load_collateral(pd.DataFrame(frame))
    assert ei.value.column == column
    assert ei.value.row == row
    assert text in str(ei.value)


def test_error_names_file_and_csv_line(tmp_path):
    p = tmp_path / "coll.csv"
    p.write_text("account,asset,amount,price\nA,BTC,1,95000\nB,ETH,2,-1\n")
    with pytest.raises(InputError) as ei:
        load_collateral(p)
    msg = str(ei.value)
    assert "coll.csv" in msg and "row 1" in msg and "column 'price'" in msg and "CSV line 3" in msg


def test_unknown_asset_without_price():
    t = load_collateral(pd.DataFrame({"account": ["A"], "asset": ["DOGE"], "amount": [1.0]}))
    with pytest.raises(MarketDataError, match="DOGE"):
        value_collateral(t, MKT)


def test_example_collateral_covers_example_accounts():
    c = load_example_collateral()
    assert set(BOOK.positions["account"]) <= set(c["account"])
    v = value_collateral(c, MKT)
    assert (v["value_usd"] > 0).all()
