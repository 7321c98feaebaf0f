"""``Book``: positions, market and collateral validated once at the boundary, with the arrays the kernels need.

A :class:`Book` is built by :func:`load_book` (the only public constructor): one vectorised pass checks
every row of the positions (:func:`~greeksmargin.book.positions.check_positions`) and that the market can
price it (:func:`~greeksmargin.book.arrays.market_faults`). An unreadable file, a missing or duplicated
column raise at once. A row fault either raises (``errors="raise"``) or, with ``errors="collect"``, is
recorded in :attr:`Book.problems` (``account, file, row, column, rule, message``) and its whole account is
set aside: the book never computes a margin on part of an account's positions, and never drops an
account silently (every consumer lists :attr:`Book.bad_accounts` with their reason).

A Book is immutable (a frozen dataclass; its tables are copies owned by it). Every derived array is a
``functools.cached_property``: computed on first use, once per Book, never stale. :meth:`Book.with_trades`
and :meth:`Book.with_market` return new Books that validate only what changed and share the rest.
Functions that take positions accept a Book and then trust it (no re-validation).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.book.arrays import market_faults, position_arrays
from greeksmargin.book.collateral import load_collateral
from greeksmargin.book.market import MarketSnapshot, load_market
from greeksmargin.book.positions import (
    PROBLEM_COLUMNS,
    _problem_table,
    _Sink,
    _Where,
    account_currency,
    bad_accounts,
    check_positions,
    empty_problems,
    keep_codes,
)
from greeksmargin.book.quantity_units import flag_implausible_inverse
from greeksmargin.errors import ArgumentTypeError, InputError

__all__ = ["MARKET_RULES", "MOVE_KEYS", "PROBLEM_COLUMNS", "Book", "load_book", "load_book_market_collect"]

_KEY = object()  # only the constructors of this module may build a Book
#: live Books by the id of their positions table (the object itself, never a look-alike copy)
_LIVE: weakref.WeakValueDictionary[int, Book] = weakref.WeakValueDictionary()

#: keys of one underlying's entry in :meth:`Book.with_market` moves
MOVE_KEYS = ("spot", "vol", "vol_rel")


@dataclass(frozen=True, eq=False)
class Book:
    """A validated book: normalised positions, market snapshot, optional collateral, problems.

    Build it with :func:`load_book`; calling the class directly is refused.

    Attributes
    ----------
    positions : DataFrame
        The normalised positions (schema of :mod:`greeksmargin.book.positions`) of the accounts that can
        be computed; rows of :attr:`bad_accounts` are not in it.
    market : MarketSnapshot
        The market snapshot.
    collateral : DataFrame or None
        Normalised collateral (:func:`~greeksmargin.book.collateral.load_collateral`: ``price`` NaN where
        the market prices the asset).
    problems : DataFrame
        One row per faulty position row: ``account, file, row, column, rule, message`` (empty with
        ``errors="raise"``, which raises the first instead).
    errors : {"raise", "collect"}
        How the book was validated; :meth:`with_trades` validates the trades the same way.
    set_aside : DataFrame
        The normalised rows of :attr:`bad_accounts` that passed the row checks (e.g. the positions of an
        account whose other position the market cannot price), for counts and reports.
    """

    positions: pd.DataFrame
    market: MarketSnapshot
    collateral: pd.DataFrame | None = None
    problems: pd.DataFrame = field(default_factory=empty_problems)
    errors: str = "raise"
    set_aside: pd.DataFrame | None = None
    _key: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._key is not _KEY:
            raise TypeError("build a Book with greeksmargin.load_book(positions, market, collateral)")
        _LIVE[id(self.positions)] = self

    def __repr__(self) -> str:
        return (f"Book({len(self.positions)} positions, {len(self.accounts)} accounts, {len(self.bad_accounts)} set "
                f"aside, market at {self.market.valuation_time.isoformat()}, collateral "
                f"{'none' if self.collateral is None else f'{len(self.collateral)} rows'})")

    # ------------------------------------------------------------------ accounts
    @cached_property
    def bad_accounts(self) -> dict[str, str]:
        """Accounts set aside (``errors="collect"``), each with the message of its first faulty row."""
        return bad_accounts(self.problems)

    @cached_property
    def accounts(self) -> list[str]:
        """Every account of the input, sorted: the computable ones and :attr:`bad_accounts`."""
        good = pd.unique(self.positions["account"].astype(str))
        return sorted(set(good) | set(self.bad_accounts))

    # ------------------------------------------------------------------ arrays (computed once per Book)
    @cached_property
    def arrays(self) -> dict[str, NDArray[Any]]:
        """Market inputs of every position (:func:`~greeksmargin.risk.greeks.market_arrays` keys), in row order."""
        # load_book ran market_faults on these rows at this market (its flag); any other Book is checked here
        covered = self.__dict__.get("_market_checked") is self.market
        return position_arrays(self.positions, self.market, covered=covered, codes=self.__dict__.get("_codes"))

    @cached_property
    def account_codes(self) -> tuple[NDArray[np.intp], NDArray[Any]]:
        """(code of each position's account, shape (n,); sorted account names, shape (n_accounts,))."""
        codes, names = pd.factorize(self.positions["account"].to_numpy(dtype=object), sort=True)
        return codes.astype(np.intp), np.asarray(names, dtype=object)

    @property
    def underlying_codes(self) -> tuple[NDArray[np.int64], NDArray[Any]]:
        """(code of each position's underlying, shape (n,); the names in first-seen order)."""
        return self.arrays["underlying_code"], self.arrays["underlyings"]

    @property
    def kind_code(self) -> NDArray[np.int8]:
        """0 option, 1 future, 2 perpetual, 3 spot; shape (n,)."""
        return self.arrays["kind_code"]

    @property
    def strike(self) -> NDArray[np.float64]:
        """Strike (USD; NaN for non-options); shape (n,)."""
        return self.arrays["strike"]

    @property
    def years(self) -> NDArray[np.float64]:
        """Year fraction to expiry (ACT/365; 0 for an expired option, NaN for perpetual / spot); shape (n,)."""
        return self.arrays["T"]

    @property
    def size(self) -> NDArray[np.float64]:
        """Quantity x multiplier (units of underlying, signed); shape (n,)."""
        return self.arrays["size"]

    @property
    def spot(self) -> NDArray[np.float64]:
        """Spot of each position's underlying (USD); shape (n,)."""
        return self.arrays["spot"]

    @property
    def forward(self) -> NDArray[np.float64]:
        """Forward at each position's expiry (spot for perpetual / spot); shape (n,)."""
        return self.arrays["forward"]

    @property
    def vol(self) -> NDArray[np.float64]:
        """Implied vol (decimal; NaN for non-options); shape (n,)."""
        return self.arrays["vol"]

    @cached_property
    def position_currency(self) -> NDArray[Any]:
        """Settlement currency of each position: the underlying's coin if inverse, else ``USD``; shape (n,)."""
        a = self.arrays
        names = a["underlyings"]
        coin = np.array([self.market.currency(u) if self.market.currency(u) != "USD" else u for u in names],
                        dtype=object)
        return np.where(a["inverse"], coin[a["underlying_code"]] if len(names) else "USD", "USD").astype(object)

    @cached_property
    def account_currency(self) -> pd.Series:
        """Margin currency of each account (the coin of an all-inverse one-coin account, else ``USD``)."""
        return account_currency(self.positions, self.market)

    @cached_property
    def fx_to_account(self) -> NDArray[np.float64]:
        """Units of the account's margin currency per unit of the position's currency; shape (n,)."""
        pc = self.position_currency
        ac = self.account_currency.reindex(self.positions["account"]).to_numpy(dtype=object)
        fx = {c: self.market.fx_to_usd(c) for c in set(pc) | set(ac)}
        return np.array([fx[p] / fx[q] for p, q in zip(pc, ac)], dtype=float) if len(pc) else np.zeros(0)

    # ------------------------------------------------------------------ new books
    def with_trades(self, trades: Any) -> Book:
        """A new Book: ``trades`` appended (validated here; the book's own rows are not re-checked).

        Parameters
        ----------
        trades : DataFrame, str, Path, or sequence of mappings
            New positions in the positions schema. An empty sequence / table returns this book.

        Returns
        -------
        Book
            Positions = this book's followed by the trades. A trade's index label that clashes with a
            position's is renumbered after the largest integer label (a file's trades: row ``r`` becomes
            ``n + r``). The arrays of this book are reused, those of the trades looked up.
        """
        if isinstance(trades, (list, tuple)):
            if not trades:
                return self
            trades = pd.DataFrame(list(trades))
        if isinstance(trades, pd.DataFrame) and len(trades) == 0:
            return self
        tr, probs, aside = _validated(trades, self.market, collect=self.errors == "collect")
        if len(tr) and tr.index.isin(self.positions.index).any():
            base = self.positions.index
            ints = pd.api.types.is_integer_dtype(base) and pd.api.types.is_integer_dtype(tr.index)
            if not ints:
                raise InputError("trades' index labels clash with the book's positions (give unique labels)",
                                 file=str(tr.attrs.get("source", "<DataFrame>")))
            tr.index = tr.index + (int(base.max()) + 1 - int(tr.index.min()))
        pos = pd.concat([self.positions, tr]) if len(tr) else self.positions
        problems = pd.concat([self.problems, probs], ignore_index=True) if len(probs) else self.problems
        bad = bad_accounts(problems)
        if bad and pos["account"].isin(list(bad)).any():  # a trade's fault sets its whole account aside
            pos = pos[~pos["account"].isin(list(bad))]
        pos.attrs["source"] = self.positions.attrs.get("source", "<DataFrame>")
        gone = self.positions[~self.positions.index.isin(pos.index)] if len(pos) < len(self.positions) + len(tr) \
            else self.positions.iloc[:0]
        aside = pd.concat([x for x in (self.set_aside, gone, aside) if x is not None and len(x)]) \
            if any(x is not None and len(x) for x in (self.set_aside, gone, aside)) else self.set_aside
        new = Book._unchecked(pos, self.market, self.collateral, problems, self.errors, aside)
        if "arrays" in self.__dict__ and len(pos) == len(self.positions) + len(tr):
            new.__dict__["arrays"] = _concat_arrays(self.arrays, position_arrays(tr, self.market))
        return new

    def with_market(self, moves: Mapping[str, Mapping[str, float]]) -> Book:
        """A new Book at a moved market (positions, problems and collateral shared).

        Parameters
        ----------
        moves : mapping of str -> mapping of str -> float
            Per underlying of the snapshot, any of ``"spot"``: relative move of spot, listed forwards and
            perpetual mark (0.1 = +10%); ``"vol"``: absolute shift of every implied vol (0.05 = +5 vol
            points); ``"vol_rel"``: relative change of every implied vol (0.2 = vols x 1.2). E.g.
            ``{"BTC": {"spot": -0.2, "vol": 0.1}}``. An unknown underlying or key is an error. A
            log-moneyness surface moves with the forward (sticky moneyness, as
            :meth:`MarketSnapshot.bumped`); explicit FX rates are not moved.

        Returns
        -------
        Book
        """
        if not isinstance(moves, Mapping):
            raise ArgumentTypeError("moves", "a mapping {underlying: {'spot': rel, 'vol': abs}}", moves)
        mk = self.market
        for u, mv in moves.items():
            if u not in mk.underlyings:
                raise InputError(f"moves: underlying '{u}' is not in the market snapshot (known: "
                                 f"{', '.join(mk.underlyings)})", column="underlying")
            if not isinstance(mv, Mapping):
                raise ArgumentTypeError(f"moves['{u}']", "a mapping with keys spot, vol, vol_rel", mv)
            unknown = [k for k in mv if k not in MOVE_KEYS]
            if unknown:
                raise InputError(f"moves['{u}']: unknown key '{unknown[0]}' (known: {', '.join(MOVE_KEYS)})")
            vals = {k: float(v) for k, v in mv.items()}
            if not all(np.isfinite(list(vals.values()))):
                raise InputError(f"moves['{u}']: moves must be finite numbers (got {dict(mv)})")
            s = vals.get("spot", 0.0)
            if not s > -1.0:
                raise InputError(f"moves['{u}']: a spot move of {s} makes the price non-positive")
            mk = mk.bumped(u, spot_rel=s, vol_abs=vals.get("vol", 0.0))
            if vals.get("vol_rel"):
                mk = _scale_vols(mk, u, 1.0 + vals["vol_rel"])
        if mk is self.market:
            return self
        return Book._unchecked(self.positions, mk, self.collateral, self.problems, self.errors, self.set_aside)

    @classmethod
    def _unchecked(cls, positions: pd.DataFrame, market: MarketSnapshot, collateral: pd.DataFrame | None = None,
                   problems: pd.DataFrame | None = None, errors: str = "raise",
                   set_aside: pd.DataFrame | None = None) -> Book:
        """A Book of tables already validated (stress loops, subsets, relabelled copies): no check at all."""
        return cls(positions, market, collateral, empty_problems() if problems is None else problems, errors,
                   positions.iloc[:0] if set_aside is None else set_aside, _KEY)

    def subset(self, mask: Any) -> Book:
        """The Book of the positions ``mask`` selects (boolean array, shape (n,)); arrays sliced, not looked up."""
        m = np.asarray(mask, dtype=bool)
        new = Book._unchecked(self.positions[m], self.market, self.collateral, self.problems, self.errors,
                              self.set_aside)
        if "arrays" in self.__dict__:
            new.__dict__["arrays"] = _slice_arrays(self.arrays, m)
        return new


def _slice_arrays(a: Mapping[str, Any], m: NDArray[np.bool_]) -> dict[str, Any]:
    out = {k: (v if k == "underlyings" else np.asarray(v)[m]) for k, v in a.items()}
    return out


def _concat_arrays(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Arrays of two position tables, one after the other (underlying codes re-mapped as one factorisation)."""
    names = list(a["underlyings"])
    extra = [u for u in b["underlyings"] if u not in names]
    all_names = names + extra
    remap = np.array([all_names.index(u) for u in b["underlyings"]], dtype=np.int64)
    out: dict[str, Any] = {}
    for k, v in a.items():
        if k == "underlyings":
            out[k] = np.asarray(all_names, dtype=object)
        elif k == "underlying_code":
            out[k] = np.concatenate([v, remap[b[k]] if len(b[k]) else b[k]])
        else:
            out[k] = np.concatenate([v, b[k]])
    return out


def _scale_vols(mk: MarketSnapshot, u: str, factor: float) -> MarketSnapshot:
    um = mk[u]
    surf = um.surface
    if surf is not None:
        surf = replace(surf, vols=tuple(v * factor for v in surf.vols))
    new = {name: (replace(um, surface=surf, instrument_vols={k: v * factor for k, v in um.instrument_vols.items()})
                  if name == u else mk[name]) for name in mk.underlyings}
    return MarketSnapshot(mk.valuation_time, new, mk.fx, source=mk.source)


def _validated(source: Any, market: MarketSnapshot, *, collect: bool, name: str | None = None,
               codes: dict[str, Any] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Positions checked row by row and against the market in one pass; (good rows, problems, set aside).

    ``codes``: filled with the validation pass's codes of the good rows (:func:`check_positions`).
    """
    pos, problems, _ = check_positions(source, valuation_time=market.valuation_time, name=name, collect=collect,
                                       codes=codes)
    file = str(pos.attrs.get("source", "<DataFrame>"))
    is_file = not isinstance(source, pd.DataFrame)
    sink = _Sink(_Where(file, is_file, pos), pos.index, collect)
    market_faults(pos, market, sink.fail)
    _implausible_units(pos, market, sink.fail, codes)
    if sink.rows:
        more = _problem_table(sink, pos["account"])
        problems = pd.concat([problems, more], ignore_index=True) if len(problems) else more
    bad = bad_accounts(problems)
    keep = ~pos["account"].isin(list(bad)).to_numpy() if bad else None
    out = pos[keep] if keep is not None else pos
    if codes is not None and keep is not None:
        keep_codes(codes, keep)
    out.attrs["source"] = file
    return out, problems, pos[pos["account"].isin(list(bad))]


def _implausible_units(pos: pd.DataFrame, market: MarketSnapshot, fail: Any,
                       codes: dict[str, Any] | None = None) -> None:
    """Inverse futures / perpetuals whose quantity cannot be a coin amount: a USD size taken as coins.

    The rule and its threshold are :func:`greeksmargin.book.quantity_units.flag_implausible_inverse` (notional
    above ``DEFAULT_MAX_NOTIONAL_USD`` at spot); such a row is a fault of its account, never margined.
    ``codes``: the validation pass's codes of ``pos`` (:func:`check_positions`), read instead of the strings.
    """
    if codes is not None:
        inv = codes["inverse"] & ((codes["kind_code"] == 1) | (codes["kind_code"] == 2))
    else:
        inv = ((pos["settlement"] == "inverse") & pos["kind"].isin(("future", "perpetual"))).to_numpy()
    if not inv.any():
        return
    sub = pos[inv]
    sub = sub[sub["underlying"].isin([u for u in pd.unique(sub["underlying"]) if u in market])]
    if sub.empty:
        return
    flags = flag_implausible_inverse(sub, market)
    if flags.empty:
        return
    reason = dict(zip(flags["row"], flags["reason"]))
    mask = pos.index.isin(list(reason))
    labels = list(pos.index)
    fail(mask, "quantity", "implausible_unit", lambda i: str(reason[labels[i]]))


def book_of(positions: Any, market: Any) -> Book | None:
    """The live Book whose positions table *is* ``positions`` (same object) at ``market``; else None.

    Lets a function that receives ``book.positions`` (a book adapter, a pricing call) use the Book's
    validation and arrays; a copy, a slice or any other table is not a Book's and is validated.
    """
    b = _LIVE.get(id(positions))
    return b if b is not None and b.positions is positions and b.market is market else None


def load_book(
    positions: str | Path | pd.DataFrame | Book,
    market: str | Path | Mapping[str, Any] | MarketSnapshot,
    collateral: str | Path | pd.DataFrame | None = None,
    *,
    errors: Literal["raise", "collect"] = "raise",
) -> Book:
    """Validate positions, market and collateral once and return the :class:`Book`.

    Parameters
    ----------
    positions : str, Path or DataFrame
        Positions table (schema of :mod:`greeksmargin.book.positions`; CSV, Parquet or DataFrame). A Book
        is returned as is when ``market`` is its own market.
    market : str, Path, dict or MarketSnapshot
        Market snapshot (:func:`~greeksmargin.book.market.load_market`).
    collateral : str, Path or DataFrame, optional
        Collateral table ``account, asset, amount`` [``price, im_haircut, mm_haircut``]
        (:func:`~greeksmargin.book.collateral.load_collateral`; a missing price comes from the market).
    errors : {"raise", "collect"}
        ``"raise"``: the first faulty row raises (naming file, row, column). ``"collect"``: every faulty
        row is recorded in :attr:`Book.problems` and its account set aside (:attr:`Book.bad_accounts`),
        a CSV row with too few or too many fields too (rule ``field_count``; its account is the field at the
        header's ``account`` column).

    Returns
    -------
    Book

    Raises
    ------
    InputError, MarketDataError
        Unreadable file, missing / duplicated column, a row without account name (also a CSV row of the
        wrong field count cut before its ``account`` field, or with a blank one); with ``errors="raise"``
        any faulty row (a value out of range, NaN / inf quantity, a CSV row with too few or too many
        fields, a date outside 1677-09-21 .. 2262-04-11, a position the market cannot price).
    """
    if errors not in ("raise", "collect"):
        raise InputError(f"argument 'errors' must be 'raise' or 'collect', got {errors!r}")
    mk = market if isinstance(market, MarketSnapshot) else load_market(market)
    if isinstance(positions, Book):
        if positions.market is not mk:
            raise InputError("a Book carries its market: pass the raw positions to validate them at another "
                             "market, or use Book.with_market")
        return positions
    codes: dict[str, Any] = {}
    pos, problems, aside = _validated(positions, mk, collect=errors == "collect", codes=codes)
    coll = None if collateral is None else load_collateral(collateral)
    book = Book._unchecked(pos, mk, coll, problems, errors, aside)
    book.__dict__["_market_checked"] = mk  # every kept row passed market_faults (Book.arrays skips it)
    book.__dict__["_codes"] = codes  # the validation pass's codes of these rows (Book.arrays reads them)
    return book


#: problem rules about the market's coverage (the rows themselves are well formed)
MARKET_RULES = ("in_market", "has_vol")


def load_book_market_collect(positions: Any, market: MarketSnapshot) -> Book:
    """:func:`load_book` that raises a faulty row but sets aside the accounts the market cannot price.

    The solvency functions' convention: a malformed row is an error of the input; an account holding a
    position the market cannot price (underlying absent, option without vol) is reported with its reason.
    """
    pos, problems, aside = _validated(positions, market, collect=True)
    if len(problems) and not problems["rule"].isin(MARKET_RULES).all():
        check_positions(positions, valuation_time=market.valuation_time, collect=False)  # raises the first
    return Book._unchecked(pos, market, None, problems, "collect", aside)


def book_accounts_frame(book: Book, columns: Sequence[str]) -> pd.DataFrame:
    """Rows of :attr:`Book.bad_accounts` for an accounts table: ``status = "error"``, the reason, NaN figures."""
    bad = book.bad_accounts
    out = pd.DataFrame({"account": list(bad), "error": list(bad.values()), "status": "error",
                        "reason": list(bad.values())})
    for c in columns:
        if c not in out.columns:
            out[c] = np.nan
    return out
