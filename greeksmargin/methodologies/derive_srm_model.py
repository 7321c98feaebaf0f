"""Loading a Derive standard-manager model file (``models/derive-srm.toml``) into :class:`SRMParams`.

The rule (:mod:`greeksmargin.methodologies.derive_srm`) reads no file; this adapter reads the TOML through
:mod:`greeksmargin.io` and parses its tables with :func:`~greeksmargin.methodologies.derive_srm.params_from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from greeksmargin import io
from greeksmargin.errors import InputError, ModelError
from greeksmargin.methodologies.derive_srm import SRMParams, params_from_dict

__all__ = ["load_derive_srm_params", "params_from_model"]


def load_derive_srm_params(path: str | Path) -> SRMParams:
    """Read a derive-srm model file: the tables of :func:`params_from_dict` beside ``[meta]`` / ``[domain]``.

    Raises
    ------
    ModelError
        The file is malformed; the message names the key and the file.
    """
    return params_from_model(io.read_toml(path), file=str(path))


def params_from_model(doc: Mapping[str, Any], file: str | None = None) -> SRMParams:
    """SRMParams from a derive-srm model document (every table but ``[meta]`` and ``[domain]``).

    Raises
    ------
    ModelError
        A malformed table; the message names the key (and ``file`` when given).
    """
    body = {k: v for k, v in doc.items() if k not in ("meta", "domain")}
    try:
        return params_from_dict(body, path="")
    except InputError as exc:
        raise ModelError(exc.reason, file=file, key=exc.column) from None
