import numpy as np
import pandas as pd
import pytest

from greeksmargin.book.market import MarketSnapshot, UnderlyingMarket, VolSurface
from greeksmargin.book.positions import COLUMNS, load_positions, load_positions_collect, validate_against_market
from greeksmargin.errors import InputError, MarketDataError

VT = "2026-11-20T08:00:00Z"


def _frame():
    return pd.DataFrame(
        {
            "account": ["A", "A", "B", "B"],
            "instrument": ["SPX C", "SPX F", "BTC-P", "BTC-PERP"],
            "underlying": ["SPX", "SPX", "BTC", "BTC"],
            "kind": ["option", "future", "Option", "perpetual"],
            "option_type": ["call", "", "P", ""],
            "strike": [6000.0, np.nan, 90000.0, np.nan],
            "expiry": ["2026-12-18T21:00:00Z", "2027-03-19", "2026-12-25T08:00:00Z", ""],
            "quantity": [10.0, -2.0, 1.5, -3.0],
            "multiplier": [100.0, 50.0, np.nan, 1.0],
            "settlement": ["linear", "linear", "inverse", "INVERSE"],
        },
        index=["p1", "p2", "p3", "p4"],
    )


def _write(tmp_path, df, name="book.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_normalised_schema_from_dataframe():
    pos = load_positions(_frame(), valuation_time=VT)
    assert list(pos.columns) == list(COLUMNS)
    assert list(pos.index) == ["p1", "p2", "p3", "p4"]
    assert list(pos["kind"]) == ["option", "future", "option", "perpetual"]
    assert list(pos["option_type"]) == ["call", None, "put", None]
    assert np.isnan(pos.loc["p2", "strike"]) and pos.loc["p3", "strike"] == 90000.0
    assert pos.loc["p3", "multiplier"] == 1.0  # default
    assert list(pos["settlement"]) == ["linear", "linear", "inverse", "inverse"]
    assert list(pos["premium_currency"]) == ["USD", "USD", "BTC", "BTC"]
    assert isinstance(pos["expiry"].dtype, pd.DatetimeTZDtype)
    assert pos.loc["p2", "expiry"] == pd.Timestamp("2027-03-19T00:00:00Z")
    assert pd.isna(pos.loc["p4", "expiry"])


def test_file_round_trip_csv_and_parquet(tmp_path):
    df = _frame()
    a = load_positions(_write(tmp_path, df))
    b = load_positions(_write(tmp_path, df.reset_index(drop=True), "b.csv"))
    df.reset_index(drop=True).to_parquet(tmp_path / "b.parquet")
    c = load_positions(tmp_path / "b.parquet")
    assert list(a.index) == [0, 1, 2, 3]
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)


def test_optional_columns_default():
    df = _frame().drop(columns=["multiplier", "settlement"])
    pos = load_positions(df)
    assert (pos["multiplier"] == 1.0).all() and (pos["settlement"] == "linear").all()


# --- one test per kind of bad input; each message names file, row and column -------------------------


def _bad(tmp_path, edit, file_row=None):
    df = _frame().reset_index(drop=True)
    edit(df)
    path = _write(tmp_path, df)
    with pytest.raises(InputError) as exc:
        load_positions(path, valuation_time=VT)
    return path, str(exc.value), exc.value


def test_missing_column(tmp_path):
    path, msg, err = _bad(tmp_path, lambda d: d.pop("quantity"))
    assert msg.startswith(f"file {path}, column 'quantity': missing column")
    assert err.column == "quantity"


def test_wrong_type_quantity(tmp_path):
    path, msg, err = _bad(tmp_path, lambda d: d.__setitem__("quantity", ["1", "2", "ten", "3"]))
    assert msg == f"file {path}, row 2, column 'quantity': must be a number (got 'ten') (CSV line 4)"
    assert (err.row, err.column) == (2, "quantity")


def test_wrong_type_strike(tmp_path):
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("strike", ["6000", "", "9e4x", ""]))
    assert msg == f"file {path}, row 2, column 'strike': must be a number (got '9e4x') (CSV line 4)"


@pytest.mark.parametrize("strike", [0.0, -5.0])
def test_zero_or_negative_strike(tmp_path, strike):
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("strike", [6000.0, np.nan, strike, np.nan]))
    assert msg == (f"file {path}, row 2, column 'strike': strike must be positive (got {strike!r}; allowed "
                   f"[1e-09, 1e+12]) (CSV line 4)")


def test_option_without_strike(tmp_path):
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("strike", [np.nan, np.nan, 1.0, np.nan]))
    assert msg == f"file {path}, row 0, column 'strike': an option needs a strike (CSV line 2)"


