"""Amp Guard bridge: the device side of the Amp Guard grid power monitor."""

from typing import Final

__version__: Final = "0.1.0"
MODEL: Final = "Amp Guard (open)"
API_VERSION: Final = "1.4"
