"""The status indicators, as the Amp Guard's installation manual defines them, all here.

Voltage: a correct sequence has L2 lagging L1 by 120 degrees and L3 leading it by 120;
L2 leading instead means two phases are swapped. A phase below ``MIN_VOLTAGE`` is not
connected. Only voltages that are really measured are judged: with one-phase wiring
(and the IT grid's L1-L2 wiring) L2 and L3 are assumed nominal, so never flagged.

Current: each CT's current is judged by its angle against its own voltage. About 0 is a
load; about +-120 (power factor near -0.5) is a CT on another phase's conductor; about
180 (power factor near -1) is a reversed CT (a lagging load's sign tells the two
apart), unless generation is declared, where export is normal and only a strongly
reactive current in a wrong-phase window is flagged. IT grids give loads a wider band.
Below ``MIN_ANGLE_CURRENT`` the angle cannot be found: indeterminate, green, never an
alarm. docs/status-logic.md gives the reason for each threshold.

A meter that reports no angles (P1, HomeWizard, Shelly) leaves the unit without CTs and
voltage inputs of its own: those checks are ``not_applicable`` (light off), while a
voltage the meter reports missing is still ``not_connected``.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Final

from bridge.models import (
    PHASES,
    Communication,
    CurrentIndicator,
    CurrentReason,
    CurrentState,
    Light,
    Phase,
    Status,
    VoltageIndicator,
    VoltageReason,
    VoltageState,
    wrap_degrees,
)
from bridge.settings import GridType, VoltageWiring

if TYPE_CHECKING:
    from bridge.models import PhaseReading, Reading
    from bridge.settings import InstallationSettings

# Below this a voltage input is not connected (the original unit measures 85..256 VAC).
MIN_VOLTAGE: Final = 50.0
# Below this the current's angle cannot be found (the installation manual's own limit).
MIN_ANGLE_CURRENT: Final = 2.0
# Below this a CT input has no signal at all: nothing clamped, or nothing to measure.
NO_CURRENT_SIGNAL: Final = 0.02
# How far a voltage may sit from its place in the sequence before it counts as wrong.
SEQUENCE_TOLERANCE: Final = 30.0
# Without generation: |angle| below this is a load (power factor above 0.5) ...
LOAD_LIMIT: Final = 60.0
# ... beyond, a reversed CT or a CT on another phase. Household loads lag (-45..+15
# degrees), so a reversed CT shows at 180 + that: 135..180 or -180..-165, while a CT on
# another phase shows at +-120 + that: 75..135 or -165..-105. The sign tells them apart.
REVERSED_FROM: Final = 135.0
REVERSED_UNTIL: Final = -165.0
# With generation, import near 0 and export near 180 are both normal; only the narrow
# windows where a CT on another phase lands (+-60 exporting, +-120 importing) count.
WRONG_PHASE_WINDOWS: Final = ((60.0, 15.0), (120.0, 15.0))
# PV and wind feed in at a power factor near 1, so only loads draw reactive current; when
# generation cancels a phase's active current, what is left can point anywhere. A CT on
# another phase makes 87 % of its current look reactive: with generation, only a current
# this reactive (A) in a window is beyond what a household's loads draw.
MIN_WRONG_PHASE_REACTIVE: Final = 5.0
# IT grids feed loads between two lines: a phase's current spreads +-30 degrees around
# its voltage, so loads get a wider band there.
IT_LOAD_LIMIT: Final = 75.0
# The L1-L2 line voltage leads L1's own by 30 degrees (positive sequence): add 30 to an
# angle against it (the second shift is for angles whose sign was lost).
LINE_VOLTAGE_SHIFTS: Final = (30.0, -30.0)

# The expected angle of each voltage against L1 in a correct sequence.
EXPECTED_VOLTAGE_ANGLE: Final[dict[Phase, float]] = {
    Phase.L1: 0.0,
    Phase.L2: -120.0,
    Phase.L3: 120.0,
}
_VOLTAGE_LIGHTS: Final = {
    VoltageState.OK: Light.GREEN,
    VoltageState.WRONG_PHASE_SEQUENCE: Light.RED,
    VoltageState.NOT_CONNECTED: Light.OFF,
    VoltageState.NOT_APPLICABLE: Light.OFF,
}
_CURRENT_LIGHTS: Final = {
    CurrentState.OK: Light.GREEN,
    CurrentState.INDETERMINATE: Light.GREEN,
    CurrentState.WRONG_PHASE_SEQUENCE: Light.RED,
    CurrentState.REVERSED: Light.RED,
    CurrentState.NOT_CONNECTED: Light.OFF,
    CurrentState.NOT_APPLICABLE: Light.OFF,
}
_COMMUNICATION_LIGHTS: Final = {
    Communication.CLOUD: Light.GREEN,
    Communication.NETWORK: Light.BLUE,
    Communication.NONE: Light.OFF,
}
# When phases disagree, the overall current state is the first of these that any shows.
_CURRENT_PRIORITY: Final = (
    CurrentState.WRONG_PHASE_SEQUENCE,
    CurrentState.REVERSED,
    CurrentState.OK,
    CurrentState.INDETERMINATE,
    CurrentState.NOT_APPLICABLE,
    CurrentState.NOT_CONNECTED,
)
# The indeterminate cause named for the whole indicator, when phases differ.
_REASON_PRIORITY: Final = (
    CurrentReason.NO_VOLTAGE_REFERENCE,
    CurrentReason.LOW_CURRENT,
    CurrentReason.NO_ANGLE,
)

# Every text the indicators' ``detail`` can hold; docs/status-logic.md lists them too.
NO_READING_YET: Final = "No reading from the meter yet"
NO_VOLTAGE_DETAIL: Final = "No voltage on {phases}"
NO_SIGNAL_DETAIL: Final = "No current signal on {phases}"
SWAPPED_DETAIL: Final = "Phase sequence reversed at {phases}: two phases are swapped"
MISPLACED_DETAIL: Final = "{phase} is not {degrees:.0f} degrees from L1"
NO_REFERENCE_DETAIL: Final = "No voltage reference for the {cts} on {phases}: {why}"
NO_REFERENCE_WHY_SWAPPED: Final = "two phases are swapped"
NO_REFERENCE_WHY_MISPLACED: Final = "the voltage is out of sequence"
NO_REFERENCE_WHY_NO_VOLTAGE: Final = "no voltage"
_INDETERMINATE_DETAILS: Final = {
    CurrentReason.LOW_CURRENT: f"Below {MIN_ANGLE_CURRENT:g} A the current's angle cannot be found",
    CurrentReason.NO_ANGLE: "The meter gives no angle for the current",
}
NO_VOLTAGE_ANGLES: Final = "The meter reports no voltage angles: the phase sequence is not checked"
NO_CURRENT_ANGLES: Final = "The meter reports no current angles: the CT checks do not apply"


def communication_light(communication: Communication) -> Light:
    """Return the communication light: green with the cloud, blue on the network only."""
    return _COMMUNICATION_LIGHTS[communication]


def used_phases(installation: InstallationSettings) -> tuple[Phase, ...]:
    """Return the phases the installation uses (a 1-phase one leaves L2 and L3 unused)."""
    return PHASES[: installation.phases]


def measured_voltage_phases(
    installation: InstallationSettings, *, voltage_assumed: bool = False
) -> tuple[Phase, ...]:
    """Return the phases whose voltage is really measured (not assumed nominal)."""
    phases = used_phases(installation)
    if voltage_assumed or installation.voltage_wiring is not VoltageWiring.ALL:
        return phases[:1]
    return phases


def evaluate(
    reading: Reading | None,
    error: str | None,
    installation: InstallationSettings,
    communication: Communication,
    connected_by: tuple[str, ...] = (),
) -> Status:
    """Derive the status indicators from the latest reading (None when the meter has none).

    ``connected_by`` names the host's interfaces with an address, shown beside the
    communication light.
    """
    if reading is None or error is not None:
        off_detail = error or NO_READING_YET
        return Status(
            power=True,
            communication=communication,
            communication_light=communication_light(communication),
            connected_by=connected_by,
            voltage=VoltageIndicator(
                state=VoltageState.NOT_CONNECTED, light=Light.OFF, detail=off_detail
            ),
            current=CurrentIndicator(
                state=CurrentState.NOT_CONNECTED, light=Light.OFF, detail=off_detail
            ),
            meter_error=off_detail,
        )
    voltage = voltage_indicator(reading, installation)
    return Status(
        power=True,
        communication=communication,
        communication_light=communication_light(communication),
        connected_by=connected_by,
        voltage=voltage,
        current=current_indicator(reading, installation, voltage),
    )


def _angle_off(angle: float, reference: float) -> float:
    """Return how far ``angle`` is from ``reference`` in degrees (0..180)."""
    return abs(wrap_degrees(angle - reference))


def _by_phase(reading: Reading) -> dict[Phase, PhaseReading]:
    return {phase_reading.phase: phase_reading for phase_reading in reading.phases}


def _sequence_reasons(angles: dict[Phase, float]) -> dict[Phase, VoltageReason]:
    """Tell, for each voltage out of place, whether it sits where the other phase belongs."""
    return {
        phase: VoltageReason.SWAPPED
        if _angle_off(angle, -EXPECTED_VOLTAGE_ANGLE[phase]) <= SEQUENCE_TOLERANCE
        else VoltageReason.MISPLACED
        for phase, angle in angles.items()
    }


def _names(phases: list[Phase]) -> str:
    """Name phases as a person would: "L2", "L2 and L3", "L1, L2 and L3"."""
    if len(phases) < 2:  # noqa: PLR2004
        return "".join(phases)
    return f"{', '.join(phases[:-1])} and {phases[-1]}"


def _sequence_details(reasons: dict[Phase, VoltageReason]) -> list[str]:
    """Say what is wrong with the voltages out of place (stable text, no live numbers)."""
    swapped = [phase for phase, reason in reasons.items() if reason is VoltageReason.SWAPPED]
    details = []
    if swapped:
        details.append(SWAPPED_DETAIL.format(phases=_names(swapped)))
    details.extend(
        MISPLACED_DETAIL.format(phase=phase, degrees=abs(EXPECTED_VOLTAGE_ANGLE[phase]))
        for phase, reason in reasons.items()
        if reason is VoltageReason.MISPLACED
    )
    return details


def voltage_indicator(reading: Reading, installation: InstallationSettings) -> VoltageIndicator:
    """Judge the voltage inputs: connected, and in the right sequence."""
    phases = _by_phase(reading)
    angles = {phase: phases[phase].voltage_angle for phase in used_phases(installation)}
    judged = all(angle is not None for angle in angles.values())
    measured = measured_voltage_phases(installation, voltage_assumed=reading.voltage_assumed)
    if not judged and not reading.voltage_assumed:
        # A meter's own voltages: the unit's voltage wiring does not apply to them.
        measured = used_phases(installation)
    states: dict[Phase, VoltageState] = {}
    details: list[str] = []
    for phase in used_phases(installation):
        missing = phase in measured and not phases[phase].voltage >= MIN_VOLTAGE  # NaN too
        states[phase] = VoltageState.NOT_CONNECTED if missing else VoltageState.OK
    if missing_phases := [p for p, state in states.items() if state is VoltageState.NOT_CONNECTED]:
        details.append(NO_VOLTAGE_DETAIL.format(phases=_names(missing_phases)))
    reasons: dict[Phase, VoltageReason] = {}
    # The sequence is only known against a connected L1, between measured voltages.
    if judged and states.get(Phase.L1) is VoltageState.OK:
        reasons = _sequence_reasons(
            {
                phase: angle
                for phase in measured[1:]
                if states[phase] is VoltageState.OK
                and (angle := angles[phase]) is not None
                # An angle that is not a number compares False: unknown is never an alarm.
                and _angle_off(angle, EXPECTED_VOLTAGE_ANGLE[phase]) > SEQUENCE_TOLERANCE
            }
        )
        for phase in reasons:
            states[phase] = VoltageState.WRONG_PHASE_SEQUENCE
        details.extend(_sequence_details(reasons))
    state = VoltageState.OK
    reason: VoltageReason | None = None
    if VoltageState.WRONG_PHASE_SEQUENCE in states.values():
        state = VoltageState.WRONG_PHASE_SEQUENCE
        # Two swapped phases is the usual mistake; anything else out of place is named so.
        swapped = all(value is VoltageReason.SWAPPED for value in reasons.values())
        reason = VoltageReason.SWAPPED if swapped else VoltageReason.MISPLACED
    elif VoltageState.NOT_CONNECTED in states.values():
        state = VoltageState.NOT_CONNECTED
    elif not judged:
        state = VoltageState.NOT_APPLICABLE
        details.append(NO_VOLTAGE_ANGLES)
    return VoltageIndicator(
        state=state,
        light=_VOLTAGE_LIGHTS[state],
        phases=states,
        reasons=reasons,
        reason=reason,
        detail="; ".join(details) or None,
    )


def classify_angle(
    angle: float, current: float, *, generation: bool, it_grid: bool = False
) -> CurrentState:
    """Tell a load from a CT on another phase or a reversed CT by the current's angle."""
    off = _angle_off(angle, 0.0)
    if generation:
        reactive = abs(current * math.sin(math.radians(off)))
        in_window = any(abs(off - centre) <= width for centre, width in WRONG_PHASE_WINDOWS)
        if in_window and reactive >= MIN_WRONG_PHASE_REACTIVE:
            return CurrentState.WRONG_PHASE_SEQUENCE
        return CurrentState.OK
    if off < (IT_LOAD_LIMIT if it_grid else LOAD_LIMIT):
        return CurrentState.OK
    signed = wrap_degrees(angle)
    if signed >= REVERSED_FROM or signed <= REVERSED_UNTIL:
        return CurrentState.REVERSED
    return CurrentState.WRONG_PHASE_SEQUENCE


