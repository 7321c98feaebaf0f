"""The package version (one place; read by the package, the CLI and the calibration provenance)."""

__version__ = "0.1.0"
