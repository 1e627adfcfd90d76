"""A smart meter's P1 port as a ``Source``: DSMR 2.2 to 5.x, Belgian e-MUCS, Luxembourg Smarty.

The meter pushes a telegram every second (DSMR 5, e-MUCS) or ten (DSMR 2.2 and 4,
Smarty) over its P1 port: through a P1 cable's USB serial port, or a ser2net-style raw
socket or P1-to-Wi-Fi dongle on TCP. Our own ``asyncio.Protocol`` frames the stream
with dsmr-parser's buffers and parses each telegram with its parser (its own reader lets
a malformed value escape its callback and stall the stream). A telegram with a bad CRC,
a cut-off one, a bad value or one that will not decrypt is counted and shown, never
used. The link is reopened on its own, backing off, when the cable is pulled, the
dongle reboots or the socket closes.

P1 gives no angles, power factor, frequency or per-phase energy: those stay None. How
the signed per-phase current is made from the meter's unsigned (and, on Dutch meters,
whole-ampere) current and its per-phase import and export power is in
``signed_current`` and docs/metering.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import serialx
from dsmr_parser import telegram_specifications as specs
from dsmr_parser.clients.telegram_buffer import EncryptedTelegramBuffer, TelegramBuffer
from dsmr_parser.exceptions import DecryptionError, InvalidChecksumError, ParseError
from dsmr_parser.parsers import TelegramParser
from typing_extensions import override

from bridge.metering.sources.base import HealthTracker, SourceError
from bridge.models import Demand, Measurement, PhaseEnergy, PhaseMeasurement

if TYPE_CHECKING:
    from collections.abc import Callable

    from bridge.config import StartupOptions
    from bridge.models import MeterHealth

_LOGGER = logging.getLogger(__name__)

# A meter without voltage lines: the nominal voltage of the grids P1 meters serve.
NOMINAL_VOLTAGE: Final = 230.0
# Telegrams a second (DSMR 5, e-MUCS) or every ten seconds (DSMR 2.2 and 4, Smarty).
FAST_INTERVAL: Final = 1.0
SLOW_INTERVAL: Final = 10.0
# How long without a valid telegram before the meter counts as lost: this many of its
# intervals, and a little for a telegram under way.
SILENT_INTERVALS: Final = 3
SILENCE_SLACK: Final = 2.0
# Reopening a lost link backs off up to this, and starts again after a good telegram.
BACKOFF_FIRST: Final = 0.5
BACKOFF_MAX: Final = 30.0
# Bytes without a telegram in them before they are called garbage (a telegram is < 3 kB).
GARBAGE_BYTES: Final = 8192
GENERAL_GLOBAL_CIPHER_TAG: Final = 0xDB
NO_CRC: Final = re.compile(r"!\r\n\Z")
E_MUCS_VERSION: Final = "0-0:96.1.4("


class DsmrVersion:
    """The meter families the ``dsmr_version`` option names."""

    AUTO = "auto"  # DSMR 4.x, 5.x and e-MUCS, told apart per telegram
    V2_2 = "2.2"
    SMARTY = "smarty"


@dataclass(frozen=True, slots=True)
class SerialLink:
    """A P1 cable on a (USB) serial port."""

    path: str

    def describe(self) -> str:
        """Say where the meter is."""
        return self.path


@dataclass(frozen=True, slots=True)
class TcpLink:
    """A raw TCP socket that serves the telegrams (ser2net, a P1-to-Wi-Fi dongle)."""

    host: str
    port: int

    def describe(self) -> str:
        """Say where the meter is."""
        return f"{self.host}:{self.port}"


Link = SerialLink | TcpLink


def signed_current(
    meter_current: float | None,
    resolution: float,
    import_power: float | None,
    export_power: float | None,
    voltage: float,
) -> float:
    """Return one phase's signed current from what a P1 meter gives for it.

    The meter's current has no sign and a coarse resolution (whole amperes on Dutch
    meters); its per-phase import and export power are finer and give the direction.
    The active current |P| / V is taken while it agrees with the meter's current within
    that resolution, and when it is the larger of the two (the safe side). Below, a load
    draws reactive current that the power does not show, and the fuse feels the RMS
    current: the meter's value wins. The sign is the power's: export is negative.
    """
    net = None
    if import_power is not None or export_power is not None:
        net = (import_power or 0.0) - (export_power or 0.0)
    if net is None or voltage <= 0.0:
        return abs(meter_current) if meter_current is not None else 0.0
    derived = abs(net) / voltage
    magnitude = derived
    if meter_current is not None and derived < abs(meter_current) - resolution:
        magnitude = abs(meter_current)
    return -magnitude if net < 0.0 else magnitude


def _resolution(value: Decimal) -> float:
    """Return the step of a telegram's number: 1 for ``003``, 0.01 for ``003.12``."""
    exponent = value.as_tuple().exponent
    return float(Decimal(1).scaleb(exponent)) if isinstance(exponent, int) else 1.0


