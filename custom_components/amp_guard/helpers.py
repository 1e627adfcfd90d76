"""The two places where client errors become Home Assistant errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Concatenate

from homeassistant.exceptions import ConfigEntryAuthFailed, HomeAssistantError
from homeassistant.helpers.update_coordinator import UpdateFailed

from .api import (
    AmpGuardAuthenticationError,
    AmpGuardConnectionError,
    AmpGuardError,
    AmpGuardNotSupportedError,
    AmpGuardUnsupportedVersionError,
    AmpGuardValidationError,
)
from .const import DOMAIN
from .issues import async_raise_version_issue

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from .coordinator import AmpGuardCoordinator
    from .entity import AmpGuardEntity


def coordinator_exception_handler[C: AmpGuardCoordinator, **P, R](
    func: Callable[Concatenate[C, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[C, P], Coroutine[Any, Any, R]]:
    """Map client errors in a coordinator update to UpdateFailed or a reauth."""

    async def handler(self: C, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await func(self, *args, **kwargs)
        except AmpGuardAuthenticationError as error:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="authentication_error"
            ) from error
        except AmpGuardUnsupportedVersionError as error:
            async_raise_version_issue(self.hass, self.config_entry, error)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="unsupported_version",
                translation_placeholders={"version": error.version},
            ) from error
        except AmpGuardConnectionError as error:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="communication_error",
                translation_placeholders={"error": str(error)},
            ) from error
        except AmpGuardError as error:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="unknown_error",
                translation_placeholders={"error": str(error)},
            ) from error

    return handler


def action_exception_handler[E: AmpGuardEntity[Any], **P](
    func: Callable[Concatenate[E, P], Coroutine[Any, Any, None]],
) -> Callable[Concatenate[E, P], Coroutine[Any, Any, None]]:
    """Turn client errors in an entity action into translated HomeAssistantErrors."""

    async def handler(self: E, /, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await func(self, *args, **kwargs)
        except AmpGuardAuthenticationError as error:
            # A revoked token or changed PIN: ask the user to pair again.
            self.coordinator.config_entry.async_start_reauth(self.hass)
            raise translated_error(error) from error
        except AmpGuardError as error:
            raise translated_error(error) from error

    return handler


def translated_error(error: AmpGuardError) -> HomeAssistantError:
    """Return the translated HomeAssistantError for a client error."""
    if isinstance(error, AmpGuardAuthenticationError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="authentication_error")
    if isinstance(error, AmpGuardValidationError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="invalid_setting",
            translation_placeholders={"field": error.field, "error": str(error)},
        )
    if isinstance(error, AmpGuardNotSupportedError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="not_supported")
    if isinstance(error, AmpGuardConnectionError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="communication_error",
            translation_placeholders={"error": str(error)},
        )
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="unknown_error",
        translation_placeholders={"error": str(error)},
    )
