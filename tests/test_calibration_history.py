import numpy as np
import pandas as pd
import pytest

from greeksmargin.calibration.history import ewma_sigma, load_history, validate_history, with_vol_proxy
from greeksmargin.errors import InputError


def _table(n=30):
    d = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame({"date": d.strftime("%Y-%m-%d"), "price": np.linspace(100, 110, n)})


def test_bundled_sp500_arch_with_vix_overlap():
    h = load_history("sp500-arch")
    assert list(h.columns) == ["date", "price", "vol", "vol_source"]
    assert h["date"].iloc[0] == pd.Timestamp("1999-01-04") and h["date"].iloc[-1] == pd.Timestamp("2018-12-31")
    idx = h[h["vol_source"] == "index"]
    assert idx["date"].min() >= pd.Timestamp("2014-01-01")
    assert len(idx) > 1200 and idx["vol"].between(0.05, 0.6).all()  # VIX / 100
    assert np.isfinite(h["vol"]).all() and h.attrs["periods_per_year"] == 252


def test_bundled_btc_yahoo():
    h = load_history("btc-yahoo")
    assert h["date"].iloc[0] == pd.Timestamp("2014-09-17") and len(h) == 2723
    assert h.attrs["periods_per_year"] == 365 and (h["vol_source"] == "proxy").all()
    raw = pd.read_csv("greeksmargin/datasets/data/btc_usd_daily.csv")
    assert np.array_equal(h["price"].to_numpy(), raw["Adj Close"].to_numpy())


def test_csv_and_parquet_roundtrip(tmp_path):
    t = _table()
    t["vol"] = 0.2
    t.to_csv(tmp_path / "h.csv", index=False)
    t.to_parquet(tmp_path / "h.parquet", index=False)
    a = load_history(tmp_path / "h.csv")
    b = load_history(tmp_path / "h.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert (a["vol_source"] == "index").all()


@pytest.mark.parametrize(
    ("mutate", "row", "column", "text"),
    [
        (lambda t: t.assign(price=t["price"].where(t.index != 7, -1.0)), 7, "price", "non-positive price"),
        (lambda t: t.assign(price=t["price"].where(t.index != 4, np.nan)), 4, "price", "missing"),
        (lambda t: t.assign(date=t["date"].where(t.index != 5, t["date"][4])), 5, "date", "duplicate date"),
        (lambda t: t.assign(date=t["date"].where(t.index != 9, "garbage")), 9, "date", "unparseable"),
        (lambda t: t.assign(vol=np.where(t.index == 3, 25.0, 0.2)), 3, "vol", "not percent"),
    ],
)
def test_bad_rows_named(tmp_path, mutate, row, column, text):
    f = tmp_path / "bad.csv"
    mutate(_table()).to_csv(f, index=False)
    with pytest.raises(InputError) as e:
        load_history(f)
    assert e.value.row == row and e.value.column == column and text in str(e.value)
    assert str(f) in str(e.value)


def test_gap_and_order_reported():
    t = _table()
    t.loc[10:, "date"] = (pd.to_datetime(t.loc[10:, "date"]) + pd.Timedelta(days=30)).dt.strftime("%Y-%m-%d")
    with pytest.raises(InputError, match="gap of"):
        validate_history(t, file="x.csv")
    t = _table()
    t.loc[[3, 4], "date"] = t.loc[[4, 3], "date"].to_numpy()
    with pytest.raises(InputError, match="not after") as e:
        validate_history(t, file="x.csv")
    assert e.value.row == 4


def test_missing_columns():
    with pytest.raises(InputError, match="missing column 'date'"):
        validate_history(pd.DataFrame({"price": [1, 2, 3]}))
    with pytest.raises(InputError, match="missing price column"):
        validate_history(pd.DataFrame({"date": ["2020-01-01", "2020-01-02", "2020-01-03"]}))


def test_ewma_matches_reference_loop():
    r = np.random.default_rng(1).normal(0, 0.01, 500)
    lam = 0.97
    ref = np.empty(501)
    ref[0] = np.mean(r[:30] ** 2)
    for t in range(1, 501):
        ref[t] = lam * ref[t - 1] + (1 - lam) * r[t - 1] ** 2
    np.testing.assert_allclose(ewma_sigma(r, lam), np.sqrt(ref), rtol=1e-12)
    with pytest.raises(InputError, match="lambda"):
        ewma_sigma(r, 1.0)


def test_vol_proxy_scale_fitted_on_overlap():
    t = _table(300)
    rng = np.random.default_rng(0)
    t["price"] = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    h = validate_history(t)
    proxy = with_vol_proxy(h)
    t["vol"] = np.where(np.arange(300) >= 100, 1.5 * proxy["vol"], np.nan)  # index = 1.5 x realised
    h2 = with_vol_proxy(validate_history(t))
    assert h2.attrs["vol_proxy_scale"] == pytest.approx(1.5)
    assert (h2["vol_source"].iloc[:100] == "proxy").all() and (h2["vol_source"].iloc[100:] == "index").all()
    np.testing.assert_allclose(h2["vol"].iloc[:100], 1.5 * proxy["vol"].iloc[:100])
