"""CSV rows with too few or too many fields: errors="collect" sets their account aside, errors="raise" refuses the
file, and a row whose account cannot be read is a file error in both modes (issue 16)."""

from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin import io
from greeksmargin.book.book import load_book
from greeksmargin.book.positions import load_positions, load_positions_collect
from greeksmargin.cli import main
from greeksmargin.engine.margin import compute_margin
from greeksmargin.errors import InputError

EX = gm.datasets.load_example_book()
DATA = Path(gm.datasets.__file__).parent / "data"
MARKET = DATA / "example_market.json"
LINES = (DATA / "example_positions.csv").read_text().splitlines()
HEADER = LINES[0]
FOUR = ("BTC-COVCALL", "ETH-STRADDLE", "SPX-DESK", "SPX-NAKEDPUT")
SHORT, LONG = "ETH-STRADDLE", "SPX-DESK"  # the accounts of the broken rows


def _four_account_rows() -> list[str]:
    return [ln for ln in LINES[1:] if ln.split(",")[0] in FOUR]


def _broken(tmp: Path) -> tuple[Path, int, int]:
    """The four accounts with one short row (ETH-STRADDLE) and one long row (SPX-DESK); their 0-based rows."""
    rows = _four_account_rows()
    s = next(i for i, r in enumerate(rows) if r.startswith(SHORT)) + 2  # not the account's first row
    lg = next(i for i, r in enumerate(rows) if r.startswith(LONG)) + 1
    rows[s] = ",".join(rows[s].split(",")[:8])  # no multiplier, settlement, premium_currency
    rows[lg] += ",extra"
    p = tmp / "pos.csv"
    p.write_text("\n".join([HEADER, *rows]) + "\n")
    return p, s, lg


def _clean_without(tmp: Path, drop: tuple[str, ...]) -> Path:
    p = tmp / "clean.csv"
    p.write_text("\n".join([HEADER, *[r for r in _four_account_rows() if r.split(",")[0] not in drop]]) + "\n")
    return p


def test_collect_sets_the_two_accounts_aside_and_computes_the_others(tmp_path: Path) -> None:
    p, s, lg = _broken(tmp_path)
    res = compute_margin(p, EX.market, "greeks-default", errors="collect")
    a = res.accounts.set_index("account")
    assert sorted(a.index) == sorted(FOUR)
    assert a.loc[SHORT, "status"] == "error" and a.loc[LONG, "status"] == "error"
    short, long_ = a.loc[SHORT, "reason"], a.loc[LONG, "reason"]
    assert f"file {p}" in short and f"row {s}" in short and f"CSV line {s + 2}" in short
    assert "too few fields: 8 for the 11 columns" in short and "'multiplier'" in short
    assert f"file {p}" in long_ and f"row {lg}" in long_ and f"CSV line {lg + 2}" in long_
    assert "too many fields: 12 for the 11 columns" in long_
    assert np.isnan(a.loc[[SHORT, LONG], "im"].astype(float)).all()
    # the other two: exactly what a clean file without the two accounts gives
    clean = compute_margin(_clean_without(tmp_path, (SHORT, LONG)), EX.market, "greeks-default").accounts
    clean = clean.set_index("account")
    ok = [x for x in FOUR if x not in (SHORT, LONG)]
    assert (a.loc[ok, "status"] == "computed").all() and (a.loc[ok, "im"] > 0).all()
    for col in ("im", "mm", "isolated_im"):
        np.testing.assert_array_equal(a.loc[ok, col].to_numpy(float), clean.loc[ok, col].to_numpy(float))


def test_collect_through_load_book_and_load_positions_collect(tmp_path: Path) -> None:
    p, s, lg = _broken(tmp_path)
    book = load_book(p, EX.market, errors="collect")
    assert set(book.bad_accounts) == {SHORT, LONG}
    assert set(book.positions["account"]) == set(FOUR) - {SHORT, LONG}
    probs = book.problems.set_index("account")
    assert probs.loc[SHORT, "rule"] == "field_count" and probs.loc[SHORT, "row"] == s
    assert probs.loc[LONG, "column"] == "premium_currency" and probs.loc[LONG, "row"] == lg
    # rows keep the file's numbering: the first SPX-NAKEDPUT row is row k of the file, whatever was set aside
    first = next(i for i, r in enumerate(_four_account_rows()) if r.startswith("SPX-NAKEDPUT"))
    assert book.positions.index[book.positions["account"] == "SPX-NAKEDPUT"][0] == first
    pos, bad = load_positions_collect(p)
    assert set(bad) == {SHORT, LONG} and set(pos["account"]) == set(FOUR) - {SHORT, LONG}


def test_a_later_row_fault_still_names_its_file_row(tmp_path: Path) -> None:
    rows = _four_account_rows()
    rows[0] = ",".join(rows[0].split(",")[:5])  # short row of BTC-COVCALL, row 0
    k = next(i for i, r in enumerate(rows) if r.startswith("SPX-NAKEDPUT"))
    f = rows[k].split(",")
    f[7] = "abc"  # quantity
    rows[k] = ",".join(f)
    p = tmp_path / "pos.csv"
    p.write_text("\n".join([HEADER, *rows]) + "\n")
    bad = load_book(p, EX.market, errors="collect").bad_accounts
    assert f"row {k}," in bad["SPX-NAKEDPUT"] and f"CSV line {k + 2})" in bad["SPX-NAKEDPUT"]
    assert "row 0," in bad["BTC-COVCALL"] and "too few fields: 5" in bad["BTC-COVCALL"]


