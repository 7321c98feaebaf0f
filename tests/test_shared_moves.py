"""Shared-move evaluation per contract (engine.shared_moves, solvency.shared_grid) against the engine per position.

At a move shared by every account, :func:`greeksmargin.solvency.shared_grid.shared_gap` prices each contract
once and aggregates to units and accounts; it must give the equity and MM of
:meth:`BookValuer.gap` (the engine run on every position's moved inputs) to 1e-12 relative, and
:func:`distance_to_liquidation` (whose bracketing grid uses it) the same rows with it on and off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import greeksmargin.solvency.shared_grid as sg
from greeksmargin.book.collateral import load_collateral
from greeksmargin.datasets import load_example_book
from greeksmargin.engine.models import load_model
from greeksmargin.engine.shared_moves import _degree, unsupported_reason
from greeksmargin.methodologies.house.combine import parse_expression
from greeksmargin.solvency.assess import BookValuer, VolReaction, distance_to_liquidation, margin_function
from greeksmargin.solvency.margin_fn import simple_scan_margin

EX = load_example_book()
MODEL = load_model("greeks-default")


def _book(positions: pd.DataFrame, collateral: pd.DataFrame, *, fn=None) -> BookValuer:
    return BookValuer(positions, EX.market, collateral, fn or margin_function(MODEL),
                      vol_reaction=VolReaction.from_model(MODEL, EX.market.underlyings))


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-12) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    assert (np.isnan(a) == np.isnan(b)).all()
    ok = ~np.isnan(b)
    err = np.abs(a[ok] - b[ok])
    assert (err <= rtol * np.maximum(np.abs(a[ok]), np.abs(b[ok]))).all(), float(err.max())


def _same_distance(book_on: BookValuer, book_off: BookValuer, monkeypatch: pytest.MonkeyPatch,
                   **kw: object) -> pd.DataFrame:
    assert sg.shared_gap(book_on) is not None  # the grid phase does run per contract
    d_on = distance_to_liquidation(book_on, **kw)
    monkeypatch.setattr(sg, "ENABLED", False)
    d_off = distance_to_liquidation(book_off, **kw)
    monkeypatch.setattr(sg, "ENABLED", True)
    assert list(d_on["account"]) == list(d_off["account"])
    assert list(d_on["underlying"]) == list(d_off["underlying"])
    assert list(d_on["method"]) == list(d_off["method"])
    assert list(d_on["direction"]) == list(d_off["direction"])
    for c in ("move", "move_down", "move_up"):
        _close(d_on[c], d_off[c], 1e-9)
    for c in ("equity_at_move", "mm_at_move"):
        _close(d_on[c], d_off[c], 1e-9)
    return d_on


@pytest.mark.parametrize("base", [{}, {"BTC": -0.1, "SPX": 0.03}])
def test_example_book_distance_same_with_and_without(monkeypatch: pytest.MonkeyPatch, base: dict) -> None:
    d = _same_distance(_book(EX.positions, EX.collateral), _book(EX.positions, EX.collateral), monkeypatch,
                       base_moves=base)
    assert (d["method"] == "root").sum() > 0 and set(d["underlying"]) >= {"BTC", "ETH", "SPX", "ALL"}


def _options_book(n_accounts: int, n_positions: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BTC options of many accounts on a few hundred listed contracts (the distance benchmark's book)."""
    rng = np.random.default_rng(seed)
    n = n_accounts * n_positions
    btc = EX.positions[(EX.positions["underlying"] == "BTC") & (EX.positions["kind"] == "option")]
    expiries = pd.unique(btc["expiry"])
    spot = EX.market.spot("BTC")
    strikes = np.round(spot * np.exp(rng.normal(0, 0.25, n)), -3)
    ot = np.where(rng.random(n) < 0.5, "call", "put")
    exp = expiries[rng.integers(0, len(expiries), n)]
    pos = pd.DataFrame({
        "account": np.repeat([f"A{i:04d}" for i in range(n_accounts)], n_positions),
        "instrument": [f"BTC-{i}" for i in range(n)], "underlying": "BTC", "kind": "option", "option_type": ot,
        "strike": strikes, "expiry": exp, "quantity": np.round(rng.normal(0, 5, n), 1) + 0.1, "multiplier": 1.0,
        "settlement": "linear", "premium_currency": "USD",
    })
    probe = _book(pos, load_collateral(pd.DataFrame({"account": pd.unique(pos["account"]), "asset": "USD",
                                                     "amount": 1.0})))
    st0 = probe.state()
    amount = np.maximum(st0["mm"].to_numpy() * rng.uniform(1.05, 3.0, len(st0)) - st0["mtm"].to_numpy(), 1.0)
    coll = load_collateral(pd.DataFrame({"account": st0.index, "asset": "USD", "amount": amount}))
    return pos, coll


