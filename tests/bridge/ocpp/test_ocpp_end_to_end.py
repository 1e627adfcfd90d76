"""End to end: the emulator's household, the balancing service, three OCPP chargers.

As ``scripts/emulator --ocpp-emulate garage --ocpp-emulate drive --ocpp-emulate
barn:stuck-16a`` runs it: the emulated charge points connect over real OCPP on
loopback, are accepted through the key exchange, and their cars draw through the
emulated meter. After a step in the house load the unit cuts the chargers with new
profiles on the wire, and every phase comes back under the fuse, the misbehaving
charger's real draw counted. (How fast: benchmarks/bench_ocpp.py.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge_harness import wait_for
from ocpp_support import live_limits, run_ocpp

from bridge.metering.sources.emulator import EmulatorSource
from bridge.models import Phase

if TYPE_CHECKING:
    from pathlib import Path

    from bridge.unit import AmpGuardUnit

FUSE = 40
EMULATE = ("garage", "drive", "barn:stuck-16a")


def _worst(unit: AmpGuardUnit) -> float:
    reading = unit.reading
    assert reading is not None
    return max(phase.current for phase in reading.phases)


async def test_a_house_load_step_brings_every_phase_back_under_the_fuse(state_dir: Path) -> None:
    source = EmulatorSource(seed=1, household=False, interval=0.1)
    async with run_ocpp(state_dir, balancing=True, source=source, emulate=EMULATE) as ocpp:
        await ocpp.unit.update_settings(
            {
                "installation": {"main_fuse": FUSE},
                "balancing": {"raise_delay": 1, "resume_delay": 1},
            }
        )
        system = ocpp.system
        emulation = system.emulation
        assert emulation is not None
        points = {point.id: point for point in emulation.points}
        # Accepted through the key exchange, each with a car that takes 16 A on 3 phases.
        await wait_for(lambda: len(system.chargers()) == 3, within=30)
        await wait_for(lambda: all(c.ready for c in system.chargers()), within=30)
        # 3 x 16 A is more than the 40 A fuse: the unit shares, and holds the fuse.
        await wait_for(
            lambda: all(point.draw > 0 for point in points.values()) and _worst(ocpp.unit) <= FUSE,
            within=60,
        )
        sent = {charger_id: len(live_limits(point)) for charger_id, point in points.items()}
        assert all(sent.values())

        source.set_load(Phase.L1, 12.0)
        # The reading shows L1 over the fuse; new, lower profiles go to the chargers...
        await wait_for(lambda: _worst(ocpp.unit) > FUSE)
        await wait_for(
            lambda: any(len(live_limits(p)) > sent[i] for i, p in points.items()), within=10
        )
        # ...and every phase is back under the fuse, the stuck charger's 16 A counted.
        await wait_for(lambda: _worst(ocpp.unit) <= FUSE, within=30)
        barn = system.charger("barn")
        assert barn is not None
        # Stuck at 16 A, it draws that, counted; or nothing if the unit chose to pause it
        # (three 6 A minimums and its 16 A do not all fit): RemoteStop is its only pause.
        assert points["barn"].draw in {0.0, 16.0}
        for charger_id in ("garage", "drive"):
            assert points[charger_id].draw < 16.0
