"""GamepadTeleop and TeleopSession: takeover, events, e-stop, timeout, speed (ROS-free)."""
import pathlib

import pytest

from hilserl_actor.errors import MalformedJoyError
from hilserl_actor.teleop.gamepad import GamepadSettings, GamepadTeleop
from hilserl_actor.teleop.mapping import load_mapping
from hilserl_actor.teleop.session import SessionSettings, TeleopSession
from hilserl_actor.teleop.types import EpisodeEventType, Gripper, InputDevice

CONFIG = pathlib.Path(__file__).resolve().parents[2] / 'config'
A, B, X, Y, BACK, START, LB, RB, DPAD_UP, DPAD_DOWN = 0, 1, 2, 3, 4, 6, 9, 10, 11, 12


def pad(always_active=False, speed=0.1, rate=10.0, debounce=0.3, timeout=0.5):
    session = TeleopSession(SessionSettings(InputDevice.GAMEPAD, rate, speed, always_active,
                                            debounce, 1.0, 0.25))
    mapping = load_mapping(CONFIG / 'teleop_game_controller.yaml')
    return GamepadTeleop(mapping, session, GamepadSettings(0.1, 0.5, timeout))


def joy(*pressed, axes=None):
    buttons = [0] * 21
    for index in pressed:
        buttons[index] = 1
    return (list(axes) if axes is not None else [0.0] * 6), buttons


def test_takeover_is_held_not_toggled_and_counts_interventions():
    teleop = pad()
    assert teleop.on_joy(*joy(), 0.0).intervention is None  # still inactive
    assert teleop.tick(0.05).command is None
    started = teleop.on_joy(*joy(RB), 0.1).intervention
    assert (started.active, started.count, started.device) == (True, 1, InputDevice.GAMEPAD)
    assert teleop.on_joy(*joy(RB), 0.15).intervention is None  # unchanged
    command = teleop.tick(0.2).command
    assert command.delta_m == (0.0, 0.0, 0.0) and command.gripper == Gripper.STAY
    ended = teleop.on_joy(*joy(), 0.3).intervention
    assert (ended.active, ended.count) == (False, 1)
    assert teleop.tick(0.35).command is None
    assert teleop.on_joy(*joy(LB), 0.4).intervention.count == 2  # either shoulder


def test_stick_and_trigger_commands():
    teleop = pad(speed=0.2, rate=10.0)
    axes = [0.0, 1.0, 0.0, 0.55, -1.0, 0.0]  # left stick up, right stick half up, LT pressed
    teleop.on_joy(*joy(RB, axes=axes), 0.0)
    command = teleop.tick(0.05).command
    # Norm clipped to 1: (1, 0, 0.5) / |(1, 0, 0.5)| * 0.02 m.
    scale = 0.02 / (1.0 ** 2 + 0.5 ** 2) ** 0.5
    assert command.delta_m == pytest.approx((scale, 0.0, 0.5 * scale))
    assert command.gripper == Gripper.OPEN
    axes = [0.0, 0.0, 0.0, 0.0, -1.0, -1.0]  # both triggers: ambiguous -> stay
    teleop.on_joy(*joy(RB, axes=axes), 0.1)
    assert teleop.tick(0.15).command.gripper == Gripper.STAY


def test_events_fire_once_per_press_and_are_debounced():
    teleop = pad(debounce=0.3)
    teleop.on_joy(*joy(), 0.0)
    first = teleop.on_joy(*joy(A), 0.1).events
    assert [(e.event, e.reason) for e in first] == [(EpisodeEventType.SUCCESS, 'gamepad success')]
    assert teleop.on_joy(*joy(A), 0.15).events == []      # held: no repeat
    teleop.on_joy(*joy(), 0.2)
    assert teleop.on_joy(*joy(A), 0.25).events == []      # bounce within 0.3 s
    teleop.on_joy(*joy(), 0.7)
    assert [e.event for e in teleop.on_joy(*joy(A), 1.0).events] == [EpisodeEventType.SUCCESS]
    kinds = {B: EpisodeEventType.FAILURE, Y: EpisodeEventType.RERECORD,
             START: EpisodeEventType.END_SESSION, X: EpisodeEventType.START_EPISODE}
    for index, kind in kinds.items():
        teleop.on_joy(*joy(), 2.0 + index)
        assert [e.event for e in teleop.on_joy(*joy(index), 2.1 + index).events] == [kind]


