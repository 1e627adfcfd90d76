"""A typed seam over the ``ocpp`` package, which ships no type information.

Everything the central system and the emulated charge points take from ``ocpp`` goes
through here: the ``on``/``after`` decorators, typed so strict mypy checks handlers, and
a ``ChargePoint`` base whose loop never dies of a frame and never logs a payload (the
library's own loop logs every message at info, AuthorizationKey included, and lets a
garbage frame or a handler's slip end the connection with a traceback).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import ocpp.exceptions
import ocpp.messages
import ocpp.routing
import ocpp.v16
from websockets.exceptions import ConnectionClosed

if TYPE_CHECKING:
    from websockets.asyncio.connection import Connection

_LOGGER = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Any])

CALL: Final = 2
CALL_RESULT: Final = 3
CALL_ERROR: Final = 4
# The unique id of a CALLERROR that answers a frame too broken to carry one.
UNKNOWN_ID: Final = "-1"


class RequestError(Exception):
    """A call to the other side got no usable answer: its CALLERROR, a timeout, a close.

    ``code`` is the CALLERROR's code (``NotSupported``, ``NotImplemented``, ...), or
    ``Timeout`` / ``Closed``. The message never carries the request's payload.
    """

    def __init__(self, action: str, code: str, description: str = "") -> None:
        """Say which call failed and how."""
        self.action = action
        self.code = code
        super().__init__(f"{action}: {code}{f' ({description})' if description else ''}")


def on(action: str, *, skip_schema_validation: bool = False) -> Callable[[_F], _F]:
    """Mark a method as the handler of ``action`` (``ocpp.routing.on``, typed)."""
    return cast(
        "Callable[[_F], _F]", ocpp.routing.on(action, skip_schema_validation=skip_schema_validation)
    )


def after(action: str) -> Callable[[_F], _F]:
    """Mark a method to run after ``action`` was answered (``ocpp.routing.after``, typed)."""
    return cast("Callable[[_F], _F]", ocpp.routing.after(action))


def _frame_id(raw: str | bytes) -> str:
    """Return the unique id of a frame that failed to parse, or ``UNKNOWN_ID``."""
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return UNKNOWN_ID
    if isinstance(frame, list) and len(frame) > 1 and isinstance(frame[1], str) and frame[1]:
        return frame[1][:36]
    return UNKNOWN_ID


def _frame_type(raw: str | bytes) -> object:
    """Return the message type id of a frame (to tell CALLs from answers), or None."""
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return frame[0] if isinstance(frame, list) and frame else None


class ChargePoint(ocpp.v16.ChargePoint):  # type: ignore[misc]  # ocpp ships no types
    """One OCPP 1.6J connection, either side: the loop, the calls, quiet and sturdy."""

    id: str

    def __init__(
        self, charge_point_id: str, connection: Connection, *, response_timeout: float
    ) -> None:
        """Serve ``connection``; calls to the other side wait ``response_timeout`` s."""
        super().__init__(
            charge_point_id, connection, response_timeout=response_timeout, logger=_LOGGER
        )
        self.connection = connection
        self.bad_frames = 0

    async def start(self) -> None:
        """Read and route frames until the connection closes (then return)."""
        try:
            while True:
                message = await self.connection.recv()
                await self.route_message(message)
        except ConnectionClosed:
            return

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Route one frame; a broken one gets a CALLERROR, nothing escapes."""
        try:
            message = ocpp.messages.unpack(raw_msg)
        except ocpp.exceptions.OCPPError as err:
            await self._refuse(raw_msg, str(err.code), str(err.description))
            return
        if message.message_type_id == CALL:
            refusal = self.gate(str(message.action))
            if refusal is not None:
                await self._send(message.create_call_error(refusal).to_json())
                return
            try:
                await self._handle_call(message)
            except ocpp.exceptions.OCPPError as err:
                self.bad_frames += 1
                _LOGGER.warning(
                    "%s sent a %s we refuse: %s %s",
                    self.id,
                    message.action,
                    err.code,
                    err.description,
                )
                await self._send(message.create_call_error(err).to_json())
            except (ConnectionClosed, asyncio.CancelledError):
                raise
            except Exception:
                # A bug of ours must cost one answer, not the connection.
                _LOGGER.exception("%s: %s failed", self.id, message.action)
                error = ocpp.exceptions.InternalError(description="The unit failed to answer")
                await self._send(message.create_call_error(error).to_json())
        elif self._call_lock.locked():
            self._response_queue.put_nowait(message)
        else:
            # Nobody waits for it (a late or made-up answer): the queue must not grow.
            _LOGGER.debug("%s: dropped an answer nobody waits for", self.id)

    def gate(self, action: str) -> Exception | None:
        """Return the OCPP error that refuses ``action`` before it is handled, or None."""
        del action
        return None

    async def _refuse(self, raw: str | bytes, code: str, description: str) -> None:
        """Answer a frame that is not OCPP at all (garbage, wrong shape, wrong type)."""
        self.bad_frames += 1
        if self.bad_frames == 1 or self.bad_frames % 100 == 0:
            _LOGGER.warning(
                "%s sent a frame that is not OCPP (%s, %d so far)",
                self.id,
                code,
                self.bad_frames,
            )
        if _frame_type(raw) in {CALL_RESULT, CALL_ERROR}:
            return  # never answer an answer
        error = ocpp.messages.CallError(
            unique_id=_frame_id(raw),
            error_code=code,
            error_description=description,
            error_details={},
        )
        await self._send(error.to_json())

    async def _send(self, message: str) -> None:
        """Send a frame (never logged: it may carry a key)."""
        await self.connection.send(message)

    async def request(self, payload: object, *, skip_schema_validation: bool = False) -> Any:  # noqa: ANN401 - ocpp's call results are untyped dataclasses
        """Call the other side and return its ``call_result``; raise ``RequestError``.

        A CALLERROR, a timeout or a closed connection all become ``RequestError``, whose
        message names the action only (never the payload: it may carry a key).
        """
        action = type(payload).__name__
        try:
            return await self.call(
                payload, suppress=False, skip_schema_validation=skip_schema_validation
            )
        except TimeoutError:
            raise RequestError(action, "Timeout", "no answer") from None
        except ConnectionClosed:
            raise RequestError(action, "Closed", "the connection closed") from None
        except ocpp.exceptions.OCPPError as err:
            raise RequestError(action, str(err.code), str(err.description or "")) from None

    async def request_status(self, payload: object) -> str:
        """Call the other side and return the ``status`` of its answer (``Accepted``...)."""
        result = await self.request(payload)
        return str(result.status)
