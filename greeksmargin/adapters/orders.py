"""Deribit open orders -> two trade tables: every buy order filled, every sell order filled.

An exchange margins open orders on the worse of two hypothetical books: the positions plus every open buy
order filled, and the positions plus every open sell order filled. :func:`open_orders_to_trades` turns the
``result`` of ``private/get_open_orders_by_currency`` into those two trade tables, in the positions format
(:data:`greeksmargin.adapters.deribit.POSITION_COLUMNS`), ready for a what-if (``gm.margin_change``) or to
be appended to the positions. Pure: parsed JSON in, tables out.

Units: an order's ``amount`` is in the same unit as a position's ``size`` (coin for options and linear
contracts, **USD** for inverse futures and perpetuals). The unfilled part, ``amount - filled_amount``, is
converted as a position would be (:func:`greeksmargin.adapters.deribit.product_quantity`): an inverse
future's USD amount is divided by the instrument's **mark price** (the price at which the filled position
would be valued; the order's own limit price is not used), so ``mark_prices`` must hold every inverse future
or perpetual ordered. Orders in state ``open`` or ``untriggered`` (stop orders not yet triggered) are
counted; any other state (``filled``, ``cancelled``, ``rejected``) and a fully filled order are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..errors import InputError
from .deribit import POSITION_COLUMNS, describe_instrument, position_row, product_quantity, unwrap

__all__ = ["OPEN_STATES", "open_orders_to_trades"]

#: order states that can still fill
OPEN_STATES = ("open", "untriggered")


def open_orders_to_trades(
    orders: Any,
    instruments: Mapping[str, Mapping[str, Any]],
    *,
    account: str,
    mark_prices: Mapping[str, float] | None = None,
    file: str = "<open orders>",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The buy side and the sell side of an account's open orders, each as if every order filled.

    Parameters
    ----------
    orders : list of dict, or a JSON-RPC envelope of one
        ``private/get_open_orders_by_currency`` result: ``instrument_name``, ``direction`` (``buy`` |
        ``sell``), ``amount``, ``filled_amount`` (default 0), ``order_state`` (default ``open``).
    instruments : mapping of str -> dict
        ``public/get_instruments`` records by instrument name (an instrument missing here is read from its
        name).
    account : str
        Account name of the trade rows.
    mark_prices : mapping of str -> float, optional
        Mark price (USD per coin) per instrument; needed for inverse futures and perpetuals.
    file : str
        Named in error messages (the row is the order's position in the list).

    Returns
    -------
    (DataFrame, DataFrame)
        ``(buys, sells)``, each with :data:`POSITION_COLUMNS` and one row per counted order (several orders on
        one instrument stay separate rows); buy quantities positive, sell quantities negative, in the
        product's unit.

    Raises
    ------
    InputError
        A missing or non-numeric field, an unknown direction or state, a negative or over-filled amount, an
        inverse future without a mark price; names the row and the field.
    """
    res = unwrap(orders, file)
    if not isinstance(res, list) or not all(isinstance(o, Mapping) for o in res):
        raise InputError("expected a list of order objects", file=file)
    marks = dict(mark_prices or {})
    buys: list[dict[str, Any]] = []
    sells: list[dict[str, Any]] = []
    notes: list[str] = []
    for i, o in enumerate(res):
        name = o.get("instrument_name")
        if not isinstance(name, str) or not name:
            raise InputError("order without instrument_name", file=file, row=i, column="instrument_name")
        state = str(o.get("order_state", "open"))
        if state not in OPEN_STATES:
            if state in ("filled", "cancelled", "rejected"):
                continue
            raise InputError(f"{name}: unknown order_state {state!r} (open, untriggered, filled, cancelled, "
                             f"rejected)", file=file, row=i, column="order_state")
        direction = o.get("direction")
        if direction not in ("buy", "sell"):
            raise InputError(f"{name}: direction must be 'buy' or 'sell' (got {direction!r})", file=file, row=i,
                             column="direction")
        amount = _num(o.get("amount"), file, i, "amount", name)
        filled = _num(o.get("filled_amount", 0.0), file, i, "filled_amount", name)
        if amount < 0 or filled < 0 or filled > amount:
            raise InputError(f"{name}: need 0 <= filled_amount <= amount (got {filled} of {amount})", file=file,
                             row=i, column="filled_amount")
        left = amount - filled
        if left == 0:
            continue
        d = describe_instrument(name, instruments.get(name), file, i, notes)
        signed = left if direction == "buy" else -left
        qty, mult = product_quantity(name, d, signed, None, marks.get(name), file=file, row=i, size_column="amount")
        (buys if direction == "buy" else sells).append(position_row(account, name, d, qty, mult))
    cols = list(POSITION_COLUMNS)
    return pd.DataFrame(buys, columns=cols), pd.DataFrame(sells, columns=cols)


def _num(x: Any, file: str, row: int, column: str, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InputError(f"{name}: {column} must be a number (got {x!r})", file=file, row=row, column=column) from None
    if v != v or v in (float("inf"), float("-inf")):
        raise InputError(f"{name}: {column} must be finite (got {x!r})", file=file, row=row, column=column)
    return v
