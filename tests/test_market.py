import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin import io
from greeksmargin.book.market import (
    MarketSnapshot,
    UnderlyingMarket,
    VolSurface,
    from_deribit_chain,
    load_market,
)
from greeksmargin.errors import MarketDataError

CHAIN = Path(__file__).resolve().parent.parent / "validation" / "cases" / "deribit_chain" / "btc_2020-05-14.csv"
VT = "2026-01-01T00:00:00Z"
E1, E2, E3 = "2026-02-01T00:00:00Z", "2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"


def _market_dict():
    return {
        "valuation_time": VT,
        "fx_to_usd": {"USDC": 1.0},
        "underlyings": {
            "SPX": {
                "spot": 5000.0,
                "rate": 0.04,
                "dividend_yield": 0.01,
                "surface": {
                    "expiries": [E1, E2],
                    "points": [-0.2, 0.0, 0.2],
                    "vols": [[0.30, 0.20, 0.18], [0.26, 0.22, 0.21]],
                },
            },
            "BTC": {
                "spot": 100.0,
                "currency": "BTC",
                "forwards": {E1: 101.0, E2: 105.0},
                "vols": {"BTC-X-C": 0.77},
                "surface": {"axis": "strike", "expiries": [E1], "points": [80.0, 120.0], "vols": [[0.6, 0.5]]},
            },
        },
    }


def _years(e):
    return (pd.Timestamp(e) - pd.Timestamp(VT)).total_seconds() / (365 * 86400)


