"""Malformed positions through load_book / compute_margin / solvency: a clear error naming where, never a
computed or healthy account with a non-finite figure (issue 16)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin.book.book import load_book
from greeksmargin.engine.margin import compute_margin
from greeksmargin.engine.postcondition import enforce
from greeksmargin.errors import InputError
from greeksmargin.solvency.assess import assess_solvency

EX = gm.datasets.load_example_book()
DATA = Path(gm.datasets.__file__).parent / "data"
CSV = DATA / "example_positions.csv"


def _raw() -> pd.DataFrame:
    return pd.read_csv(CSV)


def _account_row(df: pd.DataFrame, account: str) -> int:
    return int(np.flatnonzero(df["account"].to_numpy() == account)[0])


@pytest.mark.parametrize("value, rule", [(np.nan, "missing (NaN)"), (np.inf, "finite"), (-np.inf, "finite"),
                                         (1e308, "out of range"), (1e13, "out of range")])
def test_bad_quantity_api_dataframe(value: float, rule: str) -> None:
    df = EX.positions.copy()  # the normalised look-alike: no shortcut, validated all the same
    acc = "ETH-STRADDLE"
    r = df.index[_account_row(df, acc)]
    df.loc[r, "quantity"] = value
    with pytest.raises(InputError) as ei:
        load_book(df, EX.market)
    assert ei.value.row == r and ei.value.column == "quantity" and rule in str(ei.value)
    with pytest.raises(InputError):
        compute_margin(df, EX.market, "greeks-default")
    res = compute_margin(df, EX.market, "greeks-default", errors="collect")
    a = res.accounts.set_index("account")
    assert a.loc[acc, "status"] == "error" and rule in a.loc[acc, "reason"] and f"row {r}" in a.loc[acc, "reason"]
    ok = a[a["status"] == "computed"]
    assert len(ok) == len(a) - 1
    assert np.isfinite(ok[["im", "mm"]].to_numpy()).all()


@pytest.mark.parametrize("value", [True, np.bool_(False), 1 + 2j, complex(3, 0), "abc", "1e400"])
def test_a_cell_that_is_not_a_real_number_is_refused(value: object) -> None:
    """A bool or complex cell in an object column is not silently read as 1 / its real part."""
    df = EX.positions.copy()
    df["quantity"] = df["quantity"].astype(object)
    acc = "ETH-STRADDLE"
    r = df.index[_account_row(df, acc)]
    df.loc[r, "quantity"] = value
    with pytest.raises(InputError) as ei:
        load_book(df, EX.market)
    assert ei.value.row == r and ei.value.column == "quantity"
    a = compute_margin(df, EX.market, "greeks-default", errors="collect").accounts.set_index("account")
    assert a.loc[acc, "status"] == "error" and (a["status"] == "computed").sum() == len(a) - 1


def test_magnitude_bound_is_cited() -> None:
    df = EX.positions.copy()
    df.loc[df.index[0], "quantity"] = 1e308
    with pytest.raises(InputError, match=r"allowed \|quantity\| <= 1e\+12"):
        load_book(df, EX.market)


def _write(tmp: Path, text: str, name: str = "pos.csv", newline: str = "\n") -> Path:
    p = tmp / name
    p.write_bytes(text.replace("\n", newline).encode())
    return p


def test_short_csv_row_is_an_error_naming_row_and_column(tmp_path: Path) -> None:
    lines = CSV.read_text().splitlines()
    k = 5  # data row 4 (0-based), file line 6
    lines[k] = ",".join(lines[k].split(",")[:8])  # no multiplier, settlement, premium_currency
    p = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as ei:  # a broken row alignment is never completed with defaults
        load_book(p, EX.market)
    e = ei.value
    assert e.file == str(p) and e.row == k - 1 and e.column == "multiplier"
    assert "too few fields" in str(e) and f"CSV line {k + 1}" in str(e)
    # errors="collect": the row's account is set aside with that reason (tests/test_csv_field_rows.py)
    assert load_book(p, EX.market, errors="collect").bad_accounts == {lines[k].split(",")[0]: str(e)}


def test_long_csv_row_is_an_error(tmp_path: Path) -> None:
    lines = CSV.read_text().splitlines()
    lines[3] += ",1"
    p = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(InputError) as ei:
        compute_margin(p, EX.market, "greeks-default")
    assert ei.value.row == 2 and ei.value.column == "premium_currency" and "too many fields" in str(ei.value)
    a = compute_margin(p, EX.market, "greeks-default", errors="collect").accounts.set_index("account")
    assert a.loc[lines[3].split(",")[0], "reason"] == str(ei.value)
    assert (a.drop(lines[3].split(",")[0])["status"] == "computed").all()


def test_cr_only_line_endings_read_as_lf(tmp_path: Path) -> None:
    text = CSV.read_text()
    cr = _write(tmp_path, text, "cr.csv", newline="\r")
    assert b"\n" not in cr.read_bytes()
    a = load_book(cr, EX.market).positions
    b = load_book(CSV, EX.market).positions
    pd.testing.assert_frame_equal(a, b)
    crlf = _write(tmp_path, text, "crlf.csv", newline="\r\n")
    pd.testing.assert_frame_equal(load_book(crlf, EX.market).positions, b)


@pytest.mark.parametrize("expiry, ok", [("2262-04-11T23:47:16Z", True), ("2262-04-12T00:00:00Z", False),
                                        ("1677-09-21T00:12:44Z", True), ("1677-09-21T00:00:00Z", False),
                                        ("9999-12-31", False), ("not a date", False)])
def test_boundary_dates(tmp_path: Path, expiry: str, ok: bool) -> None:
    df = _raw()
    i = _account_row(df, "ETH-STRADDLE")
    df.loc[i, "expiry"] = expiry
    p = tmp_path / "d.csv"
    df.to_csv(p, index=False)
    if ok:
        book = load_book(p, EX.market)
        assert book.positions.loc[i, "expiry"] == pd.Timestamp(expiry)
        return
    with pytest.raises(InputError) as ei:
        load_book(p, EX.market)
    e = ei.value
    assert e.row == i and e.column == "expiry" and e.file == str(p)
    want = "not a date-time" if expiry == "not a date" else "out of range (allowed 1677-09-21 .. 2262-04-11)"
    assert want in str(e)
    book = load_book(p, EX.market, errors="collect")
    assert list(book.bad_accounts) == ["ETH-STRADDLE"]
    pr = book.problems.iloc[0]
    assert (pr["file"], pr["row"], pr["column"], pr["rule"]) == (str(p), i, "expiry", "date")


def test_collect_every_bad_row_in_one_pass_no_cap() -> None:
    base = EX.positions[EX.positions["account"] == "BTC-COVCALL"].reset_index(drop=True)
    n = 1500  # more than the old cap of 1000 bad accounts
    frames = []
    for k in range(2 * n):
        f = base.copy()
        f["account"] = f"A{k:05d}"
        if k % 2 == 0:
            f.loc[0, "quantity"] = np.nan if k % 4 == 0 else np.inf
        frames.append(f)
    df = pd.concat(frames, ignore_index=True)
    book = load_book(df, EX.market, errors="collect")
    assert len(book.bad_accounts) == n
    assert list(book.problems.columns) == ["account", "file", "row", "column", "rule", "message"]
    assert set(book.problems["column"]) == {"quantity"}
    assert set(book.problems["rule"]) == {"required", "finite"}
    assert book.positions["account"].nunique() == n  # the rest, whole accounts only
    assert len(book.accounts) == 2 * n


def test_market_faults_collected_with_their_rows() -> None:
    df = EX.positions.copy()
    i = _account_row(df, "ETH-STRADDLE")
    df.loc[df.index[i], "underlying"] = "DOGE"
    book = load_book(df, EX.market, errors="collect")
    pr = book.problems.iloc[0]
    assert (pr["account"], pr["row"], pr["column"], pr["rule"]) == ("ETH-STRADDLE", df.index[i], "underlying",
                                                                     "in_market")
    assert len(book.set_aside) == (df["account"] == "ETH-STRADDLE").sum()  # well-formed rows, kept aside
    res = compute_margin(book, model="greeks-default")
    row = res.accounts.set_index("account").loc["ETH-STRADDLE"]
    assert row["status"] == "error" and "DOGE" in row["reason"] and np.isnan(row["im"])


def test_postcondition_one_place() -> None:
    acc = pd.DataFrame({"account": list("abcde"), "im": [1.0, np.nan, 1.0, 1.0, np.inf],
                        "mm": [0.8, 0.5, 1.5, -0.1, 1.0], "error": [None] * 5, "status": "computed",
                        "reason": None})
    enforce(acc)
    assert list(acc["status"]) == ["computed"] + ["not_computed"] * 4
    assert acc["reason"].iloc[1:].str.startswith("post-condition").all()
    assert np.isnan(acc["im"].iloc[1:]).all() and np.isnan(acc["mm"].iloc[1:]).all()


def test_solvency_never_healthy_with_non_finite_margin() -> None:
    def nan_margin(positions: pd.DataFrame, market: object) -> pd.DataFrame:
        names = pd.unique(positions["account"])
        im = np.where(names == "BTC-COVCALL", np.nan, 1.0)
        return pd.DataFrame({"im": im, "mm": 0.5 * im, "currency": "USD"}, index=pd.Index(names, name="account"))

    res = assess_solvency(EX.positions, EX.market, EX.collateral, margin_fn=nan_margin)
    row = res.accounts.set_index("account").loc["BTC-COVCALL"]
    assert row["status"] == "not_computed" and row["reason"].startswith("post-condition")
    assert (res.accounts["status"] != "healthy").sum() >= 1


def test_solvency_table_lists_not_computed_accounts() -> None:
    res = assess_solvency(load_book(EX.positions, EX.market, EX.collateral), model="tims-pm")
    st = res.accounts.set_index("account")
    margin = compute_margin(EX.positions, EX.market, "tims-pm").accounts.set_index("account")
    nc = margin.index[margin["status"] == "not_computed"]
    assert len(nc) and (st.loc[nc, "status"].isin(["not_computed", "bankrupt"])).all()
    assert (st.loc[nc, "reason"] != "").all()


def test_batch_folder_exits_3_when_an_account_failed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from greeksmargin.cli import main
    from greeksmargin.engine.batch import write_dataset

    df = _raw()
    df.loc[_account_row(df, "ETH-STRADDLE"), "quantity"] = np.nan
    write_dataset(df, tmp_path / "ds", accounts_per_file=3)
    market = str(DATA / "example_market.json")
    assert main(["margin", str(tmp_path / "ds"), market, "--scheduler", "none", "--keep-going",
                 "--format", "csv"]) == 3
    cap = capsys.readouterr()
    out = pd.read_csv(io.StringIO(cap.out))
    assert out.loc[out["account"] == "ETH-STRADDLE", "status"].item() == "error"
    assert (out.loc[out["account"] != "ETH-STRADDLE", "status"] == "computed").all()
    assert "ETH-STRADDLE" in cap.err and "quantity" in cap.err
    write_dataset(_raw(), tmp_path / "ok", accounts_per_file=3)
    assert main(["margin", str(tmp_path / "ok"), market, "--scheduler", "none", "--keep-going",
                 "--format", "csv"]) == 0
