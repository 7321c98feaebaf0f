import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.book.market import MarketSnapshot, UnderlyingMarket, VolSurface
from greeksmargin.datasets import load_example_book
from greeksmargin.errors import InputError, MarketDataError
from greeksmargin.pricing import black76, black_scholes_merton, inverse_option
from greeksmargin.risk.greeks import PRICED_COLUMNS, market_arrays, price_positions
from greeksmargin.units import SECONDS_PER_YEAR

VT = pd.Timestamp("2026-11-20T08:00:00Z")
BOOK = load_example_book()
PRICED = price_positions(BOOK.positions, BOOK.market)
CASH = ["delta_cash", "delta_1pct", "gamma_cash_1pct", "vega_1volpt", "theta_1d", "value_usd"]


def _flat_market(spot=100.0, vol=0.3, rate=0.03, q=0.01, forwards=None, currency="USD"):
    surf = VolSurface((VT + pd.Timedelta(days=365),), (np.array([0.0]),), (np.array([vol]),))
    return MarketSnapshot(
        VT,
        {
            "X": UnderlyingMarket(
                spot=spot, rate=rate, dividend_yield=q, surface=surf, forwards=forwards or {}, currency=currency
            )
        },
    )


def _one(kind="option", cp="call", strike=100.0, days=180.0, qty=1.0, mult=1.0, settlement="linear"):
    return pd.DataFrame(
        {
            "account": ["A"],
            "instrument": ["X1"],
            "underlying": ["X"],
            "kind": [kind],
            "option_type": [cp if kind == "option" else None],
            "strike": [strike if kind == "option" else np.nan],
            "expiry": [VT + pd.Timedelta(days=days) if kind in ("option", "future") else pd.NaT],
            "quantity": [qty],
            "multiplier": [mult],
            "settlement": [settlement],
        }
    )


def test_columns_and_index():
    assert list(PRICED.columns) == list(PRICED_COLUMNS)
    assert PRICED.index.equals(BOOK.positions.index)
    assert np.isfinite(PRICED[CASH].to_numpy()).all()


@settings(max_examples=40, deadline=None)
@given(
    cp=st.sampled_from(["call", "put"]),
    spot=st.floats(20.0, 500.0),
    k_ratio=st.floats(0.5, 2.0),
    days=st.floats(2.0, 1000.0),
    vol=st.floats(0.05, 1.5),
    rate=st.floats(-0.01, 0.08),
    q=st.floats(0.0, 0.05),
)
def test_option_equals_bsm_on_spot(cp, spot, k_ratio, days, vol, rate, q):
    m = _flat_market(spot=spot, vol=vol, rate=rate, q=q)
    k = spot * k_ratio
    p = price_positions(_one(cp=cp, strike=k, days=days), m).iloc[0]
    t = days * 86400 / SECONDS_PER_YEAR
    g = black_scholes_merton(cp, spot, k, t, vol, rate, q)
    assert p["time_to_expiry"] == pytest.approx(t, rel=1e-12)
    for name in ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga"):
        assert p[name] == pytest.approx(float(getattr(g, name)), rel=1e-7, abs=1e-9 * spot), name


def test_cash_greeks_follow_units():
    p = price_positions(_one(qty=-3.0, mult=100.0), _flat_market()).iloc[0]
    size = -300.0
    assert p["size"] == size
    assert p["delta_cash"] == pytest.approx(p["delta"] * 100.0 * size)
    assert p["delta_1pct"] == pytest.approx(p["delta_cash"] / 100)
    assert p["gamma_cash_1pct"] == pytest.approx(p["gamma"] * 100.0**2 * size * 1e-4)
    assert p["vega_1volpt"] == pytest.approx(p["vega"] * 0.01 * size)
    assert p["theta_1d"] == pytest.approx(p["theta"] / 365 * size)
    assert p["value_usd"] == pytest.approx(p["price"] * size)
    assert p["margin_currency"] == "USD" and np.isnan(p["coin_delta"])


def test_future_perpetual_spot():
    m = _flat_market(rate=0.04, q=0.01)
    m = MarketSnapshot(VT, {"X": UnderlyingMarket(spot=100.0, rate=0.04, dividend_yield=0.01, perpetual_mark=100.5)})
    f = price_positions(_one(kind="future", days=365, qty=2.0, mult=10.0), m).iloc[0]
    fwd = 100.0 * np.exp(0.03)
    assert f["forward"] == pytest.approx(fwd) and f["price"] == pytest.approx(fwd)
    assert f["delta"] == pytest.approx(fwd / 100.0) and f["gamma"] == 0.0 and f["vega"] == 0.0
    assert f["value_usd"] == 0.0
    assert f["delta_cash"] == pytest.approx(fwd * 20.0)
    assert f["theta"] == pytest.approx(-0.03 * fwd)  # carry: F moves as time passes at fixed spot
    perp = price_positions(_one(kind="perpetual", qty=-1.0), m).iloc[0]
    assert perp["price"] == pytest.approx(100.5) and perp["delta"] == pytest.approx(1.005) and perp["value_usd"] == 0.0
    assert perp["forward"] == 100.0 and np.isnan(perp["time_to_expiry"]) and np.isnan(perp["vol"])
    spot = price_positions(_one(kind="spot", qty=4.0), m).iloc[0]
    assert spot["price"] == 100.0 and spot["value_usd"] == 400.0 and spot["delta_cash"] == 400.0


