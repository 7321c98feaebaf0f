import io as _io
import json
from contextlib import redirect_stdout

import pandas as pd
import pytest

from greeksmargin.cli import main
from greeksmargin.datasets import example_paths, load_example_book
from greeksmargin.risk.greeks import price_positions

PATHS = example_paths()
ARGS = ["greeks", str(PATHS["positions"]), str(PATHS["market"])]


def _run(argv):
    buf = _io.StringIO()
    with redirect_stdout(buf):
        code = main(argv)
    return code, buf.getvalue()


def _book_delta(account, underlying):
    book = load_example_book()
    p = price_positions(book.positions, book.market)
    return p.loc[(p["account"] == account) & (p["underlying"] == underlying), "delta_cash"].sum()


def test_greeks_csv(tmp_path):
    out = tmp_path / "g.csv"
    code, _ = _run([*ARGS, "--format", "csv", "--out", str(out)])
    assert code == 0
    df = pd.read_csv(out)
    assert list(df.columns[:3]) == ["account", "underlying", "n_positions"]
    assert df["n_positions"].sum() == len(load_example_book().positions)
    row = df[(df["account"] == "SPX-DESK") & (df["underlying"] == "SPX")].iloc[0]
    assert row["delta_cash"] == pytest.approx(_book_delta("SPX-DESK", "SPX"), rel=1e-9)


def test_greeks_json_by_expiry_bucket():
    code, text = _run([*ARGS, "--format", "json", "--by", "underlying,expiry_bucket"])
    assert code == 0
    records = json.loads(text)
    assert {r["underlying"] for r in records} == {"BTC", "ETH", "SPX"}
    assert {"expiry_bucket", "delta_1pct", "vega_1volpt", "coin_delta_BTC"} <= set(records[0])
    assert any(r["expiry_bucket"] == "none" for r in records)
    assert any(r["coin_delta_BTC"] is None for r in records)  # SPX rows have no BTC coin delta


def test_greeks_table_is_aligned():
    code, text = _run(ARGS)
    lines = text.splitlines()
    assert code == 0 and lines[0].startswith("account")
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert "SPX-NAKEDPUT" in text
    # right-aligned numbers end in the same column
    assert len({len(line) for line in lines[2:5]}) <= 2


def test_greeks_bad_file_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pd.read_csv(PATHS["positions"]).drop(columns="kind").to_csv(bad, index=False)
    assert main(["greeks", str(bad), str(PATHS["market"])]) == 2
    assert f"file {bad}, column 'kind': missing column" in capsys.readouterr().err


def test_demo_prints_account_greeks():
    from greeksmargin.cli import demo

    code, text = _run(["demo"])
    assert code == 0
    assert "Example book: 103 positions in 7 accounts" in text
    assert "BTC-COVCALL" in text and "delta_cash" in text
    assert [s.__name__ for s in demo.STEPS[:2]] == ["step_load", "step_greeks"]