def test_held_buttons_at_stream_start_are_not_presses_except_estop():
    teleop = pad()
    outputs = teleop.on_joy(*joy(A, BACK), 0.0)
    assert outputs.events == [] and outputs.estop is True
    assert teleop.on_joy(*joy(A, BACK), 0.1).estop is False
    teleop.on_joy(*joy(), 0.2)
    assert teleop.on_joy(*joy(BACK), 0.6).estop is True


def test_joy_timeout_stops_commands_and_ends_the_intervention():
    teleop = pad(timeout=0.5)
    teleop.on_joy(*joy(RB, axes=[0.0, 1.0, 0, 0, 0, 0]), 0.0)
    assert teleop.tick(0.4).command is not None
    outputs = teleop.tick(0.6)
    assert outputs.command is None
    assert outputs.intervention.active is False
    assert 'no valid Joy message for 0.60 s' in outputs.warnings[0]
    assert teleop.tick(0.7).warnings == []  # said once
    # The stream comes back: the takeover still held re-activates (a new intervention), and a
    # button already held is a fresh baseline, not a press.
    back = teleop.on_joy(*joy(RB, A), 0.8)
    assert back.intervention.active and back.intervention.count == 2 and back.events == []


def test_malformed_message_changes_nothing():
    teleop = pad()
    teleop.on_joy(*joy(RB, axes=[0.0, 1.0, 0, 0, 0, 0]), 0.0)
    with pytest.raises(MalformedJoyError):
        teleop.on_joy([0.0] * 5, [0] * 21, 0.1)  # takeover "released" in a bad message
    assert teleop.session.active
    assert teleop.tick(0.2).command.delta_m[0] > 0
    assert teleop.tick(0.6).intervention.active is False  # 0.6 s after the last valid one


def test_always_active_commands_without_takeover():
    teleop = pad(always_active=True)
    assert teleop.tick(0.0).command is None  # no input yet
    started = teleop.on_joy(*joy(axes=[0.0, -1.0, 0, 0, 0, 0]), 0.1).intervention
    assert started.active and started.count == 1
    assert teleop.tick(0.2).command.delta_m == pytest.approx((-0.01, 0.0, 0.0))
    assert teleop.release().intervention.active is False


def test_speed_scale_steps_and_bounds():
    teleop = pad(speed=0.1, rate=10.0)
    teleop.on_joy(*joy(), 0.0)
    scales = []
    for i in range(5):
        teleop.on_joy(*joy(DPAD_DOWN), 1.0 + i)
        scales.append(teleop.session.speed_scale)
        teleop.on_joy(*joy(), 1.5 + i)
    assert scales == [0.75, 0.5, 0.25, 0.25, 0.25]
    teleop.on_joy(*joy(DPAD_UP), 10.0)
    assert teleop.session.speed_scale == 0.5
    teleop.on_joy(*joy(RB, axes=[0.0, 1.0, 0, 0, 0, 0]), 11.0)
    assert teleop.tick(11.1).command.delta_m[0] == pytest.approx(0.005)


def test_session_command_rejects_non_finite_motion():
    session = TeleopSession(SessionSettings(InputDevice.KEYBOARD, 10.0, 0.1, False, 0.3,
                                            1.0, 0.1))
    with pytest.raises(ValueError, match='finite'):
        session.command((float('nan'), 0.0, 0.0), Gripper.STAY)
