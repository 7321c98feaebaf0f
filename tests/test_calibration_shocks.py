import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from greeksmargin.calibration.history import load_history, validate_history
from greeksmargin.calibration.shocks import calibrate, filtered_h_day_returns, h_day_returns, vol_shocks
from greeksmargin.errors import InputError


@pytest.fixture(scope="module")
def sp500():
    return load_history("sp500-arch")


@pytest.fixture(scope="module")
def btc():
    return load_history("btc-yahoo")


def _rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("name", ["sp500", "btc"])
@pytest.mark.parametrize(("c", "h"), [(0.99, 2), (0.975, 1), (0.995, 5)])
def test_hs_shock_is_numpy_quantile(name, c, h, sp500, btc):
    hist = sp500 if name == "sp500" else btc
    p = hist["price"].to_numpy()
    simple = p[h:] / p[:-h] - 1.0  # h-day returns computed independently of the library
    cal = calibrate(hist, c, h, "hs", kind="simple")
    assert _rel(cal.price_shock_down, -np.quantile(simple, 1 - c)) < 1e-9
    assert _rel(cal.price_shock_up, np.quantile(simple, c)) < 1e-9
    log = np.log(p[h:] / p[:-h])
    cal_log = calibrate(hist, c, h, "hs", kind="log")
    assert _rel(cal_log.q_low, np.quantile(log, 1 - c)) < 1e-9
    assert _rel(cal_log.q_high, np.quantile(log, c)) < 1e-9
    assert cal_log.price_shock_down == pytest.approx(1 - np.exp(np.quantile(log, 1 - c)), rel=1e-12)
    assert cal.n_returns == p.size - h and cal.lam is None


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=40, max_size=200),
    st.floats(0.9, 0.999),
    st.integers(1, 5),
)
def test_hs_property_any_path(rets, c, h):
    p = 100 * np.exp(np.cumsum([0.0, *rets]))
    hist = validate_history(pd.DataFrame({"date": pd.bdate_range("2001-01-01", periods=p.size), "price": p}))
    r = h_day_returns(p, h, "simple")
    cal = calibrate(hist, c, h, "hs")
    assert cal.price_shock_down == pytest.approx(-np.quantile(r, 1 - c), rel=1e-9, abs=1e-15)
    assert cal.price_shock_up == pytest.approx(np.quantile(r, c), rel=1e-9, abs=1e-15)


def _garch_path(n, seed, omega=2e-6, alpha=0.08, beta=0.90):
    """GARCH(1,1) with normal innovations: r_t = sigma_t z_t, sigma2_{t+1} = omega + alpha r_t^2 + beta sigma2_t."""
    rng = np.random.default_rng(seed)
    s2 = np.empty(n + 1)
    r = np.empty(n)
    s2[0] = omega / (1 - alpha - beta)
    for t in range(n):
        r[t] = np.sqrt(s2[t]) * rng.standard_normal()
        s2[t + 1] = omega + alpha * r[t] ** 2 + beta * s2[t]
    return r, np.sqrt(s2)


def test_fhs_tracks_true_conditional_quantile_on_garch():
    """FHS 1-day quantile vs the known GARCH conditional quantile sigma_{T+1} Phi^-1(1-c), rolling endpoints."""
    r, sig = _garch_path(4000, seed=7)
    p = 100 * np.exp(np.cumsum(np.r_[0.0, r]))
    c, w = 0.99, 1500
    fhs, hs, true, nxt = [], [], [], []
    for end in range(w, 4000):
        win = p[end - w : end + 1]  # returns r[end-w .. end-1]; the next return is r[end]
        rf, _ = filtered_h_day_returns(win, 1, 0.94, "log")
        fhs.append(np.quantile(rf, 1 - c))
        hs.append(np.quantile(np.diff(np.log(win)), 1 - c))
        true.append(sig[end] * norm.ppf(1 - c))
        nxt.append(r[end])
    fhs, hs, true, nxt = map(np.asarray, (fhs, hs, true, nxt))
    err_fhs = np.mean(np.abs(fhs / true - 1))
    err_hs = np.mean(np.abs(hs / true - 1))
    assert err_fhs < 0.10 and err_fhs < 0.5 * err_hs
    assert np.corrcoef(fhs, true)[0, 1] > 0.9
    # out-of-sample coverage of the next day's return: within ~3 binomial standard errors of 1 - c
    n = nxt.size
    rate = np.mean(nxt < fhs)
    assert abs(rate - (1 - c)) < 3 * np.sqrt(c * (1 - c) / n)


def test_fhs_calibrate_uses_current_vol():
    r, sig = _garch_path(3000, seed=11)
    p = 100 * np.exp(np.cumsum(np.r_[0.0, r]))
    hist = validate_history(pd.DataFrame({"date": pd.bdate_range("2001-01-01", periods=p.size), "price": p}))
    cal = calibrate(hist, 0.99, 1, "fhs", lam=0.94, kind="log")
    truth = -np.expm1(sig[-1] * norm.ppf(0.01))
    assert cal.price_shock_down == pytest.approx(truth, rel=0.2)
    assert cal.method == "fhs" and cal.lam == 0.94 and np.isnan(cal.vol.up) and cal.vol.source == "none"


