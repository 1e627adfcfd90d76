"""A smart meter's P1 port: telegrams written from the specifications, served on a pty or TCP.

Telegram layouts follow the P1 Companion Standard DSMR 5.0.2 (section 6.12), DSMR 2.2,
and Fluvius's e-MUCS H P1 specification (1.7.1); the Luxembourg Smarty frame follows
Luxmetering's P1 specification (DLMS general-global-cipher, AES-128-GCM). A telegram
is ``/`` header, an empty line, its lines, then ``!`` and, from DSMR 4 on, the CRC:
CRC-16/ARC over every byte from ``/`` to ``!``, in four upper-case hex digits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

DSMR5_HEADER: Final = "ISk5\\2MT382-1000"
EMUCS_HEADER: Final = "FLU5\\253769484_A"
DSMR22_HEADER: Final = "ISk5\\2ME382-1003"
# The authentication key every Smarty uses: published in Luxmetering's specification.
SMARTY_AUTHENTICATION_KEY: Final = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
SMARTY_SYSTEM_TITLE: Final = b"SAG\x10\x05\x0b\x1a\x2b"
SECURITY_CONTROL: Final = 0x30  # encrypted and authenticated, suite 0
GCM_TAG_BYTES: Final = 12


def crc16(data: bytes) -> int:
    """CRC-16/ARC (polynomial 0x8005 reflected, start 0), as DSMR 4 and 5 specify it."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(header: str, lines: Sequence[str], *, with_crc: bool = True) -> bytes:
    """Frame telegram lines: ``/header``, empty line, lines, ``!`` and the CRC (or none)."""
    text = "".join(line + "\r\n" for line in lines)
    body = f"/{header}\r\n\r\n{text}!".encode("ascii")
    if not with_crc:
        return body + b"\r\n"
    return body + f"{crc16(body):04X}\r\n".encode("ascii")


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseValues:
    """One phase as a meter measures it: |I|, V, and import and export power in kW."""

    current: float
    voltage: float = 230.0
    import_kw: float = 0.0
    export_kw: float = 0.0