@settings(max_examples=30, deadline=None)
@given(
    cp=st.sampled_from(["call", "put"]),
    k_ratio=st.floats(0.5, 2.0),
    days=st.floats(3.0, 400.0),
    vol=st.floats(0.2, 1.5),
    qty=st.floats(-50, 50).filter(lambda x: abs(x) > 1e-3),
)
def test_inverse_value_and_coin_delta(cp, k_ratio, days, vol, qty):
    t_exp = VT + pd.Timedelta(days=days)
    fwd = 30000.0 * np.exp(0.05 * days / 365)
    m = _flat_market(spot=30000.0, vol=vol, rate=0.0, q=0.0, forwards={t_exp: fwd}, currency="BTC")
    k = 30000.0 * k_ratio
    p = price_positions(_one(cp=cp, strike=k, days=days, qty=qty, settlement="inverse"), m).iloc[0]
    t = days * 86400 / SECONDS_PER_YEAR
    inv = inverse_option(cp, fwd, k, t, vol)
    assert p["forward"] == pytest.approx(fwd)
    assert p["margin_currency"] == "BTC"
    assert p["value_ccy"] == pytest.approx(float(inv.price) * qty, rel=1e-9, abs=1e-12)
    assert p["coin_delta"] == pytest.approx(float(inv.delta) * qty, rel=1e-9, abs=1e-12)
    assert p["value_usd"] == pytest.approx(float(inv.price_usd) * qty, rel=1e-9, abs=1e-9)


def test_inverse_future_and_perp_coin_delta_is_size():
    e = VT + pd.Timedelta(days=90)
    m = _flat_market(spot=100.0, forwards={e: 101.0}, currency="BTC")
    p = price_positions(_one(kind="future", days=90, qty=-7.0, settlement="inverse"), m).iloc[0]
    assert p["coin_delta"] == -7.0 and p["value_ccy"] == 0.0 and p["margin_currency"] == "BTC"
    assert p["rho"] == 0.0  # listed forward does not move with the rate


def _quantities(df, factor):
    out = df.copy()
    out["quantity"] = out["quantity"] * factor
    return out


@settings(max_examples=15, deadline=None)
@given(factor=st.floats(-5.0, 5.0))
def test_book_greeks_linear_in_quantity(factor):
    scaled = price_positions(_quantities(BOOK.positions, factor), BOOK.market)
    np.testing.assert_allclose(
        scaled[CASH].sum().to_numpy(), factor * PRICED[CASH].sum().to_numpy(), rtol=1e-9, atol=1e-6
    )
    # per-unit Greeks do not depend on the quantity
    np.testing.assert_allclose(
        scaled[["price", "delta", "vega"]].to_numpy(), PRICED[["price", "delta", "vega"]], rtol=1e-12
    )


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_independent_of_row_order(seed):
    perm = np.random.default_rng(seed).permutation(len(BOOK.positions))
    shuffled = price_positions(BOOK.positions.iloc[perm], BOOK.market)
    pd.testing.assert_frame_equal(shuffled.loc[PRICED.index], PRICED)


def test_offsetting_positions_net_to_zero():
    pos = BOOK.positions
    both = pd.concat([pos, _quantities(pos, -1.0).set_axis([f"x{i}" for i in range(len(pos))])])
    p = price_positions(both, BOOK.market)
    np.testing.assert_allclose(p[CASH].sum().to_numpy(), 0.0, atol=1e-6)
    assert p["coin_delta"].sum() == pytest.approx(0.0, abs=1e-9)


def _sticky_strike_market():
    """The example market with every option's vol frozen per instrument (sticky strike under bumps)."""
    from dataclasses import replace

    m = BOOK.market
    opt = PRICED[PRICED["kind"] == "option"]
    unders = {
        u: replace(m[u], instrument_vols=dict(zip(g["instrument"], g["vol"]))) for u, g in opt.groupby("underlying")
    }
    return MarketSnapshot(m.valuation_time, unders, m.fx)


def test_delta_matches_finite_difference_of_value_on_book():
    # value change of every position (premium + futures/perp P&L) for +-0.01% spot moves, vols held fixed
    h = 1e-4
    frozen = _sticky_strike_market()
    pd.testing.assert_frame_equal(price_positions(BOOK.positions, frozen), PRICED)

    def pnl(rel):
        b = price_positions(BOOK.positions, frozen.bumped(spot_rel=rel))
        return np.where(b["kind"].isin(["option", "spot"]), b["value_usd"], (b["price"] - PRICED["price"]) * b["size"])

    fd = (pnl(h) - pnl(-h)) / (2 * h)
    np.testing.assert_allclose(fd, PRICED["delta_cash"].to_numpy(), rtol=1e-5, atol=1e-3)
    gamma_fd = (pnl(h) + pnl(-h) - 2 * pnl(0.0)) / (h / 0.01) ** 2  # second-order term per (1%)^2
    np.testing.assert_allclose(gamma_fd, PRICED["gamma_cash_1pct"].to_numpy(), rtol=1e-3, atol=1e-2)


