"""Deribit API v2 responses -> positions, market snapshot, collateral and exchange-margin tables.

An account folder holds the JSON-RPC responses of one Deribit account (one API key) at one instant, each
wrapped ``{"jsonrpc", "id", "result", "usIn", "usOut", ...}`` or the bare ``result``:

==============================  ========================================================================
file                            Deribit API v2 method
==============================  ========================================================================
``positions.json``              ``private/get_positions`` (``currency=any``): every open position
``instruments.json``            ``public/get_instruments`` (``expired=false``): one response, or
                                ``{CCY: response}`` when several currencies were asked
``book_summary_<CCY>.json``     ``public/get_book_summary_by_currency`` (one per currency: BTC, ETH, USDC)
``account_summary_<CCY>.json``  ``private/get_account_summary`` (``extended=true``), one per currency
``index.json``                  ``public/get_index_price`` (``index_name=<coin>_usd``): one response, or
                                ``{index_name or coin: response}``; coins it does not cover take the book
                                summary's ``estimated_delivery_price`` (the same index)
==============================  ========================================================================

Field and unit mapping (API -> product)
---------------------------------------
* **valuation time** = the book summaries' ``creation_timestamp`` (ms, UTC), the instant the marks were
  taken (the private calls are made earlier; their ``usOut`` is not the snapshot time).
* **positions.csv**: ``instrument`` = ``instrument_name``; ``underlying`` = instrument ``base_currency``;
  ``kind`` = ``option`` | ``future`` | ``perpetual`` (a ``future`` with ``settlement_period = perpetual``);
  ``option_type``, ``strike`` from the instrument; ``expiry`` = ``expiration_timestamp`` (ISO UTC; empty for a
  perpetual, whose 32503708800000 is a placeholder); ``settlement`` = ``inverse`` for ``instrument_type
  = reversed``, ``linear`` for ``linear``; ``premium_currency`` = ``settlement_currency``. Quantities
  (``size`` is Deribit's signed amount, see :mod:`greeksmargin.book.quantity_units` for the product's unit):

  - option (inverse or USDC-linear): ``size`` is in coin: ``quantity = size``, ``multiplier = 1``;
  - inverse future / perpetual: ``size`` is in **USD**: ``quantity = size_currency`` (coin), or
    ``size / mark_price`` when ``size_currency`` is absent (the two must agree to 1e-6 relative);
  - linear future / perpetual (``BTC_USDC-PERPETUAL``): ``size`` is in coin: ``quantity = size /
    contract_size`` contracts, ``multiplier = contract_size``;
  - a position of size 0 (Deribit lists instruments traded in the session) is left out.

  An instrument missing from ``instruments.json`` (e.g. one expiring at the snapshot, no longer listed
  with ``expired=false``) is read from its name (:mod:`greeksmargin.adapters.names`, expiry 08:00 UTC);
  this is stated in ``notes``.
* **market.json**, one block per base coin: ``spot`` = index price; ``currency`` = the coin; ``rate`` =
  options' ``interest_rate`` (flat when all equal, else a curve by expiry); ``forwards`` = options'
  ``underlying_price`` per expiry (median over the expiry's options), and the dated future's ``mark_price``
  for an expiry without options; ``perpetual_mark`` = ``<COIN>-PERPETUAL`` mark (else the USDC
  perpetual's); ``vols`` = every option's ``mark_iv`` / 100 (percent -> decimal) and a ``surface``:
  per live expiry a log-moneyness slice ``ln(K / F)`` -> mean ``mark_iv`` of the calls and puts at ``K``
  (the skew as quoted); ``fx_to_usd`` = ``{"USD": 1, "USDC": 1}``. A ``mark_iv`` that is not in (0, 500]
  percent is left out (noted); a held option that has not expired needs one. Option ``mark_price``,
  ``settlement_price`` and the position Greeks are not inputs.
* **collateral.csv**: per account summary, asset = its currency, amount = ``balance +
  futures_session_upl`` (Deribit's equity less the options' value: the product adds the options'
  mark-to-market itself and takes futures P&L as settled); price and haircuts left to the product's
  defaults.
* **exchange_margin.csv** (format of :func:`greeksmargin.engine.compare.normalize_exchange_margin`):
  ``initial_margin``, ``maintenance_margin`` of the account summaries. When the held positions settle in
  one coin only, that coin's summary in the coin; otherwise the summaries of the currencies the positions
  settle in, converted to USD (coin at its index, USDC at 1) and summed, currency ``USD``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import io
from ..errors import InputError
from ..units import MAX_DECIMAL_VOL
from .names import parse_name

__all__ = [
    "POSITION_COLUMNS",
    "describe_instrument",
    "from_responses",
    "is_account_folder",
    "position_row",
    "product_quantity",
    "read",
    "read_all",
    "snapshot_from_chain",
    "write",
]

POSITION_COLUMNS = ("account", "instrument", "underlying", "kind", "option_type", "strike", "expiry", "quantity",
                    "multiplier", "settlement", "premium_currency")
#: Deribit's expiration_timestamp of a perpetual (year 3000): a placeholder, not an expiry
PERPETUAL_EXPIRATION_MS = 32503708800000
#: size / mark_price and size_currency of an inverse future must agree to this (Deribit rounds size_currency)
SIZE_CURRENCY_RTOL = 1e-6
STABLE_USD = {"USD": 1.0, "USDC": 1.0}
_SETTLEMENT = {"reversed": "inverse", "linear": "linear"}


# ------------------------------------------------------------------------------------------- helpers
def unwrap(doc: Any, file: str) -> Any:
    """The ``result`` of a JSON-RPC envelope (or ``doc`` itself when bare); an ``error`` reply is an InputError."""
    if isinstance(doc, Mapping) and "jsonrpc" in doc:
        if "error" in doc:
            err = doc["error"]
            msg = err.get("message") if isinstance(err, Mapping) else err
            raise InputError(f"the response is a JSON-RPC error: {msg!r}", file=file)
        if "result" not in doc:
            raise InputError("JSON-RPC envelope without 'result'", file=file)
        return doc["result"]
    return doc


def _iso_ms(ms: Any) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(ms: Any) -> pd.Timestamp:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC")


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + "Z" if ts.microsecond == 0 else ts.isoformat().replace("+00:00", "Z")


def _list(result: Any, file: str, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(result, list) or not all(isinstance(r, Mapping) for r in result):
        raise InputError(f"expected a list of {what} objects in 'result'", file=file)
    return result


def _need(rec: Mapping[str, Any], key: str, file: str, row: object, name: str) -> Any:
    if key not in rec or rec[key] is None:
        raise InputError(f"{name}: missing field '{key}'", file=file, row=row, column=key)
    return rec[key]


def _number(x: Any, file: str, row: object, column: str, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name}: not a number ({x!r})", file=file, row=row, column=column) from None
    if not np.isfinite(v):
        raise InputError(f"{name}: not a finite number ({x!r})", file=file, row=row, column=column)
    return v


# ------------------------------------------------------------------------------------------- reading
def is_account_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds a ``positions.json`` (one Deribit account)."""
    return bool(io.list_files(folder, "positions.json"))


