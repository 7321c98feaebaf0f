"""Root-finder steps of distance_to_liquidation: what is kept across steps gives the figures computed afresh.

A step of the solvency root finder values and margins only the accounts it asks for, with the account
factorisation kept on the book and the margin engine run on the book's arrays moved per position (shared
moves too). Each shortcut is checked here against the computation it replaces, on the bundled example
book (options, futures, perpetuals, coin-settled and linear, BTC / ETH / SPX).
"""

from __future__ import annotations

import numpy as np
import pytest

from greeksmargin.datasets import load_example_book
from greeksmargin.engine.house_pieces import _factorize_sorted
from greeksmargin.solvency.assess import BookValuer, VolReaction, margin_function
from greeksmargin.solvency.margin_fn import _codes_of, call_margin_fn


@pytest.fixture(scope="module")
def book() -> BookValuer:
    ex = load_example_book()
    fn = margin_function("greeks-default")
    return BookValuer(ex.positions, ex.market, ex.collateral, fn,
                vol_reaction=VolReaction.from_model("greeks-default", ex.market.underlyings))


def test_position_values_of_a_selection_equal_the_full_ones(book: BookValuer) -> None:
    rng = np.random.default_rng(0)
    M = rng.uniform(-0.3, 0.3, (len(book.accounts), len(book.unders)))
    idx = np.flatnonzero(rng.uniform(size=len(book.positions)) < 0.5)
    assert 0 < idx.size < len(book.positions)
    for mv in (M, M[0]):
        full = book.position_values(mv)
        np.testing.assert_array_equal(book.position_values(mv, idx), full[idx])


@pytest.mark.parametrize("column", ["account", "underlying"])
def test_codes_of_a_selection_equal_a_fresh_factorisation(book: BookValuer, column: str) -> None:
    vals = book.positions[column].to_numpy(dtype=object)
    n = len(vals)
    spx = np.flatnonzero(vals != "SPX")  # a selection without one underlying: codes re-numbered
    for keep in (None, np.flatnonzero(np.arange(n) % 3 != 1), np.arange(5, n), spx):
        codes, names = _codes_of(book, keep, column)
        c2, n2 = _factorize_sorted(vals if keep is None else vals[keep])
        np.testing.assert_array_equal(codes, c2)
        assert list(names) == list(n2)


@pytest.mark.parametrize("move", [-0.25, -0.05, 0.1, 0.4])
def test_shared_move_batched_equals_the_moved_snapshot(book: BookValuer, move: float) -> None:
    """The batched engine call at a shared move gives the margin of the moved snapshot (1e-12 relative)."""
    mv = np.full(len(book.unders), move)
    mv[book.unders.index("ETH")] = -move / 2  # underlyings moved differently
    got = book.margin_at(mv)
    want = call_margin_fn(book.margin_fn, book.positions, book.shifted_market(mv))
    assert list(got.index) == list(want.index)
    for k in ("im", "mm"):
        a, b = got[k].to_numpy(dtype=float), want[k].to_numpy(dtype=float)
        assert (np.isnan(a) == np.isnan(b)).all()
        ok = ~np.isnan(a)
        assert ok.sum() > 3
        np.testing.assert_allclose(a[ok], b[ok], rtol=1e-12, atol=0)
    assert (got["currency"].to_numpy() == want["currency"].to_numpy()).all()


def test_gap_of_some_rows_equals_the_state_of_all(book: BookValuer) -> None:
    rng = np.random.default_rng(1)
    M = rng.uniform(-0.2, 0.2, (len(book.accounts), len(book.unders)))
    rows = np.arange(0, len(book.accounts), 2)
    e, m = book.gap(M, rows)
    st = book.state(M)
    ok = np.isfinite(st["mm"].to_numpy(dtype=float))[rows]
    assert ok.sum() > 2
    np.testing.assert_allclose(e[ok], st["equity"].to_numpy(dtype=float)[rows][ok], rtol=1e-12, atol=0)
    np.testing.assert_allclose(m[ok], st["mm"].to_numpy(dtype=float)[rows][ok], rtol=1e-12, atol=0)
