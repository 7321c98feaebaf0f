"""ISDA SIMM parameters: the tables of one version (risk weights, correlations, thresholds), parsed and checked.

The file readers (a version name or a path) live in :mod:`greeksmargin.engine.params_files`; this module
reads no file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from greeksmargin.errors import InputError, ModelError

HORIZONS = ("10d", "1d")
#: risk classes (names as in the psi matrix) and their model-file sections
RISK_CLASSES = {
    "InterestRate": "interest_rate",
    "CreditQualifying": "credit_q",
    "CreditNonQualifying": "credit_nonq",
    "Equity": "equity",
    "Commodity": "commodity",
    "FX": "fx",
}


# --------------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class SimmParams:
    """Parameters of one SIMM version (all tables as read from the model file).

    Attributes
    ----------
    version : str
        SIMM version, e.g. ``"2.5"``.
    source : str
        Where the numbers come from.
    raw : dict
        The parsed TOML document.
    file : str
        The model file read (``"<dict>"`` when built from a dict).
    """

    version: str
    source: str
    raw: dict[str, Any] = field(repr=False)
    file: str = "<dict>"

    def _get(self, dotted: str) -> Any:
        node: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ModelError("missing parameter", file=self.file, key=dotted)
            node = node[part]
        return node

    def has(self, risk_class: str) -> bool:
        """Whether the file holds the tables of a risk class (``"Equity"`` or its section name)."""
        return RISK_CLASSES.get(risk_class, risk_class) in self.raw

    def section(self, risk_class: str) -> str:
        """Section name of a risk class; ModelError naming the class and the file when the file lacks it."""
        sec = RISK_CLASSES.get(risk_class, risk_class)
        if sec not in self.raw:
            raise ModelError(f"risk class {risk_class} is not in this SIMM model file (no [{sec}] section); "
                             f"its sensitivities cannot be margined with it", file=self.file, key=sec)
        return sec

    @property
    def buckets(self) -> list[str]:
        """Equity buckets in the order of the per-bucket tables."""
        return [str(b) for b in self._get("equity.buckets")]

    @property
    def residual(self) -> str:
        """Name of the residual bucket."""
        return str(self.raw.get("general", {}).get("residual_bucket", "Residual"))

    def at(self, dotted: str, horizon: str | None = None) -> Any:
        """The value at a dotted key, or its ``horizon`` entry when the value is a per-horizon table."""
        value = self._get(dotted)
        if horizon is not None and isinstance(value, dict) and set(value) & set(HORIZONS):
            if horizon not in value:
                raise ModelError(f"missing horizon '{horizon}'", file=self.file, key=dotted)
            return value[horizon]
        return value

    def per_bucket(self, section: str, key: str, horizon: str | None = None) -> dict[str, float]:
        """A per-bucket table ``{bucket: value}`` of a section (a scalar is broadcast to every bucket)."""
        names = [str(b) for b in self._get(f"{section}.buckets")]
        values = self.at(f"{section}.{key}", horizon)
        if isinstance(values, int | float):
            return {b: float(values) for b in names}
        if not isinstance(values, list) or len(values) != len(names):
            raise ModelError(f"expected {len(names)} values (one per bucket)", file=self.file,
                             key=f"{section}.{key}")
        return {b: float(v) for b, v in zip(names, values)}

    def bucket_table(self, dotted: str, horizon: str | None = None) -> dict[str, float]:
        """An equity per-bucket table (kept for callers of the equity-only API)."""
        section, key = dotted.split(".", 1)
        return self.per_bucket(section, key, horizon)

    def scalar(self, dotted: str, horizon: str | None = None) -> float:
        """A scalar parameter (optionally per horizon)."""
        value = self.at(dotted, horizon)
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"expected a number, got {value!r}", file=self.file, key=dotted) from exc

    def matrix(self, dotted: str, n: int) -> np.ndarray:
        """A square matrix parameter of shape (n, n)."""
        mat = np.asarray(self._get(dotted), dtype=float)
        if mat.shape != (n, n):
            raise ModelError(f"matrix shape {mat.shape} does not match ({n}, {n})", file=self.file, key=dotted)
        return mat

    def inter_bucket(self, section: str = "equity") -> tuple[list[str], np.ndarray]:
        """Inter-bucket correlation gamma of a section: (bucket names, matrix of shape (n, n))."""
        names = [str(b) for b in self._get(f"{section}.inter_bucket_buckets")]
        return names, self.matrix(f"{section}.inter_bucket_correlation", len(names))

    def concentration_on(self, horizon: str) -> bool:
        """Whether the concentration factor applies at this horizon."""
        return bool(self._get("general.concentration").get(horizon, horizon == "10d"))

    def tenor_days(self, tenor: str) -> float:
        """Days of a SIMM tenor label such as ``2w``, ``3m``, ``10y`` (units from ``general.tenor_unit_days``)."""
        units = self._get("general.tenor_unit_days")
        text = str(tenor).strip().lower()
        if len(text) < 2 or text[-1] not in units:
            raise InputError(f"unknown tenor label '{tenor}'", column="Label1")
        try:
            n = float(text[:-1])
        except ValueError as exc:
            raise InputError(f"unknown tenor label '{tenor}'", column="Label1") from exc
        unit = units[text[-1]]
        days = n * float(Fraction(unit)) if isinstance(unit, str) else n * float(unit)
        if not days > 0:
            raise InputError(f"tenor label '{tenor}' is not positive", column="Label1")
        return days

    def risk_class_correlation(self, a: str, b: str) -> float:
        """Correlation psi between two risk classes."""
        if a == b:
            return 1.0
        classes = list(self._get("risk_class_correlation.classes"))
        mat = self._get("risk_class_correlation.matrix")
        try:
            return float(mat[classes.index(a)][classes.index(b)])
        except ValueError as exc:
            raise ModelError(f"no correlation for risk classes {a}/{b}", file=self.file,
                             key="risk_class_correlation") from exc


def parse_simm_params(raw: Mapping[str, Any] | SimmParams, file: str = "<dict>") -> SimmParams:
    """SIMM parameters from a parsed model document (the tables of a ``models/simm-<version>.toml``).

    Parameters
    ----------
    raw : mapping or SimmParams
        The document (``[meta]`` version and source, ``[general]`` and the risk-class sections), or
        :class:`SimmParams` (returned as is).
    file : str, default "<dict>"
        Named in errors.

    Returns
    -------
    SimmParams

    Raises
    ------
    ModelError
        A document whose present risk-class sections lack a required table (names the key).
    InputError
        ``raw`` is neither a mapping nor SimmParams (a version name or a path is read by
        ``greeksmargin.engine.params_files.load_simm_params``).
    """
    if isinstance(raw, SimmParams):
        return raw
    if not isinstance(raw, Mapping):
        raise InputError(f"SIMM parameters must be SimmParams or a parsed model document, got {type(raw).__name__} "
                         f"(read a version or a file with greeksmargin.engine.params_files.load_simm_params)",
                         column="params")
    raw = raw if isinstance(raw, dict) else dict(raw)
    meta = raw.get("meta", {})
    params = SimmParams(version=str(meta.get("version", "")), source=str(meta.get("source", "")), raw=raw, file=file)
    _validate(params)
    return params


def _validate(p: SimmParams) -> None:
    """Check the tables of every present section now, so that a bad file fails at load time naming the key."""
    if not any(p.has(rc) for rc in RISK_CLASSES):
        raise ModelError("no risk-class section (interest_rate, credit_q, credit_nonq, equity, commodity, fx)",
                         file=p.file)
    p.scalar("general.delta_confidence")
    p.scalar("general.curvature_confidence")
    p.scalar("general.curvature_factor")
    p._get("general.tenor_unit_days")
    for h in HORIZONS:
        p.scalar("general.vega_sigma_days", h)
        p.scalar("general.curvature_scale_days", h)
    for rc, sec in RISK_CLASSES.items():
        if not p.has(rc):
            continue
        if rc == "FX":
            for h in HORIZONS:
                p.matrix("fx.delta.risk_weight." + h, 2)
                p.scalar("fx.vega.risk_weight", h)
                p.scalar("fx.vega.historical_volatility_ratio", h)
            continue
        if rc == "InterestRate":
            n = len(p._get(f"{sec}.tenors"))
            p.matrix(f"{sec}.tenor_correlation", n)
            for h in HORIZONS:
                rw = p.at(f"{sec}.delta.risk_weight", h)
                if len(rw) != len(p._get(f"{sec}.buckets")) or any(len(r) != n for r in rw):
                    raise ModelError("expected one row of tenor weights per bucket", file=p.file,
                                     key=f"{sec}.delta.risk_weight.{h}")
                p.scalar(f"{sec}.delta.inflation_risk_weight", h)
                p.scalar(f"{sec}.delta.xccy_basis_risk_weight", h)
                p.scalar(f"{sec}.vega.risk_weight", h)
                p.scalar(f"{sec}.vega.historical_volatility_ratio", h)
            continue
        for h in HORIZONS:
            p.per_bucket(sec, "delta.risk_weight", h)
            p.per_bucket(sec, "vega.risk_weight", h)
        p.per_bucket(sec, "delta.concentration_threshold")
        p.per_bucket(sec, "vega.concentration_threshold")
        p.inter_bucket(sec)
        if rc in ("Equity", "Commodity"):
            p.per_bucket(sec, "intra_bucket_correlation")
            for h in HORIZONS:
                p.scalar(f"{sec}.vega.historical_volatility_ratio", h)