def _current_state(  # noqa: PLR0911 - one return per verdict reads best
    phase_reading: PhaseReading, voltage: VoltageState, installation: InstallationSettings
) -> tuple[CurrentState, CurrentReason | None]:
    """Judge one CT input; an indeterminate one comes with its reason."""
    angle = phase_reading.angle
    if angle is None:
        # A meter that reports no angles: the unit has no CT of its own to judge here.
        return CurrentState.NOT_APPLICABLE, None
    magnitude = abs(phase_reading.current)
    if magnitude < NO_CURRENT_SIGNAL:
        return CurrentState.NOT_CONNECTED, None
    # Never an alarm without an angle: none against a missing or misplaced voltage (the
    # cause to name first: the installer can fix it), none below 2 A, and none from a
    # value that is not a number.
    if voltage is not VoltageState.OK:
        return CurrentState.INDETERMINATE, CurrentReason.NO_VOLTAGE_REFERENCE
    if magnitude < MIN_ANGLE_CURRENT:
        return CurrentState.INDETERMINATE, CurrentReason.LOW_CURRENT
    if not math.isfinite(magnitude) or not math.isfinite(angle):
        return CurrentState.INDETERMINATE, CurrentReason.NO_ANGLE
    judge = functools.partial(
        classify_angle,
        current=magnitude,
        generation=installation.generation,
        it_grid=installation.grid_type is GridType.IT,
    )
    if phase_reading.phase is Phase.L1 and installation.voltage_wiring is VoltageWiring.IT_L1_L2:
        # L1's input measures the L1-L2 line voltage: bring the angle back to L1's own.
        # Meters that derive the angle from the power factor lose its sign, so a load
        # that fits either way round is a load.
        turned = [judge(angle + shift) for shift in LINE_VOLTAGE_SHIFTS]
        return (CurrentState.OK if CurrentState.OK in turned else turned[0]), None
    return judge(angle), None


