"""The version of dl4keras (one place; `pyproject.toml` reads it from here)."""

__version__ = "0.1.0"
