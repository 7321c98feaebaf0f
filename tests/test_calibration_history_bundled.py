"""Bundled real histories (S&P 500 + VIX 1990-2025, Bitstamp BTC/ETH + Deribit DVOL) and the honest loaders."""

import numpy as np
import pandas as pd
import pytest

from greeksmargin.calibration.history import (
    align_vol_index,
    calendar_gaps,
    drop_partial_last_row,
    load_history,
    oldest_first,
    validate_history,
)
from greeksmargin.errors import InputError

DATA = "greeksmargin/datasets/data/"


def test_sp500_is_stooq_close_with_vix_from_1990():
    h = load_history("sp500")
    assert h["date"].iloc[0] == pd.Timestamp("1990-01-02") and h["date"].iloc[-1] == pd.Timestamp("2025-10-06")
    assert h.attrs["periods_per_year"] == 252
    s = h.set_index("date")
    # published closes (SOURCES.md checks)
    assert s.at[pd.Timestamp("2008-10-24"), "price"] == 876.77
    assert s.at[pd.Timestamp("2008-10-24"), "vol"] == pytest.approx(0.7913)
    assert s.at[pd.Timestamp("2020-03-16"), "vol"] == pytest.approx(0.8269)
    # the VIX is the vol on all but a handful of days, and they are named in the report
    assert (h["vol_source"] == "index").sum() >= len(h) - 5
    rep = " ".join(h.attrs["report"])
    assert "rows on days without a price" in rep and "2001-09-17 (7 days)" in rep


def test_crypto_dvol_where_it_exists():
    for name, first in (("btc", "2014-11-28"), ("eth", "2017-11-09")):
        h = load_history(name)
        assert h["date"].iloc[0] == pd.Timestamp(first) and h["date"].iloc[-1] == pd.Timestamp("2025-07-04")
        assert h.attrs["periods_per_year"] == 365
        idx = h.loc[h["vol_source"] == "index", "date"]
        assert idx.min() == pd.Timestamp("2021-03-24")
        assert (h.loc[h["date"] >= "2021-03-24", "vol_source"] == "index").all()
        assert any("newest-first" in r for r in h.attrs["report"])
    b = load_history("btc").set_index("date")
    assert b.at[pd.Timestamp("2021-11-08"), "price"] == 67559.0
    assert b.at[pd.Timestamp("2022-11-09"), "vol"] == pytest.approx(1.1472)
    # the stale Bitstamp rows are not bundled, and the hole is reported, not hidden
    assert not b.index.isin(pd.date_range("2015-01-06", "2015-01-11")).any()
    assert any("2015-01-12 (7 days)" in r for r in load_history("btc").attrs["report"])


def _raw(n=40, newest_first=False):
    d = pd.date_range("2021-01-01", periods=n, freq="D")
    t = pd.DataFrame({"date": d.strftime("%Y-%m-%d"), "close": np.linspace(100, 120, n),
                      "volume": np.full(n, 1000.0)})
    return t.iloc[::-1].reset_index(drop=True) if newest_first else t


def test_newest_first_is_reversed_and_reported():
    rep: list[str] = []
    t = oldest_first(_raw(newest_first=True), file="x.csv", report=rep)
    assert t["date"].iloc[0] == "2021-01-01" and len(rep) == 1 and "newest-first" in rep[0]
    # an increasing file is untouched, a shuffled one is left for validate_history to reject by row
    rep2: list[str] = []
    assert oldest_first(_raw(), file="x.csv", report=rep2)["date"].iloc[0] == "2021-01-01" and not rep2
    shuffled = _raw().iloc[[0, 2, 1, *range(3, 40)]].reset_index(drop=True)
    with pytest.raises(InputError) as e:
        validate_history(oldest_first(shuffled, file="x.csv").rename(columns={"close": "price"}), file="x.csv")
    assert e.value.row == 2 and e.value.column == "date"


def test_partial_last_row_dropped_with_report_or_rejected():
    t = _raw()
    t.loc[len(t) - 1, "volume"] = 400.0  # 40% of the usual day: an intraday export
    rep: list[str] = []
    out = drop_partial_last_row(t, file="x.csv", volume_col="volume", report=rep)
    assert len(out) == len(t) - 1 and "partial" in rep[0] and "dropped" in rep[0]
    with pytest.raises(InputError) as e:
        drop_partial_last_row(t, file="x.csv", volume_col="volume", drop=False)
    assert e.value.row == len(t) - 1 and e.value.column == "volume" and "x.csv" in str(e.value)
    # a full last day is kept
    assert len(drop_partial_last_row(_raw(), file="x.csv", volume_col="volume")) == len(t)


def test_gaps_reported_and_long_gaps_rejected():
    t = _raw().rename(columns={"close": "price"})
    holed = t.drop(index=range(10, 16)).reset_index(drop=True)  # 7 calendar days between two rows
    h = validate_history(holed, file="x.csv", periods_per_year=365)
    rep: list[str] = []
    gaps = calendar_gaps(h, file="x.csv", report=rep)
    assert gaps == [("2021-01-17", 7)] and "7 days" in rep[0]
    with pytest.raises(InputError) as e:
        validate_history(t.drop(index=range(10, 25)).reset_index(drop=True), file="x.csv")
    assert "gap of 16 days" in str(e.value) and e.value.row == 10


def test_vol_rows_on_holidays_aligned_and_reported():
    prices = pd.DataFrame({"date": pd.bdate_range("2022-01-03", periods=10), "price": 100.0})
    prices = prices.drop(index=[4]).reset_index(drop=True)  # an exchange holiday with a vol print
    vol = pd.DataFrame({"date": pd.bdate_range("2022-01-03", periods=10), "vol": np.arange(10.0) + 20})
    vol = vol.drop(index=[7]).reset_index(drop=True)  # and a price day without a vol print
    rep: list[str] = []
    out = align_vol_index(prices, vol, vol_file="v.csv", report=rep)
    assert len(out) == 9 and out["date"].equals(prices["date"])
    assert out["vol"].iloc[0] == pytest.approx(0.20) and np.isnan(out["vol"].iloc[6])
    assert "1 rows on days without a price" in rep[0] and "2022-01-07" in rep[0]
    assert "no value on 1 of 9" in rep[1] and "2022-01-12" in rep[1]
