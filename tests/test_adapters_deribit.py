"""Deribit API v2 responses -> the product's files: margin equal to the hand-made book; derived sets.

The seen set ``tests/data/deribit_api/btc_inverse`` holds the responses and the same book written by hand
in the product's formats. The derived sets (ETH, USDC-linear option and perpetual, snapshot at an expiry
with deep wings) are built here from it by changing responses and hand-made files the same way, each
change stated where it is made.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin.adapters import deribit
from greeksmargin.cli import main
from greeksmargin.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SEEN = ROOT / "tests" / "data" / "deribit_api" / "btc_inverse"
MODELS = ("greeks-default", "deribit-pm")
CHAIN_RAW = ROOT / "greeksmargin" / "datasets" / "data" / "deribit_btc_option_chain_2020-05-14.csv"
CHAIN_REDUCED = ROOT / "validation" / "cases" / "deribit_chain" / "btc_2020-05-14.csv"
RESPONSES = ("positions.json", "instruments.json", "book_summary_BTC.json", "account_summary_BTC.json", "index.json",
             "requests.json")


# ------------------------------------------------------------------------------------------- helpers
def _load_set(folder: Path = SEEN) -> dict[str, Any]:
    files = {f: json.loads((folder / f).read_text()) for f in RESPONSES}
    files["positions.csv"] = pd.read_csv(folder / "positions.csv", keep_default_na=False, na_values=[""])
    files["market.json"] = json.loads((folder / "market.json").read_text())
    return files


def _write_set(files: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, obj in files.items():
        if name in ("positions.csv", "market.json"):
            continue
        (folder / name).write_text(json.dumps(obj))
    return folder


def _margins(positions: Any, market: Any, collateral: Any = None) -> dict[str, tuple]:
    out = {}
    for m in MODELS:
        acc = gm.compute_margin(positions, market, str(ROOT / "models" / f"{m}.toml"), collateral=collateral).accounts
        assert len(acc) == 1
        r = acc.iloc[0]
        out[m] = (r["status"], r["currency"], float(r["im"]), float(r["mm"]))
    return out


def _assert_same_margin(got: dict[str, tuple], ref: dict[str, tuple]) -> None:
    for m in MODELS:
        g, r = got[m], ref[m]
        assert g[:2] == r[:2], (m, g, r)
        if r[0] == "not_computed":  # outside the model's domain on both sides: no figures
            assert math.isnan(g[2]) and math.isnan(r[2]) and math.isnan(g[3]) and math.isnan(r[3]), (m, g, r)
            continue
        assert math.isclose(g[2], r[2], rel_tol=1e-9) and math.isclose(g[3], r[3], rel_tol=1e-9), (m, g, r)
        assert r[2] > 0


def _result(doc: dict[str, Any]) -> Any:
    return doc["result"]


# ----------------------------------------------------------------------------------------- seen set
def test_seen_set_margin_equals_hand_made_book() -> None:
    t = deribit.read(SEEN)
    got = _margins(t["positions"], t["market"], t["collateral"])
    ref = _margins(SEEN / "positions.csv", SEEN / "market.json")
    _assert_same_margin(got, ref)
    # deribit-pm is a published methodology: the set's README figure (independent of the house calibration)
    assert got["deribit-pm"][2] == pytest.approx(0.38867809649973317, rel=1e-9)


def test_seen_set_tables() -> None:
    t = deribit.read(SEEN)
    pos = t["positions"].set_index("instrument")
    ref = pd.read_csv(SEEN / "positions.csv", keep_default_na=False, na_values=[""]).set_index("instrument")
    assert sorted(pos.index) == sorted(ref.index)
    for col in ("underlying", "kind", "settlement", "premium_currency"):
        assert (pos.loc[ref.index, col] == ref[col]).all(), col
    assert (pos.loc[ref.index, "quantity"] - ref["quantity"]).abs().max() < 1e-12
    assert pd.isna(pos.loc["BTC-PERPETUAL", "expiry"])
    assert pos.loc["BTC-25SEP26", "expiry"] == "2026-09-25T08:00:00Z"
    m = t["market_dict"]
    hm = json.loads((SEEN / "market.json").read_text())
    assert m["valuation_time"] == hm["valuation_time"] == "2026-05-20T10:15:00Z"  # the book summary's, not usOut
    u, hu = m["underlyings"]["BTC"], hm["underlyings"]["BTC"]
    assert (u["spot"], u["currency"], u["forwards"], u["perpetual_mark"]) == (
        hu["spot"], hu["currency"], hu["forwards"], hu["perpetual_mark"])
    assert {k: u["vols"][k] for k in hu["vols"]} == hu["vols"]
    # the skew: puts richer, one slice per live expiry
    sl = {s["expiry"]: s for s in u["surface"]["slices"]}
    jun = sl["2026-06-26T08:00:00Z"]
    assert jun["vols"][0] == 0.514 and jun["points"][0] == pytest.approx(math.log(90000 / 97712.0))
    # collateral = balance + futures session P&L; exchange margin from the account summary
    acc = _result(json.loads((SEEN / "account_summary_BTC.json").read_text()))
    assert t["collateral"].to_dict("records") == [
        {"account": "btc_inverse", "asset": "BTC", "amount": acc["balance"] + acc["futures_session_upl"]}]
    em = t["exchange_margin"].iloc[0]
    assert (em["account"], em["exchange_im"], em["exchange_mm"], em["currency"]) == (
        "btc_inverse", acc["initial_margin"], acc["maintenance_margin"], "BTC")
    from greeksmargin.engine.compare import normalize_exchange_margin

    assert len(normalize_exchange_margin(t["exchange_margin"])) == 1


def test_usd_size_of_inverse_future_is_never_a_coin_quantity(tmp_path: Path) -> None:
    """Regression (issue 18): ``size`` 250,000 (USD) of BTC-PERPETUAL is 2.5677 BTC, not 250,000 BTC."""
    files = _load_set()
    t = deribit.read(SEEN)
    pos = t["positions"].set_index("instrument")
    assert pos.loc["BTC-PERPETUAL", "quantity"] == pytest.approx(250000.0 / 97362.5, rel=1e-10)
    assert pos.loc["BTC-25SEP26", "quantity"] == pytest.approx(-120000.0 / 98968.5, rel=1e-10)
    # without size_currency the mark price converts the USD size
    for p in _result(files["positions.json"]):
        p.pop("size_currency", None)
    t2 = deribit.read(_write_set(files, tmp_path / "a"))
    q = t2["positions"].set_index("instrument")["quantity"]
    assert q["BTC-PERPETUAL"] == pytest.approx(250000.0 / 97362.5, rel=1e-14)
    # a size_currency that is the USD size is refused, not margined
    bad = _load_set()
    for p in _result(bad["positions.json"]):
        if p["instrument_name"] == "BTC-PERPETUAL":
            p["size_currency"] = p["size"]
    with pytest.raises(InputError, match="size 250000.0 USD / mark 97362.5 = .* disagrees with size_currency"):
        deribit.read(_write_set(bad, tmp_path / "b"))


def test_write_and_cli_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["import", "deribit", str(SEEN.parent), "--out", str(out)]) == 0
    folder = out / "btc_inverse"
    assert sorted(p.name for p in folder.iterdir()) == ["collateral.csv", "exchange_margin.csv", "market.json",
                                                        "positions.csv"]
    got = _margins(folder / "positions.csv", folder / "market.json", folder / "collateral.csv")
    _assert_same_margin(got, _margins(SEEN / "positions.csv", SEEN / "market.json"))
    ex = pd.read_csv(folder / "exchange_margin.csv")
    assert list(ex.columns) == ["account", "exchange_im", "exchange_mm", "currency"]


# ---------------------------------------------------------------------------------------- derived sets
K = 0.04  # ETH set: every USD price and strike x 0.04 (coin prices and vols unchanged: the book is homogeneous)


def _eth_name(n: str) -> str:
    parts = n.replace("BTC", "ETH").split("-")
    if len(parts) == 4:
        parts[2] = str(int(round(float(parts[2]) * K)))
    return "-".join(parts)


def _eth_set() -> dict[str, Any]:
    f = _load_set()
    usd_keys = {"index_price", "estimated_delivery_price", "underlying_price", "mark_price_usd", "average_price_usd"}
    for name in ("positions.json", "instruments.json", "book_summary_BTC.json", "index.json"):
        res = _result(f[name])
        for rec in res if isinstance(res, list) else [res]:
            if "instrument_name" in rec:
                rec["instrument_name"] = _eth_name(rec["instrument_name"])
            for k in ("base_currency", "settlement_currency", "currency"):
                if rec.get(k) == "BTC":
                    rec[k] = "ETH"
            if rec.get("underlying_index"):
                rec["underlying_index"] = _eth_name(rec["underlying_index"])
            if rec.get("price_index"):
                rec["price_index"] = "eth_usd"
            future = rec.get("kind") == "future" or "-" in rec.get("instrument_name", "") and rec.get(
                "instrument_name", "").count("-") == 1
            for k in list(rec):
                if k in usd_keys and isinstance(rec[k], float):
                    rec[k] = rec[k] * K
                if future and k in ("mark_price", "average_price", "settlement_price", "last", "high", "low",
                                    "mid_price", "bid_price", "ask_price") and isinstance(rec[k], float):
                    rec[k] = rec[k] * K
            if rec.get("kind") == "option" and "strike" in rec:
                rec["strike"] = rec["strike"] * K
            if future and "size" in rec:
                rec["size"] = rec["size"] * K  # USD size: ETH contracts are 1 USD, same coin amount
            if rec.get("contract_size") == 10.0:
                rec["contract_size"] = 1.0
    acc = _result(f["account_summary_BTC.json"])
    acc["currency"], acc["username"] = "ETH", "eth_inverse"
    f["account_summary_ETH.json"] = f.pop("account_summary_BTC.json")
    f["book_summary_ETH.json"] = f.pop("book_summary_BTC.json")
    f["requests.json"]["index.json"]["params"] = [{"index_name": "eth_usd"}]
    # the hand-made files, changed the same way
    p = f["positions.csv"]
    p["account"] = "eth_inverse"
    p["instrument"] = p["instrument"].map(_eth_name)
    p["underlying"] = p["premium_currency"] = "ETH"
    p["strike"] = p["strike"] * K
    m = f["market.json"]
    u = m["underlyings"].pop("BTC")
    u["spot"] *= K
    u["perpetual_mark"] *= K
    u["currency"] = "ETH"
    u["forwards"] = {e: v * K for e, v in u["forwards"].items()}
    u["vols"] = {_eth_name(k): v for k, v in u["vols"].items()}
    m["underlyings"]["ETH"] = u
    return f


def _check_derived(files: dict[str, Any], folder: Path, currency: str,
                   status: tuple[str, str] = ("computed", "computed")) -> dict[str, Any]:
    t = deribit.read(_write_set(files, folder))
    got = _margins(t["positions"], t["market"], t["collateral"])
    ref = _margins(files["positions.csv"], files["market.json"])
    _assert_same_margin(got, ref)
    assert {got[m][1] for m in MODELS} == {currency}
    assert tuple(got[m][0] for m in MODELS) == status
    return t


def test_eth_inverse_account(tmp_path: Path) -> None:
    f = _eth_set()
    t = _check_derived(f, tmp_path / "eth", "ETH")
    pos = t["positions"].set_index("instrument")
    assert pos.loc["ETH-PERPETUAL", "quantity"] == pytest.approx(2.5677237129, rel=1e-9)
    assert set(pos["premium_currency"]) == {"ETH"} and set(pos["settlement"]) == {"inverse"}
    assert t["exchange_margin"]["currency"].tolist() == ["ETH"]
    assert "ETH-26JUN26-3600-P" in pos.index


def _usdc_set() -> dict[str, Any]:
    """The seen set plus a USDC-linear call and a short BTC_USDC-PERPETUAL (instruments as {CCY: response})."""
    f = _load_set()
    f["instruments.json"] = {"BTC": f["instruments.json"], "USDC": {"jsonrpc": "2.0", "id": 9, "result": [
        {"instrument_name": "BTC_USDC-26JUN26-105000-C", "kind": "option", "settlement_period": "month",
         "instrument_type": "linear", "contract_size": 0.01, "expiration_timestamp": 1782460800000,
         "option_type": "call", "strike": 105000.0, "base_currency": "BTC", "settlement_currency": "USDC",
         "counter_currency": "USDC", "quote_currency": "USDC"},
        {"instrument_name": "BTC_USDC-PERPETUAL", "kind": "future", "settlement_period": "perpetual",
         "instrument_type": "linear", "contract_size": 0.001, "expiration_timestamp": 32503708800000,
         "base_currency": "BTC", "settlement_currency": "USDC", "counter_currency": "USDC",
         "quote_currency": "USDC"}]}}
    f["book_summary_USDC.json"] = {"jsonrpc": "2.0", "id": 10, "result": [
        {"instrument_name": "BTC_USDC-26JUN26-105000-C", "underlying_price": 97712.0, "mark_price": 2890.12,
         "mark_iv": 45.9, "interest_rate": 0.0, "creation_timestamp": 1779272100000, "base_currency": "BTC",
         "estimated_delivery_price": 97350.42, "quote_currency": "USDC"},
        {"instrument_name": "BTC_USDC-PERPETUAL", "mark_price": 97366.0, "creation_timestamp": 1779272100000,
         "base_currency": "BTC", "estimated_delivery_price": 97350.42, "quote_currency": "USDC"},
        # a USDC book summary lists every coin's linear instruments; coins the account does not hold are not used
        {"instrument_name": "SOL_USDC-PERPETUAL", "mark_price": 151.2, "creation_timestamp": 1779272100000,
         "base_currency": "SOL", "quote_currency": "USDC"},
        {"instrument_name": "ETH_USDC-26JUN26-4000-C", "underlying_price": 3920.0, "mark_price": 120.5,
         "mark_iv": 61.0, "interest_rate": 0.0, "creation_timestamp": 1779272100000, "base_currency": "ETH"}]}
    # a future spread (combo) of the book summary, not in instruments.json and not a position: not used
    _result(f["book_summary_BTC.json"]).append({"instrument_name": "BTC-FS-26JUN26_PERP", "mark_price": 349.5,
                                                "creation_timestamp": 1779272100000, "base_currency": "BTC"})
    _result(f["positions.json"]).extend([
        {"instrument_name": "BTC_USDC-26JUN26-105000-C", "kind": "option", "direction": "buy", "size": 2.0,
         "mark_price": 2890.12, "index_price": 97350.42},
        {"instrument_name": "BTC_USDC-PERPETUAL", "kind": "future", "direction": "sell", "size": -0.5,
         "size_currency": -0.5, "mark_price": 97366.0, "index_price": 97350.42}])
    f["account_summary_USDC.json"] = {"jsonrpc": "2.0", "id": 11, "result": {
        "currency": "USDC", "balance": 25000.0, "equity": 25000.0, "initial_margin": 4100.0,
        "maintenance_margin": 3280.0, "futures_session_upl": -12.5, "username": "btc_inverse"}}
    p = f["positions.csv"]
    extra = pd.DataFrame([
        {"account": "btc_inverse", "instrument": "BTC_USDC-26JUN26-105000-C", "underlying": "BTC", "kind": "option",
         "option_type": "call", "strike": 105000.0, "expiry": "2026-06-26T08:00:00Z", "quantity": 2.0,
         "multiplier": 1.0, "settlement": "linear", "premium_currency": "USDC"},
        {"account": "btc_inverse", "instrument": "BTC_USDC-PERPETUAL", "underlying": "BTC", "kind": "perpetual",
         "option_type": None, "strike": None, "expiry": None, "quantity": -500.0, "multiplier": 0.001,
         "settlement": "linear", "premium_currency": "USDC"}])
    f["positions.csv"] = pd.concat([p, extra], ignore_index=True)
    f["market.json"]["underlyings"]["BTC"]["vols"]["BTC_USDC-26JUN26-105000-C"] = 0.459
    return f


def test_usdc_linear_option_and_perpetual(tmp_path: Path) -> None:
    # mixed settlement: margined in USD; deribit-pm covers coin-settled books only (not_computed on both sides)
    t = _check_derived(_usdc_set(), tmp_path / "usdc", "USD", ("computed", "not_computed"))
    pos = t["positions"].set_index("instrument")
    assert tuple(pos.loc["BTC_USDC-PERPETUAL", ["kind", "settlement", "premium_currency", "quantity",
                                                 "multiplier"]]) == ("perpetual", "linear", "USDC", -500.0, 0.001)
    assert tuple(pos.loc["BTC_USDC-26JUN26-105000-C", ["settlement", "quantity", "multiplier"]]) == (
        "linear", 2.0, 1.0)
    assert t["market_dict"]["underlyings"]["BTC"]["perpetual_mark"] == 97362.5  # the inverse perpetual's
    assert list(t["market_dict"]["underlyings"]) == ["BTC"]
    assert any(n.startswith("BTC-FS-26JUN26_PERP: not used") for n in t["notes"])
    col = t["collateral"].set_index("asset")["amount"]
    assert col["USDC"] == 25000.0 - 12.5
    em = t["exchange_margin"].iloc[0]
    assert em["currency"] == "USD"
    assert em["exchange_im"] == pytest.approx(0.3886781 * 97350.42 + 4100.0)


def test_snapshot_at_an_expiry_with_deep_wings(tmp_path: Path) -> None:
    """Valuation exactly at the 29MAY26 expiry: the expiring option is no longer listed (instruments.json has
    ``expired=false``) and quotes mark_iv 0; deep-wing options (300,000 call at 180%, 20,000 put at 150%) held."""
    f = _load_set()
    expiry_ms = 1780041600000  # 2026-05-29T08:00:00Z
    res = _result(f["instruments.json"])
    f["instruments.json"]["result"] = [r for r in res if "29MAY26" not in r["instrument_name"]]
    book = _result(f["book_summary_BTC.json"])
    for r in book:
        r["creation_timestamp"] = expiry_ms
        if "29MAY26" in r["instrument_name"]:
            r["mark_iv"] = 0.0
    wings = [("BTC-26JUN26-300000-C", "call", 300000.0, 180.0, 1.0), ("BTC-26JUN26-20000-P", "put", 20000.0, 150.0,
                                                                      -4.0)]
    for name, cp, k, iv, size in wings:
        f["instruments.json"]["result"].append(
            {"instrument_name": name, "kind": "option", "settlement_period": "month", "instrument_type": "reversed",
             "contract_size": 1.0, "expiration_timestamp": 1782460800000, "option_type": cp, "strike": k,
             "base_currency": "BTC", "settlement_currency": "BTC"})
        book.append({"instrument_name": name, "underlying_price": 97712.0, "mark_price": 0.0005, "mark_iv": iv,
                     "interest_rate": 0.0, "creation_timestamp": expiry_ms, "base_currency": "BTC",
                     "estimated_delivery_price": 97350.42})
        _result(f["positions.json"]).append({"instrument_name": name, "kind": "option", "size": size,
                                            "mark_price": 0.0005})
        f["positions.csv"] = pd.concat([f["positions.csv"], pd.DataFrame([{
            "account": "btc_inverse", "instrument": name, "underlying": "BTC", "kind": "option", "option_type": cp,
            "strike": k, "expiry": "2026-06-26T08:00:00Z", "quantity": size, "multiplier": 1.0,
            "settlement": "inverse", "premium_currency": "BTC"}])], ignore_index=True)
        f["market.json"]["underlyings"]["BTC"]["vols"][name] = iv / 100
    f["market.json"]["valuation_time"] = "2026-05-29T08:00:00Z"
    t = _check_derived(f, tmp_path / "expiry", "BTC")
    assert t["market_dict"]["valuation_time"] == "2026-05-29T08:00:00Z"
    pos = t["positions"].set_index("instrument")
    assert pos.loc["BTC-29MAY26-100000-C", "expiry"] == "2026-05-29T08:00:00Z"  # from the name: 08:00 UTC
    assert any("BTC-29MAY26-100000-C: not in instruments.json" in n for n in t["notes"])
    assert any("mark_iv 0.0" in n for n in t["notes"])
    # no surface slice at (or before) the valuation time
    slices = t["market_dict"]["underlyings"]["BTC"]["surface"]["slices"]
    assert all(s["expiry"] > "2026-05-29T08:00:00Z" for s in slices)


# ---------------------------------------------------------------------------------------------- errors
def test_errors_name_file_and_field(tmp_path: Path) -> None:
    f = _load_set()
    f.pop("book_summary_BTC.json")
    with pytest.raises(InputError, match="no book_summary_<CCY>.json"):
        deribit.read(_write_set(f, tmp_path / "nobook"))
    f = _load_set()
    f["positions.json"] = {"jsonrpc": "2.0", "id": 1, "error": {"code": 13009, "message": "unauthorized"}}
    with pytest.raises(InputError, match="positions.json: the response is a JSON-RPC error: 'unauthorized'"):
        deribit.read(_write_set(f, tmp_path / "rpcerr"))
    f = _load_set()
    for r in _result(f["instruments.json"]):
        if r["instrument_name"] == "BTC-PERPETUAL":
            r["instrument_type"] = "quanto"
    with pytest.raises(InputError, match="BTC-PERPETUAL: unknown instrument_type 'quanto'"):
        deribit.read(_write_set(f, tmp_path / "itype"))
    f = _load_set()
    for r in _result(f["book_summary_BTC.json"]):
        if r["instrument_name"] == "BTC-26JUN26-90000-P":
            r["mark_iv"] = 900.0
    with pytest.raises(InputError, match=r"held option\(s\) \['BTC-26JUN26-90000-P'\] have no usable mark_iv"):
        deribit.read(_write_set(f, tmp_path / "iv"))
    f = _load_set()
    _result(f["positions.json"])[2].pop("size")
    with pytest.raises(InputError, match="row 2, column 'size': BTC-25SEP26: missing field 'size'"):
        deribit.read(_write_set(f, tmp_path / "size"))
    with pytest.raises(InputError, match="not a folder"):
        deribit.read(tmp_path / "absent")


def test_bare_results_are_read(tmp_path: Path) -> None:
    f = _load_set()
    for name in RESPONSES[:-1]:
        f[name] = _result(f[name])
    t = deribit.read(_write_set(f, tmp_path / "bare"))
    _assert_same_margin(_margins(t["positions"], t["market"]), _margins(SEEN / "positions.csv", SEEN / "market.json"))


def test_zero_size_positions_are_left_out(tmp_path: Path) -> None:
    f = _load_set()
    _result(f["positions.json"]).append({"instrument_name": "BTC-26JUN26", "kind": "future", "size": 0.0,
                                        "size_currency": 0.0, "mark_price": 97712.0})
    t = deribit.read(_write_set(f, tmp_path / "zero"))
    assert "BTC-26JUN26" not in set(t["positions"]["instrument"])
    assert any("BTC-26JUN26: size 0" in n for n in t["notes"])


# ------------------------------------------------------------------------------------------ raw chains
def test_snapshot_from_raw_chain_matches_the_reduced_chain_reader() -> None:
    from greeksmargin.book.market import from_deribit_chain

    a = deribit.snapshot_from_chain(CHAIN_RAW).to_dict()
    b = from_deribit_chain(CHAIN_REDUCED)[0].to_dict()
    assert a["valuation_time"] == b["valuation_time"] == "2020-05-14T05:42:51.013000Z"
    ua, ub = a["underlyings"]["BTC"], b["underlyings"]["BTC"]
    for k in ("spot", "rate", "forwards", "currency"):
        assert ua[k] == ub[k], k
    assert ua["vols"].keys() == ub["vols"].keys() and len(ua["vols"]) == 310
    assert max(abs(ua["vols"][k] - ub["vols"][k]) for k in ub["vols"]) < 1e-15
    assert len(ua["surface"]["slices"]) == len(ub["surface"]["slices"]) == 7
    for sa, sb in zip(ua["surface"]["slices"], ub["surface"]["slices"]):
        assert sa["expiry"] == sb["expiry"] and sa["points"] == pytest.approx(sb["points"], abs=1e-15)
        assert sa["vols"] == pytest.approx(sb["vols"], abs=1e-15)


def test_chain_cli_and_missing_column(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    assert main(["import", "deribit-chain", str(CHAIN_RAW), "--out", str(out)]) == 0
    m = gm.load_market(out)
    assert m.spot("BTC") == pytest.approx(9348.52)
    df = pd.read_csv(CHAIN_REDUCED).drop(columns=["mark_iv"])
    with pytest.raises(InputError, match="column 'mark_iv': missing column of a Deribit option chain"):
        deribit.snapshot_from_chain(df)


def test_copied_seen_set_is_unchanged_copy_of_its_reference() -> None:
    """The hand-made reference files and the responses agree on what they share (index, valuation time)."""
    f = _load_set()
    assert _result(f["index.json"])["index_price"] == f["market.json"]["underlyings"]["BTC"]["spot"]
    ts = {r["creation_timestamp"] for r in _result(f["book_summary_BTC.json"])}
    assert ts == {f["requests.json"]["valuation_time_ms"]}
    assert copy.deepcopy(f["positions.csv"]).shape == (8, 11)


def test_cli_bad_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "deribit", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "neither an account folder (positions.json) nor a folder of account folders" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
