"""Quantities in coin / USD / contracts -> the product's unit; implausible inverse futures are flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from greeksmargin.book.quantity_units import check_inverse_plausible, convert_quantity, flag_implausible_inverse
from greeksmargin.errors import InputError

MARK_SEP, MARK_PERP, SPOT = 98968.5, 97362.5, 97350.42


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument": ["BTC-25SEP26", "BTC-PERPETUAL", "BTC-PERPETUAL", "BTC_USDC-PERPETUAL", "BTC-25DEC26-80000-P",
                           "BTC_USDC-PERPETUAL"],
            "underlying": "BTC",
            "kind": ["future", "perpetual", "perpetual", "perpetual", "option", "perpetual"],
            "settlement": ["inverse", "inverse", "inverse", "linear", "inverse", "linear"],
            "quantity": [-120000.0, 25000.0, 2.5, -2.0, -3.0, 500.0],
            "multiplier": [1.0, 1.0, 1.0, 0.001, 1.0, 1.0],
            "quantity_unit": ["usd", "contracts", "coin", "coin", "contracts", "contracts"],
            "contract_size": [10.0, 10.0, np.nan, 0.001, 1.0, 0.001],
            "mark_price": [MARK_SEP, MARK_PERP, MARK_PERP, 97360.0, 0.0726, 97360.0],
        },
        index=[0, 1, 2, 3, 4, 5],
    )


def test_convert_to_coin_amounts() -> None:
    out = convert_quantity(_table())
    assert "quantity_unit" not in out.columns and "contract_size" not in out.columns
    assert "mark_price" not in out.columns
    coins = out["quantity"] * out["multiplier"]
    # Deribit's README example: -120,000 USD of BTC-25SEP26 at 98,968.5 is -1.2125070098 BTC
    assert coins[0] == pytest.approx(-1.2125070098, rel=1e-10)
    assert coins[1] == pytest.approx(250000.0 / MARK_PERP, rel=1e-14)  # 25,000 contracts of 10 USD
    assert coins[2] == 2.5
    assert out["quantity"][3] == pytest.approx(-2000.0, rel=1e-12)  # 2 BTC = 2,000 contracts of 0.001 BTC
    assert coins[3] == pytest.approx(-2.0, rel=1e-12)
    assert coins[4] == -3.0
    assert coins[5] == pytest.approx(0.5, rel=1e-12)


def test_no_unit_column_is_unchanged() -> None:
    t = _table().drop(columns=["quantity_unit"])
    pd.testing.assert_frame_equal(convert_quantity(t), t)


def test_contract_sizes_mapping_fills_missing_cells() -> None:
    t = _table().iloc[[1]].drop(columns=["contract_size"])
    out = convert_quantity(t, contract_sizes={"BTC-PERPETUAL": 10.0})
    assert out["quantity"].iloc[0] == pytest.approx(250000.0 / MARK_PERP)
    with pytest.raises(InputError, match="row 1, column 'contract_size': contract size"):
        convert_quantity(t)


@pytest.mark.parametrize(
    ("row", "column", "value", "message"),
    [
        (0, "quantity_unit", "USD-ish", "unknown quantity unit 'USD-ish'"),
        (2, "quantity_unit", None, "unknown quantity unit None"),
        (0, "mark_price", np.nan, "mark price"),
        (1, "mark_price", -5.0, "mark price"),
        (4, "quantity_unit", "usd", "an option quantity in USD is ambiguous"),
        (3, "quantity", np.inf, "quantity must be a finite number"),
    ],
)
def test_bad_units_name_row_and_column(row: int, column: str, value: object, message: str) -> None:
    t = _table()
    t[column] = t[column].astype(object)
    t.at[row, column] = value
    with pytest.raises(InputError, match=message) as info:
        convert_quantity(t, file="book.csv")
    assert info.value.row == row and info.value.file == "book.csv"


def test_usd_size_taken_as_coins_is_flagged() -> None:
    """The regression of issue 18: Deribit's USD ``size`` of a perpetual passed as quantity."""
    wrong = pd.DataFrame({"instrument": ["BTC-PERPETUAL", "BTC-25SEP26", "BTC-PERPETUAL", "ETH-PERPETUAL"],
                          "underlying": ["BTC", "BTC", "BTC", "ETH"], "kind": ["perpetual", "future", "perpetual",
                                                                           "perpetual"],
                          "settlement": ["inverse", "inverse", "linear", "inverse"],
                          "quantity": [250000.0, -1.2125070098, 250000.0, 30.0]}, index=["a", "b", "c", "d"])
    flags = flag_implausible_inverse(wrong, {"BTC": SPOT, "ETH": 3500.0})
    assert flags["row"].tolist() == ["a"]  # linear rows and coin-sized rows are not flagged
    assert flags["notional_usd"].iloc[0] == pytest.approx(250000.0 * SPOT)
    assert "probably a USD size taken as coins" in flags["reason"].iloc[0]
    assert "2.568" in flags["reason"].iloc[0]  # 250,000 USD / 97,350.42 = 2.568 BTC
    with pytest.raises(InputError, match="row a, column 'quantity'.*USD size"):
        check_inverse_plausible(wrong, {"BTC": SPOT, "ETH": 3500.0})
    # the threshold is a parameter
    assert flag_implausible_inverse(wrong, {"BTC": SPOT, "ETH": 3500.0}, max_notional_usd=1e11).empty
    assert flag_implausible_inverse(wrong, {"BTC": SPOT, "ETH": 3500.0}, max_notional_usd=1e5)["row"].tolist() == [
        "a", "b", "d"]
    converted = convert_quantity(wrong.assign(quantity_unit="usd", mark_price=MARK_PERP).iloc[[0]])
    assert flag_implausible_inverse(converted, {"BTC": SPOT}).empty