def test_raise_mode_is_unchanged(tmp_path: Path) -> None:
    p, s, lg = _broken(tmp_path)
    for call in (lambda: load_book(p, EX.market), lambda: load_positions(p),
                 lambda: compute_margin(p, EX.market, "greeks-default")):
        with pytest.raises(InputError) as ei:
            call()
        e = ei.value
        assert (e.file, e.row, e.column) == (str(p), s, "multiplier")  # the first broken row
        assert str(e) == (f"file {p}, row {s}, column 'multiplier': too few fields: 8 for the 11 columns of the "
                          f"header (no value for 'multiplier' and after; a row is never completed with defaults) "
                          f"(CSV line {s + 2})")


def test_a_row_cut_before_the_account_column_is_a_file_error(tmp_path: Path) -> None:
    # account as third column: a row of two fields has no account to set aside
    cols = HEADER.split(",")
    order = [1, 2, 0, *range(3, len(cols))]
    rows = [",".join(r.split(",")[j] for j in order) for r in _four_account_rows()]
    rows[3] = ",".join(rows[3].split(",")[:2])
    p = tmp_path / "pos.csv"
    p.write_text("\n".join([",".join(cols[j] for j in order), *rows]) + "\n")
    for errors in ("collect", "raise"):
        with pytest.raises(InputError) as ei:
            load_book(p, EX.market, errors=errors)  # type: ignore[arg-type]
        assert ei.value.row == 3 and ei.value.column == "account"
        assert "too few fields: 2 for the 11 columns" in str(ei.value) and "CSV line 5" in str(ei.value)
    # a blank account field cannot be attributed either
    rows = _four_account_rows()
    rows[2] = "," + ",".join(rows[2].split(",")[1:5])
    p.write_text("\n".join([HEADER, *rows]) + "\n")
    with pytest.raises(InputError, match="row 2, column 'strike': too few fields: 5"):
        load_book(p, EX.market, errors="collect")


def test_every_row_broken_is_a_file_error(tmp_path: Path) -> None:
    p = tmp_path / "pos.csv"
    p.write_text("\n".join([HEADER, *[r + ",x" for r in _four_account_rows()[:3]]]) + "\n")
    with pytest.raises(InputError, match="row 0, column 'premium_currency': too many fields"):
        load_book(p, EX.market, errors="collect")


def test_an_account_the_row_may_belong_to_is_set_aside_too(tmp_path: Path) -> None:
    # instrument first: an unquoted comma in it pushes the account one field right; the field read as the
    # account is not an account, the next one is SPX-DESK, which must not be computed without this row
    cols = HEADER.split(",")
    order = [1, 0, *range(2, len(cols))]
    rows = [",".join(r.split(",")[j] for j in order) for r in _four_account_rows()]
    k = next(i for i, r in enumerate(rows) if r.split(",")[1] == "SPX-DESK")
    f = rows[k].split(",")
    rows[k] = ",".join([f[0], "X", *f[1:]])
    p = tmp_path / "pos.csv"
    p.write_text("\n".join([",".join(cols[j] for j in order), *rows]) + "\n")
    bad = load_book(p, EX.market, errors="collect").bad_accounts
    assert set(bad) == {"X", "SPX-DESK"}
    assert "may be a row of 'SPX-DESK'" in bad["SPX-DESK"] and f"row {k}," in bad["SPX-DESK"]


def test_split_keeps_quoted_line_breaks_and_the_row_numbers() -> None:
    text = 'a,b,c\n1,"x\ny",3\n\n4,5\n6,7,8,9\n10,11,12\n'
    clean, rows, faults = io.split_csv_field_faults(text, "t.csv")
    assert rows == [0, 3] and [(f.row, f.line, f.found, f.expected) for f in faults] == [(1, 5, 2, 3), (2, 6, 4, 3)]
    df = pd.read_csv(_io.StringIO(clean))
    assert df["b"].tolist() == ["x\ny", "11"] and df["c"].tolist() == [3, 12]
    assert faults[0].fields == ("4", "5") and faults[0].error.column == "c"
    assert io.split_csv_field_faults("a,b\n1,2\n", "t.csv") == ("a,b\n1,2\n", [0], [])


def test_cli_keep_going_lists_the_two_accounts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p, s, lg = _broken(tmp_path)
    assert main(["margin", str(p), str(MARKET), "--format", "csv", "--keep-going"]) == 3
    cap = capsys.readouterr()
    out = pd.read_csv(_io.StringIO(cap.out)).set_index("account")
    assert set(out.index[out["status"] == "error"]) == {SHORT, LONG}
    assert (out.loc[[x for x in FOUR if x not in (SHORT, LONG)], "im"] > 0).all()
    assert f"CSV line {s + 2}" in cap.err and f"CSV line {lg + 2}" in cap.err
    assert main(["margin", str(p), str(MARKET), "--format", "csv"]) == 2
    assert f"row {s}, column 'multiplier': too few fields" in capsys.readouterr().err
