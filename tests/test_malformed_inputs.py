"""Malformed inputs: the generated corpus (tests/malformed_corpus.py) and the validation layer's pieces."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pandas as pd
import pytest
import tomli_w
from malformed_corpus import DATA, MODELS, cli, format_table, run_all

import greeksmargin as gm
from greeksmargin import io
from greeksmargin.book.schemas import check_psd
from greeksmargin.engine.model_schemas import MODEL_SCHEMAS
from greeksmargin.errors import ArgumentTypeError, GreeksMarginError, InputError, MarketDataError, ModelError

MARKET = DATA / "example_market.json"
POSITIONS = DATA / "example_positions.csv"


def test_corpus_no_crash_no_silent_clear_errors(tmp_path, capsys):
    corpus, table = run_all(tmp_path)
    with capsys.disabled():
        print("\n" + format_table(table))
    n = len(corpus.cases)
    crashes = [c for c in corpus.cases if c.outcome == "crash"]
    silent = [c for c in corpus.cases if c.outcome == "silent"]
    errors = [c for c in corpus.cases if c.outcome in ("clear", "unclear")]
    clear = [c for c in errors if c.outcome == "clear"]
    assert n >= 500
    assert len({c.category.split(":")[0] for c in corpus.cases}) >= 8  # positions, market, ..., API, CLI
    assert not crashes, [(c.label, c.message[:200]) for c in crashes[:5]]
    assert not silent, [(c.label, c.message[:200]) for c in silent[:5]]
    assert len(clear) / len(errors) >= 0.95, [(c.label, c.message[:200]) for c in errors if c.outcome != "clear"][:5]
    assert sum(c.outcome == "ok" for c in corpus.cases) >= 5  # BOM / UTF-16 files read as the original


# ---------------------------------------------------------------------------------------- model files
def _model(tmp_path, name, edit):
    d = tomllib.loads((MODELS / f"{name}.toml").read_text())
    edit(d)
    p = tmp_path / f"{name}-edited.toml"
    p.write_text(tomli_w.dumps(d))
    return p


def test_unknown_key_names_the_nearest_valid_one(tmp_path):
    p = _model(tmp_path, "deribit-sm", lambda d: d["components"]["delta_one"].__setitem__(
        "mm_rat", d["components"]["delta_one"].pop("mm_rate")))
    with pytest.raises(ModelError, match=r"key 'components.delta_one.mm_rat': unknown key 'mm_rat' \(did you mean "
                                         r"'mm_rate'\?\)") as exc:
        gm.load_model(p)
    assert exc.value.file.endswith("deribit-sm-edited.toml")


@pytest.mark.parametrize("value, text", [(float("nan"), "finite"), (float("inf"), "finite"), (1.5, "less than or "
                                         "equal to 1"), ("0.8", "wrong type")])
def test_correlation_must_be_a_finite_number_in_minus_one_one(tmp_path, value, text):
    p = _model(tmp_path, "greeks-default", lambda d: d["aggregate"].__setitem__("default_correlation", value))
    with pytest.raises(ModelError, match=text) as exc:
        gm.load_model(p)
    assert exc.value.key == "aggregate.default_correlation"


def test_correlations_that_are_not_psd_are_refused(tmp_path):
    corr = {"BTC/ETH": 0.9, "BTC/SPX": 0.9, "ETH/SPX": -0.9}
    p = _model(tmp_path, "greeks-default", lambda d: d["aggregate"].__setitem__("correlations", corr))
    with pytest.raises(ModelError, match="not positive semi-definite"):
        gm.load_model(p)
    check_psd(np.array([[1.0, 0.9], [0.9, 1.0]]))  # a valid matrix passes
    with pytest.raises(ValueError, match="symmetric"):
        check_psd(np.array([[1.0, 0.9], [0.2, 1.0]]))


def test_simm_matrix_psd_and_percent_for_fraction(tmp_path):
    def bad(d):
        m = d["equity"]["inter_bucket_correlation"]
        m[0][1] = m[1][0] = 0.99
        m[0][2] = m[2][0] = 0.99
        m[1][2] = m[2][1] = -0.99

    with pytest.raises(ModelError, match="inter_bucket_correlation.*PSD"):
        gm.load_model(_model(tmp_path, "simm-2.6", bad))
    p = _model(tmp_path, "deribit-pm", lambda d: d["btc"].__setitem__("price_range", 16.0))  # 16 for 0.16
    with pytest.raises(ModelError, match=r"key 'btc.price_range'.*less than 1 \(got 16.0\)"):
        gm.load_model(p)


@pytest.mark.parametrize("table, text", [({"status": "publishd"}, "published"),
                                         ({"domain": {"kinds": ["optoin"]}}, "optoin")])
def test_meta_status_and_domain_values(tmp_path, table, text):
    def edit(d):
        if "status" in table:
            d["meta"]["status"] = table["status"]
        else:
            d.update(table)

    with pytest.raises(ModelError, match=text):
        gm.load_model(_model(tmp_path, "tims-pm", edit))
    ok = _model(tmp_path, "tims-pm", lambda d: d.update(
        {"domain": {"underlyings": ["*"], "kinds": ["option", "future"], "settlement": ["linear"]}}))
    assert gm.load_model(ok).methodology == "tims-pm"


def test_every_shipped_methodology_has_a_schema_and_unknown_ones_fail(tmp_path):
    meths = {tomllib.loads(p.read_text())["meta"]["methodology"] for p in MODELS.glob("*.toml")}
    assert meths <= set(MODEL_SCHEMAS)
    p = _model(tmp_path, "span", lambda d: d["meta"].__setitem__("methodology", "spam"))
    with pytest.raises(ModelError, match="unknown methodology 'spam'.*did you mean 'span'"):
        gm.load_model(p)


# ------------------------------------------------------------------------------------------ market
def _market(edit):
    d = json.loads(MARKET.read_text())
    edit(d)
    return d


@pytest.mark.parametrize("edit, key, text", [
    (lambda d: d["underlyings"]["BTC"].__setitem__("rate", 5.0), "underlyings.BTC.rate", "less than or equal to 1"),
    (lambda d: d.__setitem__("valuation_time", "2263-01-01"), "valuation_time", "out of range"),
    (lambda d: d["underlyings"]["SPX"].__setitem__("spot", float("nan")), "underlyings.SPX.spot", "finite number"),
    (lambda d: d.__setitem__("valuation_time", 20261120), "valuation_time", "ISO date-time"),
])
def test_market_values_typed_and_ranged(edit, key, text):
    with pytest.raises(MarketDataError, match=text) as exc:
        gm.load_market(_market(edit))
    assert f"key '{key}'" in str(exc.value)


def test_market_duplicate_json_key_and_utf16(tmp_path):
    text = MARKET.read_text()
    p = tmp_path / "m.json"
    p.write_text(text.replace('"fx_to_usd": {', '"fx_to_usd": {\n  "USD": 2.0,', 1))
    with pytest.raises(InputError, match="duplicate key 'USD'"):
        gm.load_market(p)
    p.write_bytes(text.encode("utf-16"))
    assert gm.load_market(p) == gm.load_market(MARKET)


# ------------------------------------------------------------------------------------------ tables
def test_bom_and_utf16_positions_read_as_the_original(tmp_path):
    text = POSITIONS.read_text()
    ref = gm.load_positions(POSITIONS)
    for enc in ("utf-8-sig", "utf-16"):
        p = tmp_path / f"{enc}.csv"
        p.write_bytes(text.encode(enc))
        pd.testing.assert_frame_equal(gm.load_positions(p).reset_index(drop=True), ref.reset_index(drop=True))
    p = tmp_path / "latin1.csv"
    p.write_bytes(text.replace("MIXED", "MIXÉ").encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8 text: byte 0xc9"):
        gm.load_positions(p)


def test_typo_and_duplicate_columns(tmp_path):
    df = pd.read_csv(POSITIONS)
    p = tmp_path / "typo.csv"
    df.rename(columns={"multiplier": "multipler"}).to_csv(p, index=False)
    with pytest.raises(InputError, match="column 'multipler': unknown column 'multipler' \\(did you mean "
                                         "'multiplier'"):
        gm.load_positions(p)
    p = tmp_path / "dup.csv"
    lines = POSITIONS.read_text().splitlines()
    p.write_text("\n".join(ln + "," + ln.split(",")[7] for ln in lines) + "\n")
    with pytest.raises(InputError, match="duplicate column 'quantity' \\(columns 8 and 12"):
        gm.load_positions(p)


@pytest.mark.parametrize("col, value, text", [("expiry", "2300-06-30", "out of range"), ("quantity", "1e13",
                                              "out of range"), ("strike", "inf", "strike"),
                                              ("quantity", "NaN", "must be a number")])
def test_bad_values_name_file_row_column(tmp_path, col, value, text):
    df = pd.read_csv(POSITIONS, dtype=str, keep_default_na=False)
    r = int(df.index[df["kind"] == "option"][5])
    df.loc[r, col] = value
    p = tmp_path / "bad.csv"
    df.to_csv(p, index=False)
    with pytest.raises(InputError, match=text) as exc:
        gm.load_positions(p)
    assert (exc.value.file, exc.value.row, exc.value.column) == (str(p), r, col)


# --------------------------------------------------------------------------------------- API types
@pytest.mark.parametrize("call, argument", [
    (lambda pos, mk: gm.load_market(None), "source"),
    (lambda pos, mk: gm.load_positions(mk), "source"),
    (lambda pos, mk: gm.compute_margin(pos, pos), "market"),
    (lambda pos, mk: gm.compute_margin(pos, mk, pos), "model"),
    (lambda pos, mk: gm.compute_margin(42, mk), "positions"),
    (lambda pos, mk: gm.price_positions(pos, None), "market"),
    (lambda pos, mk: gm.load_model(b"greeks-default"), "name_or_path"),
])
def test_wrong_argument_types_name_the_argument(call, argument):
    mk = gm.load_market(MARKET)
    pos = gm.load_positions(POSITIONS, valuation_time=mk.valuation_time)
    with pytest.raises(ArgumentTypeError, match=f"argument '{argument}' must be") as exc:
        call(pos, mk)
    assert isinstance(exc.value, TypeError) and isinstance(exc.value, GreeksMarginError)


# --------------------------------------------------------------------------------------- writes
def test_writes_are_atomic_and_unwritable_targets_are_errors(tmp_path):
    target = tmp_path / "out.json"
    io.write_json({"a": 1}, target)
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(ValueError):  # NaN refused while serialising: the previous file is left intact
        io.write_json({"a": float("nan")}, target)
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left behind
    with pytest.raises(InputError, match="cannot write: is a folder"):
        io.write_text("x", tmp_path)
    with pytest.raises(InputError, match="cannot write: cannot create the folder"):
        io.write_text("x", target / "sub.txt")


def test_cli_unwritable_out_exits_2():
    kind, rc, msg = cli(["greeks", POSITIONS, MARKET, "--out", POSITIONS / "x.txt"])
    assert (kind, rc) == ("exit", 2) and "cannot write" in msg and "x.txt" in msg


# ----------------------------------------------------------------------------------- --keep-going
def test_keep_going_computes_good_accounts_lists_bad_ones_exits_3(tmp_path, capsys):
    from greeksmargin.cli import main

    df = pd.read_csv(POSITIONS, dtype=str, keep_default_na=False)
    r = int(df.index[(df["account"] == "MIXED") & (df["kind"] == "option")][0])
    df.loc[r, "strike"] = "-100"
    bad = tmp_path / "book.csv"
    df.to_csv(bad, index=False)
    assert main(["margin", str(bad), str(MARKET), "--format", "csv"]) == 2
    capsys.readouterr()
    assert main(["margin", str(bad), str(MARKET), "--format", "csv", "--keep-going"]) == 3
    out, err = capsys.readouterr()
    assert f"MIXED: file {bad}, row {r}, column 'strike'" in err
    got = pd.read_csv(pd.io.common.StringIO(out)).set_index("account")
    good = df[df["account"] != "MIXED"]
    ref = gm.compute_margin(good.reset_index(drop=True).replace("", np.nan), MARKET).accounts.set_index("account")
    assert np.isnan(got.loc["MIXED", "im"])
    np.testing.assert_allclose(got.loc[ref.index, "im"].to_numpy(), ref["im"].to_numpy(), rtol=1e-9)
