"""leader_arm_node across processes against a virtual leader arm (STS3215 bus emulator on a
pseudo-terminal in this test process): joint commands, torque never on, failures."""
import numpy as np
import pytest

from hilserl_testing.processes import ProcessGroup
from so101_driver.feetech import calibration as cal
from so101_driver.feetech.virtual_bus import DEFAULT_IDS, DEFAULT_RAW_MID, VirtualBus

pytestmark = pytest.mark.ros

OFFSETS = {name: DEFAULT_RAW_MID[i] - 2047 for name, i in DEFAULT_IDS.items()}
CALIBRATION = cal.synthetic_calibration(DEFAULT_IDS, OFFSETS)
JOINTS = tuple(DEFAULT_IDS)


@pytest.fixture(scope='module')
def leader_bus(tmp_path_factory):
    with VirtualBus(seed=9, link=str(tmp_path_factory.mktemp('bus') / 'leader')) as bus:
        bus.apply_calibration(CALIBRATION)
        yield bus


@pytest.fixture(scope='module')
def calibration_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('calibration') / 'my_leader.json'
    cal.save_calibration(path, CALIBRATION)
    return str(path)


@pytest.fixture(scope='module')
def outputs(ros_client):
    from diagnostic_msgs.msg import DiagnosticArray

    from hilserl_msgs.msg import InterventionState, JointCommand
    from hilserl_testing.client import LATCHED

    return {
        'command': ros_client.subscribe(JointCommand, '/hilserl/human/joint_command'),
        'state': ros_client.subscribe(InterventionState, '/hilserl/intervention', LATCHED),
        'diagnostics': ros_client.subscribe(DiagnosticArray, '/diagnostics'),
    }


@pytest.fixture(scope='module')
def leader(ros_domain, ros_client, leader_bus, calibration_file, outputs, tmp_path_factory):
    group = ProcessGroup(tmp_path_factory.mktemp('leader_logs'))
    group.start_node('hilserl_actor', 'leader_arm_node', name='leader_arm', parameters={
        'port': leader_bus.link, 'calibration_file': calibration_file,
        'control_rate_hz': 20.0, 'always_active': True, 'diagnostics_period_s': 0.2,
        'bus_timeout_margin_s': 0.02, 'read_retries': 1})
    try:
        ros_client.bring_up('leader_arm', timeout_s=60)
        yield group
    except BaseException:
        print(group.logs())
        raise
    finally:
        codes = group.stop_all()
        assert codes == {'leader_arm': 0}, group.logs()


def torque(bus):
    with bus.lock:
        return [servo.get('Torque_Enable') for servo in bus.servos]


def test_joint_commands_follow_the_leader_and_the_torque_stays_off(leader, ros_client,
                                                                   leader_bus, outputs):
    from hilserl_msgs.msg import InterventionState, JointCommand

    commands = outputs['command']
    ros_client.spin_until(lambda: len(commands) >= 5, 10, 'joint commands')
    first = commands.last
    assert first.source == JointCommand.SOURCE_HUMAN and tuple(first.names) == JOINTS
    assert first.header.frame_id == 'base_link'
    assert list(first.positions) == pytest.approx([0.0] * 6, abs=2e-3)  # the zero pose
    state = ros_client.spin_until(lambda: outputs['state'].last, 5, 'intervention state')
    assert state.active and state.source == InterventionState.SOURCE_LEADER_ARM
    with leader_bus.lock:
        leader_bus.servo(3).move_by_hand(2047 - 400)    # elbow_flex
        leader_bus.servo(6).move_by_hand(CALIBRATION['gripper'].range_min)  # jaws closed
    expected_elbow = -400 * 2 * np.pi / 4096
    moved = ros_client.spin_until(
        lambda: next((m for m in reversed(commands.messages)
                      if abs(m.positions[2] - expected_elbow) < 3e-3), None), 5, 'the move')
    assert moved.positions[5] == pytest.approx(cal.URDF_JOINT_LIMITS_RAD['gripper'][0],
                                               abs=3e-3)
    count = len(commands)
    ros_client.spin_for(0.5)
    assert 6 <= len(commands) - count <= 14, 'about 20 Hz'
    assert torque(leader_bus) == [0] * 6


def test_a_lost_servo_stops_the_commands_until_it_answers(leader, ros_client, leader_bus,
                                                          outputs):
    from diagnostic_msgs.msg import DiagnosticStatus

    commands, diagnostics = outputs['command'], outputs['diagnostics']
    leader_bus.set_silent(5)
    try:
        def leader_status(level):
            for array in reversed(diagnostics.messages):
                for status in array.status:
                    if status.hardware_id == 'so101_leader' and status.level == level:
                        return status
            return None

        error = ros_client.spin_until(lambda: leader_status(DiagnosticStatus.ERROR), 10,
                                      'diagnostics ERROR')
        assert 'wrist_roll' in error.message
        ros_client.spin_until(lambda: not outputs['state'].last.active, 5, 'released')
        count = len(commands)
        ros_client.spin_for(0.5)
        assert len(commands) == count, 'commands while a servo is silent'
    finally:
        leader_bus.set_silent(5, False)
    ros_client.spin_until(lambda: len(commands) > count + 3, 10, 'commands resumed')
    ros_client.spin_until(lambda: outputs['state'].last.active, 5, 'active again')


def test_configure_fails_with_the_reason(ros_client, leader_bus, calibration_file, tmp_path):
    group = ProcessGroup(tmp_path)
    group.start_node('hilserl_actor', 'leader_arm_node', name='leader_missing', parameters={
        'port': str(tmp_path / 'no_such_port'), 'calibration_file': calibration_file})
    try:
        assert not ros_client.lifecycle_transition('leader_missing', 'configure', 60)
        assert ros_client.lifecycle_state('leader_missing') == 'unconfigured'
    finally:
        assert group.stop_all() == {'leader_missing': 0}
    assert 'cannot open' in group.logs()
