"""keyboard_teleop across processes: real keystrokes through a pseudo-terminal, checked on ROS.

The program runs with a pty as its controlling terminal (stdin, stdout, stderr), exactly as in
a terminal window: the test types bytes into the pty master, so Ctrl-C is the terminal's own
SIGINT, and afterwards the pty must be back in the mode the program found it in.
"""
import contextlib
import os
import pty
import signal
import subprocess
import sys
import termios
import threading
import time

import pytest

from hilserl_testing.processes import executable_path, ros_arguments, write_params_file

pytestmark = pytest.mark.ros

# Makes the pty slave (fd 0) the controlling terminal of a new session, then runs the program.
CONTROLLING_TTY = ('import fcntl, os, sys, termios; '
                   'fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execv(sys.argv[1], sys.argv[1:])')
PARAMS = {'control_rate_hz': 20.0, 'max_ee_speed_m_s': 0.2, 'initial_speed_scale': 1.0,
          'key_hold_s': 0.4, 'event_debounce_s': 0.2}
STEP_M = 0.2 / 20.0


class PtyProgram:
    """A program on a pseudo-terminal; its screen output is collected by a reader thread."""

    def __init__(self, argv, log_path):
        self.master, self.slave = pty.openpty()
        self.mode_before = termios.tcgetattr(self.slave)
        self.process = subprocess.Popen(
            [sys.executable, '-c', CONTROLLING_TTY, *argv], stdin=self.slave, stdout=self.slave,
            stderr=self.slave, start_new_session=True, close_fds=True)
        self.screen = bytearray()
        self.log_path = log_path
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.screen += data

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log_path.write_bytes(bytes(self.screen))
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def keyboard(ros_domain, tmp_path):
    params = write_params_file(tmp_path / 'keyboard.params.yaml', PARAMS)
    argv = [executable_path('hilserl_actor', 'keyboard_teleop'),
            *ros_arguments('keyboard_teleop', params_files=[params])]
    program = PtyProgram(argv, tmp_path / 'screen.log')
    try:
        yield program
    finally:
        program.close()
        print(bytes(program.screen).decode(errors='replace')[-3000:])


def test_keys_typed_in_a_terminal_drive_the_same_topics(keyboard, ros_client):
    from std_msgs.msg import Bool

    from hilserl_msgs.msg import EndEffectorCommand, EpisodeEvent, InterventionState
    from hilserl_testing.client import KEEP_ALL, LATCHED

    commands = ros_client.subscribe(EndEffectorCommand, '/hilserl/human/ee_command')
    states = ros_client.subscribe(InterventionState, '/hilserl/intervention', LATCHED)
    events = ros_client.subscribe(EpisodeEvent, '/hilserl/episode_event', KEEP_ALL)
    estop = ros_client.subscribe(Bool, '/hilserl/estop')

    first = ros_client.spin_until(lambda: states.last, 20, 'the latched intervention state')
    assert (first.active, first.intervention_count) == (False, 0)
    assert first.source == InterventionState.SOURCE_KEYBOARD
    ros_client.spin_for(0.3)
    assert len(commands) == 0

    keyboard.type(b' ')  # takeover on
    ros_client.spin_until(lambda: states.last.active, 5, 'takeover')
    assert states.last.intervention_count == 1

    def latest(predicate, what):
        start = len(commands)
        return ros_client.spin_until(
            lambda: next((c for c in commands.messages[start:] if predicate(c)), None), 5, what)

    keyboard.type(b'i')  # +x
    forward = latest(lambda c: c.delta_m.x > 0, 'a +x command')
    assert forward.source == EndEffectorCommand.SOURCE_HUMAN
    assert (forward.delta_m.x, forward.delta_m.y, forward.delta_m.z) == pytest.approx(
        (STEP_M, 0.0, 0.0))
    keyboard.type(b'\x1b[C')  # right arrow: -y (the escape sequence, not Esc + '[' + 'C')
    right = latest(lambda c: c.delta_m.y < 0, 'a -y command')
    assert right.delta_m.y == pytest.approx(-STEP_M, rel=0.5)
    keyboard.type(b'c')  # close the gripper
    latest(lambda c: c.gripper_command == EndEffectorCommand.GRIPPER_CLOSE, 'gripper close')
    # The key holds (0.4 s) expire: the arm is held still.
    latest(lambda c: (c.delta_m.x, c.delta_m.y, c.delta_m.z) == (0.0, 0.0, 0.0)
           and c.gripper_command == EndEffectorCommand.GRIPPER_STAY, 'a still command')

    keyboard.type(b'\r')
    keyboard.type(b'f')
    keyboard.type(b'\x1b')  # a lone Esc: end session once no sequence follows
    ros_client.spin_until(lambda: len(events) >= 3, 5, 'three episode events')
    assert [(e.event, e.source) for e in events.messages] == [
        (EpisodeEvent.SUCCESS, 'keyboard'), (EpisodeEvent.FAILURE, 'keyboard'),
        (EpisodeEvent.END_SESSION, 'keyboard')]
    keyboard.type(b'x')
    ros_client.spin_until(lambda: len(estop) > 0, 5, 'the e-stop')
    assert estop.last.data is True
    assert b'TAKEOVER' in keyboard.screen

    keyboard.type(b'\x03')  # Ctrl-C: the terminal sends SIGINT
    assert keyboard.wait(15) == 0
    ros_client.spin_until(lambda: not states.last.active, 5, 'the released intervention')
    assert termios.tcgetattr(keyboard.slave) == keyboard.mode_before


def test_without_a_terminal_it_exits_with_an_error(ros_domain):
    argv = [executable_path('hilserl_actor', 'keyboard_teleop')]
    started = time.monotonic()
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert result.returncode == 1
    assert time.monotonic() - started < 30