class _Values:
    """Typed, checked access to a parsed telegram (dsmr-parser's objects are untyped)."""

    def __init__(self, telegram: Any) -> None:  # noqa: ANN401 - dsmr-parser's Telegram
        self._telegram = telegram

    def decimal(self, name: str) -> Decimal | None:
        """Return a line's number, None when the line is absent."""
        line = getattr(self._telegram, name, None)
        value = getattr(line, "value", None)
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            msg = f"{name} is not a number"
            raise ValueError(msg)
        return value

    def number(self, name: str, scale: float = 1.0) -> float | None:
        """Return a line's number as a float times ``scale``."""
        value = self.decimal(name)
        return None if value is None else float(value) * scale

    def text(self, name: str) -> str | None:
        """Return a line's text value."""
        value = getattr(getattr(self._telegram, name, None), "value", None)
        return value if isinstance(value, str) else None

    def moment(self, name: str) -> datetime | None:
        """Return the time an MBus-style line carries beside its value."""
        moment = getattr(getattr(self._telegram, name, None), "datetime", None)
        return moment if isinstance(moment, datetime) else None


def _sum(first: float | None, second: float | None) -> float | None:
    if first is None and second is None:
        return None
    return (first or 0.0) + (second or 0.0)


@dataclass(frozen=True, slots=True)
class Telegram:
    """What one valid telegram gave: the measurement, and who the meter says it is."""

    measurement: Measurement
    meter: str
    interval: float


