import pandas as pd
import pytest

from greeksmargin import datasets
from greeksmargin.book.market import MarketSnapshot, load_market
from greeksmargin.book.positions import load_positions, validate_against_market
from greeksmargin.datasets import ExampleBook, example_paths, load_example_book
from greeksmargin.datasets.make_example_book import build_book


def test_example_book_loads_and_is_valid():
    book = load_example_book()
    assert isinstance(book, ExampleBook) and isinstance(book.market, MarketSnapshot)
    assert set(book.collateral["account"]) == set(book.positions["account"])
    pos = book.positions
    assert 60 <= len(pos) <= 150
    assert 6 <= pos["account"].nunique() <= 8
    assert set(pos["kind"]) == {"option", "future", "perpetual", "spot"}
    assert set(pos["settlement"]) == {"linear", "inverse"}
    assert set(book.market.underlyings) == {"BTC", "ETH", "SPX"}
    assert book.market.valuation_time == pd.Timestamp("2026-11-20T08:00:00Z")
    assert (pos["expiry"].dropna() > book.market.valuation_time).all()
    validate_against_market(pos, book.market)
    spx = pos[(pos["underlying"] == "SPX") & (pos["kind"] == "option")]
    assert (spx["multiplier"] == 100.0).all() and (spx["settlement"] == "linear").all()


def test_shipped_files_match_the_generator():
    pos, market_d = build_book()
    paths = example_paths()
    shipped = load_positions(paths["positions"])
    pd.testing.assert_frame_equal(load_positions(pos), shipped)
    assert load_market(market_d) == load_market(paths["market"])


def test_files_ship_inside_the_package():
    for p in example_paths().values():
        assert p.exists() and p.parent == datasets.DATA_DIR


@pytest.mark.parametrize("name", ["BTC", "ETH"])
def test_crypto_market_has_forwards_and_skew(name):
    m = load_example_book().market
    assert m.has_forwards(name) and m.currency(name) == name
    f = m.forward(name, [0.25])[0]
    low, atm = m.vol(name, [0.25, 0.25], [0.8 * f, f])
    assert low > atm  # put skew
