"""deribit-chain validation suite: the shipped chain, the format checks, folders and bad rows."""

from pathlib import Path

import pytest

from greeksmargin import io
from greeksmargin.cli import main
from greeksmargin.errors import CaseFormatError
from greeksmargin.validation import run_suite
from greeksmargin.validation.deribit_chain import NOT_CHECKED, run

CHAIN = Path(__file__).resolve().parents[1] / "validation" / "cases" / "deribit_chain" / "btc_2020-05-14.csv"


@pytest.fixture(scope="module")
def shipped():
    return run(CHAIN)


def test_every_checked_instrument_passes(shipped):
    table = io.read_table(CHAIN)
    assert len(shipped.cases) == len(table)
    checked = [c for c in shipped.cases if c.detail["checked"]]
    assert len(checked) == 228
    failed = [(c.id, c.detail["status"]) for c in checked if not c.passed]
    assert not failed
    assert shipped.n_failed == 0
    assert {c.id for c in shipped.cases} == set(table["instrument_name"])


def test_errors_are_within_published_tolerances(shipped):
    checked = [c for c in shipped.cases if c.detail["checked"]]
    assert max(c.detail["errors"]["mark_price"] for c in checked) <= 3e-3
    assert max(c.detail["errors"]["delta"] for c in checked) <= 2e-4
    assert max(c.detail["errors"]["gamma"] for c in checked) <= 1e-5
    assert max(c.detail["errors"]["vega"] for c in checked) <= 1e-3
    assert max(c.detail["errors"]["theta"] for c in checked) <= 1e-3


def test_unchecked_instruments_say_so(shipped):
    unchecked = [c for c in shipped.cases if not c.detail["checked"]]
    assert len(unchecked) == len(shipped.cases) - 228
    # not checked is not passed: every field ok = None with the reason, the case counted apart
    assert all(not c.passed and c.status == "not_checked" and c.detail["status"] == NOT_CHECKED for c in unchecked)
    assert all(f["ok"] is None and "checked range" in f["reason"] for c in unchecked for f in c.fields.values())
    assert shipped.n_not_checked == len(unchecked) and shipped.n_passed == 228
    assert all(c.detail["T_days"] <= 2 or c.expected["mark_price"] < 0.0005 for c in unchecked)
    case = next(c for c in shipped.cases if c.id == "BTC-22MAY20-9250-P")
    assert set(case.computed) == set(case.expected) == {"mark_price", "delta", "gamma", "vega", "theta"}
    assert case.to_dict()["passed"] is True


def test_wrong_mark_fails(tmp_path):
    table = io.read_table(CHAIN).head(3).copy()
    table.loc[0, "mark_price"] *= 1.01  # 1% off
    table.loc[0, "timestamp"] = table.loc[0, "expiration_timestamp"] - 10 * 86400_000  # checked
    io.write_table(table, tmp_path / "chain.csv")
    res = run(tmp_path / "chain.csv")
    assert not res.cases[0].passed
    assert "mark_price" in res.cases[0].detail["status"]


def test_missing_column_names_file_and_column(tmp_path):
    table = io.read_table(CHAIN).drop(columns=["mark_iv"])
    io.write_table(table, tmp_path / "bad.csv")
    with pytest.raises(CaseFormatError, match=r"bad\.csv.*'mark_iv'"):
        run(tmp_path / "bad.csv")


def test_bad_row_fails_alone(tmp_path):
    table = io.read_table(CHAIN).head(4).copy()
    table.loc[1, "mark_iv"] = -5.0
    table.loc[2, "option_type"] = "straddle"
    table.loc[3, "timestamp"] = table.loc[3, "expiration_timestamp"] + 1000  # stamped after expiry
    io.write_table(table, tmp_path / "chain.csv")
    res = run(tmp_path / "chain.csv")
    assert [c.status for c in res.cases] == ["passed", "failed", "failed", "not_checked"]
    assert res.cases[3].detail["status"].startswith("not checked (expired")
    assert res.cases[1].error.startswith("vol must be")
    assert "straddle" in res.cases[2].error


def test_folder_runs_every_csv(tmp_path):
    table = io.read_table(CHAIN).head(5)
    io.write_table(table, tmp_path / "a.csv")
    io.write_table(table, tmp_path / "b.csv")
    res = run_suite("deribit-chain", tmp_path)
    assert len(res.cases) == 10
    assert res.cases[0].id.startswith("a:") and res.cases[5].id.startswith("b:")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CaseFormatError, match="no deribit_chain CSV"):
        run(empty)


def test_cli(capsys, tmp_path):
    assert (
        main(["validate", "deribit-chain", "--cases", str(CHAIN), "--quiet", "--json", str(tmp_path / "o.json")]) == 0
    )
    assert "deribit-chain: 228 passed, 0 failed, 82 not checked" in capsys.readouterr().out
    assert io.read_json(tmp_path / "o.json")["summary"] == {"passed": 228, "failed": 0, "not_checked": 82}