def test_options_book_distance_same_with_and_without(monkeypatch: pytest.MonkeyPatch) -> None:
    pos, coll = _options_book(200, 20, 11)
    d = _same_distance(_book(pos, coll), _book(pos, coll), monkeypatch)
    assert (d["method"] == "root").sum() > 100 and (d["method"] == "grid").sum() > 0


@st.composite
def books_and_moves(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Rows of the example book (every kind, coin and linear, BTC / ETH / SPX) in random accounts and sizes.

    Rows repeat (one contract held long and short in one account, or twice), accounts mix underlyings and
    settlements (USD-margined accounts holding coin-settled positions).
    """
    n = draw(st.integers(1, 30))
    src = EX.positions.reset_index(drop=True)
    idx = draw(st.lists(st.integers(0, len(src) - 1), min_size=n, max_size=n))
    pos = src.iloc[idx].reset_index(drop=True).copy()
    n_acc = draw(st.integers(1, 5))
    pos["account"] = [f"R{draw(st.integers(0, n_acc - 1))}" for _ in range(n)]
    scale = draw(st.lists(st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 3.0]), min_size=n, max_size=n))
    pos["quantity"] = pos["quantity"].to_numpy(dtype=float) * np.asarray(scale)
    accts = sorted(set(pos["account"]))
    coll = pd.DataFrame({"account": accts, "asset": "USD",
                         "amount": draw(st.lists(st.floats(1e3, 1e6), min_size=len(accts), max_size=len(accts)))})
    moves = np.array([draw(st.floats(-0.85, 0.85)) for _ in EX.market.underlyings])
    return pos, load_collateral(coll), moves


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books_and_moves())
def test_shared_gap_equals_gap_on_random_books(case: tuple[pd.DataFrame, pd.DataFrame, np.ndarray]) -> None:
    pos, coll, mv = case
    book = _book(pos, coll)
    f = sg.shared_gap(book)
    assert f is not None
    every = np.arange(len(book.accounts))
    ms = [mv, np.zeros_like(mv), np.where(np.arange(mv.size) == 0, mv, 0.0)]
    e_k, mm_k = f(np.stack(ms))  # several moves at once: the book laid out once per move
    for j, m in enumerate(ms):
        e, mm = f(m)
        e2, mm2 = book.gap(m, every)
        _close(e, e2)
        _close(mm, mm2)
        _close(e_k[j], e)
        _close(mm_k[j], mm)


def test_fallbacks() -> None:
    """What the per-contract evaluation does not cover says so (None): the caller then runs the engine."""
    assert sg.shared_gap(_book(EX.positions, EX.collateral, fn=margin_function(MODEL, isolated=True))) is None
    assert sg.shared_gap(_book(EX.positions, EX.collateral, fn=simple_scan_margin())) is None
    assert unsupported_reason(MODEL) == ""
    assert "methodology" in unsupported_reason(load_model("deribit-sm"))
    assert "aggregation" in unsupported_reason(load_model("tims-pm")) or unsupported_reason(load_model("tims-pm"))
    am = {"american": np.array([True, False])}
    assert unsupported_reason(MODEL, am) == "American options"


@pytest.mark.parametrize(("text", "ok"), [
    ("min(max(scan, delta) + roll, long_premium_cap)", True),
    ("0.5 * scan + delta", True),
    ("scan - 2 * delta", True),
    ("max(scan, 100)", False),
    ("scan * delta", False),
    ("scan + 1", False),
])
def test_homogeneity_check_of_expressions(text: str, ok: bool) -> None:
    expr = parse_expression(text, ["scan", "delta", "roll", "long_premium_cap"])
    assert (_degree(expr.tree) == 1) is ok


def test_repeated_scenarios_priced_once_give_the_same_pnl(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scenario repeating an earlier one (the vol fall of 0 of greeks-default) is priced once: same bits."""
    import greeksmargin.risk.scenarios as sc
    from greeksmargin.risk.greeks import market_arrays

    g = MODEL.params.grid_for("BTC")
    a = market_arrays(EX.positions, EX.market)
    rng = np.random.default_rng(5)
    a = {k: v for k, v in a.items()}
    a["forward"] = a["forward"] * (1.0 + rng.uniform(-0.5, 0.5, a["forward"].size))
    vols = g.vol_rule.shocked(a["vol"], a["T"], g.vol_dir)
    distinct = sc._distinct_scenarios(np.asarray(g.spot_move, dtype=float), vols)
    assert distinct is not None and distinct[0].size < g.n_scenarios  # some scenarios repeat
    once = sc.grid_pnl(a, g)
    monkeypatch.setattr(sc, "_distinct_scenarios", lambda move, v: None)
    np.testing.assert_array_equal(once, sc.grid_pnl(a, g))


@pytest.mark.parametrize("underlying", ["BTC", "SPX"])
def test_grid_vols_equal_the_rule_per_scenario(underlying: str) -> None:
    """Each vol direction of a grid shocked once and taken per scenario: the rule's vols, bit for bit."""
    from greeksmargin.risk.greeks import market_arrays
    from greeksmargin.risk.scenarios import grid_vols

    g = MODEL.params.grid_for(underlying)
    a = market_arrays(EX.positions, EX.market)
    np.testing.assert_array_equal(grid_vols(g, a["vol"], a["T"]), g.vol_rule.shocked(a["vol"], a["T"], g.vol_dir))


def test_grid_decisions_near_the_boundary_are_the_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where equity - MM is within 1e-12 of 0 (or of the rtol boundary), gap decides, not the sums' order.

    An evaluator reporting MM = equity at the base and at every grid move sends every account to ``gap``:
    the rows are then those computed without the evaluator.
    """
    import greeksmargin.solvency.assess as assess

    pos, coll = _options_book(40, 10, 3)
    real = sg.shared_gap

    def at_boundary(book: BookValuer):
        f = real(book)
        assert f is not None

        def g(mv: np.ndarray):
            e, _ = f(mv)
            return e, e.copy()  # at the boundary everywhere: base and grid moves alike

        return g

    monkeypatch.setattr(assess, "shared_gap", at_boundary)
    d_guard = distance_to_liquidation(_book(pos, coll))
    monkeypatch.setattr(assess, "shared_gap", lambda book: None)
    d_off = distance_to_liquidation(_book(pos, coll))
    pd.testing.assert_frame_equal(d_guard.drop(columns=["equity_at_move", "mm_at_move"]),
                                  d_off.drop(columns=["equity_at_move", "mm_at_move"]), rtol=1e-12)
    _close(d_guard["mm_at_move"], d_off["mm_at_move"])


def test_moves_in_memory_bounded_batches_give_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    import greeksmargin.engine.shared_moves as sm

    book = _book(EX.positions, EX.collateral)
    f = sg.shared_gap(book)
    assert f is not None
    mv = np.stack([np.full(len(book.unders), x) for x in (-0.3, -0.05, 0.0, 0.2, 0.6)])
    e, mm = f(mv)
    monkeypatch.setattr(sm, "MAX_BATCH_VALUES", 1)  # one move at a time
    e1, mm1 = f(mv)
    np.testing.assert_array_equal(e, e1)
    _close(mm, mm1)
