"""Commands over MQTT: each declared once, validated by the API's own models and rules.

A command's payload is decoded into the same model the API decodes (``Confirm``, the
settings), so it is refused in the same words; the answer goes to the result topic with
the new state or the error. Nothing here decides who may command: the output listens
only when commands are on, which the settings allow only with a broker login.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bridge.models import Confirm, Rebooting, ResetDone
from bridge.schema import ValidationError, decode, encode

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bridge.components import UnitContext

PAYLOAD: Final = "payload"
MAX_PAYLOAD: Final = 64 * 1024
RETAINED: Final = (
    "a command sent with the retain flag is not run (it would run again at every connect)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandError:
    """Why a command was refused: the rule in words, and the dotted field it names."""

    message: str
    field: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """The answer to a command, on the result topic."""

    command: str
    ok: bool
    state: dict[str, Any] | None = None
    error: CommandError | None = None

    def payload(self) -> bytes:
        """Encode as compact JSON."""
        return json.dumps(encode(self), separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One command: what it does with its payload, and what it does after the answer."""

    name: str
    # Validates the payload, acts, and returns the new state (a model); raises
    # ValidationError when the payload breaks a rule.
    run: Callable[[UnitContext, bytes], Awaitable[object]]
    # After the answer went out: a reboot stops the unit, so it answers first.
    then: Callable[[UnitContext], Awaitable[None]] | None = None


def _text(payload: bytes) -> str:
    if len(payload) > MAX_PAYLOAD:
        raise ValidationError(PAYLOAD, f"must be at most {MAX_PAYLOAD} bytes", shape=True)
    try:
        return payload.decode()
    except UnicodeDecodeError as err:
        raise ValidationError(PAYLOAD, "must be UTF-8 text", shape=True) from err


def _json(payload: bytes) -> object:
    try:
        return json.loads(_text(payload))
    except (ValueError, RecursionError) as err:
        raise ValidationError(PAYLOAD, "must be JSON", shape=True) from err


def _value(payload: bytes) -> object:
    """Return a setting's new value: JSON, or the bare text (a select sends ``IT``)."""
    text = _text(payload)
    try:
        return typing.cast("object", json.loads(text))
    except (ValueError, RecursionError):
        return text


def _setting(section: str, name: str) -> Callable[[UnitContext, bytes], Awaitable[object]]:
    """Set one setting, as ``PATCH /api/v1/settings`` does; the state is its section."""

    async def run(unit: UnitContext, payload: bytes) -> object:
        settings = await unit.update_settings({section: {name: _value(payload)}})
        return getattr(settings, section)

    return run


async def _reboot(unit: UnitContext, payload: bytes) -> object:
    del unit, payload  # like POST /api/v1/system/reboot, it takes no body
    return Rebooting(rebooting=True)


async def _then_reboot(unit: UnitContext) -> None:
    await unit.reboot()


async def _factory_reset(unit: UnitContext, payload: bytes) -> object:
    decode(Confirm, _json(payload), name=PAYLOAD)
    await unit.factory_reset()
    return ResetDone(reset=True)


COMMANDS: Final[dict[str, Command]] = {
    command.name: command
    for command in (
        Command(name="reboot", run=_reboot, then=_then_reboot),
        Command(name="factory_reset", run=_factory_reset),
        Command(name="main_fuse", run=_setting("installation", "main_fuse")),
        Command(name="grid_type", run=_setting("installation", "grid_type")),
    )
}


async def run_command(
    command: Command, unit: UnitContext, payload: bytes, *, retained: bool
) -> CommandResult:
    """Run ``command`` and say how it went; a broken rule is an answer, not a crash."""
    if retained:
        # A retained command would run again at every connect: never run one.
        return CommandResult(command=command.name, ok=False, error=CommandError(message=RETAINED))
    try:
        state = await command.run(unit, payload)
    except ValidationError as err:
        return CommandResult(
            command=command.name,
            ok=False,
            error=CommandError(message=err.message, field=err.field),
        )
    return CommandResult(command=command.name, ok=True, state=encode(state))
