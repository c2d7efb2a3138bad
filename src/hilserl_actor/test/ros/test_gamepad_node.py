"""gamepad_node across processes: no pad, and an SDL virtual pad driving teleop_node end to end."""
import errno
import os
import pathlib
import sys
import time

import pytest

from hilserl_testing.processes import wait_until

pytestmark = pytest.mark.ros

PEER = pathlib.Path(__file__).parent / 'peers' / 'virtual_gamepad.py'
VIRTUAL_PAD = 'Virtual Controller'  # the name SDL gives a virtual game controller


def test_without_a_pad_it_keeps_looking_and_says_so(ros_client, ros_processes):
    from rcl_interfaces.msg import Log
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Joy

    joy = ros_client.subscribe(Joy, '/joy')
    # /rosout is transient local: a late subscriber still gets the start-up warning.
    rosout = ros_client.subscribe(Log, '/rosout', QoSProfile(
        depth=100, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    node = ros_processes.start_node('hilserl_actor', 'gamepad_node', name='gamepad',
                                    parameters={'device_name': 'HIL-SERL test: no such pad'})
    warning = ros_client.spin_until(
        lambda: next((m for m in rosout.messages if m.name == 'gamepad'
                      and m.level == Log.WARN and 'no gamepad found' in m.msg), None),
        20, 'a "no gamepad found" warning on /rosout')
    assert 'HIL-SERL test: no such pad' in warning.msg
    ros_client.spin_for(1.0)
    assert node.is_running()
    assert len(joy) == 0
    assert ros_processes.stop_all() == {'gamepad': 0}


class PadCommands:
    """Writes commands to the virtual-pad peer through a FIFO."""

    def __init__(self, path: pathlib.Path):
        os.mkfifo(path)
        self.path = path
        self.fd = None

    def open(self, timeout_s: float = 20.0) -> None:
        def opened():
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as error:
                if error.errno != errno.ENXIO:  # ENXIO: the peer has not opened it yet
                    raise
            return self.fd is not None
        wait_until(opened, timeout_s, 'the virtual pad peer opening its command FIFO')

    def send(self, *lines: str) -> None:
        os.write(self.fd, ''.join(f'{line}\n' for line in lines).encode())

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def test_virtual_pad_drives_teleop_and_survives_unplugging(ros_client, ros_processes, tmp_path):
    from sensor_msgs.msg import Joy

    from hilserl_msgs.msg import EndEffectorCommand, InterventionState
    from hilserl_testing.client import LATCHED

    joy = ros_client.subscribe(Joy, '/joy')
    commands = ros_client.subscribe(EndEffectorCommand, '/hilserl/human/ee_command')
    states = ros_client.subscribe(InterventionState, '/hilserl/intervention', LATCHED)
    pad = PadCommands(tmp_path / 'pad_commands')
    ros_processes.start('gamepad', [
        sys.executable, PEER, pad.path, '--ros-args', '-r', '__node:=gamepad',
        '-p', f'device_name:={VIRTUAL_PAD}', '-p', 'autorepeat_rate:=20.0',
        '-p', 'scan_interval_s:=0.2'])
    ros_processes.start_node('hilserl_actor', 'teleop_node', name='teleop', parameters={
        'autostart': True, 'control_rate_hz': 20.0, 'max_ee_speed_m_s': 0.2,
        'joy_timeout_s': 0.5})
    try:
        pad.open()
        pad.send('attach')
        rest = ros_client.spin_until(lambda: joy.last, 20, 'the first /joy message')
        # game_controller_node's layout: 6 axes, 21 buttons, all at rest.
        assert (len(rest.axes), len(rest.buttons)) == (6, 21)
        assert list(rest.axes) == [0.0] * 6 and list(rest.buttons) == [0] * 21
        assert rest.header.frame_id == 'joy'

        # Left stick fully left (+y in Joy and for the arm), RB held, right trigger pressed.
        pad.send('axis 0 -32768', 'button 10 1', 'axis 5 32767')
        moved = ros_client.spin_until(
            lambda: next((m for m in reversed(joy.messages) if m.buttons[10] == 1
                          and m.axes[5] < -0.99 and m.axes[0] > 0.99), None), 5, 'the moved pad')
        assert moved.axes[0] == pytest.approx(1.0) and moved.axes[5] == pytest.approx(-1.0)
        command = ros_client.spin_until(
            lambda: next((c for c in reversed(commands.messages) if c.delta_m.y > 0
                          and c.gripper_command == EndEffectorCommand.GRIPPER_CLOSE), None),
            10, 'a human command from the virtual pad')
        assert (command.delta_m.x, command.delta_m.y, command.delta_m.z) == pytest.approx(
            (0.0, 0.01, 0.0))
        active = ros_client.spin_until(lambda: states.last if states.last and states.last.active
                                       else None, 5, 'the active intervention')
        assert active.intervention_count == 1

        # Unplug: /joy stops (joy's behaviour), so teleop's input times out and releases.
        pad.send('detach')
        ros_client.spin_until(lambda: not states.last.active, 5, 'the released intervention')
        ros_client.spin_for(0.3)
        count = len(joy)
        ros_client.spin_for(0.6)
        assert len(joy) == count, '/joy published without a pad'
        assert ros_processes.processes[0].is_running()

        # Plug it back in: /joy resumes from a fresh, released state.
        pad.send('attach')
        back = ros_client.spin_until(
            lambda: len(joy) > count and joy.last, 10, '/joy after plugging back in')
        assert list(back.buttons) == [0] * 21
        started = time.monotonic()
        ros_client.spin_until(lambda: len(joy) >= count + 5, 5, 'autorepeated /joy')
        assert time.monotonic() - started < 2.0
    finally:
        pad.close()
    assert ros_processes.stop_all() == {'teleop': 0, 'gamepad': 0}
