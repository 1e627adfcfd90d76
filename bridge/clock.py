"""Whether the system clock can be trusted: an SBC has no RTC and boots at a stale time.

Readings carry ``clock_synchronised`` so consumers know when timestamps may be wrong
(before NTP has set the clock after a power cut). The kernel knows: ``adjtimex`` with no
modes reports the clock state, and ``TIME_ERROR`` means "not synchronised".
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

# Kernel clock states (linux/timex.h); TIME_ERROR is set while STA_UNSYNC is.
TIME_ERROR: Final = 5
# struct timex is 208 bytes on 64-bit Linux; a larger zeroed buffer is safe on every ABI.
_TIMEX_BUFFER_SIZE: Final = 512


@functools.cache
def _adjtimex() -> Callable[[Any], Any] | None:
    """Return libc's ``adjtimex``, or None where there is none (not Linux, no libc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        # The process's own symbols include libc; find_library would run ldconfig.
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.adjtimex
    except (OSError, AttributeError):
        _LOGGER.warning("adjtimex is not available: the clock is reported unsynchronised")
        return None
    function.restype = ctypes.c_int
    adjtimex: Callable[[Any], Any] = function
    return adjtimex


def clock_state() -> int | None:
    """Return the kernel's clock state (0..5), or None when it cannot be asked."""
    function = _adjtimex()
    if function is None:
        return None
    # All zero: modes = 0 asks without changing anything.
    timex = ctypes.create_string_buffer(_TIMEX_BUFFER_SIZE)
    try:
        state = function(timex)
    except (OSError, ctypes.ArgumentError):
        return None
    if not isinstance(state, int) or state < 0:
        return None
    return state


def clock_synchronised() -> bool:
    """Return True when the kernel says the clock is NTP-synchronised; False on any doubt."""
    state = clock_state()
    return state is not None and state < TIME_ERROR