def _load(folder: Path) -> dict[str, Any]:
    """Read the responses of one account folder (the only disk access of this module, through ``io``)."""
    def one(name: str, required: bool) -> Any:
        files = io.list_files(folder, name)
        if not files:
            if required:
                raise InputError(f"missing file {name} in the Deribit folder", file=str(folder / name))
            return None
        return io.read_json(files[0])

    def per_ccy(prefix: str) -> dict[str, tuple[str, Any]]:
        files = io.list_files(folder, f"{prefix}*.json")
        return {p.stem[len(prefix):].upper(): (str(p), io.read_json(p)) for p in files}

    raw = {
        "positions": (str(folder / "positions.json"), one("positions.json", True)),
        "instruments": (str(folder / "instruments.json"), one("instruments.json", True)),
        "book_summaries": per_ccy("book_summary_"),
        "account_summaries": per_ccy("account_summary_"),
        "index": (str(folder / "index.json"), one("index.json", False)),
        "requests": one("requests.json", False),
    }
    if not raw["book_summaries"]:
        raise InputError("no book_summary_<CCY>.json in the Deribit folder (the marks and the valuation time)",
                         file=str(folder))
    return raw


def read(folder: str | Path, *, account: str | None = None) -> dict[str, Any]:
    """Import one Deribit account folder (files in the module docstring).

    Parameters
    ----------
    folder : str or Path
        The folder of JSON-RPC responses.
    account : str, optional
        Account name in the tables (default: the account summaries' ``username``, else the folder name).

    Returns
    -------
    dict
        ``positions`` (DataFrame, :data:`POSITION_COLUMNS`, product units), ``market`` (MarketSnapshot),
        ``market_dict`` (its file form), ``collateral`` (DataFrame ``account, asset, amount``),
        ``exchange_margin`` (DataFrame ``account, exchange_im, exchange_mm, currency``), ``notes`` (list of
        str: what was inferred or left out).

    Raises
    ------
    InputError
        A missing file or field, an unknown instrument kind or type, inconsistent sizes; names the file,
        the row (element of ``result``) and the field.
    """
    p = Path(folder)
    if not p.is_dir():
        raise InputError("not a folder of Deribit API responses", file=str(p))
    raw = _load(p)
    return from_responses(raw, account=account, default_account=p.name)


