"""Helpers shared by the tests and the benchmarks; never shipped with the bridge.

The bridge's package is ``bridge*`` only (pyproject.toml), so nothing here reaches an
SBC. Tests and benchmarks both import from here because benchmarks may not import tests.
"""
