"""Gamepad teleoperation core: Joy states in, human commands / interventions / events out.

The node feeds every Joy message to ``on_joy`` and calls ``tick`` at the control rate.
  * Takeover is level-triggered: the intervention is active while the takeover control is held
    (or always, with ``always_active``) and the Joy stream is alive.
  * Events, e-stop and speed changes are edge-triggered (released -> pressed) and debounced.
    A control already held in the first message after a (re)start is not a press, except the
    e-stop, which a held button always sends (fail-safe).
  * A malformed message (MalformedJoyError from ``on_joy``) changes nothing; the last valid
    state keeps acting until ``joy_timeout_s`` after it, then commands stop and the
    intervention ends, as when the pad is unplugged.
"""
import dataclasses

from hilserl_actor.teleop.mapping import GamepadMapping, PadState, read_pad
from hilserl_actor.teleop.session import TeleopSession
from hilserl_actor.teleop.types import Action, Gripper, TeleopOutputs

EDGE_CONTROLS = {
    'success': Action.SUCCESS,
    'failure': Action.FAILURE,
    'rerecord': Action.RERECORD,
    'end_session': Action.END_SESSION,
    'start_episode': Action.START_EPISODE,
    'estop': Action.ESTOP,
    'speed_up': Action.SPEED_UP,
    'speed_down': Action.SPEED_DOWN,
}


@dataclasses.dataclass(frozen=True)
class GamepadSettings:
    """Joy reading parameters (see TeleopParams)."""

    deadzone: float
    trigger_threshold: float
    joy_timeout_s: float


def gripper_of(pressed: frozenset[str]) -> Gripper:
    """CLOSE or OPEN while exactly one of the two gripper controls is pressed, else STAY."""
    close, open_ = 'gripper_close' in pressed, 'gripper_open' in pressed
    if close and not open_:
        return Gripper.CLOSE
    if open_ and not close:
        return Gripper.OPEN
    return Gripper.STAY


class GamepadTeleop:
    """Joy -> TeleopOutputs through a GamepadMapping and a TeleopSession."""

    def __init__(self, mapping: GamepadMapping, session: TeleopSession,
                 settings: GamepadSettings):
        self.mapping = mapping
        self.session = session
        self.settings = settings
        self._state: PadState | None = None
        self._state_time_s = 0.0

    @property
    def has_input(self) -> bool:
        """Whether a valid Joy state younger than joy_timeout_s is held."""
        return self._state is not None

    def on_joy(self, axes, buttons, now_s: float) -> TeleopOutputs:
        """One Joy message. Raises MalformedJoyError and changes nothing if it is malformed."""
        state = read_pad(self.mapping, axes, buttons, self.settings.deadzone,
                         self.settings.trigger_threshold)
        before = self._state.pressed if self._state is not None else None
        outputs = TeleopOutputs()
        for control, action in EDGE_CONTROLS.items():
            if control not in state.pressed or (before is not None and control in before):
                continue
            if before is None and action is not Action.ESTOP:
                continue
            outputs = outputs.merge(self.session.trigger(action, now_s, f'gamepad {control}'))
        self._state, self._state_time_s = state, now_s
        change = self.session.set_control(takeover='takeover' in state.pressed, available=True)
        return outputs.merge(TeleopOutputs(intervention=change))

    def tick(self, now_s: float) -> TeleopOutputs:
        """One control step: the human command while the intervention is active."""
        outputs = TeleopOutputs()
        if self._state is not None and now_s - self._state_time_s > self.settings.joy_timeout_s:
            outputs = self.release()
            outputs.warnings.append(
                f'no valid Joy message for {now_s - self._state_time_s:.2f} s '
                f'(joy_timeout_s {self.settings.joy_timeout_s}): human commands stopped'
                + (', intervention ended' if outputs.intervention else ''))
        if self.session.active and self._state is not None:
            outputs.command = self.session.command(self._state.motion,
                                                   gripper_of(self._state.pressed))
        return outputs

    def release(self) -> TeleopOutputs:
        """Forget the input (deactivation or timeout): commands stop, the intervention ends."""
        self._state = None
        return TeleopOutputs(intervention=self.session.set_control(available=False))