def test_option_without_type_or_expiry(tmp_path):
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("option_type", ["call", "", "", ""]))
    assert msg.startswith(f"file {path}, row 2, column 'option_type': an option needs an option_type")
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("expiry", ["", "2027-03-19", "2026-12-25", ""]))
    assert msg.startswith(f"file {path}, row 0, column 'expiry': an option needs an expiry")


@pytest.mark.parametrize("mult", [0.0, -100.0])
def test_zero_or_negative_multiplier(tmp_path, mult):
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("multiplier", [100.0, mult, 1.0, 1.0]))
    assert msg == f"file {path}, row 1, column 'multiplier': multiplier must be positive (got {mult!r}) (CSV line 3)"


def test_nan_quantity(tmp_path):
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("quantity", [1.0, 2.0, 3.0, np.nan]))
    assert msg == f"file {path}, row 3, column 'quantity': quantity is missing (NaN) (CSV line 5)"


def test_unknown_kind(tmp_path):
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("kind", ["option", "swap", "option", "perpetual"]))
    assert msg.startswith(f"file {path}, row 1, column 'kind': unknown kind 'swap'")


def test_unknown_settlement(tmp_path):
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("settlement", ["linear", "linear", "physical", "linear"]))
    assert msg.startswith(f"file {path}, row 2, column 'settlement': unknown settlement 'physical'")


def test_option_at_or_past_expiry_is_kept(tmp_path):
    # issue 12: an option expiring at the valuation time (or before) is valued at intrinsic, not an error
    for exp in ("2026-11-20T08:00:00Z", "2026-11-19T08:00:00Z"):
        df = _frame().reset_index(drop=True)
        df["expiry"] = [exp, "2027-03-19", "2026-12-25", ""]
        pos = load_positions(_write(tmp_path, df), valuation_time=VT)
        assert pos["expiry"].iloc[0] == pd.Timestamp(exp)


def test_expired_future(tmp_path):
    path, msg, _ = _bad(tmp_path, lambda d: d.__setitem__("expiry", ["2026-12-18", "2026-01-01", "2026-12-25", ""]))
    assert msg.startswith(f"file {path}, row 1, column 'expiry': future expired")


def test_dataframe_errors_use_index_label():
    df = _frame()
    df.loc["p3", "strike"] = -1.0
    with pytest.raises(InputError) as exc:
        load_positions(df)
    assert str(exc.value) == ("file <DataFrame>, row p3, column 'strike': strike must be positive (got -1.0; "
                              "allowed [1e-09, 1e+12])")
    df = _frame()
    df.loc["p2", "quantity"] = np.nan
    with pytest.raises(InputError, match=r"^file <DataFrame>, row p2, column 'quantity': quantity is missing"):
        load_positions(df)


# --- against the market -------------------------------------------------------------------------------


def _market(with_btc_vol=True):
    surf = VolSurface((pd.Timestamp("2027-01-01", tz="UTC"),), (np.array([0.0]),), (np.array([0.5]),))
    return MarketSnapshot(
        VT,
        {
            "SPX": UnderlyingMarket(spot=6000.0, surface=surf),
            "BTC": UnderlyingMarket(spot=95000.0, currency="BTC", surface=surf if with_btc_vol else None),
        },
    )


def test_validate_against_market_ok():
    validate_against_market(load_positions(_frame()), _market())


def test_underlying_absent_from_market():
    df = _frame()
    df.loc["p2", "underlying"] = "NDX"
    with pytest.raises(MarketDataError) as exc:
        validate_against_market(load_positions(df), _market(), file="book.csv")
    assert str(exc.value).startswith(
        "file book.csv, row p2, column 'underlying': underlying 'NDX' is not in the market snapshot"
    )


def test_option_whose_underlying_has_no_vol():
    with pytest.raises(MarketDataError) as exc:
        validate_against_market(load_positions(_frame()), _market(with_btc_vol=False))
    assert str(exc.value).startswith("file <DataFrame>, row p3, column 'underlying': option on 'BTC'")
    # a perpetual on the same underlying needs no vol
    validate_against_market(load_positions(_frame().loc[["p4"]]), _market(with_btc_vol=False))


@pytest.mark.parametrize("errors", ["raise", "collect"])
def test_a_column_the_schema_does_not_define_is_an_error_never_dropped(tmp_path, errors):
    """A ``notes`` column (not a typo of a schema column) is refused by name, in files and DataFrames alike."""
    import greeksmargin as gm

    df = _frame().assign(notes="hedge")
    path = _write(tmp_path, df)
    for src in (path, df):
        with pytest.raises(InputError) as e:
            if errors == "collect":
                load_positions_collect(src, valuation_time=VT)
            else:
                load_positions(src, valuation_time=VT)
        assert "unknown column 'notes'" in str(e.value) and e.value.column == "notes"
        with pytest.raises(InputError, match="unknown column 'notes'"):
            gm.load_book(src, _market(), errors=errors)
    load_positions(_frame(), valuation_time=VT)  # the same table without it loads
