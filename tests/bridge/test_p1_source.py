"""P1 smart meters through the real unit: telegrams on a real pty and a TCP socket to the API.

The telegrams are written in devtools/meter_peers/p1.py from the DSMR 5.0.2, DSMR 2.2 and
e-MUCS specifications, with correct CRCs, and the quirks of real meters: whole-ampere
currents without a sign, missing voltage lines, gas lines, a telegram cut off, a bad
CRC, a telegram split across reads, a bad value, an encrypted Luxembourg Smarty frame.
Faults show in the status and recover on their own.
"""

from __future__ import annotations

import os
import termios
from typing import TYPE_CHECKING

import pytest
from bridge_harness import serve_source, start_unit, wait_for

from bridge import cli
from bridge.config import ConfigError, build_options
from bridge.metering.sources import load_source
from bridge.metering.sources.p1 import DsmrVersion, P1Source, SerialLink, TcpLink, signed_current
from devtools.meter_peers import p1 as peer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import aiohttp


SMARTY_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
# Short enough that a silent meter shows within a test, long enough for a busy machine.
SILENCE = 1.5


@pytest.fixture
def pty_meter(tmp_path: Path) -> peer.PtyMeter:
    """Give a P1 cable on a real pty, found through a link as /dev/serial/by-id does."""
    meter = peer.PtyMeter(tmp_path / "ttyP1")
    yield meter  # type: ignore[misc]
    meter.unplug()


@pytest.fixture
async def tcp_meter() -> AsyncIterator[peer.TcpMeter]:
    """Give a P1 dongle serving telegrams on a TCP port of 127.0.0.1."""
    meter = peer.TcpMeter()
    await meter.start()
    yield meter
    await meter.stop()


def test_signed_current_takes_the_finer_value_and_the_power_s_sign() -> None:
    """Whole amperes from the meter, direction and precision from the per-phase power."""
    # Within the meter's resolution: the active current is the finer value.
    assert signed_current(10.0, 1.0, 2301.0, 0.0, 230.1) == pytest.approx(10.0)
    assert signed_current(3.0, 1.0, 0.0, 688.0, 229.3) == pytest.approx(-3.0004, abs=1e-4)
    assert signed_current(0.0, 1.0, 115.0, 0.0, 230.0) == pytest.approx(0.5)
    # A reactive load: the meter's RMS current is more than the power shows: it wins.
    assert signed_current(16.0, 1.0, 2300.0, 0.0, 230.0) == pytest.approx(16.0)
    # The power shows more than the meter's current (taken at another instant): the
    # larger, safe side.
    assert signed_current(5.0, 1.0, 0.0, 2300.0, 230.0) == pytest.approx(-10.0)
    # e-MUCS's 0.01 A: the meter's value unless the power agrees within 0.01 A.
    assert signed_current(10.12, 0.01, 2328.0, 0.0, 230.0) == pytest.approx(10.1217, abs=1e-4)
    assert signed_current(10.12, 0.01, 2000.0, 0.0, 230.0) == pytest.approx(10.12)
    # No per-phase power at all: the meter's current, unsigned.
    assert signed_current(7.0, 1.0, None, None, 230.0) == 7.0


