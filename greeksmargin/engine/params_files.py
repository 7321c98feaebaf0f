"""Model files of the exchanges' and ISDA's methodologies, read into their parameter objects.

The methodologies (:mod:`greeksmargin.methodologies`) receive parameters and read no file; these readers
resolve a shipped model name or a path to a file, read it through :mod:`greeksmargin.io` and hand the parsed
document to the methodology's own parser (which validates it and names the file and key in its errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from greeksmargin import io
from greeksmargin.errors import ModelError
from greeksmargin.methodologies import simm as simm_rules
from greeksmargin.methodologies.deribit_pm import DeribitPMParams, currency_params
from greeksmargin.methodologies.derive_pm2_params import PM2Params
from greeksmargin.methodologies.derive_pm2_params import params_from_model as pm2_params_from_model
from greeksmargin.methodologies.derive_srm import SRMParams
from greeksmargin.methodologies.derive_srm_model import params_from_model as srm_params_from_model
from greeksmargin.methodologies.simm_params import SimmParams, parse_simm_params
from greeksmargin.methodologies.span import SpanParams, product_params
from greeksmargin.methodologies.strategy import StrategyParams, parse_strategy_params

__all__ = [
    "load_deribit_pm_params",
    "load_derive_pm2_params",
    "load_derive_srm_params",
    "load_simm_params",
    "load_span_params",
    "load_strategy_params",
    "simm_by_portfolio",
    "simm_margin",
]


def load_deribit_pm_params(currency: str, path: str | Path | None = None) -> DeribitPMParams:
    """Parameters of ``currency`` (``"BTC"``, ``"ETH"``) from the shipped ``models/deribit-pm.toml`` (or ``path``).

    Raises
    ------
    ModelError
        No table for the coin, or an unknown / invalid parameter (names the key and the file).
    """
    file = Path(path) if path else io.shipped_folder("models") / "deribit-pm.toml"
    return currency_params(io.read_toml(file), currency, file=str(file))


def load_span_params(product: str, path: str | Path | None = None, spot: float | None = None) -> SpanParams:
    """Parameters of ``product`` from the shipped ``models/span.toml`` (or ``path``).

    See :func:`greeksmargin.methodologies.span.product_params` (``spot`` in price units, needed by a product
    given as ``psr_fraction``).

    Raises
    ------
    ModelError
        Unknown product or parameter (the message names the key).
    """
    file = Path(path) if path else io.shipped_folder("models") / "span.toml"
    return product_params(io.read_toml(file), product, spot, file=str(file))


def load_strategy_params(
    source: str | Path | Mapping[str, Any] | StrategyParams = "cboe-strategy",
) -> StrategyParams:
    """Parameters of a strategy-margin model.

    Parameters
    ----------
    source : str, Path, mapping or StrategyParams
        A shipped model name (``"cboe-strategy"``), a TOML path of the same layout, the parsed document (its
        ``[parameters]`` table) or parameters (returned as is).

    Returns
    -------
    StrategyParams

    Raises
    ------
    ModelError
        Unknown model, missing ``[parameters]``, unknown key, or a non-positive / non-numeric rate (the message
        names the key and the file).
    """
    if isinstance(source, (StrategyParams, Mapping)):
        return parse_strategy_params(source)
    path = Path(source)
    if not (path.suffix == ".toml" or path.exists()):
        path = io.shipped_folder("models") / f"{source}.toml"
        if not path.exists():
            raise ModelError(f"unknown strategy-margin model '{source}'", file=str(path))
    return parse_strategy_params(io.read_toml(path), file=str(path))


def load_simm_params(version_or_path: str | Path | Mapping[str, Any] | SimmParams = "2.5") -> SimmParams:
    """Load SIMM parameters.

    Parameters
    ----------
    version_or_path : str, Path, mapping or SimmParams
        A version (``"2.5"``, ``"2.6"``, or ``"simm-2.5"``) of a shipped file in ``models/``, a path to a TOML file
        of the same layout, an already parsed document, or a :class:`SimmParams` (returned as is).

    Returns
    -------
    SimmParams

    Raises
    ------
    ModelError
        Unknown version or a file whose present risk-class sections lack a required table (names the key).
    """
    if isinstance(version_or_path, (SimmParams, Mapping)):
        return parse_simm_params(version_or_path)
    text = str(version_or_path)
    path = Path(text)
    if not (path.suffix == ".toml" or path.exists()):
        name = text if text.startswith("simm-") else f"simm-{text}"
        path = io.shipped_folder("models") / f"{name}.toml"
        if not path.exists():
            raise ModelError(f"unknown SIMM version '{text}'", file=str(path))
    return parse_simm_params(io.read_toml(path), file=str(path))


def load_derive_pm2_params(path: str | Path) -> PM2Params:
    """Read a Derive PM2 model file (``models/derive-pm2.toml``): its tables but ``[meta]``.

    See :meth:`greeksmargin.methodologies.derive_pm2_params.PM2Params.from_dict`.

    Raises
    ------
    ModelError
        The file is malformed; the message names the key and the file.
    """
    return pm2_params_from_model(io.read_toml(path), file=str(path))


def load_derive_srm_params(path: str | Path) -> SRMParams:
    """Read a Derive standard-manager model file (``models/derive-srm.toml``): its tables but meta / domain.

    See :func:`greeksmargin.methodologies.derive_srm.params_from_dict`.

    Raises
    ------
    ModelError
        The file is malformed; the message names the key and the file.
    """
    return srm_params_from_model(io.read_toml(path), file=str(path))


# ------------------------------------------------------------------------------------- SIMM entry points
def simm_margin(
    crif: Any,
    params: str | Path | Mapping[str, Any] | SimmParams = "2.5",
    horizon: str = "10d",
    calculation_currency: str = "USD",
    fx_rates: Mapping[str, float] | None = None,
) -> Any:
    """ISDA SIMM of a CRIF, with the parameters named by version or file (``gm.simm_margin``).

    :func:`greeksmargin.methodologies.simm.simm_margin` on :func:`load_simm_params` (``params``): a version
    of a shipped file (``"2.5"``, ``"2.6"``), a path to a TOML file of the same layout, a parsed document or a
    :class:`~greeksmargin.methodologies.simm_params.SimmParams`. Other arguments and the result
    (``SimmResult``) as there.
    """
    return simm_rules.simm_margin(crif, load_simm_params(params), horizon, calculation_currency, fx_rates)


def simm_by_portfolio(
    crif: Any,
    params: str | Path | Mapping[str, Any] | SimmParams = "2.5",
    horizon: str = "10d",
    calculation_currency: str = "USD",
    fx_rates: Mapping[str, float] | None = None,
    by: str | None = "PortfolioID",
) -> dict[str, Any]:
    """SIMM of each portfolio of a CRIF, with the parameters named by version or file (``gm.simm_by_portfolio``).

    :func:`greeksmargin.methodologies.simm.simm_by_portfolio` on :func:`load_simm_params` (``params``), as in
    :func:`simm_margin`.
    """
    return simm_rules.simm_by_portfolio(crif, load_simm_params(params), horizon, calculation_currency, fx_rates, by)
