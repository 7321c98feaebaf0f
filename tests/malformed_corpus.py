"""A generated corpus of malformed inputs for every CLI command and the public API.

Each case is a mutation a user could produce of a bundled example file (positions, market snapshot,
collateral, exchange margin, price history, model files, validation case files) or a wrong call of the
API. A case runs once and is classified:

- ``crash``: an exception escaped ``greeksmargin.cli.main`` (or an exit code other than 2 / 3), or the API
  raised an exception type not from :mod:`greeksmargin.errors` (``TypeError`` subclasses of it included);
- ``silent``: the command exited 0 / the API returned a value (for a re-encoded but valid file, the
  output must equal the original's instead: then it is ``ok``);
- ``clear``: an error whose message names every locator of the case (file name, row, column or key,
  argument); ``unclear`` otherwise.

Run ``python tests/malformed_corpus.py`` to print the table of categories.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import random
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "greeksmargin" / "datasets" / "data"
MODELS = ROOT / "models"
CASES = ROOT / "validation" / "cases"


@dataclass
class Case:
    category: str
    label: str
    run: Callable[[], tuple[str, int | None, str]]  # (outcome kind, exit code, message or output)
    where: tuple[str, ...] = ()
    same_as: Callable[[], str] | None = None  # valid re-encoding: output must equal this
    case_fail: tuple[str, ...] = ()  # validation suites: a FAIL line naming these is the per-case error
    outcome: str = ""
    message: str = ""


@dataclass
class Corpus:
    tmp: Path
    cases: list[Case] = field(default_factory=list)
    _baselines: dict[tuple[str, ...], str] = field(default_factory=dict)

    def add(self, category: str, label: str, run: Callable[[], tuple[str, int | None, str]],
            where: tuple[str, ...] = (), same_as: Callable[[], str] | None = None) -> None:
        self.cases.append(Case(category, label, run, tuple(where), same_as))

    def file(self, name: str, content: str | bytes) -> Path:
        p = self.tmp / f"c{len(self.cases):04d}" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        return p

    def baseline(self, argv: list[str]) -> Callable[[], str]:
        def get() -> str:
            key = tuple(argv)
            if key not in self._baselines:
                kind, rc, text = cli(argv)
                assert kind == "exit" and rc == 0, (argv, text)
                self._baselines[key] = text
            return self._baselines[key]

        return get


# ------------------------------------------------------------------------------------------ runners
def cli(argv: list[str]) -> tuple[str, int | None, str]:
    """Run ``greeksmargin.cli.main(argv)`` in-process: ("exit", code, stderr or stdout) or ("crash", None, tb)."""
    from greeksmargin.cli import main

    out, err = _io.StringIO(), _io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: usage errors exit 2 with a message naming the argument
        rc = exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:  # noqa: BLE001 - any escaping exception is what the corpus looks for
        return "crash", None, f"{type(exc).__name__}: {exc}"
    text = err.getvalue() if rc else out.getvalue()
    return "exit", rc, text


def cli_subprocess(argv: list[str]) -> tuple[str, int | None, str]:
    """Run the console entry point in a fresh interpreter."""
    code = "import sys; from greeksmargin.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    if "Traceback (most recent call last)" in proc.stderr:
        return "crash", None, proc.stderr[-800:]
    return "exit", proc.returncode, proc.stderr if proc.returncode else proc.stdout


def api(fn: Callable[[], Any]) -> Callable[[], tuple[str, int | None, str]]:
    def run() -> tuple[str, int | None, str]:
        from greeksmargin.errors import GreeksMarginError

        try:
            fn()
        except GreeksMarginError as exc:
            return "raised", 2, str(exc)
        except Exception as exc:  # noqa: BLE001
            return "crash", None, f"{type(exc).__name__}: {exc}"
        return "exit", 0, "returned a value"

    return run


def classify(case: Case) -> None:
    kind, rc, text = case.run()
    case.message = text
    if kind == "crash" or rc not in (0, 2, 3):
        case.outcome = "crash"
    elif rc == 0:
        fails = [ln.lower() for ln in text.splitlines() if ln.startswith("FAIL") and "error:" in ln]
        if case.same_as is not None and text == case.same_as():
            case.outcome = "ok"
        elif case.case_fail and any(all(w.lower() in ln for w in case.case_fail) for ln in fails):
            case.outcome = "clear"  # the case is reported failed, with the reason naming what is wrong
        else:
            case.outcome = "silent"
    else:
        low = text.lower()
        case.outcome = "clear" if all(w.lower() in low for w in case.where) else "unclear"


# -------------------------------------------------------------------------------------- mutations
TYPOS = {
    "account": "acount", "instrument": "instrumnet", "underlying": "underlyng", "kind": "kidn",
    "option_type": "optiontype", "strike": "strke", "expiry": "expiry_date", "quantity": "quantty",
    "multiplier": "multipler", "settlement": "settlment", "premium_currency": "premium_ccy",
}

BAD_NUMBERS = [("nan", "NaN"), ("inf", "inf"), ("-inf", "-inf"), ("1e400", "1e400"), ("text", "abc"),
               ("comma", "1,000.5"), ("huge", "1e300")]


def _csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False)


def positions_cases(c: Corpus) -> None:
    base = pd.read_csv(DATA / "example_positions.csv", dtype=str, keep_default_na=False)
    market = DATA / "example_market.json"
    rng = random.Random(12)
    commands = [
        lambda p: ["margin", p, market],
        lambda p: ["greeks", p, market],
        lambda p: ["solvency", p, market, "--distance", "no", "--collateral", DATA / "example_collateral.csv"],
        lambda p: ["compare", p, market, "--exchange-margin", DATA / "example_exchange_margin.csv"],
        lambda p: ["whatif", DATA / "example_positions.csv", market, "--trades", p],
        lambda p: ["margin", p, market, "--model", "deribit-sm"],
        lambda p: ["margin", p, market, "--model", "tims-pm"],
        lambda p: ["margin", p, market, "--model", "deribit-pm"],
    ]
    k = 0

    def add(cat: str, label: str, text: str | bytes, where: tuple[str, ...], name: str = "book.csv") -> None:
        nonlocal k
        p = c.file(name, text)
        argv = commands[k % len(commands)](p)
        k += 1
        c.add(cat, f"{label} [{argv[0]}]", lambda a=argv: cli(a), (name, *where))

    options = base.index[base["kind"] == "option"].tolist()
    futures = base.index[base["kind"] == "future"].tolist()
    # column typos, missing and duplicate columns
    for col, typo in TYPOS.items():
        add("positions: typo'd column", f"{col}->{typo}", _csv_text(base.rename(columns={col: typo})), (typo, col))
    for col in ("account", "quantity", "kind", "underlying"):
        add("positions: missing column", col, _csv_text(base.drop(columns=[col])), (col,))
    for col in ("quantity", "strike", "kind"):
        text = _csv_text(base)
        lines = text.splitlines()
        cols = lines[0].split(",")
        i = cols.index(col)
        lines = [",".join(r.split(",") + [r.split(",")[i]]) for r in lines]
        add("positions: duplicate column", col, "\n".join(lines) + "\n", (col, "duplicate"))
    # bad numbers in numeric columns
    for col, rows in (("strike", options), ("quantity", list(base.index)), ("multiplier", list(base.index))):
        for _label, val in BAD_NUMBERS:
            r = rng.choice(rows)
            df = base.copy()
            df.loc[r, col] = val
            add(f"positions: bad number ({col})", f"{col}={val} row {r}", _csv_text(df), (f"row {r}", col))
        for val in ("-5", "0"):
            r = rng.choice(rows)
            df = base.copy()
            df.loc[r, col] = val
            if col == "quantity" and val == "0":
                continue  # a flat position is valid
            if col == "quantity":
                continue  # negative quantity = short: valid
            add(f"positions: out of range ({col})", f"{col}={val} row {r}", _csv_text(df), (f"row {r}", col))
    # expiries
    for label, val in (("past", "2020-01-01T08:00:00Z"), ("past 2262", "2300-06-30T08:00:00Z"),
                       ("year 9999", "9999-12-31"), ("not a date", "next friday"), ("month 13", "2026-13-05"),
                       ("day 45", "2027-01-45T08:00:00Z"), ("epoch number", "1.7e12")):
        for rows in (options, futures):
            if label == "past" and rows is options:
                continue  # an option past its expiry is valued at intrinsic (valid input, tests/test_expiry.py)
            r = rng.choice(rows)
            df = base.copy()
            df.loc[r, "expiry"] = val
            add(f"positions: bad expiry ({label})", f"expiry={val} row {r}", _csv_text(df), (f"row {r}", "expiry"))
    # enumerations and required text
    for col, val in (("kind", "optoin"), ("kind", "futures"), ("kind", ""), ("option_type", "cal"),
                     ("option_type", ""), ("settlement", "inversee"), ("settlement", "coin"),
                     ("account", ""), ("underlying", ""), ("instrument", "")):
        rows = options if col == "option_type" else list(base.index)
        r = rng.choice(rows)
        df = base.copy()
        df.loc[r, col] = val
        add(f"positions: bad value ({col})", f"{col}={val!r} row {r}", _csv_text(df), (f"row {r}", col))
    for r in rng.sample(options, 3):
        df = base.copy()
        df.loc[r, "strike"] = ""
        add("positions: option without strike", f"row {r}", _csv_text(df), (f"row {r}", "strike"))
    for r in rng.sample(list(base.index), 3):
        df = base.copy()
        df.loc[r, "underlying"] = "DOGE"
        add("positions: underlying not in market", f"row {r}", _csv_text(df), (f"row {r}", "underlying", "DOGE"))
    for r in rng.sample(list(base.index), 2):
        df = base.copy()
        df.loc[r, "quantity"] = "1e13"
        add("positions: bad number (quantity)", f"quantity=1e13 row {r}", _csv_text(df), (f"row {r}", "quantity"))
    for r in rng.sample(options, 2):
        df = base.copy()
        df.loc[r, "strike"] = "1e15"
        add("positions: bad number (strike)", f"strike=1e15 row {r}", _csv_text(df), (f"row {r}", "strike"))
    # file-level
    text = _csv_text(base)
    add("positions: file", "empty file", "", ())
    add("positions: file", "header only", text.splitlines()[0] + "\n", ("no rows",))
    add("positions: file", "binary garbage", bytes(random.Random(3).randrange(256) for _ in range(600)), ())
    trunc = text[: len(text) // 2]
    trunc = trunc[: trunc.rfind(",") ]
    add("positions: file", "truncated mid-row", trunc, ("row",))
    add("positions: file", "semicolon separated", text.replace(",", ";"), ())
    add("positions: file", "JSON given as positions", (DATA / "example_market.json").read_text(), ())
    add("positions: file", "latin-1 bytes in UTF-8 file", text.replace("BTC-COVCALL", "BTC-CÖV").encode("latin-1"),
        ("utf",))
    add("positions: file", "unsupported suffix", text, ("xlsx",), name="book.xlsx")
    # parquet with a wrong dtype
    df = base.copy()
    df.loc[df.index[5], "quantity"] = "many"
    pq = c.tmp / f"c{len(c.cases):04d}" / "book.parquet"
    pq.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(pq)
    c.add("positions: parquet", "text in quantity", lambda: cli(["margin", pq, market]),
          ("book.parquet", "row 5", "quantity"))
    df = base.copy()
    df["quantity"] = pd.to_numeric(df["quantity"])
    df.loc[7, "quantity"] = float("inf")
    pq2 = c.tmp / f"c{len(c.cases):04d}" / "book.parquet"
    pq2.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(pq2)
    c.add("positions: parquet", "inf quantity", lambda: cli(["greeks", pq2, market]),
          ("book.parquet", "row 7", "quantity"))
    # missing file, directory as file
    c.add("positions: file", "missing file", lambda: cli(["margin", c.tmp / "nope.csv", market]), ("nope.csv",))
    d = c.tmp / "a_folder.csv"
    d.mkdir(exist_ok=True)
    c.add("positions: file", "directory named .csv", lambda: cli(["greeks", d, market]), ("a_folder.csv",))
    # valid re-encodings: must be read correctly
    for label, data in (("UTF-8 BOM", text.encode("utf-8-sig")), ("UTF-16", text.encode("utf-16")),
                        ("UTF-16-LE BOM", b"\xff\xfe" + text.encode("utf-16-le")), ("CRLF", text.replace(
                            "\n", "\r\n").encode())):
        p = c.file("book.csv", data)
        c.add("positions: encoding (read as the original)", label, lambda p=p: cli(["margin", p, market]),
              ("book.csv",), same_as=c.baseline(["margin", DATA / "example_positions.csv", market]))


def _walk_numbers(d: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _walk_numbers(v, (*path, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _walk_numbers(v, (*path, i))
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        out.append((path, d))
    return out


def _set(d: Any, path: tuple[Any, ...], value: Any) -> None:
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


def _get(d: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        d = d[k]
    return d


def _dotted(path: tuple[Any, ...]) -> str:
    s = ""
    for k in path:
        s += f"[{k}]" if isinstance(k, int) else (f".{k}" if s else str(k))
    return s


def _key_token(path: tuple[Any, ...]) -> str:
    """The last named key of a path (what a message must name)."""
    return next(str(k) for k in reversed(path) if not isinstance(k, int))


def market_cases(c: Corpus) -> None:
    raw = json.loads((DATA / "example_market.json").read_text())
    text = json.dumps(raw, indent=1)
    pos = DATA / "example_positions.csv"
    rng = random.Random(7)
    commands = [lambda m: ["margin", pos, m], lambda m: ["greeks", pos, m],
                lambda m: ["margin", pos, m, "--model", "deribit-sm"],
                lambda m: ["solvency", pos, m, "--distance", "no", "--collateral", DATA / "example_collateral.csv"]]
    k = 0

    def add(cat: str, label: str, content: str | bytes, where: tuple[str, ...], name: str = "market.json") -> None:
        nonlocal k
        p = c.file(name, content)
        argv = commands[k % len(commands)](p)
        k += 1
        c.add(cat, f"{label} [{argv[0]}]", lambda a=argv: cli(a), (name, *where))

    def mutated(path: tuple[Any, ...], value: Any) -> str:
        d = json.loads(text)
        _set(d, path, value)
        return json.dumps(d, indent=1, allow_nan=True)

    und = list(raw["underlyings"])
    for u in und:
        b = ("underlyings", u)
        for label, v in (("negative", -1.0), ("zero", 0.0), ("NaN", float("nan")), ("inf", float("inf")),
                         ("string", "95k"), ("null", None), ("huge", 1e300)):
            add("market: bad spot", f"{u} spot {label}", mutated((*b, "spot"), v), ("spot", u))
        for label, v in (("percent", 5.0), ("NaN", float("nan")), ("string", "5%"), ("huge", 1e300)):
            add("market: bad rate", f"{u} rate {label}", mutated((*b, "rate"), v), ("rate", u))
        if "dividend_yield" in raw["underlyings"][u]:
            add("market: bad rate", f"{u} dividend_yield percent", mutated((*b, "dividend_yield"), 3.0),
                ("dividend_yield",))
        surf = raw["underlyings"][u].get("surface")
        if surf and "vols" in surf:
            for label, v in (("percent", 55.0), ("negative", -0.2), ("NaN", float("nan")), ("zero", 0.0),
                             ("inf", float("inf")), ("string", "high")):
                i = rng.randrange(len(surf["vols"]))
                j = rng.randrange(len(surf["vols"][i]))
                add("market: bad vol", f"{u} vol[{i}][{j}] {label}", mutated((*b, "surface", "vols", i, j), v),
                    ("vols", u))
            d = json.loads(text)
            d["underlyings"][u]["surface"]["vols"][0] = d["underlyings"][u]["surface"]["vols"][0][:-2]
            add("market: bad surface", f"{u} short vol row", json.dumps(d), ("vols", u))
            d = json.loads(text)
            pts = d["underlyings"][u]["surface"]["points"]
            pts[1], pts[2] = pts[2], pts[1]
            add("market: bad surface", f"{u} points not increasing", json.dumps(d), ("points", u))
            d = json.loads(text)
            d["underlyings"][u]["surface"]["expiries"][0] = "2300-01-01T00:00:00Z"
            add("market: bad date", f"{u} surface expiry past 2262", json.dumps(d), ("expiries", u))
            d = json.loads(text)
            d["underlyings"][u]["surface"]["axis"] = "moneyness_log"
            add("market: bad surface", f"{u} axis typo", json.dumps(d), ("axis", u))
        fw = raw["underlyings"][u].get("forwards")
        if fw:
            e = rng.choice(list(fw))
            for label, v in (("negative", -100.0), ("NaN", float("nan")), ("string", "n/a")):
                add("market: bad forward", f"{u} forward {label}", mutated((*b, "forwards", e), v), ("forwards", u))
            d = json.loads(text)
            d["underlyings"][u]["forwards"]["next week"] = 1.0
            add("market: bad date", f"{u} forward key not a date", json.dumps(d), ("forwards", "next week"))
        for key in list(raw["underlyings"][u]):
            d = json.loads(text)
            v = d["underlyings"][u].pop(key)
            typo = key[:-1] if len(key) > 4 else key + "s"
            d["underlyings"][u][typo] = v
            add("market: typo'd key", f"{u}.{key}->{typo}", json.dumps(d), (typo, u))
    for key in raw:
        d = json.loads(text)
        v = d.pop(key)
        typo = key.replace("_", "") if "_" in key else key[:-1]
        d[typo] = v
        add("market: typo'd key", f"{key}->{typo}", json.dumps(d), (typo,))
    for label, v in (("past 2262", "2263-01-01T00:00:00Z"), ("not a date", "yesterday"), ("number", 20261120),
                     ("after expiries", "2028-01-01T00:00:00Z")):
        where = ("expiry", "valuation time") if label == "after expiries" else ("valuation_time",)
        add("market: bad valuation_time", label, mutated(("valuation_time",), v), where)
    for ccy in raw.get("fx_to_usd", {}):
        for label, v in (("negative", -1.0), ("NaN", float("nan")), ("string", "par")):
            add("market: bad fx", f"{ccy} {label}", mutated(("fx_to_usd", ccy), v), ("fx_to_usd", ccy))
    add("market: file", "empty file", "", ())
    add("market: file", "truncated JSON", text[: len(text) // 3], ("line",))
    add("market: file", "top-level list", json.dumps([raw]), ())
    add("market: file", "trailing comma", text.rstrip()[:-1] + ",}", ("line",))
    dup = text.replace('"fx_to_usd": {', '"fx_to_usd": {\n  "USD": 2.0,', 1)
    add("market: duplicate key", "fx_to_usd.USD twice", dup, ("USD", "duplicate"))
    u0 = und[0]
    dup2 = text.replace(f'"{u0}": {{', f'"{u0}": {{\n   "spot": 1.0,', 1)
    add("market: duplicate key", f"{u0}.spot twice", dup2, ("spot", "duplicate"))
    add("market: file", "TOML syntax in .toml", "valuation_time = 2026-11-20T08:00:00Z\n[underlyings.BTC\nspot=1",
        (), name="market.toml")
    add("market: file", "unsupported suffix", text, ("yaml",), name="market.yaml")
    for label, data in (("UTF-16", text.encode("utf-16")), ("UTF-8 BOM", text.encode("utf-8-sig"))):
        p = c.file("market.json", data)
        c.add("market: encoding (read as the original)", label, lambda p=p: cli(["greeks", pos, p]), (),
              same_as=c.baseline(["greeks", pos, DATA / "example_market.json"]))
    # TOML market
    tm = tomli_w.dumps(raw)
    for label, rep in (("spot as string", ("spot = 95000.0", 'spot = "95000"')),
                       ("vol in percent", ("0.7431", "74.31")), ("spot nan", ("spot = 95000.0", "spot = nan"))):
        add("market: toml", label, tm.replace(*rep, 1), (), name="market.toml")
        c.cases[-1].where = ("market.toml", "spot" if "spot" in label else "vols")
    c.add("market: file", "missing file", lambda: cli(["greeks", pos, c.tmp / "no_market.json"]), ("no_market.json",))
    c.add("market: file", "directory", lambda: cli(["margin", pos, c.tmp]), (c.tmp.name,))


def collateral_cases(c: Corpus) -> None:
    base = pd.read_csv(DATA / "example_collateral.csv", dtype=str, keep_default_na=False)
    pos, mk = DATA / "example_positions.csv", DATA / "example_market.json"
    rng = random.Random(5)
    k = 0

    def add(cat: str, label: str, content: str | bytes, where: tuple[str, ...]) -> None:
        nonlocal k
        p = c.file("coll.csv", content)
        argv = (["solvency", pos, mk, "--distance", "no", "--collateral", p] if k % 2 else
                ["margin", pos, mk, "--collateral", p])
        k += 1
        c.add(cat, f"{label} [{argv[0]}]", lambda a=argv: cli(a), ("coll.csv", *where))

    for col, vals in (("amount", ["NaN", "inf", "1e400", "abc", "1e300"]), ("price", ["-5", "0", "NaN", "abc"]),
                      ("im_haircut", ["1.5", "-0.1", "15", "abc"]), ("mm_haircut", ["2", "-1", "NaN"])):
        for v in vals:
            r = rng.randrange(len(base))
            df = base.copy()
            df.loc[r, col] = v
            add(f"collateral: bad number ({col})", f"{col}={v} row {r}", _csv_text(df), (f"row {r}", col))
    for col, typo in (("amount", "amout"), ("im_haircut", "haircut_im"), ("asset", "assets"), ("price", "px")):
        add("collateral: typo'd column", f"{col}->{typo}", _csv_text(base.rename(columns={col: typo})), (typo,))
    for r in rng.sample(range(len(base)), 2):
        df = base.copy()
        df.loc[r, "asset"] = "ZZZ"
        add("collateral: unknown asset", f"row {r}", _csv_text(df), ("ZZZ",))
    add("collateral: file", "empty", "", ())
    add("collateral: file", "UTF-16", _csv_text(base).encode("utf-16"), ())
    c.cases[-1].same_as = c.baseline(["margin", pos, mk, "--collateral", DATA / "example_collateral.csv"])
    c.cases[-1].category = "collateral: encoding (read as the original)"
    p = c.tmp / f"c{len(c.cases) - 1:04d}" / "coll.csv"
    c.cases[-1].run = lambda p=p: cli(["margin", pos, mk, "--collateral", p])


def exchange_margin_cases(c: Corpus) -> None:
    base = pd.read_csv(DATA / "example_exchange_margin.csv", dtype=str, keep_default_na=False)
    pos, mk = DATA / "example_positions.csv", DATA / "example_market.json"
    rng = random.Random(9)

    def add(cat: str, label: str, content: str | bytes, where: tuple[str, ...]) -> None:
        p = c.file("exch.csv", content)
        argv = ["compare", pos, mk, "--exchange-margin", p]
        c.add(cat, label, lambda a=argv: cli(a), ("exch.csv", *where))

    for col, vals in (("exchange_im", ["NaN", "inf", "-5", "abc", "1e400"]), ("exchange_mm", ["inf", "-1", "x"])):
        for v in vals:
            r = rng.randrange(len(base))
            df = base.copy()
            df.loc[r, col] = v
            add(f"exchange margin: bad number ({col})", f"{col}={v} row {r}", _csv_text(df), (f"row {r}", col))
    for col, typo in (("exchange_im", "exchnage_im"), ("account", "acount"), ("currency", "currncy")):
        add("exchange margin: typo'd column", f"{col}->{typo}", _csv_text(base.rename(columns={col: typo})), (typo,))
    df = pd.concat([base, base.iloc[[1]]], ignore_index=True)
    add("exchange margin: duplicate row", "account twice", _csv_text(df), ("duplicate", base.loc[1, "account"]))
    df = base.copy()
    df.loc[0, "currency"] = "US$"
    add("exchange margin: bad value", "currency US$", _csv_text(df), ("row 0", "currency"))
    add("exchange margin: file", "empty", "", ())


def history_cases(c: Corpus) -> None:
    base = pd.read_csv(DATA / "btc_usd_daily.csv", dtype=str, keep_default_na=False).iloc[-800:]
    base = base.reset_index(drop=True)
    rng = random.Random(4)

    def add(cat: str, label: str, df_or_text: pd.DataFrame | str, where: tuple[str, ...], cmd: str = "calibrate"):
        p = c.file("hist.csv", df_or_text if isinstance(df_or_text, str) else _csv_text(df_or_text))
        argv = [cmd, p] if cmd == "calibrate" else [cmd, p, "--step", "20", "--margin", "stress-grid"]
        c.add(cat, f"{label} [{cmd}]", lambda a=argv: cli(a), ("hist.csv", *where))

    for v in ("NaN", "-100", "0", "abc", "inf"):
        r = rng.randrange(10, len(base) - 10)
        df = base.copy()
        df.loc[r, "Adj Close"] = v
        add("history: bad price", f"Adj Close={v} row {r}", df, ("adj close", f"row {r}"))
    for v in ("2300-01-01", "not a date"):
        r = rng.randrange(10, len(base) - 10)
        df = base.copy()
        df.loc[r, "Date"] = v
        add("history: bad date", f"Date={v} row {r}", df, ("date",))
    df = base.copy()
    df.loc[20, "Date"] = df.loc[19, "Date"]
    add("history: duplicate date", "row 20", df, ("date", "duplicate"))
    add("history: typo'd column", "Close->Clsoe", base.rename(columns={"Close": "Clsoe", "Adj Close": "Adj Clsoe"}),
        ("price",))
    add("history: file", "empty", "", ())
    add("history: file", "two rows", base.iloc[:2], ("rows",))


# ------------------------------------------------------------------------------------------- models
MODEL_RUNS = {
    "greeks-default": ["margin"], "deribit-sm": ["margin"], "tims-pm": ["margin"], "deribit-pm": ["margin"],
    "span": ["margin"], "derive-pm2": ["margin"], "simm-2.6": ["margin"],
}


def _model_cases(c: Corpus, name: str, n_numbers: int, rng: random.Random) -> None:
    path = MODELS / f"{name}.toml"
    raw = tomllib.loads(path.read_text())
    pos, mk = DATA / "example_positions.csv", DATA / "example_market.json"

    def add(cat: str, label: str, d: dict[str, Any] | str, where: tuple[str, ...]) -> None:
        text = d if isinstance(d, str) else tomli_w.dumps(d)
        p = c.file(f"{name}-bad.toml", text)
        argv = ["margin", pos, mk, "--model", p]
        c.add(f"model file: {cat}", f"{name}: {label}", lambda a=argv: cli(a), (f"{name}-bad.toml", *where))

    nums = [(p, v) for p, v in _walk_numbers(raw) if p[0] != "meta"]
    picks = rng.sample(nums, min(n_numbers, len(nums)))
    for p, _v in picks:
        key = _key_token(p)
        for label, new in (("string", "abc"), ("nan", float("nan")), ("inf", float("inf"))):
            d = tomllib.loads(path.read_text())
            _set(d, p, new)
            add(f"{label} value", f"{_dotted(p)} = {new!r}", d, (key,))
    # magnitudes: negative / percent-for-fraction on non-negative parameters
    for p, v in rng.sample(nums, min(n_numbers, len(nums))):
        key = _key_token(p)
        if (isinstance(v, float) and 0.01 < v < 1 and "correlation" not in _dotted(p)
                and "matrix" not in _dotted(p)):  # x 100 is then > 1: no longer a fraction
            d = tomllib.loads(path.read_text())
            _set(d, p, v * 100)
            add("percent for a fraction", f"{_dotted(p)} = {v * 100!r}", d, (key,))
    # unknown key next to a known one (typo)
    tables = [(p, t) for p, t in _tables(raw) if p and p[0] != "meta" and t and str(p[-1]) not in FREE_KEYS]
    for p, t in rng.sample(tables, min(4, len(tables))):
        key = rng.choice([k for k in t if not isinstance(t[k], dict)] or list(t))
        typo = key[:-1] + key[-1] * 2
        d = tomllib.loads(path.read_text())
        tgt = _get(d, p)
        tgt[typo] = tgt.pop(key)
        add("unknown key", f"{_dotted((*p, key))} -> {typo}", d, (typo, key))
    d = tomllib.loads(path.read_text())
    d["meta"]["methodology"] = raw["meta"]["methodology"] + "x"
    add("unknown methodology", "methodology typo", d, ("methodology",))
    d = tomllib.loads(path.read_text())
    d["meta"]["status"] = "publishd"
    add("meta/domain", "status typo", d, ("status",))
    d = tomllib.loads(path.read_text())
    d["domain"] = {"underlyings": ["*"], "kinds": ["optoin"], "settlement": ["linear"]}
    add("meta/domain", "domain kind typo", d, ("kinds", "optoin"))
    d = tomllib.loads(path.read_text())
    d["domain"] = {"underlyings": ["*"], "kinds": ["option"], "settlement": ["coin"]}
    add("meta/domain", "domain settlement", d, ("settlement", "coin"))
    d = tomllib.loads(path.read_text())
    d["domian"] = {"underlyings": ["*"]}
    add("unknown key", "[domian]", d, ("domian", "domain"))
    d = tomllib.loads(path.read_text())
    del d["meta"]
    add("missing table", "no [meta]", d, ("meta",))
    text = path.read_text()
    add("file", "truncated TOML", text[: len(text) // 2].rsplit("\n", 1)[0] + "\n[broken", ())
    add("file", "empty", "", ("methodology",))


#: tables whose keys are names chosen by the user (underlyings, groups, products, pairs): a renamed key there
#: is a different name, not a detectable typo
FREE_KEYS = {"correlations", "offsets", "members", "overrides", "products", "price_shock_by_underlying",
             "price_shock_down_by_underlying", "price_shock_up_by_underlying", "shock_by_underlying",
             "shock_down_by_underlying", "spread_rates"}


def _tables(d: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    out = []
    if isinstance(d, dict):
        out.append((path, d))
        for k, v in d.items():
            out += _tables(v, (*path, k))
    return out


def model_cases(c: Corpus) -> None:
    rng = random.Random(21)
    for name in MODEL_RUNS:
        _model_cases(c, name, 5, rng)
    pos, mk = DATA / "example_positions.csv", DATA / "example_market.json"

    def add(cat: str, label: str, name: str, d: dict[str, Any], where: tuple[str, ...]) -> None:
        p = c.file(f"{name}-bad.toml", tomli_w.dumps(d))
        c.add(f"model file: {cat}", f"{name}: {label}", lambda: cli(["margin", pos, mk, "--model", p]),
              (f"{name}-bad.toml", *where))

    gd = tomllib.loads((MODELS / "greeks-default.toml").read_text())
    for v in (1.5, -1.2, float("nan")):
        d = json.loads(json.dumps(gd))
        d["aggregate"]["default_correlation"] = v
        add("correlation out of [-1, 1]", f"default_correlation {v}", "greeks-default", d, ("default_correlation",))
    d = json.loads(json.dumps(gd))
    d["aggregate"]["correlations"] = {"BTC/ETH": 0.9, "BTC/SPX": 0.9, "ETH/SPX": -0.9}
    add("correlations not PSD", "BTC/ETH .9, BTC/SPX .9, ETH/SPX -.9", "greeks-default", d, ("correlations", "PSD"))
    for name in ("simm-2.6", "simm-2.5"):
        raw = tomllib.loads((MODELS / f"{name}.toml").read_text())
        d = json.loads(json.dumps(raw))
        m = d["risk_class_correlation"]["matrix"]
        m[0][1] = m[1][0] = 1.7
        add("correlation out of [-1, 1]", "risk_class_correlation 1.7", name, d, ("risk_class_correlation",))
        d = json.loads(json.dumps(raw))
        m = d["equity"]["inter_bucket_correlation"]
        for i in range(3):
            for j in range(3):
                if i != j:
                    m[i][j] = -0.9 if {i, j} == {1, 2} else 0.95
        add("correlations not PSD", "equity inter-bucket", name, d, ("inter_bucket_correlation", "PSD"))
        d = json.loads(json.dumps(raw))
        d["equity"]["intra_bucket_correlation"][0] = 1.2
        add("correlation out of [-1, 1]", "equity intra-bucket 1.2", name, d, ("intra_bucket_correlation",))
        d = json.loads(json.dumps(raw))
        d["equity"]["delta"]["risk_weight"]["10d"] = d["equity"]["delta"]["risk_weight"]["10d"][:-3]
        add("wrong length", "equity delta risk weights short", name, d, ("risk_weight",))


# ---------------------------------------------------------------------------------- validation cases
def validation_cases(c: Corpus) -> None:
    rng = random.Random(33)
    for suite, folder, fname in (("deribit-pm", "deribit_pm", "cases.json"), ("derive-pm2", "derive_pm2", "cases.json"),
                                 ("span", "span", "cases.json"), ("simm", "simm", "cases.json")):
        src = CASES / folder / fname
        raw = json.loads(src.read_text())
        text = json.dumps(raw, indent=1)

        def add(cat: str, label: str, content: str, where: tuple[str, ...], suite: str = suite,
                folder: str = folder) -> None:
            p = c.file(f"{folder}_cases.json", content)
            c.add(f"validation case: {cat}", f"{suite}: {label}", lambda: cli(["validate", suite, "--cases", p]),
                  (f"{folder}_cases.json", *where))

        add("file", "truncated JSON", text[: len(text) // 2], ("line",))
        add("file", "empty", "", ())
        add("file", "wrong top-level type", json.dumps("cases"), ())
        nums = [(p, v) for p, v in _walk_numbers(raw) if "expected" not in map(str, p) and "id" not in p]
        for p, _v in rng.sample(nums, min(6, len(nums))):
            for label, new in (("NaN", float("nan")), ("string", "abc")):
                d = json.loads(text)
                _set(d, p, new)
                add(f"{label} value", _dotted(p), json.dumps(d, allow_nan=True), (_key_token(p),))
        tables = [(p, t) for p, t in _tables(raw if isinstance(raw, dict) else {"_": raw})
                  if t and not any(isinstance(k, int) for k in p)]
        first = raw[0] if isinstance(raw, list) else raw
        for key in rng.sample([k for k in first if k not in ("id", "source", "description", "name")], 2):
            d = json.loads(text)
            tgt = d[0] if isinstance(d, list) else d
            typo = key + "s"
            tgt[typo] = tgt.pop(key)
            add("unknown key", f"{key}->{typo}", json.dumps(d), (typo,))
        del tables
    src = CASES / "deribit_chain" / "btc_2020-05-14.csv"
    base = pd.read_csv(src, dtype=str, keep_default_na=False)
    for col, v, fld in (("mark_iv", "NaN", "vol"), ("strike", "-1", "strike"), ("underlying_price", "abc", ""),
                          ("expiration_timestamp", "x", ""), ("mark_iv", "1e400", "vol"), ("mark_iv", "-20", "vol"),
                          ("strike", "0", "strike")):
        r = rng.randrange(len(base))
        df = base.copy()
        df.loc[r, col] = v
        p = c.file("chain.csv", _csv_text(df))
        c.add("validation case: deribit chain", f"{col}={v} row {r}",
              lambda p=p: cli(["validate", "deribit-chain", "--cases", p]), ("chain.csv", f"row {r}", col))
        if fld:
            c.cases[-1].case_fail = (base.loc[r, "instrument_name"], fld)
    p = c.file("chain.csv", _csv_text(base.rename(columns={"mark_iv": "markiv"})))
    c.add("validation case: deribit chain", "mark_iv->markiv", lambda p=p: cli(["validate", "deribit-chain",
          "--cases", p]), ("chain.csv", "markiv"))
    c.add("validation case: file", "missing case file", lambda: cli(["validate", "span", "--cases",
          c.tmp / "nope.json"]), ("nope.json",))


# --------------------------------------------------------------------------------- CLI arguments
def argument_cases(c: Corpus) -> None:
    pos, mk = DATA / "example_positions.csv", DATA / "example_market.json"
    outs = [("unwritable --out (under a file)", lambda: pos / "out.txt"),
            ("unwritable --out (a directory)", lambda: c.tmp)]
    for label, out in outs:
        for cmd in (["margin", pos, mk], ["greeks", pos, mk], ["whatif", pos, mk, "--trades", pos],
                    ["compare", pos, mk, "--exchange-margin", DATA / "example_exchange_margin.csv"]):
            c.add("CLI: unwritable output", f"{label} [{cmd[0]}]", lambda cmd=cmd, out=out: cli([*cmd, "--out", out()]),
                  ("cannot write", "out.txt" if "file" in label else c.tmp.name))
    c.add("CLI: unwritable output", "validate --json under a file",
          lambda: cli(["validate", "span", "--json", pos / "x.json"]), ("x.json",))
    for argv, where in (
        (["liquidate", pos, mk, "--account", "NOPE"], ("NOPE",)),
        (["liquidate", pos, mk, "--account", "MIXED", "--slippage", "-0.5"], ("slippage",)),
        (["liquidate", pos, mk, "--account", "MIXED", "--slippage", "nan"], ("slippage",)),
        (["liquidate", pos, mk, "--account", "MIXED", "--step-fraction", "0"], ("step",)),
        (["liquidate", pos, mk, "--account", "MIXED", "--step-fraction", "1.5"], ("step",)),
        (["liquidate", pos, mk, "--account", "MIXED", "--move", "BTC=abc"], ("move",)),
        (["cascade", pos, mk, "--shock", "-1.5"], ("shock",)),
        (["cascade", pos, mk, "--shock", "nan"], ("shock",)),
        (["cascade", pos, mk, "--shock", "-0.2", "--liquidity", "-5"], ("liquidity",)),
        (["cascade", pos, mk, "--shock", "-0.2", "--liquidity", "BTC=abc"], ("liquidity",)),
        (["cascade", pos, mk, "--shock", "-0.2", "--max-rounds", "0"], ("max-rounds",)),
        (["cascade", pos, mk, "--shock", "-0.2", "--underlying", "DOGE"], ("DOGE",)),
        (["solvency", pos, mk, "--move", "BTC=-2"], ("move",)),
        (["solvency", pos, mk, "--move", "DOGE=-0.1"], ("DOGE",)),
        (["solvency", pos, mk, "--move", "BTC"], ("move",)),
        (["compare", pos, mk, "--exchange-margin", DATA / "example_exchange_margin.csv", "--threshold", "nan"],
         ("threshold",)),
        (["compare", pos, mk, "--exchange-margin", DATA / "example_exchange_margin.csv", "--threshold", "-1"],
         ("threshold",)),
        (["compare", pos, mk, "--exchange-margin", DATA / "example_exchange_margin.csv", "--drivers", "-2"],
         ("drivers",)),
        (["sidebyside", pos, mk, "--models", "greeks-defualt"], ("greeks-defualt",)),
        (["margin", pos, mk, "--model", "greeks-defualt"], ("greeks-defualt", "greeks-default")),
        (["margin", pos, mk, "--explain", "NOPE"], ("NOPE",)),
        (["greeks", pos, mk, "--by", "acount"], ("acount",)),
        (["population", "--accounts", "-5", "--out", c.tmp / "pop"], ("accounts",)),
        (["population", "--accounts", "0", "--out", c.tmp / "pop0"], ("accounts",)),
        (["calibrate", "btc", "--confidence", "1.5"], ("confidence",)),
        (["calibrate", "btc", "--confidence", "99"], ("confidence",)),
        (["calibrate", "btc", "--mpor", "0"], ("mpor",)),
        (["calibrate", "btc", "--lambda", "1.5", "--method", "fhs"], ("lambda",)),
        (["calibrate", "btc", "--scale", "-1"], ("scale",)),
        (["calibrate", "btc", "--start", "2300-01-01"], ("start",)),
        (["calibrate", "btc", "--start", "2020-13-01"], ("start",)),
        (["calibrate", "nosuchhistory"], ("nosuchhistory",)),
        (["backtest", "btc", "--step", "0"], ("step",)),
        (["backtest", "btc", "--confidence", "-0.5"], ("confidence",)),
        (["sweep", "btc", "--confidence", "0.99,abc", "--serial"], ("confidence",)),
        (["sweep", "btc", "--mpor", "0", "--serial"], ("mpor",)),
        (["liquidate", pos, mk, "--account", "MIXED", "--untradable", "NOPE-INSTR"], ("NOPE-INSTR", "untradable")),
        (["validate", "all", "--cases", c.tmp / "no_cases_here"], ("no_cases_here",)),
        (["population", "--accounts", "5", "--out", pos], ("cannot write",)),
        (["margin", pos, mk, "--collateral", DATA], ("data",)),
    ):
        if argv[0] in ("solvency", "liquidate", "cascade"):  # they need the accounts' collateral (or --no-collateral)
            argv = [*argv, "--collateral", DATA / "example_collateral.csv"]
        c.add("CLI: bad argument value", " ".join(map(str, argv[:1] + argv[3:] if len(argv) > 3 else argv))[:70],
              lambda a=argv: cli(a), where)
    # a handful through the console script (fresh process: exit code and no traceback)
    for argv, where in (
        (["margin", c.tmp / "nope.csv", mk], ("nope.csv",)),
        (["greeks", pos, mk, "--out", pos / "x.txt"], ("x.txt",)),
        (["margin", pos, mk, "--model", "nope-model"], ("nope-model",)),
        (["validate", "span", "--cases", pos], ("example_positions.csv",)),
        (["calibrate", "btc", "--confidence", "2"], ("confidence",)),
    ):
        c.add("CLI: subprocess", " ".join(map(str, argv))[-60:], lambda a=argv: cli_subprocess(a), where)


# ------------------------------------------------------------------------------------------------ API
def api_cases(c: Corpus) -> None:
    import greeksmargin as gm
    from greeksmargin.book.collateral import load_collateral
    from greeksmargin.solvency.assess import assess_solvency

    pos_path, mk_path = DATA / "example_positions.csv", DATA / "example_market.json"
    pos_df = pd.read_csv(pos_path)
    market = gm.load_market(mk_path)
    positions = gm.load_positions(pos_path, valuation_time=market.valuation_time)
    wrong: list[tuple[str, Any]] = [("None", None), ("int", 42), ("list", [1, 2]), ("bytes", b"abc"),
                                    ("float nan", float("nan"))]
    for label, v in [*wrong, ("dict", {"a": 1}), ("DataFrame", pos_df)]:
        c.add("API: wrong argument type", f"load_market({label})", api(lambda v=v: gm.load_market(v)),
              ("<dict>", "'a'") if label == "dict" else ("source",))
    for label, v in [*wrong, ("dict", {"a": 1}), ("MarketSnapshot", market)]:
        c.add("API: wrong argument type", f"load_positions({label})", api(lambda v=v: gm.load_positions(v)),
              ("source",))
    for label, v in [*wrong, ("dict", {"a": 1}), ("DataFrame", pos_df)]:
        c.add("API: wrong argument type", f"load_model({label})", api(lambda v=v: gm.load_model(v)),
              ("name_or_path",))
        if label != "DataFrame":  # a positions DataFrame is a valid positions argument
            c.add("API: wrong argument type", f"compute_margin(positions={label})",
                  api(lambda v=v: gm.compute_margin(v, market)), ("positions",))
        c.add("API: wrong argument type", f"compute_margin(market={label})",
              api(lambda v=v: gm.compute_margin(positions, v)), ("<dict>", "'a'") if label == "dict" else ("market",))
        c.add("API: wrong argument type", f"compute_margin(model={label})",
              api(lambda v=v: gm.compute_margin(positions, market, v)), ("model",))
        c.add("API: wrong argument type", f"price_positions(market={label})",
              api(lambda v=v: gm.price_positions(positions, v)), ("market",))
        c.add("API: wrong argument type", f"load_collateral({label})", api(lambda v=v: load_collateral(v)),
              ("<DataFrame>", "asset") if label == "DataFrame" else ("source",))
    c.add("API: wrong argument type", "compute_margin(market=positions DataFrame)",
          api(lambda: gm.compute_margin(positions, pos_df)), ("market",))
    c.add("API: wrong argument type", "compute_margin(positions=market path)",
          api(lambda: gm.compute_margin(mk_path, market)), ("market.json",))
    c.add("API: wrong argument value", "compute_margin(errors='ignore')",
          api(lambda: gm.compute_margin(positions, market, errors="ignore")), ("errors",))
    c.add("API: wrong argument value", "compute_margin(backend='gpu')",
          api(lambda: gm.compute_margin(positions, market, backend="gpu")), ("backend",))
    c.add("API: wrong argument value", "compute_margin(chunk=0)",
          api(lambda: gm.compute_margin(positions, market, chunk=0)), ("chunk",))
    c.add("API: wrong argument type", "aggregate_greeks(by=5)",
          api(lambda: gm.aggregate_greeks(gm.price_positions(positions, market), by=5)), ("by",))
    c.add("API: wrong argument type", "assess_solvency(collateral=123)",
          api(lambda: assess_solvency(positions, market, 123)), ("collateral",))
    # DataFrames with bad content
    for col, v in (("quantity", float("inf")), ("strike", -1.0), ("multiplier", -2.0), ("quantity", 1e300),
                   ("expiry", "2300-01-01"), ("kind", "opt")):
        df = pos_df.copy()
        if col == "expiry" or col == "kind":
            df[col] = df[col].astype(object)
        r = int(pos_df.index[pos_df["kind"] == "option"][3])
        df.loc[r, col] = v
        c.add("API: bad DataFrame", f"{col}={v!r} row {r}", api(lambda df=df: gm.compute_margin(df, market)),
              ("<DataFrame>", f"row {r}", col))
    df = pos_df.copy()
    df.columns = [*df.columns[:-1], "quantity"]
    c.add("API: bad DataFrame", "duplicate column label", api(lambda df=df: gm.load_positions(df)),
          ("quantity", "duplicate"))
    df = pos_df.rename(columns={"multiplier": "multipler"})
    c.add("API: bad DataFrame", "typo'd column", api(lambda df=df: gm.load_positions(df)), ("multipler",))
    d = json.loads(mk_path.read_text())
    d["underlyings"]["BTC"]["spot"] = float("inf")
    c.add("API: bad dict", "market dict spot inf", api(lambda d=d: gm.load_market(d)), ("spot", "BTC"))
    d2 = json.loads(mk_path.read_text())
    d2["valuation_time"] = "2300-01-01"
    c.add("API: bad dict", "market dict valuation_time 2300", api(lambda d=d2: gm.load_market(d)),
          ("valuation_time",))


def build(tmp: Path) -> Corpus:
    c = Corpus(tmp)
    for gen in (positions_cases, market_cases, collateral_cases, exchange_margin_cases, history_cases, model_cases,
                validation_cases, argument_cases, api_cases):
        gen(c)
    return c


def run_all(tmp: Path) -> tuple[Corpus, dict[str, Counter[str]]]:
    c = build(tmp)
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for case in c.cases:
        classify(case)
        table[case.category][case.outcome] += 1
    return c, table


def format_table(table: dict[str, Counter[str]]) -> str:
    cols = ["cases", "crash", "silent", "unclear", "clear", "ok"]
    lines = [f"{'category':58s} " + " ".join(f"{k:>7s}" for k in cols)]
    tot: Counter[str] = Counter()
    for cat in sorted(table):
        cnt = table[cat]
        n = sum(cnt.values())
        tot.update(cnt)
        lines.append(f"{cat[:58]:58s} " + " ".join(f"{v:7d}" for v in [n, *(cnt[k] for k in cols[1:])]))
    n = sum(tot.values())
    lines.append(f"{'TOTAL':58s} " + " ".join(f"{v:7d}" for v in [n, *(tot[k] for k in cols[1:])]))
    errors = tot["clear"] + tot["unclear"]
    lines.append(f"clear errors: {tot['clear']} of {errors} errors ({100 * tot['clear'] / max(errors, 1):.1f} %); "
                 f"valid re-encodings read as the original: {tot['ok']}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    import tempfile
    import time

    verbose = "-v" in sys.argv
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        corpus, tab = run_all(Path(d))
        print(format_table(tab))
        print(f"{len(corpus.cases)} cases in {time.time() - t0:.1f} s")
        if verbose:
            for case in corpus.cases:
                if case.outcome not in ("clear", "ok"):
                    msg = re.sub(r"\s+", " ", case.message)[:300]
                    print(f"[{case.outcome}] {case.category} | {case.label} | want {case.where} | {msg}")
        shutil.rmtree(d, ignore_errors=True)
