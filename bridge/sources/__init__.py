"""Metering sources: every meter front-end implements ``Source``."""

from bridge.sources.base import Source, SourceError

__all__ = ["Source", "SourceError"]
