"""Every suite by name: the shipped YAML suites, a suite file, and BFCL's categories (`bfcl:NAME`)."""

from __future__ import annotations

from . import bfcl
from . import suites
from .suites import Suite


def names() -> list[str]:
    """The shipped suites, and BFCL's categories when its data is installed."""
    shipped = suites.names()
    return shipped + [bfcl.PREFIX + c for c in bfcl.CATEGORIES] if bfcl.available() else shipped


def load(name: str, bfcl_dir: str | None = None) -> Suite:
    if name.startswith(bfcl.PREFIX):
        return bfcl.load(name, bfcl_dir)
    return suites.load(name)