def test_flag_needs_spot_and_positive_threshold() -> None:
    t = pd.DataFrame({"instrument": ["ETH-PERPETUAL"], "underlying": ["ETH"], "kind": ["perpetual"],
                      "settlement": ["inverse"], "quantity": [1.0]})
    with pytest.raises(InputError, match="row 0, column 'underlying': no spot for underlying 'ETH'"):
        flag_implausible_inverse(t, {"BTC": SPOT})
    with pytest.raises(InputError, match="max_notional_usd must be a positive number"):
        flag_implausible_inverse(t, {"ETH": 1.0}, max_notional_usd=0.0)


def test_imported_margin_of_usd_size_is_absurd_without_conversion() -> None:
    """Why the flag exists: an unconverted USD size would be margined as 250,000 coins; the loader refuses it."""
    import greeksmargin as gm

    market = gm.load_market({"valuation_time": "2026-05-20T10:15:00Z", "underlyings": {
        "BTC": {"spot": SPOT, "currency": "BTC", "perpetual_mark": MARK_PERP}}})
    base = {"account": "A", "instrument": "BTC-PERPETUAL", "underlying": "BTC", "kind": "perpetual",
            "settlement": "inverse", "premium_currency": "BTC"}
    good = convert_quantity(pd.DataFrame([{**base, "quantity": 250000.0, "quantity_unit": "usd",
                                           "mark_price": MARK_PERP}]))
    bad = pd.DataFrame([{**base, "quantity": 250000.0}])
    im_good = gm.compute_margin(good, market, "greeks-default").accounts["im"].iloc[0]
    assert np.isfinite(im_good)
    assert not flag_implausible_inverse(bad, market).empty
    # the loader refuses the unconverted row: never margined as 250,000 coins
    with pytest.raises(InputError, match="quantity"):
        gm.compute_margin(bad, market, "greeks-default")
    acc = gm.compute_margin(bad, market, "greeks-default", errors="collect").accounts
    assert acc["status"].iloc[0] != "computed" and np.isnan(acc["im"].iloc[0])
