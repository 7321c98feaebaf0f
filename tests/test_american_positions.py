"""American exercise on positions: the ``exercise`` column, pricing, Greeks, scenario revaluation and margins."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.book.market import MarketSnapshot, UnderlyingMarket, VolSurface
from greeksmargin.book.positions import load_positions
from greeksmargin.datasets import example_paths, load_example_book
from greeksmargin.engine.margin import compute_margin
from greeksmargin.errors import InputError, MarketDataError
from greeksmargin.pricing import american_greeks, american_price, black_scholes_merton
from greeksmargin.risk.greeks import market_arrays, price_positions
from greeksmargin.risk.kernels import numba_available, scan_units
from greeksmargin.risk.scenarios import ScenarioGrid, VolShockRule, revalue

VT = pd.Timestamp("2026-11-20T08:00:00Z")
REPO = Path(__file__).resolve().parents[1]
BOOK = load_example_book()


def _market(spot=100.0, vol=0.3, rate=0.05, q=0.0):
    surf = VolSurface((VT + pd.Timedelta(days=365),), (np.array([0.0]),), (np.array([vol]),))
    return MarketSnapshot(VT, {"X": UnderlyingMarket(spot=spot, rate=rate, dividend_yield=q, surface=surf)})


def _book(rows):
    base = {"account": "A", "underlying": "X", "kind": "option", "multiplier": 1.0, "settlement": "linear"}
    out = []
    for i, r in enumerate(rows):
        row = {**base, "instrument": f"X{i}", **r}
        if row["kind"] == "option":
            row.setdefault("expiry", VT + pd.Timedelta(days=row.pop("days", 180.0)))
        out.append(row)
    return pd.DataFrame(out)


def _years(market, expiry):
    return float(market.years(pd.Series([expiry]))[0])


# ------------------------------------------------------------------------------------------ loader
def test_csv_loader_reads_the_exercise_column(tmp_path: Path) -> None:
    f = tmp_path / "book.csv"
    f.write_text(
        "account,instrument,underlying,kind,option_type,strike,expiry,quantity,exercise\n"
        "A,P1,X,option,put,100,2027-05-20,1,American\n"
        "A,P2,X,option,put,100,2027-05-20,1,\n"
        "A,C1,X,option,call,100,2027-05-20,1, european \n"
        "A,F1,X,future,,,2027-05-20,1,\n"
    )
    pos = load_positions(f)
    assert list(pos["exercise"]) == ["american", "european", "european", None]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"option_type": "put", "strike": 100.0, "quantity": 1.0, "exercise": "bermudan"},
         "unknown exercise style 'bermudan'"),
        ({"kind": "future", "expiry": VT + pd.Timedelta(days=30), "quantity": 1.0, "exercise": "american"},
         "only options have an exercise style"),
        ({"kind": "perpetual", "quantity": 1.0, "exercise": "American"}, "only options have an exercise style"),
        ({"option_type": "call", "strike": 100.0, "quantity": 1.0, "settlement": "inverse", "exercise": "american"},
         "coin-settled"),
    ],
)
def test_bad_exercise_is_an_error_naming_row_and_column(row, message) -> None:
    good = {"option_type": "put", "strike": 90.0, "quantity": 1.0}
    df = _book([good, row])
    with pytest.raises(InputError, match=message) as exc:
        load_positions(df)
    assert exc.value.row == 1 and exc.value.column == "exercise"
    assert "row 1" in str(exc.value) and "'exercise'" in str(exc.value)


def test_bad_exercise_in_a_csv_names_file_row_and_line(tmp_path: Path) -> None:
    f = tmp_path / "b.csv"
    f.write_text("account,instrument,underlying,kind,option_type,strike,expiry,quantity,exercise\n"
                 "A,P1,X,option,put,100,2027-05-20,1,asian\n")
    with pytest.raises(InputError, match=r"b\.csv.*row 0.*'exercise'.*asian.*CSV line 2"):
        load_positions(f)


def test_files_without_the_column_still_load_as_european() -> None:
    paths = [example_paths()["positions"], REPO / "tests/data/deribit_api/btc_inverse/positions.csv"]
    for p in paths:
        pos = load_positions(p)
        assert "exercise" not in pd.read_csv(p, nrows=0).columns
        opt = pos["kind"] == "option"
        assert opt.any() and (pos.loc[opt, "exercise"] == "european").all()
        assert pos.loc[~opt, "exercise"].isna().all()
    assert (BOOK.positions.loc[BOOK.positions["kind"] == "option", "exercise"] == "european").all()


# ------------------------------------------------------------------------------------- pricing, Greeks
def test_american_put_position_is_priced_by_the_american_approximation() -> None:
    mk = _market(rate=0.05, q=0.01)
    pos = load_positions(_book([{"option_type": "put", "strike": k, "quantity": 1.0, "exercise": "american"}
                                for k in (90.0, 100.0, 120.0)]))
    pr = price_positions(pos, mk)
    t = _years(mk, pos["expiry"].iloc[0])
    g = american_greeks("put", 100.0, np.array([90.0, 100.0, 120.0]), t, 0.3, 0.05, 0.01)
    # q enters as r - ln(F/S)/T (the carry of the forward): last-bit differences, amplified in the FD gamma
    for col, tol in (("price", 1e-12), ("delta", 1e-10), ("gamma", 1e-7), ("vega", 1e-10), ("theta", 1e-9),
                     ("rho", 1e-9)):
        np.testing.assert_allclose(pr[col].to_numpy(), getattr(g, col), rtol=tol, err_msg=col)
    np.testing.assert_allclose(pr["price"].to_numpy(), american_price("put", 100.0, [90.0, 100.0, 120.0], t, 0.3,
                                                                      0.05, 0.01), rtol=1e-12)
    euro = black_scholes_merton("put", 100.0, np.array([90.0, 100.0, 120.0]), t, 0.3, 0.05, 0.01)
    assert np.all(pr["price"].to_numpy() > euro.price + 1e-3)  # r > 0: early exercise has value
    # the deep in-the-money put is closer to intrinsic: its American delta is steeper than the European one
    assert pr["delta"].iloc[2] < euro.delta[2]
    # vanna and volga by central differences of the American price agree with a wider step
    h = 1e-3
    v = lambda s, vol: american_price("put", s, 100.0, t, vol, 0.05, 0.01)  # noqa: E731
    volga = (v(100.0, 0.3 + h) - 2 * v(100.0, 0.3) + v(100.0, 0.3 - h)) / h**2
    vanna = (v(100.1, 0.3 + h) - v(100.1, 0.3 - h) - v(99.9, 0.3 + h) + v(99.9, 0.3 - h)) / (4 * 0.1 * h)
    assert pr["volga"].iloc[1] == pytest.approx(float(volga), rel=1e-3)
    assert pr["vanna"].iloc[1] == pytest.approx(float(vanna), rel=1e-3)
    assert list(pr["exercise"]) == ["american"] * 3


def test_american_call_without_dividend_equals_the_european_call() -> None:
    mk = _market(rate=0.05, q=0.0)
    rows = [{"option_type": "call", "strike": k, "quantity": 2.0, "exercise": ex}
            for ex in ("american", "european") for k in (80.0, 100.0, 130.0)]
    pr = price_positions(load_positions(_book(rows)), mk)
    am, eu = pr.iloc[:3], pr.iloc[3:]
    np.testing.assert_allclose(am["price"].to_numpy(), eu["price"].to_numpy(), rtol=1e-12)
    for col in ("delta", "vega", "theta", "rho", "delta_cash"):
        np.testing.assert_allclose(am[col].to_numpy(), eu[col].to_numpy(), rtol=1e-6, err_msg=col)
    np.testing.assert_allclose(am["gamma"].to_numpy(), eu["gamma"].to_numpy(), rtol=1e-4)


def test_european_books_never_reach_the_american_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import greeksmargin.pricing.american as amer

    def boom(*a, **k):
        raise AssertionError("American code called on a European book")

    for name in ("american_price", "american_greeks", "_american_flat"):
        monkeypatch.setattr(amer, name, boom)
    monkeypatch.setattr("greeksmargin.pricing.american_price", boom)
    monkeypatch.setattr("greeksmargin.pricing.american_greeks", boom)
    res = compute_margin(BOOK.positions, BOOK.market, "greeks-default")
    assert np.isfinite(res.accounts["im"]).all()
    assert not market_arrays(BOOK.positions, BOOK.market)["american"].any()
    price_positions(BOOK.positions, BOOK.market)


def test_negative_rate_two_boundary_regime_is_refused_naming_the_row() -> None:
    mk = _market(rate=-0.01, q=-0.03)  # put with r <= 0 and q < r: possibly two exercise boundaries
    pos = load_positions(_book([{"option_type": "call", "strike": 100.0, "quantity": 1.0},
                                {"option_type": "put", "strike": 100.0, "quantity": 1.0, "exercise": "american"}]))
    with pytest.raises(MarketDataError, match="two exercise boundaries") as exc:
        market_arrays(pos, mk)
    assert exc.value.row == 1 and exc.value.column == "exercise"


@settings(max_examples=25, deadline=None)
@given(k=st.floats(60.0, 160.0), days=st.floats(1.0, 700.0), r=st.floats(0.001, 0.08), q=st.floats(0.0, 0.06),
       vol=st.floats(0.05, 0.9), put=st.booleans())
def test_american_value_bounds_and_zero_pnl_at_no_move(k, days, r, q, vol, put) -> None:
    """American >= max(European, intrinsic); the scenario P&L of no move and no vol change is exactly 0."""
    mk = _market(vol=vol, rate=r, q=q)
    cp = "put" if put else "call"
    pos = load_positions(_book([{"option_type": cp, "strike": k, "quantity": 1.0, "days": days, "exercise": ex}
                                for ex in ("american", "european")]))
    pr = price_positions(pos, mk)
    intrinsic = max((k - 100.0) if put else (100.0 - k), 0.0)
    assert pr["price"].iloc[0] >= pr["price"].iloc[1] * (1 - 1e-12) - 1e-12
    assert pr["price"].iloc[0] >= intrinsic - 1e-9 * k
    a = market_arrays(pos, mk)
    pnl = revalue(a, ScenarioGrid(np.array([0.0, -0.1]), np.zeros(2, np.int8), np.ones(2)))
    assert pnl[0, 0] == 0.0 and pnl[0, 1] == 0.0
    assert (pnl[1, 0] >= 0.0) if put else (pnl[1, 0] <= 0.0)  # a fall helps the long put, hurts the long call


# ------------------------------------------------------------------------------- scenario revaluation
def test_scenario_revaluation_of_an_american_put_is_pricing_at_the_scenario() -> None:
    mk = _market(rate=0.05, q=0.02)
    pos = load_positions(_book([{"option_type": "put", "strike": 105.0, "quantity": -3.0, "exercise": "american"},
                                {"option_type": "put", "strike": 105.0, "quantity": -3.0}]))
    a = market_arrays(pos, mk)
    rule = VolShockRule(kind="relative", up=0.3, down=0.3, short_power=0.3, long_power=0.13, min_vol=0.01)
    grid = ScenarioGrid.build(range_down=0.2, points_down=4, vol_rule=rule, tail_moves=(-0.5,))
    pnl = revalue(a, grid)
    vols = rule.shocked(a["vol"], a["T"], grid.vol_dir)[:, 0]
    t, s0 = a["T"][0], 100.0
    want = -3.0 * (american_price("put", s0 * (1 + grid.spot_move), 105.0, t, vols, 0.05, 0.02)
                   - american_price("put", s0, 105.0, t, a["vol"][0], 0.05, 0.02))
    np.testing.assert_allclose(pnl[:, 0], want, rtol=1e-9, atol=1e-9)
    assert np.all(pnl[grid.spot_move == 0, 0][grid.vol_dir[grid.spot_move == 0] == 0] == 0.0)
    # the short American put loses more than the European one when spot falls (early exercise premium)
    assert pnl[0, 0] < pnl[0, 1]


@pytest.mark.skipif(not numba_available(), reason="numba not installed")
def test_numba_backend_routes_american_books_to_the_numpy_path() -> None:
    mk = _market(rate=0.04, q=0.01)
    pos = load_positions(_book([{"option_type": "put", "strike": k, "quantity": q, "exercise": ex}
                                for k, q, ex in ((95.0, -2.0, "american"), (100.0, 1.0, "european"),
                                                 (110.0, 1.0, "american"))]))
    a = market_arrays(pos, mk)
    grid = ScenarioGrid.build(range_down=0.15, vol_rule=VolShockRule(up=0.2, down=0.2))
    starts = np.array([0], dtype=np.intp)
    f = np.ones(3)
    r_np = scan_units(a, f, starts, grid, backend="numpy")
    r_nb = scan_units(a, f, starts, grid, backend="numba")
    np.testing.assert_array_equal(r_np.unit_pnl, r_nb.unit_pnl)
    np.testing.assert_allclose(r_np.unit_pnl[:, 0], revalue(a, grid).sum(axis=1), rtol=1e-12)


# --------------------------------------------------------------------------------------------- margins
def _spx_put_book(exercise: str) -> pd.DataFrame:
    p = BOOK.positions
    sub = p[p["account"] == "SPX-NAKEDPUT"].copy()
    sub["exercise"] = exercise
    return sub


@pytest.mark.parametrize("model", ["greeks-default", "tims-pm"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_house_margin_of_short_american_puts_is_at_least_the_european(model: str, backend: str) -> None:
    if backend == "numba" and not numba_available():
        pytest.skip("numba not installed")
    eu = compute_margin(_spx_put_book("european"), BOOK.market, model, backend=backend).accounts.iloc[0]
    am = compute_margin(_spx_put_book("american"), BOOK.market, model, backend=backend).accounts.iloc[0]
    # a short American put is worth more than the European one and loses more when spot falls
    assert am["im"] > eu["im"] > 0 and am["mm"] >= eu["mm"]


def test_span_and_strategy_adapters_price_american_options() -> None:
    from greeksmargin.engine.adapters import span_accounts, strategy_accounts

    eu = _spx_put_book("european")
    am = _spx_put_book("american")
    s_eu = span_accounts(eu, BOOK.market, "span").iloc[0]
    s_am = span_accounts(am, BOOK.market, "span").iloc[0]
    assert s_am["net_option_value"] < s_eu["net_option_value"] < 0  # short puts: the American ones cost more
    assert s_am["im"] >= s_eu["im"]
    g_eu = strategy_accounts(eu, BOOK.market, "cboe-strategy").iloc[0]
    g_am = strategy_accounts(am, BOOK.market, "cboe-strategy").iloc[0]
    assert g_am["short_proceeds"] > g_eu["short_proceeds"]


def test_solvency_book_values_american_options_at_the_move() -> None:
    from greeksmargin.solvency.book import BookValuer
    from greeksmargin.solvency.margin_fn import simple_scan_margin

    mk = _market(rate=0.05, q=0.01)
    pos = load_positions(_book([{"option_type": "put", "strike": 100.0, "quantity": -1.0, "exercise": "american"}]))
    b = BookValuer(pos, mk, None, simple_scan_margin())
    mv = np.array([-0.1])
    got = b.position_values(mv)[0]
    vol = b.vols_at(mv)[0]
    t = market_arrays(pos, mk)["T"][0]
    assert got == pytest.approx(-float(american_price("put", 90.0, 100.0, t, vol, 0.05, 0.01)), rel=1e-12)


def test_what_if_with_american_positions_equals_compute_margin() -> None:
    from greeksmargin.engine.incremental import AccountState

    book = _spx_put_book("american")
    base, trade = book.iloc[:-1], book.iloc[-1:]
    mk = BOOK.market
    want = compute_margin(book, mk, "greeks-default").accounts.iloc[0]
    state = AccountState.from_positions(base, mk, "greeks-default")
    base_im = compute_margin(base, mk, "greeks-default").accounts.iloc[0]["im"]
    assert state.margin()[0] == pytest.approx(base_im, rel=1e-9)
    for tr in (trade, trade.to_dict("records")):  # the frame path and the mapping path (routed to the frame)
        im, mm = state.with_trades(tr)
        assert im == pytest.approx(want["im"], rel=1e-9) and mm == pytest.approx(want["mm"], rel=1e-9)
    euro_trade = trade.assign(exercise="european").to_dict("records")
    assert state.with_trades(euro_trade)[0] < want["im"]  # a short European put adds less than the American one
    with pytest.raises(InputError, match="exercise"):
        state.with_trades(trade.assign(exercise="bermudan").to_dict("records"))
