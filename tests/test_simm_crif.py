"""SIMM inputs and interfaces: CRIF reader and its errors, FX pair order, model files lacking a risk class, the
``greeksmargin simm`` command, SIMM properties (non-negative, homogeneous, order independent), 1-day vs 10-day."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.cli import main
from greeksmargin.engine.params_files import load_simm_params
from greeksmargin.errors import InputError, ModelError
from greeksmargin.methodologies.simm import simm_by_portfolio, simm_margin, tree_table
from greeksmargin.risk.crif import fx_pair, normalize_crif, read_crif

P25 = load_simm_params("2.5")


def r(rt, q, amount, bucket="", l1="", l2="", pc="RatesFX", **extra):
    return dict(ProductClass=pc, RiskType=rt, Qualifier=q, Bucket=bucket, Label1=l1, Label2=l2, AmountUSD=amount,
                **extra)


# ------------------------------------------------------------------------------------------------ FX pair order
def test_fx_vol_pair_order_is_one_risk_factor():
    a = simm_margin([r("Risk_FXVol", "USDGBP", 24e6, l1="3m")], P25).total
    b = simm_margin([r("Risk_FXVol", "GBPUSD", 24e6, l1="3m")], P25).total
    assert a == pytest.approx(b, rel=1e-15)
    # opposite vegas on the two spellings of one pair net to zero
    assert simm_margin([r("Risk_FXVol", "GBPUSD", 1e8, l1="1y"), r("Risk_FXVol", "USD/GBP", -1e8, l1="1y")],
                       P25).total == 0.0
    assert fx_pair("usdgbp") == "GBPUSD" and fx_pair("EUR") == ""


def test_fx_qualifiers_are_checked():
    with pytest.raises(InputError, match="Qualifier.*one currency"):
        simm_margin([r("Risk_FX", "EURUSD", 1e6)], P25)
    with pytest.raises(InputError, match="row 1.*Qualifier.*currency pair"):
        simm_margin([r("Risk_FX", "EUR", 1e6), r("Risk_FXVol", "EUR", 1e6, l1="1y")], P25)


# ------------------------------------------------------------------------------------------------ CRIF reader
def test_crif_file_tab_separated_aliases_and_fx_conversion(tmp_path):
    f = tmp_path / "crif.txt"
    f.write_text("tradeid\tportfolio_id\tproductclass\triskType\tQUALIFIER\tbucket\tlabel1\tlabel2\tamount\t"
                 "amountcurrency\tamountusd\n"
                 "T1\tP1\tratesfx\trisk_irCurve\tUSD\t1\t2w\tOIS\t4000000\tUSD\t4000000\n"
                 "T2\tP2\tEquity\tRisk_Equity\tISIN:X\t1\t\t\t5000000\tEUR\t\n")
    crif = read_crif(f, {"EUR": 1.2})
    assert list(crif["RiskType"]) == ["Risk_IRCurve", "Risk_Equity"]
    assert list(crif["ProductClass"]) == ["RatesFX", "Equity"]
    assert crif["AmountUSD"].tolist() == [4e6, 6e6]
    assert crif["PortfolioID"].tolist() == ["P1", "P2"]
    res = simm_by_portfolio(crif, P25, by="PortfolioID")
    assert res["P1"].total == pytest.approx(115 * 4e6) and res["P2"].total == pytest.approx(26 * 6e6)


@pytest.mark.parametrize(("text", "match"), [
    ("ProductClass,RiskType,Qualifier,AmountUSD\nRatesFX,Risk_FX,EUR,abc\n", r"row 0, column 'AmountUSD'.*finite"),
    ("ProductClass,RiskType,Qualifier,AmountUSD\nRatesFX,Risk_FX,EUR,1\nRatesFX,Risk_Fx2,EUR,1\n",
     r"row 1, column 'RiskType'.*unknown risk type 'Risk_Fx2'"),
    ("ProductClass,RiskType,Qualifier,AmountUSD\nRates,Risk_FX,EUR,1\n", r"row 0, column 'ProductClass'"),
    ("ProductClass,RiskType,AmountUSD\nRatesFX,Risk_FX,1\n", r"column 'Qualifier'.*missing"),
    ("ProductClass,RiskType,Qualifier,Amount,AmountCurrency\nRatesFX,Risk_FX,EUR,1,JPY\n",
     r"row 0, column 'AmountCurrency'.*no FX rate.*JPY"),
    ("ProductClass,RiskType,Qualifier,AmountUSD,amount_usd\nRatesFX,Risk_FX,EUR,1,1\n", r"duplicate CRIF column"),
    ("ProductClass,RiskType,Qualifier,AmountUSD\nRatesFX,Risk_FX,EUR,inf\n", r"row 0.*AmountUSD.*finite"),
])
def test_bad_crif_rows_name_file_row_and_column(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError, match=match) as info:
        read_crif(f, {"EUR": 1.1})
    assert str(f) in str(info.value)


def test_engine_errors_name_the_risk_factor():
    with pytest.raises(InputError, match="Label1.*unknown Risk_IRCurve tenor '7q'"):
        simm_margin([r("Risk_IRCurve", "USD", 1e6, "1", "7q", "OIS")], P25)
    with pytest.raises(InputError, match="Bucket.*unknown Commodity bucket '99'"):
        simm_margin([r("Risk_Commodity", "Gold", 1e6, "99", pc="Commodity")], P25)
    with pytest.raises(InputError, match="horizon"):
        simm_margin([r("Risk_FX", "EUR", 1e6)], P25, horizon="5d")


def test_model_file_without_a_risk_class_is_a_clear_error():
    raw = {k: v for k, v in P25.raw.items() if k != "interest_rate"}
    p = load_simm_params(raw)
    assert simm_margin([r("Risk_FX", "EUR", 1e6)], p).total == pytest.approx(7.4e6)
    with pytest.raises(ModelError, match=r"<dict>.*interest_rate.*InterestRate"):
        simm_margin([r("Risk_IRCurve", "USD", 1e6, "1", "2w", "OIS")], p)
    broken = dict(P25.raw, commodity={k: v for k, v in P25.raw["commodity"].items() if k != "delta"})
    with pytest.raises(ModelError, match="commodity.delta"):
        load_simm_params(broken)


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_simm_by_portfolio_json(tmp_path, capsys):
    rows = [r("Risk_IRCurve", "USD", 4e6, "1", "2w", "OIS", PortfolioID="A"),
            r("Risk_Equity", "ISIN:X", 6e6, "1", pc="Equity", PortfolioID="A"),
            r("Risk_FXVol", "USDGBP", 24e6, l1="3m", PortfolioID="B")]
    f = tmp_path / "crif.csv"
    pd.DataFrame(rows).to_csv(f, index=False)
    out = tmp_path / "simm.json"
    assert main(["simm", str(f), "--by", "portfolio", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "InterestRate" in printed and "Curvature" in printed
    tree = json.loads(out.read_text())
    assert set(tree) == {"A", "B"}
    assert tree["A"]["total"] == pytest.approx(460e6 + 156e6)
    assert tree["B"]["total"] == pytest.approx(293_672_895, abs=1.0)  # ISDA C336
    assert tree["A"]["product_classes"]["RatesFX"]["risk_classes"]["InterestRate"]["Delta"] == pytest.approx(460e6)
    assert main(["simm", str(f), "--horizon", "1d", "--format", "csv"]) == 0
    assert "amount_usd" in capsys.readouterr().out


def test_cli_simm_errors_exit_2(tmp_path, capsys):
    f = tmp_path / "crif.csv"
    f.write_text("ProductClass,RiskType,Qualifier,Amount,AmountCurrency\nRatesFX,Risk_FX,EUR,1,EUR\n")
    assert main(["simm", str(f)]) == 2
    assert "no FX rate" in capsys.readouterr().err
    assert main(["simm", str(f), "--fx-rate", "EUR=1.1"]) == 0
    assert main(["simm", str(f), "--by", "portfolio", "--fx-rate", "EUR=1.1"]) == 2
    assert "PortfolioID" in capsys.readouterr().err


def test_tree_table_levels_add_up():
    rows = [r("Risk_IRCurve", "USD", 4e6, "1", "2w", "OIS"), r("Risk_FX", "EUR", 5e7),
            r("Risk_Equity", "ISIN:X", 6e6, "1", pc="Equity"),
            dict(RiskType="Param_AddOnFixedAmount", Qualifier="", AmountUSD=1e6, ProductClass="")]
    res = simm_margin(rows, P25)
    t = tree_table({"All": res})
    assert t.loc[t["level"] == 0, "amount_usd"].iloc[0] == pytest.approx(res.total)
    assert t.loc[t["level"] == 1, "amount_usd"].sum() == pytest.approx(res.total)
    assert res.addon == pytest.approx(1e6)


# ------------------------------------------------------------------------------------------------ properties
def _universe():
    return [
        ("Risk_IRCurve", "USD", "1", "5y", "OIS", "RatesFX"), ("Risk_IRCurve", "USD", "1", "10y", "Libor3m", "RatesFX"),
        ("Risk_IRCurve", "JPY", "2", "2y", "OIS", "RatesFX"), ("Risk_Inflation", "USD", "", "", "", "RatesFX"),
        ("Risk_XCcyBasis", "JPY", "", "", "", "RatesFX"), ("Risk_IRVol", "EUR", "", "1y", "", "RatesFX"),
        ("Risk_InflationVol", "EUR", "", "5y", "", "RatesFX"), ("Risk_FX", "EUR", "", "", "", "RatesFX"),
        ("Risk_FX", "BRL", "", "", "", "RatesFX"), ("Risk_FXVol", "EURUSD", "", "6m", "", "RatesFX"),
        ("Risk_CreditQ", "ISIN:A", "3", "5y", "USD", "Credit"),
        ("Risk_CreditQ", "ISIN:B", "Residual", "1y", "", "Credit"),
        ("Risk_BaseCorr", "CDX IG", "", "", "", "Credit"), ("Risk_CreditVol", "ISIN:A", "3", "1y", "", "Credit"),
        ("Risk_CreditNonQ", "NQ1", "1", "2y", "CMBX", "Credit"), ("Risk_CreditVolNonQ", "NQ1", "1", "3y", "", "Credit"),
        ("Risk_Equity", "EQ1", "5", "", "", "Equity"), ("Risk_Equity", "EQ2", "Residual", "", "", "Equity"),
        ("Risk_EquityVol", "EQ1", "5", "3m", "", "Equity"), ("Risk_Commodity", "CM1", "2", "", "", "Commodity"),
        ("Risk_CommodityVol", "CM1", "2", "1y", "", "Commodity"), ("Risk_Commodity", "CM2", "12", "", "", "Commodity"),
    ]


crif_rows = st.lists(st.tuples(st.integers(0, len(_universe()) - 1),
                               st.floats(-1e8, 1e8, allow_nan=False).filter(lambda x: abs(x) > 1.0)),
                     min_size=1, max_size=25)


def _crif(items, k=1.0):
    u = _universe()
    return [r(u[i][0], u[i][1], k * a, u[i][2], u[i][3], u[i][4], pc=u[i][5]) for i, a in items]


@settings(max_examples=30, deadline=None)
@given(crif_rows, st.floats(0.01, 100.0), st.randoms(use_true_random=False))
def test_simm_non_negative_homogeneous_and_order_independent(items, k, rnd):
    one_day = simm_margin(_crif(items), P25, "1d").total
    ten_day = simm_margin(_crif(items), P25, "10d").total
    assert one_day >= 0.0 and ten_day >= 0.0 and np.isfinite(ten_day)
    # no concentration factor at 1 day: SIMM is positively homogeneous of degree one
    assert simm_margin(_crif(items, k), P25, "1d").total == pytest.approx(k * one_day, rel=1e-9, abs=1e-6)
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert simm_margin(_crif(shuffled), P25, "10d").total == pytest.approx(ten_day, rel=1e-12, abs=1e-6)


def test_one_day_has_no_concentration_ten_day_does():
    small, big = [r("Risk_Equity", "EQ", 5e6, "1", pc="Equity")], [r("Risk_Equity", "EQ", 50e6, "1", pc="Equity")]
    assert simm_margin(big, P25, "1d").total == pytest.approx(10 * simm_margin(small, P25, "1d").total)
    # 50mm exceeds the 10mm bucket-1 threshold: CR = sqrt(5)
    assert simm_margin(big, P25, "10d").total == pytest.approx(26 * 50e6 * np.sqrt(5.0))
    assert simm_margin(small, P25, "10d").total == pytest.approx(26 * 5e6)


def test_normalize_is_idempotent_and_keeps_extra_columns():
    df = normalize_crif([r("Risk_FX", "eur", 1e6, TradeID="T9", Notes="x")])
    assert df.loc[0, "Qualifier"] == "EUR" and df.loc[0, "TradeID"] == "T9" and df.loc[0, "Notes"] == "x"
    assert normalize_crif(df) is df


def test_shipped_model_files_are_the_generated_ore_tables():
    import importlib.util
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "models"
    spec = importlib.util.spec_from_file_location("make_simm", root / "tools" / "make_simm.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for version, stem in make.VERSIONS.items():
        data = json.loads((root / "tools" / "simm_ore" / f"{stem}.json").read_text())
        shipped = tomllib.loads((root / f"simm-{version}.toml").read_text())
        assert shipped == json.loads(json.dumps(make.convert(data, version))), version
        p = load_simm_params(version)
        assert all(p.has(rc) for rc in ("InterestRate", "CreditQualifying", "CreditNonQualifying", "Equity",
                                        "Commodity", "FX"))
    # a version-specific figure: v2.8 10-day USD 2w IR delta weight times 1mm
    w = json.loads((root / "tools" / "simm_ore" / "v2_8.json").read_text())["mpor"]["10"]["rwLabel_1"]
    rw = w["Risk_IRCurve"]["1"]["2w"]
    ir = [r("Risk_IRCurve", "USD", 1e6, "1", "2w", "OIS")]
    assert simm_margin(ir, load_simm_params("2.8")).total == pytest.approx(rw * 1e6)