def read_telegram(telegram: Any, header: str, received: datetime) -> Telegram:  # noqa: ANN401
    """Turn a parsed telegram into a measurement; raises ``ValueError`` when it lacks one.

    ``header`` is the telegram's identification line (``XMX5LGF…``), ``received`` when
    its last byte came (the reading's time: a meter's own clock may be off).
    """
    values = _Values(telegram)
    imported = _sum(
        values.number("ELECTRICITY_USED_TARIFF_1"), values.number("ELECTRICITY_USED_TARIFF_2")
    )
    exported = _sum(
        values.number("ELECTRICITY_DELIVERED_TARIFF_1"),
        values.number("ELECTRICITY_DELIVERED_TARIFF_2"),
    )
    if imported is None or exported is None:
        msg = "telegram has no energy counters (1-0:1.8.x, 2.8.x)"
        raise ValueError(msg)
    phases: list[PhaseMeasurement] = []
    voltage_assumed = False
    for index in (1, 2, 3):
        voltage = values.number(f"INSTANTANEOUS_VOLTAGE_L{index}")
        if voltage is None:
            voltage_assumed = True
            voltage = NOMINAL_VOLTAGE
        current = values.decimal(f"INSTANTANEOUS_CURRENT_L{index}")
        import_power = values.number(f"INSTANTANEOUS_ACTIVE_POWER_L{index}_POSITIVE", 1000.0)
        export_power = values.number(f"INSTANTANEOUS_ACTIVE_POWER_L{index}_NEGATIVE", 1000.0)
        phases.append(
            PhaseMeasurement(
                voltage=voltage,
                current=signed_current(
                    None if current is None else float(current),
                    1.0 if current is None else _resolution(current),
                    import_power,
                    export_power,
                    voltage,
                ),
                power=(import_power or 0.0) - (export_power or 0.0),
                power_factor=None,
                angle=None,
                voltage_angle=None,
            )
        )
    # DSMR 2.2 (and early 4.0) meters give no per-phase line at all: totals only.
    total_only = all(
        values.decimal(name) is None
        for index in (1, 2, 3)
        for name in (
            f"INSTANTANEOUS_CURRENT_L{index}",
            f"INSTANTANEOUS_ACTIVE_POWER_L{index}_POSITIVE",
            f"INSTANTANEOUS_ACTIVE_POWER_L{index}_NEGATIVE",
        )
    )
    if total_only:
        phases = _total_on_l1(values)
        voltage_assumed = True
    version = values.text("P1_MESSAGE_HEADER")
    belgian = values.text("BELGIUM_VERSION_INFORMATION")
    if belgian is not None:
        meter, interval = f"e-MUCS {belgian}", FAST_INTERVAL
    elif version is not None and len(version) >= 2:  # noqa: PLR2004 - "50": DSMR 5.0
        meter = f"DSMR {version[0]}.{version[1:]}"
        interval = FAST_INTERVAL if version >= "50" else SLOW_INTERVAL
    else:
        meter, interval = "DSMR 2.2/3.0", SLOW_INTERVAL
    return Telegram(
        measurement=Measurement(
            timestamp=received,
            phases=(phases[0], phases[1], phases[2]),
            frequency=None,
            meter_totals=PhaseEnergy(imported=imported, exported=exported),
            voltage_assumed=voltage_assumed,
            total_only=total_only,
            demand=_demand(values),
        ),
        meter=f"{meter} ({header})" if header else meter,
        interval=interval,
    )


def _total_on_l1(values: _Values) -> list[PhaseMeasurement]:
    """Put the whole connection on L1: a meter that gives totals only (DSMR 2.2)."""
    import_power = values.number("CURRENT_ELECTRICITY_USAGE", 1000.0)
    export_power = values.number("CURRENT_ELECTRICITY_DELIVERY", 1000.0)
    if import_power is None and export_power is None:
        msg = "telegram has no power (1-0:1.7.0, 2.7.0)"
        raise ValueError(msg)
    power = (import_power or 0.0) - (export_power or 0.0)
    idle = PhaseMeasurement(
        voltage=NOMINAL_VOLTAGE,
        current=0.0,
        power=0.0,
        power_factor=None,
        angle=None,
        voltage_angle=None,
    )
    return [
        PhaseMeasurement(
            voltage=NOMINAL_VOLTAGE,
            current=signed_current(None, 1.0, import_power, export_power, NOMINAL_VOLTAGE),
            power=power,
            power_factor=None,
            angle=None,
            voltage_angle=None,
        ),
        idle,
        idle,
    ]


def _demand(values: _Values) -> Demand | None:
    """Return e-MUCS's quarter-hour demand (1-0:1.4.0, 1-0:1.6.0), None on other meters."""
    average = values.number("BELGIUM_CURRENT_AVERAGE_DEMAND", 1000.0)
    if average is None:
        return None
    return Demand(
        average_power=average,
        monthly_peak=values.number("BELGIUM_MAXIMUM_DEMAND_MONTH", 1000.0),
        monthly_peak_time=values.moment("BELGIUM_MAXIMUM_DEMAND_MONTH"),
    )