def test_surface_reproduces_node_values():
    m = load_market(_market_dict())
    for e, row in ((E1, [0.30, 0.20, 0.18]), (E2, [0.26, 0.22, 0.21])):
        t = _years(e)
        f = m.forward("SPX", [t])[0]
        k = f * np.exp([-0.2, 0.0, 0.2])
        assert np.allclose(m.vol("SPX", np.full(3, t), k), row, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(a=st.floats(0.0, 1.0), x=st.floats(-0.3, 0.3))
def test_total_variance_linear_in_time_at_fixed_moneyness(a, x):
    m = load_market(_market_dict())
    t1, t2 = _years(E1), _years(E2)
    t = t1 + a * (t2 - t1)

    def vol_at(tt):
        return m.vol("SPX", [tt], [m.forward("SPX", [tt])[0] * math.exp(x)])[0]

    v1 = np.interp(x, [-0.2, 0.0, 0.2], [0.30, 0.20, 0.18])
    v2 = np.interp(x, [-0.2, 0.0, 0.2], [0.26, 0.22, 0.21])
    w = v1**2 * t1 + a * (v2**2 * t2 - v1**2 * t1)
    assert vol_at(t) ** 2 * t == pytest.approx(w, rel=1e-9)


def test_flat_extrapolation_in_moneyness_and_time():
    m = load_market(_market_dict())
    t1, t2 = _years(E1), _years(E2)
    f1 = m.forward("SPX", [t1])[0]
    assert m.vol("SPX", [t1], [f1 * math.exp(-0.9)])[0] == pytest.approx(0.30)
    assert m.vol("SPX", [t1], [f1 * math.exp(0.9)])[0] == pytest.approx(0.18)
    f_short = m.forward("SPX", [0.01])[0]
    assert m.vol("SPX", [0.01], [f_short])[0] == pytest.approx(0.20)  # flat vol before the first slice
    f_long = m.forward("SPX", [3.0])[0]
    assert m.vol("SPX", [3.0], [f_long])[0] == pytest.approx(0.22)  # flat vol after the last slice
    assert t2 < 3.0


def test_strike_axis_and_instrument_vol_wins():
    m = load_market(_market_dict())
    t = _years(E1)
    assert m.vol("BTC", [t], [100.0])[0] == pytest.approx(0.55)
    out = m.vol("BTC", [t, t], [100.0, 100.0], instrument=["BTC-X-C", "other"])
    assert out == pytest.approx([0.77, 0.55])


def test_forward_from_rate_and_dividend():
    m = load_market(_market_dict())
    t = np.array([0.0, 0.5, 2.0])
    assert m.forward("SPX", t) == pytest.approx(5000 * np.exp(0.03 * t))
    assert not m.has_forwards("SPX") and m.has_forwards("BTC")


def test_forward_log_linear_between_listed_expiries():
    m = load_market(_market_dict())
    t1, t2 = _years(E1), _years(E2)
    assert m.forward("BTC", [t1, t2]) == pytest.approx([101.0, 105.0])
    tm = 0.3 * t1 + 0.7 * t2
    expected = math.exp(0.3 * math.log(101.0) + 0.7 * math.log(105.0))
    assert m.forward("BTC", [tm])[0] == pytest.approx(expected, rel=1e-12)
    # before the first node: between spot (T=0) and the first forward
    assert m.forward("BTC", [t1 / 2])[0] == pytest.approx(math.sqrt(100.0 * 101.0), rel=1e-12)
    # beyond the last node: the last node's carry is kept
    carry = math.log(105.0 / 100.0) / t2
    assert m.forward("BTC", [2.0])[0] == pytest.approx(100.0 * math.exp(carry * 2.0), rel=1e-12)


def test_rate_curve_linear_in_time_flat_outside():
    d = _market_dict()
    d["underlyings"]["SPX"]["rate"] = {"expiries": [E1, E3], "rates": [0.05, 0.03]}
    m = load_market(d)
    t1, t3 = _years(E1), _years(E3)
    assert m.rate("SPX", [0.0, t1, (t1 + t3) / 2, t3, 5.0]) == pytest.approx([0.05, 0.05, 0.04, 0.03, 0.03])


def test_to_dict_round_trips_json_and_toml(tmp_path):
    m = load_market(_market_dict())
    assert load_market(m.to_dict()) == m
    io.write_json(m.to_dict(), tmp_path / "m.json")
    assert load_market(tmp_path / "m.json") == m
    io.write_toml(m.to_dict(), tmp_path / "m.toml")
    assert load_market(tmp_path / "m.toml") == m
    assert m.to_dict()["underlyings"]["BTC"]["surface"]["axis"] == "strike"


def test_fx_to_usd():
    m = load_market(_market_dict())
    assert m.fx_to_usd("USD") == 1.0
    assert m.fx_to_usd("USDC") == 1.0
    assert m.fx_to_usd("BTC") == 100.0
    with pytest.raises(MarketDataError, match="no FX rate to USD for currency 'EUR'"):
        m.fx_to_usd("EUR")


def test_vol_in_percent_names_file_and_key(tmp_path):
    d = _market_dict()
    d["underlyings"]["SPX"]["surface"]["vols"][1][2] = 21.0
    path = io.write_json(d, tmp_path / "mkt.json")
    with pytest.raises(MarketDataError) as exc:
        load_market(path)
    msg = str(exc.value)
    assert f"file {path}" in msg
    assert "key 'underlyings.SPX.surface.vols[1][2]'" in msg
    assert "not percent" in msg


@pytest.mark.parametrize(
    ("edit", "key", "text"),
    [
        (lambda d: d["underlyings"]["SPX"].__setitem__("spot", 0.0), "underlyings.SPX.spot", "spot must be a positive"),
        (
            lambda d: d["underlyings"]["BTC"]["vols"].__setitem__("BTC-X-C", 0.0),
            "underlyings.BTC.vols.BTC-X-C",
            "vol must be positive",
        ),
        (
            lambda d: d["underlyings"]["BTC"]["vols"].__setitem__("BTC-X-C", 77.0),
            "underlyings.BTC.vols.BTC-X-C",
            "not percent",
        ),
        (lambda d: d["underlyings"]["SPX"].pop("spot"), "underlyings.SPX.spot", "missing"),
        (lambda d: d["underlyings"]["SPX"].__setitem__("sopt", 1.0), "underlyings.SPX.sopt", "unknown key"),
        (lambda d: d.pop("valuation_time"), "valuation_time", "missing"),
    ],
)
def test_bad_market_values(edit, key, text):
    d = _market_dict()
    edit(d)
    with pytest.raises(MarketDataError, match=text) as exc:
        load_market(d)
    assert f"key '{key}'" in str(exc.value)
    assert "file <dict>" in str(exc.value)


def test_built_in_code_is_checked_too():
    with pytest.raises(MarketDataError, match="spot must be a positive"):
        MarketSnapshot(VT, {"X": UnderlyingMarket(spot=-1.0)})
    surf = VolSurface((pd.Timestamp(E1),), (np.array([0.0]),), (np.array([20.0]),))
    with pytest.raises(MarketDataError, match="not percent"):
        MarketSnapshot(VT, {"X": UnderlyingMarket(spot=1.0, surface=surf)})


def test_unknown_underlying_and_missing_vol():
    m = MarketSnapshot(VT, {"X": UnderlyingMarket(spot=10.0)})
    assert not m.has_vol("X") and not m.has_vol("Y")
    with pytest.raises(MarketDataError, match="underlying 'Y' is not in the market snapshot"):
        m.spot("Y")
    with pytest.raises(MarketDataError, match="no implied vol for underlying 'X'"):
        m.vol("X", [0.5], [10.0])


def test_bumped_scales_spot_forwards_and_shifts_vols():
    m = load_market(_market_dict())
    b = m.bumped("BTC", spot_rel=0.01, vol_abs=0.02)
    t1 = _years(E1)
    assert b.spot("BTC") == pytest.approx(101.0)
    assert b.forward("BTC", [t1])[0] == pytest.approx(101.0 * 1.01)
    assert b.vol("BTC", [t1], [100.0])[0] == pytest.approx(m.vol("BTC", [t1], [100.0])[0] + 0.02)  # sticky strike
    f0, f1 = m.forward("SPX", [t1])[0], b.forward("SPX", [t1])[0]
    assert f1 == pytest.approx(f0)  # only BTC moved
    s = m.bumped(spot_rel=0.05)
    assert s.vol("SPX", [t1], [f0 * 1.05])[0] == pytest.approx(m.vol("SPX", [t1], [f0])[0])  # sticky moneyness
    assert b.spot("SPX") == m.spot("SPX")


def test_deribit_chain_loader_on_shipped_file():
    raw = pd.read_csv(CHAIN)
    m, inst = from_deribit_chain(CHAIN)
    assert m.underlyings == ["BTC"] and m.currency("BTC") == "BTC"
    assert len(inst) == len(raw)
    assert set(inst["settlement"]) == {"inverse"} and set(inst["quantity"]) == {1.0}
    assert m.valuation_time == pd.Timestamp(int(raw["timestamp"].median()), unit="ms", tz="UTC")
    # forwards per expiry reproduce the chain's underlying_price
    row = raw.iloc[0]
    t = (row["expiration_timestamp"] - m.valuation_time.value / 1e6) / (365 * 86400e3)
    fwd = raw.loc[raw["expiration_timestamp"] == row["expiration_timestamp"], "underlying_price"].median()
    assert m.forward("BTC", [t])[0] == pytest.approx(fwd, rel=1e-12)
    # per-instrument vols are mark_iv / 100
    v = m.vol("BTC", [t], [row["strike"]], instrument=[row["instrument_name"]])[0]
    assert v == pytest.approx(row["mark_iv"] / 100)
    # the surface is built from the same marks: at a listed strike it gives the mean of call and put vols
    same = raw[(raw["expiration_timestamp"] == row["expiration_timestamp"]) & (raw["strike"] == row["strike"])]
    assert m.vol("BTC", [t], [row["strike"]])[0] == pytest.approx(same["mark_iv"].mean() / 100, rel=1e-9)


def test_deribit_chain_missing_column():
    raw = pd.read_csv(CHAIN).drop(columns="mark_iv")
    with pytest.raises(MarketDataError, match="file <DataFrame>, column 'mark_iv': missing column"):
        from_deribit_chain(raw)