def test_stress_floor(sp500):
    base = calibrate(sp500, 0.99, 2, "hs")
    floored = calibrate(sp500, 0.99, 2, "hs", stress=("2008-09-01", "2009-03-31"))
    p = sp500.set_index("date")["price"]
    win = p.loc["2008-09-01":].to_numpy()
    n_start = len(p.loc["2008-09-01":"2009-03-31"])
    r = (win[2:] / win[:-2] - 1)[:n_start]
    assert floored.stressed_shock_down == pytest.approx(-np.quantile(r, 0.01), rel=1e-12)
    assert floored.floor_binding and floored.price_shock_down == pytest.approx(floored.stressed_shock_down)
    assert floored.price_shock_down > 1.5 * base.price_shock_down
    half = calibrate(sp500, 0.99, 2, "hs", stress=("2008-09-01", "2009-03-31"), stress_weight=0.25)
    assert half.price_shock_down == pytest.approx(max(base.price_shock_down, 0.25 * floored.stressed_shock_down))


def test_vol_shock_from_vix_log_changes(sp500):
    v = sp500.loc[sp500["vol_source"] == "index", "vol"].to_numpy()
    d = np.log(v[2:] / v[:-2])
    vs = vol_shocks(sp500, 0.99, 2)
    assert vs.source == "index" and vs.start.startswith("2014")
    assert vs.up == pytest.approx(np.expm1(np.quantile(d, 0.99)), rel=1e-12)
    assert vs.down == pytest.approx(-np.expm1(np.quantile(d, 0.01)), rel=1e-12)
    assert vs.up_abs == pytest.approx(np.quantile(v[2:] - v[:-2], 0.99), rel=1e-12)


def test_bad_arguments(sp500):
    with pytest.raises(InputError, match="confidence"):
        calibrate(sp500, 1.5, 2)
    with pytest.raises(InputError, match="MPOR"):
        calibrate(sp500, 0.99, 0)
    with pytest.raises(InputError, match="unknown calibration method"):
        calibrate(sp500, 0.99, 2, "garch")


def test_return_correlation_common_dates(sp500, btc):
    from greeksmargin.calibration.shocks import return_correlation

    rho = return_correlation(btc, sp500, 2)
    assert -0.2 < rho < 0.4
    assert return_correlation(sp500, sp500, 2) == pytest.approx(1.0)
    j = sp500.merge(btc, on="date")
    x = np.log(j["price_x"].to_numpy())
    y = np.log(j["price_y"].to_numpy())
    assert rho == pytest.approx(np.corrcoef(y[2:] - y[:-2], x[2:] - x[:-2])[0, 1], rel=1e-12)


def test_filled_vol_series_and_joint_vol_shocks(sp500):
    """series="filled": every row's vol (index + proxy); the joint shock is the median vol move on price-tail rows."""
    h, c = 2, 0.99
    idx = vol_shocks(sp500, c, h)
    filled = vol_shocks(sp500, c, h, series="filled")
    assert idx.source == "index" and filled.source == "filled"
    v, p = sp500["vol"].to_numpy(), sp500["price"].to_numpy()
    d = np.log(v[h:] / v[:-h])
    assert filled.up == pytest.approx(np.expm1(np.quantile(d, c)), rel=1e-12)
    assert filled.down == pytest.approx(-np.expm1(np.quantile(d, 1 - c)), rel=1e-12)
    r = p[h:] / p[:-h] - 1
    tail = (r <= np.quantile(r, 1 - c)) | (r >= np.quantile(r, c))
    med = np.median(d[tail])
    assert filled.up_joint == pytest.approx(max(np.expm1(med), 0.0), rel=1e-12)
    assert filled.down_joint == pytest.approx(max(-np.expm1(med), 0.0), abs=1e-15)
    assert 0 <= filled.up_joint < filled.up  # the move that comes with a price-tail move is smaller
    with pytest.raises(ValueError, match="series"):
        vol_shocks(sp500, c, h, series="other")


def test_joint_vol_shock_on_gaussian_factors():
    """Bivariate normal (return, vol log change), correlation rho: the marginal shock is the normal quantile and
    the joint move, the median over both price tails (falls bring vol up, rises vol down), is about 0."""
    rng = np.random.default_rng(7)
    n, rho = 400_000, -0.6
    z1 = rng.standard_normal(n)
    z2 = rho * z1 + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    price = np.cumprod(np.r_[1.0, np.exp(0.01 * z1)])
    vol = 0.2 * np.exp(np.cumsum(np.r_[0.0, 0.05 * z2]))
    hist = pd.DataFrame({"date": pd.bdate_range("1990-01-01", periods=n + 1), "price": price, "vol": vol,
                         "vol_source": "index"})
    vs = vol_shocks(hist, 0.99, 1)
    assert vs.up == pytest.approx(np.expm1(0.05 * norm.ppf(0.99)), rel=0.03)
    assert abs(np.log1p(vs.up_joint) - np.log1p(-vs.down_joint)) < 0.01 * 0.05 * 2.33 + 1e-12