class P1Protocol(asyncio.Protocol):
    """Frames and parses the byte stream of one connection; never raises into the loop."""

    def __init__(
        self,
        version: str,
        on_telegram: Callable[[Telegram], None],
        on_error: Callable[[str], None],
        decryption_key: str | None = None,
    ) -> None:
        """Parse as ``version`` says; report each telegram and each error by callback."""
        self._version = version
        self._encrypted = version == DsmrVersion.SMARTY
        self._key = decryption_key or ""
        self._on_telegram = on_telegram
        self._on_error = on_error
        self._plain = TelegramBuffer()
        self._cipher = EncryptedTelegramBuffer()
        # What the plain buffer holds, to see a telegram start that never ended.
        self._pending = ""
        self._since_telegram = 0
        self._saw_cipher_tag = False
        self._parsers = {
            "dsmr": TelegramParser(specs.V5),
            "e-mucs": TelegramParser(specs.BELGIUM_FLUVIUS),
            "2.2": TelegramParser(specs.V2_2),
            "smarty": TelegramParser(specs.MSN),
        }
        self.closed: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.BaseTransport | None = None

    @override
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    @override
    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    @override
    def data_received(self, data: bytes) -> None:
        received = datetime.now(UTC)
        self._since_telegram += len(data)
        if GENERAL_GLOBAL_CIPHER_TAG in data:
            self._saw_cipher_tag = True
        if self._encrypted:
            self._cipher.append(data)
            frames = list(self._cipher.get_all())
        else:
            text = data.decode("latin-1")
            self._plain.append(text)
            self._pending += text
            frames = list(self._plain.get_all())
            self._cut_off(frames)
        for frame in frames:
            self._since_telegram = 0
            self._saw_cipher_tag = False
            self._handle(frame, received)
        if self._since_telegram > GARBAGE_BYTES:
            self._garbage()

    def _cut_off(self, frames: list[str]) -> None:
        """Count a telegram that began but was followed by the next one: it was cut off."""
        for frame in frames:
            index = self._pending.find(frame)
            if index < 0:  # pragma: no cover - the buffer only yields what it was given
                continue
            if "/" in self._pending[:index]:
                self._on_error("a telegram was cut off (not used)")
            self._pending = self._pending[index + len(frame) :]

    def _garbage(self) -> None:
        """Many bytes and no telegram: the wrong speed, the wrong kind of meter, noise."""
        count = self._since_telegram
        self._since_telegram = 0
        self._plain = TelegramBuffer()
        self._pending = ""
        if self._encrypted:
            hint = "a plain DSMR meter? set dsmr_version = auto"
        elif self._saw_cipher_tag:
            hint = (
                "they look like encrypted frames: a Luxembourg Smarty? set dsmr_version ="
                " smarty and its decryption_key"
            )
        elif self._version == DsmrVersion.V2_2:
            hint = "DSMR 4 and 5 meters send at 115200 baud: set dsmr_version = auto"
        else:
            hint = "DSMR 2.2 and 3 meters send at 9600 baud: set dsmr_version = 2.2"
        self._saw_cipher_tag = False
        self._on_error(f"{count} bytes without a P1 telegram in them ({hint})")

    def _handle(self, frame: str, received: datetime) -> None:
        """Parse one framed telegram; count what is wrong with it, never raise."""
        try:
            self._on_telegram(self._parse(frame, received))
        except DecryptionError:
            self._on_error("a telegram does not decrypt: is the decryption_key right?")
        except InvalidChecksumError:
            self._on_error("a telegram has a bad CRC (counted, not used)")
        except ParseError:
            if not self._encrypted and NO_CRC.search(frame):
                self._on_error(
                    "a telegram without a CRC: a DSMR 2.2 or 3 meter? set dsmr_version = 2.2"
                )
            else:
                self._on_error("a telegram is incomplete (cut off or garbled)")
        except UnicodeError:
            self._on_error("a telegram holds bytes that are not ASCII (noise on the line?)")
        except (ArithmeticError, ValueError, LookupError, TypeError) as err:
            # decimal.InvalidOperation for a value like (abc*A), bad hex, a missing line
            detail = str(err) if isinstance(err, ValueError) and str(err) else "a bad value"
            self._on_error(f"a telegram was refused: {detail}")

    def _parse(self, frame: str, received: datetime) -> Telegram:
        if self._encrypted:
            parsed = self._parsers["smarty"].parse(
                frame, encryption_key=self._key, authentication_key=""
            )
            return read_telegram(parsed, "", received)
        frame.encode("ascii")  # P1 is 7-bit ASCII
        header = frame[1 : frame.find("\r")].strip() if "\r" in frame else ""
        if self._version == DsmrVersion.V2_2:
            if not NO_CRC.search(frame):
                msg = "it has a CRC: a DSMR 4 or 5 meter? set dsmr_version = auto"
                raise ValueError(msg)
            parser = self._parsers["2.2"]
        else:
            parser = self._parsers["e-mucs" if E_MUCS_VERSION in frame else "dsmr"]
        return read_telegram(parser.parse(frame, throw_ex=True), header, received)