async def test_a_dsmr5_meter_on_a_pty_reaches_the_api(
    pty_meter: peer.PtyMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """Whole-ampere currents get their sign from the power; nothing made up."""
    pty_meter.plug()
    source = P1Source(SerialLink(str(pty_meter.link)), silence=SILENCE)
    async with serve_source(source, state_dir, http) as served:
        await wait_for(lambda: served.health()["connected"])
        pty_meter.write(peer.dsmr5())
        reading = await served.reading_after(0)
    phases = reading["phases"]
    assert [phase["current"] for phase in phases] == [10.0, 1.998, -3.0]
    assert [phase["voltage"] for phase in phases] == [230.1, 231.2, 229.3]
    assert [phase["power"] for phase in phases] == [2301.0, 462.0, -688.0]
    assert reading["energy_import"] == pytest.approx(1234.567 + 2345.678)
    assert reading["energy_export"] == pytest.approx(111.222 + 222.333)
    assert reading["voltage_assumed"] is False
    assert reading["frequency"] is None
    assert reading["not_measured"] == [
        "angle",
        "power_factor",
        "voltage_angle",
        "frequency",
        "phase_energy",
    ]
    assert "demand" not in reading


async def test_the_serial_line_is_set_as_each_dsmr_version_needs(
    pty_meter: peer.PtyMeter, state_dir: Path
) -> None:
    """DSMR 4 and 5: 115200 baud; DSMR 2.2: 9600 baud, 7E1 (a pty shows the speed only)."""
    pty_meter.plug()
    for version, speed in ((DsmrVersion.AUTO, termios.B115200), (DsmrVersion.V2_2, termios.B9600)):
        source = P1Source(SerialLink(str(pty_meter.link)), dsmr_version=version)
        async with start_unit(state_dir, source=source):
            await wait_for(lambda source=source: source.health().connected)
            descriptor = os.open(pty_meter.link, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                attributes = termios.tcgetattr(descriptor)
            finally:
                os.close(descriptor)
            assert attributes[4] == speed  # ispeed


async def test_the_status_shows_the_meter_and_what_does_not_apply(
    tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """The meter, its pace, its counts; the unit's own CT and sequence checks do not apply."""
    source = P1Source(TcpLink("127.0.0.1", tcp_meter.port), silence=SILENCE)
    async with serve_source(source, state_dir, http) as served:
        await tcp_meter.connected.wait()
        await tcp_meter.send(peer.dsmr5())
        await served.reading_after(0)
        status = await served.get("status")
    assert status["meter"]["source"] == "p1-tcp"
    assert status["meter"]["address"] == f"127.0.0.1:{tcp_meter.port}"
    assert status["meter"]["meter"] == f"DSMR 5.0 ({peer.DSMR5_HEADER})"
    assert status["meter"]["interval"] == 1.0
    assert status["meter"]["received"] == 1
    assert status["meter"]["errors"] == 0
    assert status["voltage"]["state"] == "not_applicable"
    assert status["voltage"]["phases"] == {"L1": "ok", "L2": "ok", "L3": "ok"}
    assert status["current"]["state"] == "not_applicable"
    assert status["current"]["light"] == "off"
    assert source.nominal_interval == 1.0


async def test_a_dsmr4_meter_is_read_at_its_ten_seconds(
    tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """DSMR 4.2 sends every 10 s: the nominal interval says so (staleness reads it)."""
    source = P1Source(TcpLink("127.0.0.1", tcp_meter.port), silence=SILENCE)
    async with serve_source(source, state_dir, http) as served:
        await tcp_meter.connected.wait()
        await tcp_meter.send(peer.dsmr5(version="42"))
        await served.reading_after(0)
        assert served.health()["meter"] == f"DSMR 4.2 ({peer.DSMR5_HEADER})"
    assert source.nominal_interval == 10.0


async def test_missing_voltage_lines_assume_the_nominal_voltage(
    tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """No 32.7.0 lines: 230 V, flagged as assumed, and the current derived from it."""
    source = P1Source(TcpLink("127.0.0.1", tcp_meter.port), silence=SILENCE)
    async with serve_source(source, state_dir, http) as served:
        await tcp_meter.connected.wait()
        await tcp_meter.send(peer.dsmr5(voltages=False, gas=False))
        reading = await served.reading_after(0)
    assert reading["voltage_assumed"] is True
    assert [phase["voltage"] for phase in reading["phases"]] == [230.0, 230.0, 230.0]
    assert reading["phases"][0]["current"] == pytest.approx(2301.0 / 230.0, abs=1e-3)


async def test_bad_telegrams_are_counted_and_never_used(
    tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """A bad CRC, a cut-off telegram, a bad value: counted, shown, the stream goes on."""
    source = P1Source(TcpLink("127.0.0.1", tcp_meter.port), silence=SILENCE)
    good = peer.HOUSEHOLD
    changed = (peer.PhaseValues(current=16.0, voltage=230.0, import_kw=3.68), *good[1:])
    async with serve_source(source, state_dir, http) as served:
        await tcp_meter.connected.wait()
        await tcp_meter.send(peer.dsmr5())
        first = await served.reading_after(0)
        bad_value = peer.frame(peer.DSMR5_HEADER, ["1-3:0.2.8(50)", "1-0:31.7.0(abc*A)"])
        await tcp_meter.send(peer.with_bad_crc(peer.dsmr5(changed)))
        await tcp_meter.send(peer.truncated(peer.dsmr5(changed)))
        await tcp_meter.send(bad_value)
        await tcp_meter.send(peer.dsmr5(changed))
        reading = await served.reading_after(first["sequence"])
        health = served.health()
    # The next reading is the good telegram after the bad ones: none of theirs was used.
    assert reading["sequence"] == first["sequence"] + 1
    assert reading["phases"][0]["current"] == 16.0
    assert health["received"] == 2
    assert health["errors"] == 3
    assert health["last_error"] == "a telegram was refused: a bad value"


async def test_a_telegram_split_across_reads_is_put_together(
    pty_meter: peer.PtyMeter, tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """Seven bytes at a time, with line noise before it, on the pty and on TCP."""
    pty_meter.plug()
    for link in (SerialLink(str(pty_meter.link)), TcpLink("127.0.0.1", tcp_meter.port)):
        source = P1Source(link, silence=SILENCE)
        async with serve_source(source, state_dir, http) as served:
            await wait_for(lambda source=source: source.health().connected)
            sequence = await served.sequence()
            data = b"\x00\x13noise!\r\n" + peer.dsmr5()
            if isinstance(link, SerialLink):
                pty_meter.write(data, chunk=7)
            else:
                await tcp_meter.send(data, chunk=7)
            reading = await served.reading_after(sequence)
            assert reading["phases"][2]["current"] == -3.0
            assert served.health()["errors"] == 0
        await tcp_meter.drop()


async def test_an_e_mucs_meter_gives_demand_and_finer_currents(
    tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """Belgium: currents in 0.01 A, the quarter-hour demand and the month's peak."""
    phases = (
        peer.PhaseValues(current=10.12, voltage=230.1, import_kw=2.301),
        peer.PhaseValues(current=2.01, voltage=231.2, import_kw=0.462),
        peer.PhaseValues(current=3.05, voltage=229.3, export_kw=0.688),
    )
    source = P1Source(TcpLink("127.0.0.1", tcp_meter.port), silence=SILENCE)
    async with serve_source(source, state_dir, http) as served:
        await tcp_meter.connected.wait()
        await tcp_meter.send(peer.emucs(phases))
        reading = await served.reading_after(0)
        assert served.health()["meter"] == f"e-MUCS 50217 ({peer.EMUCS_HEADER})"
    # 2301 W / 230.1 V is 10.00 A, more than 0.01 A under the meter's 10.12: the meter's.
    assert [phase["current"] for phase in reading["phases"]] == [10.12, 2.01, -3.05]
    assert reading["demand"] == {
        "average_power": 2351.0,
        "monthly_peak": 4589.0,
        "monthly_peak_time": "2025-04-09T11:45:00+00:00",
    }
    assert source.nominal_interval == 1.0


async def test_a_dsmr22_meter_gives_totals_only(
    pty_meter: peer.PtyMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """No CRC, no per-phase line: the whole connection on L1, no per-phase headroom."""
    pty_meter.plug()
    source = P1Source(SerialLink(str(pty_meter.link)), dsmr_version=DsmrVersion.V2_2)
    async with serve_source(source, state_dir, http) as served:
        await wait_for(lambda: served.health()["connected"])
        pty_meter.write(peer.dsmr22(import_kw=0.73))
        reading = await served.reading_after(0)
        assert served.health()["meter"] == f"DSMR 2.2/3.0 ({peer.DSMR22_HEADER})"
    assert reading["phases"][0]["power"] == 730.0
    assert reading["phases"][0]["current"] == pytest.approx(730.0 / 230.0, abs=1e-3)
    assert reading["phases"][1]["power"] == 0.0
    assert reading["not_measured"][-1] == "phase_split"
    assert [phase["available_current"] for phase in reading["phases"]] == [None, None, None]
    assert reading["energy_import"] == pytest.approx(584.411 + 564.262)
    assert source.nominal_interval == 10.0


async def test_an_encrypted_smarty_frame_is_decrypted(
    tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """Luxembourg: AES-GCM frames, garbage and a split before; a wrong key is said so."""
    plaintext = peer.dsmr5()
    source = P1Source(
        TcpLink("127.0.0.1", tcp_meter.port),
        dsmr_version=DsmrVersion.SMARTY,
        decryption_key=SMARTY_KEY.hex(),
        silence=SILENCE,
    )
    async with serve_source(source, state_dir, http) as served:
        await tcp_meter.connected.wait()
        await tcp_meter.send(b"\x01\x02" + peer.smarty(plaintext, SMARTY_KEY), chunk=50)
        reading = await served.reading_after(0)
        assert reading["phases"][0]["current"] == 10.0
        assert served.health()["meter"] == "DSMR 5.0"
        wrong_key = bytes(16)
        await tcp_meter.send(peer.smarty(plaintext, wrong_key, frame_counter=2))
        await wait_for(lambda: served.health()["errors"] == 1)
        assert "decryption_key" in served.health()["last_error"]
    assert source.nominal_interval == 10.0


async def test_a_meter_of_another_kind_gets_a_clear_error(
    tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """A DSMR 2.2 telegram to a unit set for DSMR 4/5, Smarty frames unannounced."""
    source = P1Source(TcpLink("127.0.0.1", tcp_meter.port), silence=SILENCE)
    async with serve_source(source, state_dir, http) as served:
        await tcp_meter.connected.wait()
        await tcp_meter.send(peer.dsmr22())
        error = await served.error_saying("without a CRC")
        assert "dsmr_version = 2.2" in error
        encrypted = peer.smarty(peer.dsmr5(), SMARTY_KEY)
        await tcp_meter.send(encrypted * (peer_garbage_repeats(encrypted)))
        await wait_for(lambda: "smarty" in (served.health()["last_error"] or ""))
        await tcp_meter.send(peer.dsmr5())
        await wait_for(lambda: served.unit.reading is not None)
        assert await served.meter_error() is None


def peer_garbage_repeats(frame: bytes) -> int:
    """How many copies of ``frame`` make more bytes than a telegram can have."""
    return 8192 // len(frame) + 2


async def test_garbage_and_silence_give_a_meter_error_that_recovers(
    tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """Noise instead of telegrams, then nothing at all: said, and gone with the next one."""
    source = P1Source(TcpLink("127.0.0.1", tcp_meter.port), silence=SILENCE)
    async with serve_source(source, state_dir, http) as served:
        await tcp_meter.connected.wait()
        await tcp_meter.send(peer.dsmr5())
        await served.reading_after(0)
        await tcp_meter.send(bytes(range(32, 47)) * 600)
        error = await served.error_saying("without a P1 telegram")
        assert "no valid telegram from the P1 meter on 127.0.0.1" in error
        await tcp_meter.send(peer.dsmr5())
        await wait_for(lambda: served.unit.reading is not None)
        assert await served.meter_error() is None
        # Silence: the meter stopped sending (the link stays up).
        await served.error_saying("for 2 s: nothing that looks like a telegram arrived")
        await tcp_meter.send(peer.dsmr5())
        await wait_for(lambda: served.unit.reading is not None)


async def test_an_unplugged_cable_is_named_and_recovers(
    pty_meter: peer.PtyMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """The USB serial port vanishes and comes back: the source reopens it by itself."""
    pty_meter.plug()
    source = P1Source(SerialLink(str(pty_meter.link)), silence=SILENCE)
    async with serve_source(source, state_dir, http) as served:
        await wait_for(lambda: served.health()["connected"])
        pty_meter.write(peer.dsmr5())
        await served.reading_after(0)
        pty_meter.unplug()
        error = await served.error_saying("P1")
        assert error.startswith(("the link to the P1 meter", "serial port"))
        await served.error_saying("is missing (P1 cable unplugged?)")
        assert served.health()["connected"] is False
        pty_meter.plug()
        await wait_for(lambda: served.health()["connected"], within=40.0)
        sequence = await served.sequence()
        pty_meter.write(peer.dsmr5())
        await served.reading_after(sequence)
        assert await served.meter_error() is None


async def test_a_dongle_that_reboots_is_reconnected(
    tcp_meter: peer.TcpMeter, state_dir: Path, http: aiohttp.ClientSession
) -> None:
    """The socket closes and the port refuses for a while: said, and reconnected."""
    source = P1Source(TcpLink("127.0.0.1", tcp_meter.port), silence=SILENCE)
    async with serve_source(source, state_dir, http) as served:
        await tcp_meter.connected.wait()
        await tcp_meter.send(peer.dsmr5())
        await served.reading_after(0)
        port = tcp_meter.port
        await tcp_meter.stop()
        await served.error_saying(f"the link to the P1 meter on 127.0.0.1:{port} was lost")
        await served.error_saying("cannot open the P1 meter's link")
        await tcp_meter.start(port)
        await wait_for(tcp_meter.connected.is_set, within=40.0)
        await tcp_meter.send(peer.dsmr5())
        await wait_for(lambda: served.unit.reading is not None)
        assert served.health()["errors"] >= 2


def test_the_command_line_names_what_a_p1_source_lacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--source p1-tcp without an address, or --dsmr-version smarty without a key."""
    assert cli.main(["run", "--source", "p1-tcp", "--meter-host", "192.0.2.7"]) == cli.EXIT_USAGE
    assert "[meter] port: is required for a P1 meter on TCP" in capsys.readouterr().err
    arguments = ["run", "--source", "p1-serial", "--dsmr-version", "smarty"]
    assert cli.main(arguments) == cli.EXIT_USAGE
    assert "[meter] decryption_key: is required" in capsys.readouterr().err


def test_the_start_up_options_choose_and_check_the_p1_source(tmp_path: Path) -> None:
    """--source p1-serial / p1-tcp, with the options each needs."""
    options = build_options(
        {"source": {"type": "p1-serial"}, "meter": {"serial_port": str(tmp_path / "ttyUSB0")}}
    )
    source = load_source(options)
    assert isinstance(source, P1Source)
    assert source.health().address == str(tmp_path / "ttyUSB0")
    options = build_options(
        {"source": {"type": "p1-tcp"}, "meter": {"host": "192.0.2.7", "port": 8088}}
    )
    assert load_source(options).health().address == "192.0.2.7:8088"
    with pytest.raises(ConfigError, match=r"\[meter\] host: is required for a P1 meter on TCP"):
        build_options({"source": {"type": "p1-tcp"}})
    with pytest.raises(ConfigError, match=r"\[meter\] decryption_key: is required"):
        build_options({"source": {"type": "p1-serial"}, "meter": {"dsmr_version": "smarty"}})
    with pytest.raises(ConfigError, match=r"\[meter\] decryption_key: must be 32 hexadecimal"):
        build_options({"meter": {"decryption_key": "not-a-key"}})
    with pytest.raises(ConfigError, match=r"\[meter\] dsmr_version: must be one of"):
        build_options({"meter": {"dsmr_version": "6"}})