_CURRENT_DETAILS: Final = {
    CurrentState.WRONG_PHASE_SEQUENCE: "CT on {phase} sits on another phase",
    CurrentState.REVERSED: "CT on {phase} is reversed",
}


def _no_reference_details(phases: list[Phase], voltage: VoltageIndicator) -> list[str]:
    """Say which CTs have no voltage to be judged against, grouped by what the voltage has."""
    groups: dict[str, list[Phase]] = {}
    for phase in phases:
        if voltage.phases[phase] is VoltageState.NOT_CONNECTED:
            why = NO_REFERENCE_WHY_NO_VOLTAGE
        elif voltage.reasons.get(phase) is VoltageReason.SWAPPED:
            why = NO_REFERENCE_WHY_SWAPPED
        else:
            why = NO_REFERENCE_WHY_MISPLACED
        groups.setdefault(why, []).append(phase)
    return [
        NO_REFERENCE_DETAIL.format(
            cts="CTs" if len(group) > 1 else "CT", phases=_names(group), why=why
        )
        for why, group in groups.items()
    ]


def current_indicator(
    reading: Reading, installation: InstallationSettings, voltage: VoltageIndicator
) -> CurrentIndicator:
    """Judge each CT input against its voltage's state, then the indicator as a whole."""
    phases = _by_phase(reading)
    judged = {
        phase: _current_state(phases[phase], voltage.phases[phase], installation)
        for phase in used_phases(installation)
    }
    states = {phase: state for phase, (state, _reason) in judged.items()}
    reasons = {phase: reason for phase, (_state, reason) in judged.items() if reason is not None}
    details = [
        _CURRENT_DETAILS[state].format(phase=phase)
        for phase, state in states.items()
        if state in _CURRENT_DETAILS
    ]
    if silent := [p for p, state in states.items() if state is CurrentState.NOT_CONNECTED]:
        details.append(NO_SIGNAL_DETAIL.format(phases=_names(silent)))
    details.extend(
        _no_reference_details(
            [p for p, r in reasons.items() if r is CurrentReason.NO_VOLTAGE_REFERENCE], voltage
        )
    )
    state = next(state for state in _CURRENT_PRIORITY if state in states.values())
    reason: CurrentReason | None = None
    if state is CurrentState.INDETERMINATE:
        # The overall cause is the one most worth fixing: a voltage reference first.
        reason = next(r for r in _REASON_PRIORITY if r in reasons.values())
        if reason is not CurrentReason.NO_VOLTAGE_REFERENCE:
            details.append(_INDETERMINATE_DETAILS[reason])
    elif state is CurrentState.NOT_APPLICABLE:
        details.append(NO_CURRENT_ANGLES)
    return CurrentIndicator(
        state=state,
        light=_CURRENT_LIGHTS[state],
        phases=states,
        reasons=reasons,
        reason=reason,
        detail="; ".join(details) or None,
    )
