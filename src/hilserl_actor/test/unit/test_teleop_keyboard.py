"""Keyboard teleop core: key decoding, key holds, toggled takeover, terminal mode (ROS-free)."""
import os
import pty
import termios

import pytest

from hilserl_actor.errors import TerminalError
from hilserl_actor.teleop.keyboard import KEY_BINDINGS, KeyboardTeleop, KeyDecoder
from hilserl_actor.teleop.session import SessionSettings, TeleopSession
from hilserl_actor.teleop.terminal import CbreakTerminal, help_text
from hilserl_actor.teleop.types import Action, EpisodeEventType, Gripper, InputDevice


def test_decoder_plain_keys_and_control_bytes():
    decoder = KeyDecoder()
    assert decoder.feed(b'iJ \r\n\x7f\x08x+', 0.0) == [
        'i', 'j', 'space', 'enter', 'enter', 'backspace', 'backspace', 'x', '+']
    assert decoder.feed('é'.encode(), 0.0) == []  # non-ASCII dropped
    assert decoder.deadline_s is None


def test_decoder_escape_sequences_and_lone_escape():
    decoder = KeyDecoder(escape_timeout_s=0.05)
    assert decoder.feed(b'\x1b[A\x1b[B\x1bOC\x1b[D\x1b[5~\x1b[6~', 0.0) == [
        'up', 'down', 'right', 'left', 'page_up', 'page_down']
    assert decoder.feed(b'\x1b', 1.0) == []  # could be the start of an arrow key
    assert decoder.deadline_s == pytest.approx(1.05)
    assert decoder.flush(1.02) == []
    assert decoder.feed(b'[', 1.03) == []  # still a sequence
    assert decoder.feed(b'A', 1.04) == ['up']
    assert decoder.feed(b'\x1b', 2.0) == []
    assert decoder.flush(2.06) == ['escape']
    assert decoder.deadline_s is None
    assert decoder.feed(b'\x1bq', 3.0) == ['escape', 'q']  # Alt+q / Esc then q
    assert decoder.feed(b'\x1b[15~', 4.0) == []  # F5: unknown, dropped


def keyboard(always_active=False, hold=0.5):
    session = TeleopSession(SessionSettings(InputDevice.KEYBOARD, 10.0, 0.1, always_active,
                                            0.3, 1.0, 0.1))
    return KeyboardTeleop(session, key_hold_s=hold)


def test_space_toggles_takeover_and_keys_move_while_held():
    teleop = keyboard(hold=0.5)
    assert teleop.on_key('i', 0.0) is not None
    assert teleop.tick(0.1).command is None  # takeover off: nothing published
    on = teleop.on_key('space', 0.2).intervention
    assert (on.active, on.count, on.device) == (True, 1, InputDevice.KEYBOARD)
    teleop.on_key('i', 0.3)
    teleop.on_key('j', 0.3)
    teleop.on_key('c', 0.3)
    command = teleop.tick(0.4).command
    assert command.delta_m == pytest.approx((0.01 / 2 ** 0.5, 0.01 / 2 ** 0.5, 0.0))
    assert command.gripper == Gripper.CLOSE
    teleop.on_key('k', 0.5)  # the opposite key replaces the direction
    assert teleop.tick(0.6).command.delta_m[0] < 0
    assert teleop.tick(1.1).command.delta_m == (0.0, 0.0, 0.0)  # every hold expired
    assert teleop.tick(1.1).command.gripper == Gripper.STAY
    off = teleop.on_key('space', 1.2).intervention
    assert (off.active, off.count) == (False, 1)
    assert teleop.on_key('space', 1.25).intervention is None  # debounced
    assert teleop.on_key('space', 2.0).intervention.count == 2


def test_event_keys_and_repeat_debounce():
    teleop = keyboard()
    events = {'enter': EpisodeEventType.SUCCESS, 'f': EpisodeEventType.FAILURE,
              'r': EpisodeEventType.RERECORD, 'n': EpisodeEventType.START_EPISODE,
              'escape': EpisodeEventType.END_SESSION}
    for i, (key, kind) in enumerate(events.items()):
        assert [e.event for e in teleop.on_key(key, float(i)).events] == [kind]
    # A held key repeats every ~33 ms: one event until the key is quiet for the debounce time.
    sent = [teleop.on_key('s', 10.0 + k * 0.033).events for k in range(30)]
    assert sum(len(e) for e in sent) == 1
    assert teleop.on_key('s', 12.0).events[0].event == EpisodeEventType.SUCCESS
    assert teleop.on_key('x', 13.0).estop and teleop.on_key('backspace', 14.0).estop
    assert teleop.on_key('+', 15.0).speed_scale is None  # already at 1.0
    assert teleop.on_key('-', 16.0).speed_scale == pytest.approx(0.9)
    assert teleop.on_key('F1', 17.0) is None


def test_every_binding_is_documented_and_unique_per_role():
    text = help_text()
    for binding in KEY_BINDINGS.values():
        assert binding.description in text
        assert sum(x is not None for x in (binding.axis, binding.gripper, binding.action)) == 1
    actions = {b.action for b in KEY_BINDINGS.values() if b.action}
    assert actions == set(Action)


def test_always_active_keyboard():
    teleop = keyboard(always_active=True)
    assert teleop.session.active
    teleop.on_key('u', 0.0)
    assert teleop.tick(0.1).command.delta_m == pytest.approx((0.0, 0.0, 0.01))
    assert teleop.release().intervention.active is False


def test_cbreak_terminal_is_restored_even_after_an_error():
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        with pytest.raises(RuntimeError), CbreakTerminal(slave):
            inside = termios.tcgetattr(slave)
            assert not inside[3] & (termios.ICANON | termios.ECHO)
            raise RuntimeError('crash inside')
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_cbreak_terminal_refuses_a_non_tty(tmp_path):
    handle = open(tmp_path / 'file', 'w')  # noqa: SIM115 - closed below
    try:
        with pytest.raises(TerminalError, match='not a terminal'), CbreakTerminal(handle.fileno()):
            pass
    finally:
        handle.close()