def read_all(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Import one account folder, or every account sub-folder of ``folder``; ``{name: read(...)}``."""
    p = Path(folder)
    if is_account_folder(p):
        return {p.name: read(p)}
    subs = [d for d in io.list_files(p, "*") if d.is_dir() and is_account_folder(d)]
    if not subs:
        raise InputError("neither an account folder (positions.json) nor a folder of account folders", file=str(p))
    return {d.name: read(d) for d in subs}


def _instruments(raw: tuple[str, Any]) -> dict[str, Mapping[str, Any]]:
    file, doc = raw
    res = unwrap(doc, file)
    parts: list[Any]
    if isinstance(res, Mapping):  # {CCY: response}
        parts = [unwrap(v, file) for v in res.values()]
    else:
        parts = [res]
    out: dict[str, Mapping[str, Any]] = {}
    for part in parts:
        for i, rec in enumerate(_list(part, file, "instrument")):
            out[str(_need(rec, "instrument_name", file, i, "instrument"))] = rec
    return out


# ----------------------------------------------------------------------------------------- responses
def from_responses(raw: Mapping[str, Any], *, account: str | None = None,
                   default_account: str = "deribit") -> dict[str, Any]:
    """Build the product's tables from parsed responses (pure; :func:`read` does the disk).

    Parameters
    ----------
    raw : mapping
        ``positions``, ``instruments``, ``index``: ``(file, parsed JSON)``; ``book_summaries``,
        ``account_summaries``: ``{CCY: (file, parsed JSON)}``.
    account : str, optional
        Account name (default: the account summaries' ``username``, else ``default_account``).
    default_account : str
        Fallback account name.

    Returns
    -------
    dict
        As :func:`read`.
    """
    from greeksmargin.book.market import load_market

    notes: list[str] = []
    instruments = _instruments(raw["instruments"])
    summaries = {ccy: (f, unwrap(doc, f)) for ccy, (f, doc) in raw["account_summaries"].items()}
    acct = account or _account_name(summaries) or default_account
    book = _book_frame(raw["book_summaries"])
    vt_ms = book["creation_timestamp"]
    if vt_ms.nunique() > 1:
        notes.append(f"book summaries taken at {vt_ms.nunique()} instants ({_iso_ms(vt_ms.min())} .. "
                     f"{_iso_ms(vt_ms.max())}): valuation time = the latest")
    vt = _ts(vt_ms.max())
    pos = _positions(raw["positions"], instruments, book, acct, notes)
    index = _index_prices(raw.get("index"), raw.get("requests"), book, pos, notes)
    market_dict = _market(book, instruments, index, vt, pos, notes)
    market = load_market(market_dict)
    spots = {u: market.spot(u) for u in market.underlyings}
    from greeksmargin.book.quantity_units import flag_implausible_inverse

    for _, f in flag_implausible_inverse(pos, spots).iterrows():
        notes.append(f"row {f['row']} ({f['instrument']}): {f['reason']}")
    collateral = _collateral(summaries, acct)
    exch = _exchange_margin(summaries, pos, spots, acct, notes)
    return {"positions": pos, "market": market, "market_dict": market_dict, "collateral": collateral,
            "exchange_margin": exch, "notes": notes}


def _account_name(summaries: Mapping[str, tuple[str, Any]]) -> str | None:
    names = {str(res.get("username")) for _, res in summaries.values() if isinstance(res, Mapping)
             and res.get("username")}
    if len(names) > 1:
        raise InputError(f"account summaries of different accounts: {sorted(names)}", file="account_summary_*.json")
    return names.pop() if names else None


def _book_frame(book_summaries: Mapping[str, tuple[str, Any]]) -> pd.DataFrame:
    rows = []
    for ccy, (file, doc) in sorted(book_summaries.items()):
        for i, rec in enumerate(_list(unwrap(doc, file), file, "book summary")):
            name = str(_need(rec, "instrument_name", file, i, "book summary"))
            r = {"instrument_name": name, "file": file, "row": i, "summary_currency": ccy,
                 "creation_timestamp": int(_number(_need(rec, "creation_timestamp", file, i, name), file, i,
                                                   "creation_timestamp", name)),
                 }
            for k in ("mark_price", "underlying_price", "mark_iv", "interest_rate", "estimated_delivery_price"):
                v = rec.get(k)
                r[k] = np.nan if v is None else _number(v, file, i, k, name)
            r["base_currency"] = rec.get("base_currency")
            rows.append(r)
    if not rows:
        raise InputError("the book summaries list no instrument", file=next(iter(book_summaries.values()))[0])
    df = pd.DataFrame(rows)
    dup = df["instrument_name"].duplicated()
    if dup.any():
        r = df[dup].iloc[0]
        raise InputError(f"instrument {r['instrument_name']} listed twice in the book summaries", file=r["file"],
                         row=int(r["row"]))
    return df.set_index("instrument_name", drop=False)


def describe_instrument(name: str, inst: Mapping[str, Any] | None, file: str, row: object,
                        notes: list[str]) -> dict[str, Any]:
    """``kind, base, expiry, strike, option_type, settlement, ccy, contract_size`` of a Deribit instrument.

    From its ``public/get_instruments`` record ``inst``, or from its name when ``inst`` is None (noted in
    ``notes``). Raises :class:`InputError` for a kind other than option / future or an unknown type.
    """
    if inst is None:
        rec = parse_name(name, "deribit", row=row, column="instrument_name", file=file)
        notes.append(f"{name}: not in instruments.json; described from its name (expiry 08:00 UTC)")
        return {"kind": rec.kind, "base": rec.underlying, "expiry": rec.expiry, "strike": rec.strike,
                "option_type": rec.option_type, "settlement": rec.settlement, "ccy": rec.settlement_currency,
                "contract_size": None}
    ifile = "instruments.json"
    kind = str(inst.get("kind"))
    if kind not in ("option", "future"):
        raise InputError(f"{name}: instrument kind {kind!r} is not supported (option, future)", file=ifile,
                         column="kind")
    perp = inst.get("settlement_period") == "perpetual" or name.endswith("-PERPETUAL")
    itype = inst.get("instrument_type") or inst.get("future_type")
    if itype is None:
        settle = parse_name(name, "deribit", row=row, column="instrument_name", file=file).settlement
    elif itype in _SETTLEMENT:
        settle = _SETTLEMENT[str(itype)]
    else:
        raise InputError(f"{name}: unknown instrument_type {itype!r} (reversed, linear)", file=ifile,
                         column="instrument_type")
    base = str(inst.get("base_currency") or parse_name(name, "deribit").underlying)
    exp_ms = inst.get("expiration_timestamp")
    expiry = None if perp or exp_ms is None or int(exp_ms) >= PERPETUAL_EXPIRATION_MS else _ts(exp_ms)
    if not perp and expiry is None:
        raise InputError(f"{name}: a dated instrument without expiration_timestamp", file=ifile,
                         column="expiration_timestamp")
    out = {"kind": "perpetual" if perp else kind, "base": base, "expiry": expiry, "strike": None,
           "option_type": None, "settlement": settle,
           "ccy": str(inst.get("settlement_currency") or (base if settle == "inverse" else "USDC")),
           "contract_size": inst.get("contract_size")}
    if kind == "option":
        out["strike"] = float(inst["strike"])
        out["option_type"] = str(inst["option_type"]).lower()
    return out


def product_quantity(name: str, d: Mapping[str, Any], size: float, size_currency: Any, mark: Any, *,
                     file: str, row: object, size_column: str = "size") -> tuple[float, float]:
    """``(quantity, multiplier)`` of a Deribit ``size`` (units in the module docstring).

    Parameters
    ----------
    name : str
        Instrument name (for messages).
    d : mapping
        :func:`describe_instrument` of the instrument.
    size : float
        Deribit's signed size (coin for options and linear contracts, USD for inverse futures / perpetuals).
    size_currency : float or None
        Deribit's size in coin of an inverse future / perpetual, when given.
    mark : float or None
        Mark price (USD per coin) turning an inverse future's USD size into coin.
    file, row, size_column : optional
        Named in error messages.

    Returns
    -------
    (float, float)
        Quantity and multiplier in the product's unit (``quantity x multiplier`` = coins).
    """
    if d["kind"] == "option":
        return size, 1.0
    if d["settlement"] == "inverse":
        from_mark = None if mark is None else size / _number(mark, file, row, "mark_price", name)
        if size_currency is not None:
            qty = _number(size_currency, file, row, "size_currency", name)
            if from_mark is not None and abs(from_mark - qty) > SIZE_CURRENCY_RTOL * abs(qty):
                raise InputError(f"{name}: size {size} USD / mark {mark} = {from_mark} coin disagrees with "
                                 f"size_currency {qty}", file=file, row=row, column="size_currency")
            return qty, 1.0
        if from_mark is not None:
            return from_mark, 1.0
        raise InputError(f"{name}: an inverse {d['kind']}'s {size_column} is in USD; neither size_currency nor a "
                         f"mark price gives it in coin", file=file, row=row, column=size_column)
    cs = d["contract_size"]  # linear future / perpetual: size in coin
    if cs is not None and float(cs) > 0:
        mult = float(cs)
        qty = size / mult
        if abs(qty - round(qty)) <= 1e-9 * max(1.0, abs(qty)):
            qty = float(round(qty))
        return qty, mult
    return size, 1.0


def position_row(account: str, name: str, d: Mapping[str, Any], qty: float, mult: float) -> dict[str, Any]:
    """One positions-table row (:data:`POSITION_COLUMNS`) of a described instrument."""
    return {
        "account": account, "instrument": name, "underlying": d["base"], "kind": d["kind"],
        "option_type": d["option_type"], "strike": d["strike"],
        "expiry": None if d["expiry"] is None else _iso(d["expiry"]), "quantity": float(qty),
        "multiplier": mult, "settlement": d["settlement"], "premium_currency": d["ccy"],
    }


def _positions(raw: tuple[str, Any], instruments: Mapping[str, Mapping[str, Any]], book: pd.DataFrame,
               account: str, notes: list[str]) -> pd.DataFrame:
    file, doc = raw
    rows = []
    for i, p in enumerate(_list(unwrap(doc, file), file, "position")):
        name = str(_need(p, "instrument_name", file, i, "position"))
        size = _number(_need(p, "size", file, i, name), file, i, "size", name)
        if size == 0:
            notes.append(f"{name}: size 0 (closed in the session), left out")
            continue
        d = describe_instrument(name, instruments.get(name), file, i, notes)
        mark = p.get("mark_price")
        if mark is None and name in book.index and pd.notna(book.at[name, "mark_price"]):
            mark = book.at[name, "mark_price"]
        qty, mult = product_quantity(name, d, size, p.get("size_currency"), mark, file=file, row=i)
        rows.append(position_row(account, name, d, qty, mult))
    return pd.DataFrame(rows, columns=list(POSITION_COLUMNS))


def _index_prices(raw: tuple[str, Any] | None, requests: Any, book: pd.DataFrame, pos: pd.DataFrame,
                  notes: list[str]) -> dict[str, float]:
    coins = sorted(_market_bases(book, pos))
    out: dict[str, float] = {}
    if raw is not None and raw[1] is not None:
        file, doc = raw
        res = unwrap(doc, file)

        def price(r: Any, key: str) -> float:
            r = unwrap(r, file)
            if not isinstance(r, Mapping) or "index_price" not in r:
                raise InputError(f"no index_price in {key}", file=file)
            return _number(r["index_price"], file, None, "index_price", key)

        if isinstance(res, Mapping) and "index_price" in res:
            coin = _index_coin(requests) or (coins[0] if len(coins) == 1 else None)
            if coin is None:
                raise InputError(f"one index price for several coins {coins}: name it (requests.json params "
                                 f"index_name, or index.json as {{index_name: response}})", file=file)
            out[coin] = price(res, "result")
        elif isinstance(res, Mapping):
            for key, r in res.items():
                out[str(key).split("_")[0].upper()] = price(r, str(key))
        else:
            raise InputError("expected an index price response", file=file)
    for coin in coins:
        if coin in out:
            continue
        edp = book.loc[book["base_currency"] == coin, "estimated_delivery_price"].dropna()
        if edp.empty:
            raise InputError(f"no index price for {coin}: no index.json entry and no estimated_delivery_price")
        out[coin] = float(edp.median())
        notes.append(f"{coin}: index price from the book summary's estimated_delivery_price ({out[coin]})")
    return out


def _index_coin(requests: Any) -> str | None:
    if not isinstance(requests, Mapping):
        return None
    params = (requests.get("index.json") or {}).get("params") if isinstance(requests.get("index.json"),
                                                                            Mapping) else None
    if isinstance(params, list) and params:
        params = params[0]
    if isinstance(params, Mapping) and params.get("index_name"):
        return str(params["index_name"]).split("_")[0].upper()
    return None


def _market(book: pd.DataFrame, instruments: Mapping[str, Mapping[str, Any]], index: Mapping[str, float],
            vt: pd.Timestamp, pos: pd.DataFrame, notes: list[str]) -> dict[str, Any]:
    held_names = set(pos["instrument"])
    bases = _market_bases(book, pos)
    desc = []
    for name, r in book.iterrows():
        bc = r["base_currency"]
        if name not in held_names and isinstance(bc, str) and bc not in bases:
            continue  # another coin's instrument (a USDC book summary lists every coin's)
        try:
            d = describe_instrument(str(name), instruments.get(str(name)), str(r["file"]), int(r["row"]), [])
        except InputError as exc:
            if name in held_names:
                raise
            notes.append(f"{name}: not used ({exc.reason})")
            continue
        if d["kind"] == "spot" or d["base"] not in bases:
            continue
        desc.append({**d, "instrument_name": name})
    cols = ["kind", "base", "expiry", "strike", "option_type", "settlement"]
    described = pd.DataFrame(desc, columns=[*cols, "instrument_name"]).set_index("instrument_name")
    b = book.join(described, how="inner")
    held = pos.loc[pos["kind"] == "option", ["instrument", "expiry"]]
    unders: dict[str, Any] = {}
    for base in sorted(bases):
        g = b[b["base"] == base]
        if base not in index:
            raise InputError(f"no index price for {base}")
        unders[base] = _underlying_block(base, g, index[base], vt, held, notes)
    return {"valuation_time": _iso(vt), "fx_to_usd": dict(STABLE_USD), "underlyings": unders,
            "source": "imported from Deribit API v2 responses (greeksmargin.adapters.deribit)"}


def _market_bases(book: pd.DataFrame, pos: pd.DataFrame) -> set[str]:
    """The coins the market covers: those the positions hold (every coin of the book when there is none)."""
    if len(pos):
        return set(pos["underlying"].astype(str))
    return set(book["base_currency"].dropna().astype(str))


def _underlying_block(base: str, g: pd.DataFrame, spot: float, vt: pd.Timestamp, held: pd.DataFrame,
                      notes: list[str]) -> dict[str, Any]:
    opts = g[g["kind"] == "option"]
    futs = g[g["kind"] == "future"]
    forwards: dict[pd.Timestamp, float] = {}
    for e, og in opts.dropna(subset=["underlying_price"]).groupby("expiry"):
        vals = og["underlying_price"].to_numpy(dtype=float)
        if np.ptp(vals) > 1e-9 * np.max(np.abs(vals)):
            notes.append(f"{base} {_iso(pd.Timestamp(e))}: options quote {np.unique(vals).size} underlying "
                         f"prices; forward = their median")
        forwards[pd.Timestamp(e)] = float(np.median(vals))
    for _, f in futs.dropna(subset=["mark_price"]).iterrows():
        if f["expiry"] not in forwards:
            forwards[pd.Timestamp(f["expiry"])] = float(f["mark_price"])
    block: dict[str, Any] = {"spot": float(spot), "currency": base}
    rates = opts.dropna(subset=["interest_rate"])
    if rates.empty or rates["interest_rate"].nunique() == 1:
        block["rate"] = 0.0 if rates.empty else float(rates["interest_rate"].iloc[0])
    else:
        by_e = rates.groupby("expiry")["interest_rate"].median().sort_index()
        block["rate"] = {"expiries": [_iso(pd.Timestamp(e)) for e in by_e.index],
                         "rates": [float(x) for x in by_e.to_numpy()]}
    block["dividend_yield"] = 0.0
    if forwards:
        block["forwards"] = {_iso(e): f for e, f in sorted(forwards.items())}
    perp = g[(g["kind"] == "perpetual") & g["mark_price"].notna()]
    if len(perp):
        inv = perp[perp["settlement"] == "inverse"]
        block["perpetual_mark"] = float((inv if len(inv) else perp)["mark_price"].iloc[0])
    # percent -> decimal, written as the shortest decimal (51.9 -> 0.519, not 0.5190000000000001)
    iv = np.array([float(f"{x / 100.0:.15g}") for x in opts["mark_iv"].to_numpy(dtype=float)], dtype=float)
    ok = np.isfinite(iv) & (iv > 0) & (iv <= MAX_DECIMAL_VOL)
    for name in opts.index[~ok]:
        notes.append(f"{name}: mark_iv {float(opts.at[name, 'mark_iv'])!r} is not a vol in (0, 500] percent; left out")
    good = opts[ok].assign(vol=iv[ok])
    live_held = held[pd.to_datetime(held["expiry"], utc=True) > vt]["instrument"]
    missing = sorted(set(live_held[live_held.str.startswith(base)]) - set(good.index))
    if missing:
        raise InputError(f"held option(s) {missing} have no usable mark_iv in the book summaries")
    if len(good):
        block["vols"] = {str(k): float(v) for k, v in good["vol"].items()}
        slices = []
        for e, sg in good[good["expiry"] > vt].groupby("expiry"):
            f = forwards.get(pd.Timestamp(e))
            if f is None:
                continue
            by_k = sg.groupby("strike")["vol"].mean().sort_index()
            slices.append({"expiry": _iso(pd.Timestamp(e)),
                           "points": [float(x) for x in np.log(by_k.index.to_numpy(dtype=float) / f)],
                           "vols": [float(v) for v in by_k.to_numpy()]})
        if slices:
            block["surface"] = {"axis": "log_moneyness", "slices": slices}
    return block


def _collateral(summaries: Mapping[str, tuple[str, Any]], account: str) -> pd.DataFrame:
    rows = []
    for ccy, (file, res) in sorted(summaries.items()):
        if not isinstance(res, Mapping):
            raise InputError("expected an account summary object in 'result'", file=file)
        bal = _number(_need(res, "balance", file, 0, "account summary"), file, None, "balance",
                      "account summary")
        upl = res.get("futures_session_upl")
        amount = bal + (0.0 if upl is None else _number(upl, file, None, "futures_session_upl",
                                                         "account summary"))
        rows.append({"account": account, "asset": str(res.get("currency") or ccy).upper(), "amount": amount})
    return pd.DataFrame(rows, columns=["account", "asset", "amount"])


def _exchange_margin(summaries: Mapping[str, tuple[str, Any]], pos: pd.DataFrame, spots: Mapping[str, float],
                     account: str, notes: list[str]) -> pd.DataFrame:
    cols = ["account", "exchange_im", "exchange_mm", "currency"]
    if not summaries:
        return pd.DataFrame(columns=cols)
    settle_ccys = set(pos["premium_currency"])
    use = {c: v for c, v in summaries.items() if c in settle_ccys} or dict(summaries)
    figs = {}
    for ccy, (file, res) in use.items():
        im = _number(_need(res, "initial_margin", file, 0, "account summary"), file, None,
                     "initial_margin", "account summary")
        mm = _number(_need(res, "maintenance_margin", file, 0, "account summary"), file, None,
                     "maintenance_margin", "account summary")
        figs[ccy] = (im, mm)
    coin_only = len(settle_ccys) == 1 and len(figs) == 1 and next(iter(figs)) in spots
    if coin_only:
        ccy, (im, mm) = next(iter(figs.items()))
        return pd.DataFrame([[account, im, mm, ccy]], columns=cols)
    im = mm = 0.0
    for ccy, (a, b) in figs.items():
        fx = STABLE_USD.get(ccy, spots.get(ccy))
        if fx is None:
            raise InputError(f"no USD price for the account summary currency {ccy}")
        im, mm = im + a * fx, mm + b * fx
    if len(figs) > 1:
        notes.append(f"exchange margin: account summaries {sorted(figs)} converted to USD and summed")
    return pd.DataFrame([[account, im, mm, "USD"]], columns=cols)


# ------------------------------------------------------------------------------------------- writing
def write(tables: Mapping[str, Any], outdir: str | Path) -> list[Path]:
    """Write ``positions.csv``, ``market.json``, ``collateral.csv`` and ``exchange_margin.csv`` to ``outdir``.

    Parameters
    ----------
    tables : mapping
        As returned by :func:`read`.
    outdir : str or Path
        Output folder (created).

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(outdir)
    market = tables.get("market_dict") or tables["market"].to_dict()
    return [
        io.write_table(tables["positions"], out / "positions.csv"),
        io.write_json(market, out / "market.json"),
        io.write_table(tables["collateral"], out / "collateral.csv"),
        io.write_table(tables["exchange_margin"], out / "exchange_margin.csv"),
    ]


# ------------------------------------------------------------------------------------------ raw chains
CHAIN_REQUIRED = ("instrument_name", "expiration_timestamp", "timestamp", "underlying_price", "index_price",
                  "mark_iv")


def snapshot_from_chain(source: str | Path | pd.DataFrame, *, underlying: str | None = None) -> Any:
    """Market snapshot from a Deribit option chain of ticker rows (``public/ticker`` fields per option).

    Parameters
    ----------
    source : str, Path or DataFrame
        CSV / Parquet of ticker rows (raw API form with ``greeks``/``stats`` dicts and extra columns, or the
        reduced form of ``validation/cases/deribit_chain/``): ``instrument_name``, ``expiration_timestamp`` and
        ``timestamp`` (ms UTC), ``underlying_price``, ``index_price``, ``mark_iv`` (percent), optional
        ``interest_rate``, ``strike``, ``option_type``.
    underlying : str, optional
        Only this base coin's rows (default: every coin of the chain).

    Returns
    -------
    MarketSnapshot
        Valuation time = median row ``timestamp`` (the tickers of a chain are read over minutes); spot =
        median ``index_price``; forwards, rate, vols and surface as for the book summaries (module docstring).
    """
    from greeksmargin.book.market import load_market

    src = "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)
    df = source.copy() if isinstance(source, pd.DataFrame) else io.read_table(source)
    for c in CHAIN_REQUIRED:
        if c not in df.columns:
            raise InputError("missing column of a Deribit option chain", file=src, column=c)
    if len(df) == 0:
        raise InputError("the chain has no rows", file=src)
    names = df["instrument_name"].astype(str)
    rows = []
    for i, (label, name) in enumerate(zip(df.index, names)):
        rec = parse_name(name, "deribit", row=label, column="instrument_name", file=src)
        if rec.kind != "option":
            raise InputError(f"{name} is not an option", file=src, row=label, column="instrument_name")
        r = df.iloc[i]
        strike = float(r["strike"]) if "strike" in df.columns and pd.notna(r["strike"]) else rec.strike
        rows.append({"instrument_name": name, "kind": "option", "base": rec.underlying,
                     "expiry": _ts(int(r["expiration_timestamp"])), "strike": strike,
                     "option_type": rec.option_type, "settlement": rec.settlement,
                     "underlying_price": float(r["underlying_price"]), "mark_iv": float(r["mark_iv"]),
                     "interest_rate": float(r["interest_rate"]) if "interest_rate" in df.columns else 0.0,
                     "index_price": float(r["index_price"]), "timestamp": int(r["timestamp"]), "mark_price": np.nan})
    b = pd.DataFrame(rows).set_index("instrument_name", drop=False)
    if b.index.duplicated().any():
        raise InputError(f"instrument {b.index[b.index.duplicated()][0]} listed twice", file=src)
    if underlying is not None:
        b = b[b["base"] == underlying]
        if b.empty:
            raise InputError(f"no {underlying} option in the chain", file=src)
    vt = pd.Timestamp(int(b["timestamp"].median()), unit="ms", tz="UTC")
    notes: list[str] = []
    empty = pd.DataFrame({"instrument": pd.Series(dtype=str), "expiry": pd.Series(dtype=str)})
    unders = {base: _underlying_block(base, g, float(g["index_price"].median()), vt, empty, notes)
              for base, g in b.groupby("base")}
    d = {"valuation_time": _iso(vt), "fx_to_usd": dict(STABLE_USD), "underlyings": unders,
         "source": f"Deribit option chain {Path(src).name}"}
    return load_market(d)

