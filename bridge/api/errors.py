"""The API's one error type and its JSON form (``{"error": {code, message, ...}}``)."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import Mapping


class ErrorCode(StrEnum):
    """What kind of failure an error reply reports."""

    BAD_REQUEST = "bad_request"
    SERIAL_MISMATCH = "serial_mismatch"
    UNAUTHORIZED = "unauthorized"
    INVALID_PIN = "invalid_pin"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    VALIDATION = "validation"
    LOCKED_OUT = "locked_out"
    BUSY = "busy"
    CONFLICT = "conflict"
    UNAVAILABLE = "unavailable"
    STORAGE = "storage"
    INTERNAL = "internal"


class ServerError(Exception):
    """An API failure the client should see: HTTP status, a code and words for humans."""

    def __init__(
        self,
        message: str,
        status_code: int = 400,
        *,
        code: ErrorCode = ErrorCode.BAD_REQUEST,
        field: str | None = None,
        retry_after: float | None = None,
        tries_left: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Describe the failure; ``field`` for validation, ``retry_after`` for lock-outs.

        ``tries_left`` tells a wrong PIN's sender how many more it may send.
        """
        super().__init__(message)
        self.headers = dict(headers or {})
        self.message = message
        self.status_code = status_code
        self.code = code
        self.field = field
        self.retry_after = None if retry_after is None else max(1, math.ceil(retry_after))
        self.tries_left = tries_left

    def response(self) -> web.Response:
        """Render as the API's JSON error reply."""
        error: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        if self.tries_left is not None:
            error["tries_left"] = self.tries_left
        headers = dict(self.headers)
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
            headers["Retry-After"] = str(self.retry_after)
        if self.status_code == web.HTTPUnauthorized.status_code:
            headers["WWW-Authenticate"] = 'Bearer realm="amp-guard"'
        return web.Response(
            status=self.status_code,
            text=json.dumps({"error": error}),
            content_type="application/json",
            headers=headers,
        )