class P1Source:
    """A ``Source`` reading a smart meter's P1 telegrams, over serial or TCP."""

    name = "p1"

    def __init__(
        self,
        link: Link,
        *,
        dsmr_version: str = DsmrVersion.AUTO,
        decryption_key: str | None = None,
        silence: float | None = None,
    ) -> None:
        """Read telegrams from ``link``; ``silence`` overrides when the meter counts as lost."""
        self._link = link
        self._version = dsmr_version
        self._key = decryption_key
        self._silence = silence
        kind = "p1-serial" if isinstance(link, SerialLink) else "p1-tcp"
        # Until a telegram says DSMR 5 or e-MUCS, the slower pace is the safe guess.
        self._health = HealthTracker(kind, link.describe(), SLOW_INTERVAL)
        self._latest: Telegram | None = None
        self._fresh = asyncio.Event()
        self._last_good = time.monotonic()
        self._link_error: str | None = None
        self._last_telegram_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._protocol: P1Protocol | None = None
        self._logged: str | None = None

    @property
    def nominal_interval(self) -> float:
        """Seconds between telegrams: 10 until the first tells DSMR 5 or e-MUCS (1)."""
        return self._health.interval

    def health(self) -> MeterHealth:
        """Return the link's state and the telegrams counted."""
        return self._health.health()

    async def component_init(self) -> None:
        """Start keeping the link open (an unplugged meter is retried, never fatal)."""
        parser_logger = logging.getLogger("dsmr_parser")
        if parser_logger.level == logging.NOTSET and not _LOGGER.isEnabledFor(logging.DEBUG):
            # dsmr-parser logs every refused line, with a traceback; this source reports
            # each failure once, in words.
            parser_logger.setLevel(logging.CRITICAL)
        if self._task is None:
            self._last_good = time.monotonic()
            self._task = asyncio.create_task(self._keep_linked(), name="amp-guard-p1")

    async def read(self) -> Measurement:
        """Return the next valid telegram's measurement, or say why there is none."""
        if self._task is None:
            await self.component_init()
        while self._latest is None:
            silence = self._silence_limit()
            left = self._last_good + silence - time.monotonic()
            if self._link_error is not None and not self._health.connected:
                raise SourceError(self._link_error)
            if left <= 0:
                raise SourceError(self._silence_error(silence))
            self._fresh.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._fresh.wait(), left)
        telegram, self._latest = self._latest, None
        return telegram.measurement

    def _silence_limit(self) -> float:
        if self._silence is not None:
            return self._silence
        return SILENT_INTERVALS * self.nominal_interval + SILENCE_SLACK

    def _silence_error(self, silence: float) -> str:
        where = self._link.describe()
        why = self._last_telegram_error or "nothing that looks like a telegram arrived"
        return f"no valid telegram from the P1 meter on {where} for {silence:.0f} s: {why}"

    async def _keep_linked(self) -> None:
        """Open the link, read until it drops, back off, open it again."""
        backoff = BACKOFF_FIRST
        while True:
            received_before = self._health.received
            try:
                protocol = await self._open()
            except (OSError, serialx.SerialException, ValueError) as err:
                self._link_down(self._open_error(err))
            else:
                self._protocol = protocol
                self._health.connected = True
                self._link_error = None
                self._last_good = time.monotonic()
                self._fresh.set()
                exc = await protocol.closed
                self._protocol = None
                where = self._link.describe()
                detail = f": {exc}" if exc is not None else ""
                self._link_down(f"the link to the P1 meter on {where} was lost{detail}")
            if self._health.received > received_before:
                backoff = BACKOFF_FIRST
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _link_down(self, error: str) -> None:
        self._health.connected = False
        self._link_error = error
        self._health.error(error)
        self._log(error)
        self._fresh.set()

    def _open_error(self, err: Exception) -> str:
        link = self._link
        if isinstance(link, SerialLink) and not Path(link.path).exists():
            return f"serial port {link.path} is missing (P1 cable unplugged?)"
        return f"cannot open the P1 meter's link {link.describe()}: {err}"

    async def _open(self) -> P1Protocol:
        loop = asyncio.get_running_loop()
        protocol = P1Protocol(self._version, self._telegram, self._telegram_error, self._key)
        link = self._link
        if isinstance(link, TcpLink):
            await loop.create_connection(lambda: protocol, link.host, link.port)
            return protocol
        slow = self._version == DsmrVersion.V2_2
        # DSMR 2.2 and 3: 9600 baud, 7E1; DSMR 4 and 5: 115200 baud, 8N1.
        await serialx.create_serial_connection(
            loop,
            lambda: protocol,
            url=link.path,
            baudrate=9600 if slow else 115200,
            parity=serialx.Parity.EVEN if slow else serialx.Parity.NONE,
            stopbits=serialx.StopBits.ONE,
            byte_size=7 if slow else 8,
        )
        return protocol

    def _telegram(self, telegram: Telegram) -> None:
        self._health.message()
        self._health.meter = telegram.meter
        # Smarty frames carry DSMR 5 telegrams, but come every ten seconds.
        if self._version == DsmrVersion.AUTO:
            self._health.interval = telegram.interval
        self._last_good = time.monotonic()
        self._last_telegram_error = None
        self._latest = telegram
        self._fresh.set()
        if self._logged is not None:
            _LOGGER.info("P1 meter on %s sends valid telegrams again", self._link.describe())
            self._logged = None

    def _telegram_error(self, error: str) -> None:
        self._health.error(error)
        self._last_telegram_error = error
        self._log(error)

    def _log(self, error: str) -> None:
        """Log an error when it first appears, not on every telegram."""
        if error != self._logged:
            _LOGGER.warning("P1 meter on %s: %s", self._link.describe(), error)
            self._logged = error

    async def close(self) -> None:
        """Close the link and stop reopening it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
            with contextlib.suppress(asyncio.CancelledError):
                await protocol.closed
        self._health.connected = False


def load_p1_source(options: StartupOptions) -> P1Source:
    """Make the P1 source the start-up options describe."""
    from bridge.config import ConfigError  # noqa: PLC0415 - config imports sources lazily

    meter = options.meter
    link: Link
    if options.source.type == "p1-serial":
        link = SerialLink(meter.serial_port)
    elif meter.host is not None and meter.port is not None:
        link = TcpLink(meter.host, meter.port)
    else:
        raise ConfigError("meter", "host", "is required for a P1 meter on TCP (p1-tcp)")
    return P1Source(link, dsmr_version=meter.dsmr_version, decryption_key=meter.decryption_key)


__all__ = [
    "DsmrVersion",
    "P1Protocol",
    "P1Source",
    "SerialLink",
    "TcpLink",
    "load_p1_source",
    "read_telegram",
    "signed_current",
]