def test_vega_matches_finite_difference():
    up = price_positions(BOOK.positions, BOOK.market.bumped(vol_abs=0.0001))
    dn = price_positions(BOOK.positions, BOOK.market.bumped(vol_abs=-0.0001))
    fd = (up["value_usd"] - dn["value_usd"]) / 0.02  # per vol point
    np.testing.assert_allclose(fd, PRICED["vega_1volpt"].to_numpy(), rtol=1e-5, atol=1e-4)


def test_market_arrays_shapes_and_codes():
    a = market_arrays(BOOK.positions, BOOK.market)
    n = len(BOOK.positions)
    for key in ("kind_code", "is_call", "strike", "T", "spot", "forward", "vol", "rate", "size", "inverse"):
        assert a[key].shape == (n,), key
    assert set(np.unique(a["kind_code"])) <= {0, 1, 2, 3}
    opt = a["kind_code"] == 0
    assert np.isfinite(a["vol"][opt]).all() and np.isnan(a["vol"][~opt]).all()
    np.testing.assert_allclose(a["forward"], PRICED["forward"])
    np.testing.assert_allclose(a["forward_ratio"] * a["spot"], a["forward"])
    price = black76(
        a["is_call"][opt], a["forward"][opt], a["strike"][opt], a["T"][opt], a["vol"][opt], a["rate"][opt]
    ).price
    np.testing.assert_allclose(price, PRICED["price"].to_numpy()[opt])
    assert list(a["underlyings"][a["underlying_code"]]) == list(BOOK.positions["underlying"])


def test_errors_name_row_and_column():
    m = _flat_market()
    bad = _one()
    bad["underlying"] = "Y"
    with pytest.raises(MarketDataError, match=r"row 0, column 'underlying': underlying 'Y' is not in the market"):
        price_positions(bad, m)
    later = MarketSnapshot(VT + pd.Timedelta(days=400), {"X": m["X"]})
    with pytest.raises(InputError, match=r"row 0, column 'expiry': future expired"):
        price_positions(_one(kind="future"), later)
    # an option past its expiry is valued at intrinsic (issue 12), not an error
    p = price_positions(_one(strike=90.0), later).iloc[0]
    assert p["price"] == pytest.approx(10.0) and p["delta"] == 1.0 and p["time_to_expiry"] == 0.0


def test_instrument_without_vol_names_row():
    m = MarketSnapshot(VT, {"X": UnderlyingMarket(spot=100.0, instrument_vols={"other": 0.3})})
    with pytest.raises(MarketDataError, match=r"row 0, column 'instrument': no implied vol for instrument 'X1'"):
        price_positions(_one(), m)
    m = MarketSnapshot(VT, {"X": UnderlyingMarket(spot=100.0, instrument_vols={"X1": 0.3})})
    assert price_positions(_one(), m)["vol"].iloc[0] == 0.3


def test_empty_book():
    p = price_positions(BOOK.positions.iloc[:0], BOOK.market)
    assert list(p.columns) == list(PRICED_COLUMNS) and len(p) == 0


def _frozen_market(valuation_time, flat_rate=None):
    """Example market with the book's option vols held per instrument, at another valuation time."""
    from dataclasses import replace

    m = BOOK.market
    opt = PRICED[PRICED["kind"] == "option"]
    unders = {}
    for u in m.underlyings:
        g = opt[opt["underlying"] == u]
        um = replace(m[u], instrument_vols=dict(zip(g["instrument"], g["vol"])))
        if flat_rate is not None and not m.has_forwards(u):
            um = replace(um, rate=flat_rate, rate_curve=None)
        unders[u] = um
    return MarketSnapshot(valuation_time, unders, m.fx)


def test_theta_is_one_day_of_time_at_fixed_spot():
    # rate-derived forwards: theta at fixed spot and carry (BSM); listed forwards: at fixed forward (Deribit)
    now = _frozen_market(BOOK.market.valuation_time, flat_rate=0.04)
    later = _frozen_market(BOOK.market.valuation_time + pd.Timedelta(hours=1), flat_rate=0.04)
    p0 = price_positions(BOOK.positions, now)
    p1 = price_positions(BOOK.positions, later)
    pnl = np.where(
        p0["kind"].isin(["option", "spot"]), p1["value_usd"] - p0["value_usd"], (p1["price"] - p0["price"]) * p0["size"]
    )
    np.testing.assert_allclose(pnl * 24, p0["theta_1d"].to_numpy(), rtol=2e-3, atol=0.5)
    assert (p0.loc[p0["underlying"] == "BTC", "rho"][p0["kind"] == "future"] == 0).all()