# 10 A import on L1, 2 A import on L2, 3 A export on L3 (PV).
HOUSEHOLD: Final = (
    PhaseValues(current=10.0, voltage=230.1, import_kw=2.301),
    PhaseValues(current=2.0, voltage=231.2, import_kw=0.462),
    PhaseValues(current=3.0, voltage=229.3, export_kw=0.688),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Counters:
    """The meter's energy registers in kWh (tariff 1 and 2, import and export)."""

    import_t1: float = 1234.567
    import_t2: float = 2345.678
    export_t1: float = 111.222
    export_t2: float = 222.333


def dsmr5(
    phases: Sequence[PhaseValues] = HOUSEHOLD,
    *,
    counters: Counters = Counters(),
    version: str = "50",
    voltages: bool = True,
    gas: bool = True,
    header: str = DSMR5_HEADER,
) -> bytes:
    """Write a DSMR 5.0.2 telegram (the spec's example layout), whole-ampere currents."""
    total_import = sum(phase.import_kw for phase in phases)
    total_export = sum(phase.export_kw for phase in phases)
    lines = [
        f"1-3:0.2.8({version})",
        "0-0:1.0.0(250415113020S)",
        "0-0:96.1.1(4B384547303034303436333935353037)",
        f"1-0:1.8.1({counters.import_t1:010.3f}*kWh)",
        f"1-0:1.8.2({counters.import_t2:010.3f}*kWh)",
        f"1-0:2.8.1({counters.export_t1:010.3f}*kWh)",
        f"1-0:2.8.2({counters.export_t2:010.3f}*kWh)",
        "0-0:96.14.0(0002)",
        f"1-0:1.7.0({total_import:06.3f}*kW)",
        f"1-0:2.7.0({total_export:06.3f}*kW)",
        "0-0:96.7.21(00004)",
        "0-0:96.7.9(00002)",
        "1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004W)(0000000301*s)",
        "1-0:32.32.0(00002)",
        "1-0:52.32.0(00001)",
        "1-0:72.32.0(00000)",
        "1-0:32.36.0(00000)",
        "1-0:52.36.0(00003)",
        "1-0:72.36.0(00000)",
        "0-0:96.13.0()",
    ]
    if voltages:
        lines += [
            f"1-0:{code}.7.0({phase.voltage:05.1f}*V)"
            for code, phase in zip((32, 52, 72), phases, strict=True)
        ]
    # Whole amperes without a sign, as Dutch meters send them.
    lines += [
        f"1-0:{code}.7.0({round(phase.current):03d}*A)"
        for code, phase in zip((31, 51, 71), phases, strict=True)
    ]
    lines += [
        f"1-0:{code}.7.0({phase.import_kw:06.3f}*kW)"
        for code, phase in zip((21, 41, 61), phases, strict=True)
    ]
    lines += [
        f"1-0:{code}.7.0({phase.export_kw:06.3f}*kW)"
        for code, phase in zip((22, 42, 62), phases, strict=True)
    ]
    if gas:
        lines += [
            "0-1:24.1.0(003)",
            "0-1:96.1.0(3232323241424344313233343536373839)",
            "0-1:24.2.1(250415112500S)(12785.123*m3)",
        ]
    return frame(header, lines)


def emucs(
    phases: Sequence[PhaseValues] = HOUSEHOLD,
    *,
    counters: Counters = Counters(),
    average_kw: float = 2.351,
    monthly_peak_kw: float = 4.589,
) -> bytes:
    """Write a Fluvius e-MUCS H telegram: 0.01 A currents, quarter-hour demand, peaks."""
    total_import = sum(phase.import_kw for phase in phases)
    total_export = sum(phase.export_kw for phase in phases)
    lines = [
        "0-0:96.1.4(50217)",
        "0-0:96.1.1(3153414733313031303231363035)",
        "0-0:1.0.0(250415113020S)",
        f"1-0:1.8.1({counters.import_t1:010.3f}*kWh)",
        f"1-0:1.8.2({counters.import_t2:010.3f}*kWh)",
        f"1-0:2.8.1({counters.export_t1:010.3f}*kWh)",
        f"1-0:2.8.2({counters.export_t2:010.3f}*kWh)",
        "0-0:96.14.0(0001)",
        f"1-0:1.4.0({average_kw:06.3f}*kW)",
        f"1-0:1.6.0(250409134500S)({monthly_peak_kw:06.3f}*kW)",
        (
            "0-0:98.1.0(2)(1-0:1.6.0)(1-0:1.6.0)(250301000000W)(250210181500W)(03.695*kW)"
            "(250401000000S)(250315193000W)(05.980*kW)"
        ),
        f"1-0:1.7.0({total_import:06.3f}*kW)",
        f"1-0:2.7.0({total_export:06.3f}*kW)",
    ]
    lines += [
        f"1-0:{code}.7.0({phase.import_kw:06.3f}*kW)"
        for code, phase in zip((21, 41, 61), phases, strict=True)
    ]
    lines += [
        f"1-0:{code}.7.0({phase.export_kw:06.3f}*kW)"
        for code, phase in zip((22, 42, 62), phases, strict=True)
    ]
    lines += [
        f"1-0:{code}.7.0({phase.voltage:05.1f}*V)"
        for code, phase in zip((32, 52, 72), phases, strict=True)
    ]
    lines += [
        f"1-0:{code}.7.0({phase.current:06.2f}*A)"
        for code, phase in zip((31, 51, 71), phases, strict=True)
    ]
    lines += [
        "0-0:96.3.10(1)",
        "0-0:17.0.0(999.9*kW)",
        "1-0:31.4.0(999*A)",
        "0-0:96.13.0()",
        "0-1:24.1.0(003)",
        "0-1:96.1.1(37464C4F32313139303333373333)",
        "0-1:24.4.0(1)",
        "0-1:24.2.3(250415113000S)(00112.384*m3)",
    ]
    return frame(EMUCS_HEADER, lines)


def dsmr22(*, import_kw: float = 0.73, export_kw: float = 0.0) -> bytes:
    """Write a DSMR 2.2 telegram: no CRC, no per-phase line, gas on a line of its own."""
    lines = [
        "0-0:96.1.1(4B414C37303035313039323635323133)",
        "1-0:1.8.1(00584.411*kWh)",
        "1-0:1.8.2(00564.262*kWh)",
        "1-0:2.8.1(00000.000*kWh)",
        "1-0:2.8.2(00000.000*kWh)",
        "0-0:96.14.0(0002)",
        f"1-0:1.7.0({import_kw:07.2f}*kW)",
        f"1-0:2.7.0({export_kw:07.2f}*kW)",
        "0-0:17.0.0(999*A)",
        "0-0:96.3.10(1)",
        "0-0:96.13.1()",
        "0-0:96.13.0()",
        "0-1:24.1.0(3)",
        "0-1:96.1.0(3238313031353431303031333733353131)",
        "0-1:24.3.0(120517020000)(08)(60)(1)(0-1:24.2.1)(m3)",
        "(00124.477)",
        "0-1:24.4.0(1)",
    ]
    return frame(DSMR22_HEADER, lines, with_crc=False)


def smarty(plaintext: bytes, key: bytes, *, frame_counter: int = 1) -> bytes:
    """Seal a telegram as a Smarty sends it: a DLMS general-global-cipher APDU.

    ``DB``, the system title's length and the title, ``82`` and a two-byte length, the
    security control byte, the frame counter, the ciphertext and a 12-byte GCM tag. The
    IV is the system title and the frame counter; the associated data is the security
    control byte and the authentication key.
    """
    counter = frame_counter.to_bytes(4, "big")
    sealed = AESGCM(key).encrypt(
        SMARTY_SYSTEM_TITLE + counter,
        plaintext,
        bytes([SECURITY_CONTROL]) + SMARTY_AUTHENTICATION_KEY,
    )
    # GCM's tag may be cut short: the first 12 of its 16 bytes.
    ciphertext, tag = sealed[:-16], sealed[-16 : -16 + GCM_TAG_BYTES]
    body = bytes([SECURITY_CONTROL]) + counter + ciphertext + tag
    return (
        bytes([0xDB, len(SMARTY_SYSTEM_TITLE)])
        + SMARTY_SYSTEM_TITLE
        + b"\x82"
        + len(body).to_bytes(2, "big")
        + body
    )


def with_bad_crc(telegram: bytes) -> bytes:
    """Change a digit of a telegram on the way, leaving its CRC as it was."""
    return telegram.replace(b"(230.1*V)", b"(230.7*V)", 1).replace(b"(002*A)", b"(007*A)", 1)


def truncated(telegram: bytes) -> bytes:
    """Cut a telegram off before its end (a dongle that rebooted mid-telegram)."""
    return telegram[: len(telegram) // 2]


@dataclass
class PtyMeter:
    """A P1 cable: a real pseudo-terminal, reached through a stable symlink (as by-id)."""

    link: Path
    _master: int | None = field(default=None, init=False)

    def plug(self) -> None:
        """Open a new pty and point the link at it, as udev does for a replugged cable."""
        master, slave = os.openpty()
        tty.setraw(master)
        name = os.ttyname(slave)
        os.close(slave)  # the source opens its own descriptor
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        self.link.symlink_to(name)
        self._master = master

    def unplug(self) -> None:
        """Close the master: the reader gets a hang-up, the port vanishes."""
        if self._master is not None:
            os.close(self._master)
            self._master = None
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()

    def write(self, data: bytes, *, chunk: int | None = None) -> None:
        """Write bytes as the meter sends them, in pieces of ``chunk`` when given."""
        if self._master is None:
            msg = "the P1 cable is not plugged in"
            raise RuntimeError(msg)
        size = chunk or len(data)
        for start in range(0, len(data), size):
            os.write(self._master, data[start : start + size])

    @contextlib.contextmanager
    def plugged(self) -> Iterator[PtyMeter]:
        """Plug in for the block."""
        self.plug()
        try:
            yield self
        finally:
            self.unplug()


class TcpMeter:
    """A raw TCP telegram server (ser2net, a P1 dongle) on 127.0.0.1."""

    def __init__(self) -> None:
        """Not listening until ``start``."""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connected = asyncio.Event()
        self.port = 0

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (a free port, or the one it had before)."""

        async def serve(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.add(writer)
            self.connected.set()

        self._server = await asyncio.start_server(serve, "127.0.0.1", port or self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def send(self, data: bytes, *, chunk: int | None = None) -> None:
        """Send bytes to every connected reader, in pieces of ``chunk`` when given."""
        size = chunk or len(data)
        for start in range(0, len(data), size):
            for writer in list(self._writers):
                writer.write(data[start : start + size])
                await writer.drain()

    async def drop(self) -> None:
        """Close every connection (a dongle rebooting); keep listening."""
        for writer in list(self._writers):
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        self._writers.clear()
        self.connected.clear()

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
