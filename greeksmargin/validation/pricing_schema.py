"""Schema (pydantic v2) of the ``pricing`` validation case format: published option values, Greeks, deltas.

A case file is a JSON object ``{"source": {...}, "n_cases": N, "cases": [...]}`` (or the bare list of cases).
Two case shapes, told apart by ``delta_type``:

- option cases: ``id``, ``group``, ``source_ref``, ``option_type``, ``strike``, ``spot``, ``dividend_yield``,
  ``rate``, ``time_years``, ``vol``, ``exercise`` (optional), ``expected`` (figure -> number),
  ``tolerance_abs`` (number);
- delta-convention cases: ``id``, ``group``, ``source_ref``, ``option_type``, ``delta_type``, ``spot``,
  ``domestic_discount``, ``foreign_discount``, ``std_dev``, ``strike``, ``expected`` (``{"delta": ...}``),
  ``tolerance_abs`` (``{"delta_from_strike", "strike_from_delta"}``, optional).

Unknown keys are refused with the nearest valid name; numbers must be finite (no coercion from strings).
Ranges are not checked here: the pricing functions refuse what they cannot price, with the argument named,
so that no case a publisher accepts is refused by a bound invented in the schema.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import CaseFormatError

__all__ = ["DeltaCase", "DeltaTolerance", "OptionCase", "PricingFile", "Source", "validate_case"]

GROUPS = ("european_value", "european_greek", "american_baw", "american_bjerksund_stensland", "delta_convention")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class Source(_Strict):
    """Provenance of a case file (not interpreted)."""

    repo: str | None = None
    commit: str | None = None
    files: list[str] | None = None
    licence: str | None = None


class PricingFile(_Strict):
    """A case file: ``source``, ``n_cases`` and the list of cases (each checked by :func:`validate_case`)."""

    source: Source | None = None
    n_cases: int | None = Field(default=None, ge=0)
    cases: list[Any]


class _Common(_Strict):
    id: str | int
    group: Literal[GROUPS] | None = None  # type: ignore[valid-type]
    source_ref: str | None = None
    option_type: Literal["call", "put", "Call", "Put", "CALL", "PUT"]
    expected: dict[str, float] = Field(min_length=1)


class OptionCase(_Common):
    """A published option value or Greek (European or American)."""

    exercise: Literal["european", "american", "European", "American"] | None = None
    strike: float
    spot: float
    dividend_yield: float
    rate: float
    time_years: float
    vol: float
    tolerance_abs: float


class DeltaTolerance(_Strict):
    """Tolerances of a delta-convention case (validation README: 1e-3 on delta, 1e-2 on strike)."""

    delta_from_strike: float
    strike_from_delta: float


class DeltaCase(_Common):
    """A published delta in an FX convention for a strike (and so the strike for that delta)."""

    delta_type: str
    spot: float
    domestic_discount: float
    foreign_discount: float
    std_dev: float
    strike: float
    tolerance_abs: DeltaTolerance | None = None


def _message(exc: ValidationError, model: type[BaseModel]) -> tuple[str, str]:
    """``(key, message)`` of the first problem pydantic reports (unknown keys first)."""
    errs = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errs[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        name = str(err["loc"][-1])
        known = set(model.model_fields) | set(DeltaTolerance.model_fields) | set(Source.model_fields)
        sug = difflib.get_close_matches(name, sorted(known), n=1)
        return loc, f"unknown key '{name}'" + (f" (did you mean '{sug[0]}'?)" if sug else "")
    if err["type"] == "missing":
        return loc, f"missing key '{err['loc'][-1]}'"
    more = f" (and {len(errs) - 1} more problems)" if len(errs) > 1 else ""
    return loc, f"{err['msg']} (got {err.get('input')!r}){more}"


def validate_case(case: Any, cid: Any) -> OptionCase | DeltaCase:
    """The case as an :class:`OptionCase` or a :class:`DeltaCase`, or a :class:`CaseFormatError` naming the key.

    Parameters
    ----------
    case : object
        One element of ``cases``.
    cid : object
        Its id (for the message).

    Returns
    -------
    OptionCase or DeltaCase
    """
    if not isinstance(case, dict):
        raise CaseFormatError(f"case {cid}: a case must be an object (got {type(case).__name__})")
    model: type[OptionCase] | type[DeltaCase] = (
        DeltaCase if "delta_type" in case or case.get("group") == "delta_convention" else OptionCase)
    try:
        return model.model_validate(case)
    except ValidationError as exc:
        key, msg = _message(exc, model)
        raise CaseFormatError(f"case {cid}: key '{key}': {msg}", column=key.split(".")[0] or None) from None
