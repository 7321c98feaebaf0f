"""The one-pass positions check factorises text columns: the same result whatever the column's dtype, no two
distinct values merged, and a Book's market check skipped only for the rows load_book checked."""

from __future__ import annotations

import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin.book.book import Book
from greeksmargin.book.positions import check_positions
from greeksmargin.errors import MarketDataError

ROWS = {
    "account": [" A", "A ", "B", "B"],
    "instrument": ["X-1", "X-1", " X-2", "X-3"],
    "underlying": ["BTC", "BTC", "BTC", " BTC"],
    "kind": ["Option", " future", "SPOT", "option "],
    "option_type": ["C", None, "", "put"],
    "strike": [100.0, None, None, 90.0],
    "expiry": ["2030-01-01", "2030-03-01T08:00:00Z", "", " 2030-01-01 "],
    "quantity": [1.0, -2.0, 3.0, 4.0],
    "settlement": ["linear", "Inverse", None, "LINEAR"],
    "premium_currency": [None, "btc", "USD", " usdc "],
}


@pytest.mark.parametrize("dtype", ["str", object])
def test_string_and_object_columns_normalise_alike(dtype):
    df = pd.DataFrame({c: pd.Series(v, dtype=dtype if c not in ("strike", "quantity") else float)
                       for c, v in ROWS.items()})
    out, problems, bad = check_positions(df, collect=True)
    assert not bad.any() and len(problems) == 0
    assert list(out["account"]) == ["A", "A", "B", "B"]
    assert list(out["kind"]) == ["option", "future", "spot", "option"]
    assert list(out["option_type"]) == ["call", None, None, "put"]
    assert list(out["settlement"]) == ["linear", "inverse", "linear", "linear"]
    assert list(out["premium_currency"]) == ["USD", "btc", "USD", "usdc"]
    assert out["expiry"].iloc[0] == out["expiry"].iloc[3] == pd.Timestamp("2030-01-01", tz="UTC")
    assert pd.isna(out["expiry"].iloc[2])
    assert all(out[c].dtype == object for c in ("account", "instrument", "kind", "settlement"))


def test_numeric_names_are_not_merged():
    # 1 and 1.0 hash alike: the text of each value ("1", "1.0") is what names the account
    df = pd.DataFrame({**{c: v for c, v in ROWS.items() if c != "account"},
                       "account": pd.Series([1, 1.0, "1", 2], dtype=object)})
    out, _, _ = check_positions(df, collect=True)
    assert list(out["account"]) == ["1", "1.0", "1", "2"]


def test_market_check_kept_for_a_book_at_another_market():
    ex = gm.datasets.load_example_book()
    book = gm.load_book(ex.positions, ex.market)
    assert len(book.arrays["size"]) == len(book.positions)  # checked by load_book: no second check needed
    other = gm.load_market({"valuation_time": ex.market.valuation_time.isoformat(),
                            "underlyings": {"ZZZ": {"spot": 1.0, "rate": 0.0}}})
    with pytest.raises(MarketDataError, match="not in the market snapshot"):
        _ = Book._unchecked(book.positions, other).arrays
