"""The package version (base layer: imports nothing of the package)."""

__version__ = "0.1.0"
