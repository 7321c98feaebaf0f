"""A Derive standard-manager model document (``models/derive-srm.toml``, parsed) as :class:`SRMParams`.

The rule (:mod:`greeksmargin.methodologies.derive_srm`) and this module read no file; the file reader is
``greeksmargin.engine.params_files.load_derive_srm_params``, which parses the tables with
:func:`params_from_model`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greeksmargin.errors import InputError, ModelError
from greeksmargin.methodologies.derive_srm import SRMParams, params_from_dict

__all__ = ["params_from_model"]


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
