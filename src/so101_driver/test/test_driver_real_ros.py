"""The driver node with backend:=real on the virtual STS3215 bus, across real processes.

The virtual bus (``VirtualBus``, six emulated servos on a pseudo-terminal) runs in this test
process, so faults can be injected while the driver runs and the servos' registers (goal,
torque) can be checked; the last test also uses the ``virtual_bus`` executable, as a user
without hardware would. The driver is only talked to through topics, services and lifecycle
states. One driver process serves the module; the tests build on each other's state.
"""
import math
import pathlib

import numpy as np
import pytest

pytestmark = pytest.mark.ros

NODE = '/so101_driver'
JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
IDS = (1, 2, 3, 4, 5, 6)
HOME = np.array([0.0, -0.6, 0.5, 1.42, 1.5708, 0.7])
TICK_RAD = 2 * math.pi / 4096


class VirtualArm:
    """The in-process virtual bus behind a fixed symlink, which can vanish and come back."""

    def __init__(self, folder: pathlib.Path):
        from so101_driver.feetech import calibration as cal
        from so101_driver.feetech.virtual_bus import DEFAULT_IDS, DEFAULT_RAW_MID

        offsets = {name: DEFAULT_RAW_MID[i] - 2047 for name, i in DEFAULT_IDS.items()}
        self.calibration = cal.synthetic_calibration(DEFAULT_IDS, offsets)
        self.calibration_file = folder / 'so101_follower.json'
        cal.save_calibration(self.calibration_file, self.calibration)
        self.mapping = cal.JointMapping(self.calibration)
        self.link = folder / 'so101_bus'
        self.bus = None

    def start(self):
        from so101_driver.feetech.virtual_bus import VirtualBus

        self.bus = VirtualBus(seed=3, link=str(self.link))
        self.bus.start()
        self.bus.apply_calibration(self.calibration)
        return self.bus

    def stop(self):
        if self.bus is not None:
            self.bus.stop()
            self.bus = None

    def register(self, name):
        with self.bus.lock:
            return np.array([self.bus.servo(i).get(name) for i in IDS])

    def goals(self):
        return self.register('Goal_Position')

    def positions_rad(self):
        present = self.bus.positions()
        return self.mapping.to_rad(np.array([present[i] for i in IDS]))

    def ticks(self, positions_rad):
        return self.mapping.to_ticks(np.asarray(positions_rad, dtype=float))


@pytest.fixture(scope='module')
def arm(tmp_path_factory):
    virtual = VirtualArm(tmp_path_factory.mktemp('virtual_arm'))
    yield virtual
    virtual.stop()


@pytest.fixture(scope='module')
def driver(ros_domain, arm, tmp_path_factory):
    from hilserl_testing.processes import ProcessGroup

    group = ProcessGroup(tmp_path_factory.mktemp('driver_real_logs'))
    parameters = {'backend': 'real', 'port': str(arm.link),
                  'calibration_file': str(arm.calibration_file), 'control_rate_hz': 100.0,
                  'command_timeout_s': 0.5, 'diagnostics_period_s': 0.5,
                  'reset_duration_s': 1.0}
    process = group.start_node('so101_driver', 'driver_node', parameters=parameters)
    yield process, group
    group.stop_all()
    print('\n' + group.logs())


@pytest.fixture(scope='module')
def topics(ros_client, driver):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState

    return {'joints': ros_client.subscribe(JointState, '/joint_states'),
            'diagnostics': ros_client.subscribe(DiagnosticArray, '/diagnostics')}


# --- helpers -----------------------------------------------------------------------------------
def wait_joints(client, log, count=5):
    start = len(log)
    client.spin_until(lambda: len(log) >= start + count, 10, 'joint states')
    return np.array(log.last.position)


def next_status(client, log, predicate=lambda status: True, timeout_s=10.0):
    """The driver's next diagnostics status (after now) that matches ``predicate``."""
    start = len(log)

    def matching():
        for message in log.messages[start:]:
            status = message.status[0]
            if predicate(status):
                return status
        return None
    return client.spin_until(matching, timeout_s, 'a matching /diagnostics status')


def values(status):
    return {item.key: item.value for item in status.values}


def command_publisher(client):
    from std_msgs.msg import Float64MultiArray

    publisher = client.publisher(Float64MultiArray, '/forward_position_controller/commands')
    client.wait_for_subscribers(publisher)
    return lambda goal: publisher.publish(Float64MultiArray(data=[float(v) for v in goal]))


def stream(client, goal, seconds, rate_hz=20.0):
    publish = command_publisher(client)
    for _ in range(int(seconds * rate_hz)):
        publish(goal)
        client.spin_for(1.0 / rate_hz)


def trajectory(client, goal, seconds):
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    publisher = client.publisher(JointTrajectory, '/joint_trajectory_controller/joint_trajectory')
    client.wait_for_subscribers(publisher)
    point = JointTrajectoryPoint(positions=[float(v) for v in goal],
                                 time_from_start=Duration(sec=int(seconds),
                                                          nanosec=int(seconds % 1 * 1e9)))
    publisher.publish(JointTrajectory(joint_names=JOINTS, points=[point]))


def enable_torque(client, enabled):
    from std_srvs.srv import SetBool

    return client.call(SetBool, '/so101_driver/enable_torque', SetBool.Request(data=enabled))


def configure_fails_with(client, log, *reasons):
    from diagnostic_msgs.msg import DiagnosticStatus

    start = len(log)
    assert not client.lifecycle_transition(NODE, 'configure', timeout_s=30)
    assert client.lifecycle_state(NODE) == 'unconfigured'
    status = client.spin_until(
        lambda: next((m.status[0] for m in log.messages[start:]
                      if 'configure failed' in m.status[0].message), None), 5,
        'the configure failure on /diagnostics')
    assert status.level == DiagnosticStatus.ERROR
    for reason in reasons:
        assert reason in status.message, status.message


def is_error(status):
    from diagnostic_msgs.msg import DiagnosticStatus

    return status.level == DiagnosticStatus.ERROR


def is_not_error(status):
    return not is_error(status)


def is_ok(status):
    from diagnostic_msgs.msg import DiagnosticStatus

    return status.level == DiagnosticStatus.OK


# --- tests -------------------------------------------------------------------------------------
def test_configure_fails_with_the_reason_for_a_missing_port_servo_or_model(
        ros_client, driver, topics, arm):
    log = topics['diagnostics']
    assert ros_client.lifecycle_state(NODE, timeout_s=20) == 'unconfigured'
    configure_fails_with(ros_client, log, 'real backend', f'cannot open {arm.link}',
                         'no such device')
    virtual = arm.start()
    virtual.set_silent(3)
    configure_fails_with(ros_client, log, 'no answer from servo id 3 (elbow_flex)',
                         'power supply')
    virtual.set_silent(3, False)
    virtual.servo(4).set('Model_Number', 1284)
    configure_fails_with(ros_client, log, 'servo id 4 (wrist_flex) reports model number 1284',
                         'expected 777')
    virtual.servo(4).set('Model_Number', 777)
    virtual.servo(2).set('Homing_Offset', virtual.servo(2).get('Homing_Offset') + 40)
    configure_fails_with(ros_client, log, 'do not hold the calibration',
                         'shoulder_lift (id 2): homing_offset')
    arm.stop()
    arm.start()
    assert ros_client.lifecycle_transition(NODE, 'configure', timeout_s=30)
    assert ros_client.lifecycle_state(NODE) == 'inactive'


def test_joint_states_report_the_servos_and_the_torque_holds_them(ros_client, driver, topics,
                                                                  arm):
    joints = topics['joints']
    wait_joints(ros_client, joints, 30)
    message = joints.last
    assert list(message.name) == JOINTS
    np.testing.assert_allclose(message.position, arm.positions_rad(), atol=2 * TICK_RAD)
    assert len(message.effort) == 6 and np.all(np.isfinite(message.effort))
    assert len(message.velocity) == 6
    # configure turned the torque on with goal = present position: nothing moved
    assert np.all(arm.register('Torque_Enable') == 1)
    assert np.abs(arm.goals() - arm.ticks(arm.positions_rad())).max() <= 1
    status = next_status(ros_client, topics['diagnostics'])
    info = values(status)
    assert is_ok(status) and status.hardware_id == 'so101_real', status.message
    assert info['backend'] == 'real' and info['effort_unit'] == 'percent'
    assert float(info['elbow_flex.voltage_v']) == pytest.approx(12.0)
    assert 20 <= float(info['gripper.temperature_c']) <= 60


def test_position_commands_are_followed_clamped_and_report_the_load(ros_client, driver,
                                                                    topics, arm):
    assert ros_client.lifecycle_transition(NODE, 'activate')
    joints = topics['joints']
    goal = np.array([0.3, -0.4, 0.5, 0.6, 0.8, 0.9])
    first = len(joints)
    stream(ros_client, goal, 1.0)
    np.testing.assert_allclose(wait_joints(ros_client, joints), goal, atol=3 * TICK_RAD)
    np.testing.assert_array_equal(arm.goals(), arm.ticks(goal))
    efforts = np.array([m.effort for m in joints.messages[first:]])
    assert np.abs(efforts).max() > 1.0  # servo load (percent) while moving
    stream(ros_client, [5.0, -0.4, 0.5, 0.6, 0.8, -3.0], 0.5)  # beyond the calibrated range
    assert arm.goals()[0] == arm.calibration['shoulder_pan'].range_max
    assert arm.goals()[5] == arm.calibration['gripper'].range_min
    info = values(next_status(ros_client, topics['diagnostics']))
    assert int(info['commands_clamped']) >= 1


def test_nan_and_wrong_length_commands_are_rejected_and_nothing_moves(ros_client, driver,
                                                                      topics, arm):
    goal = np.array([0.1, -0.2, 0.3, 0.4, 0.5, 0.6])
    stream(ros_client, goal, 0.8)
    publish = command_publisher(ros_client)
    goals, before = arm.goals(), wait_joints(ros_client, topics['joints'])
    bad = [[0.1, math.nan, 0.0, 0.0, 0.0, 0.0], [0.5] * 5, [0.5] * 7, [], [math.inf] * 6]
    for command in bad * 3:
        publish(command)
        ros_client.spin_for(0.05)
    ros_client.spin_for(0.3)
    np.testing.assert_array_equal(arm.goals(), goals)
    assert np.abs(wait_joints(ros_client, topics['joints']) - before).max() < 3 * TICK_RAD
    info = values(next_status(ros_client, topics['diagnostics']))
    assert int(info['commands_rejected']) >= len(bad) * 3 and 'NaN' in info['last_rejection']
    assert ros_client.lifecycle_state(NODE) == 'active'


def test_command_timeout_holds_the_measured_position(ros_client, driver, topics, arm):
    goal = np.array([-0.2, 0.3, -0.3, 0.2, -0.4, 0.3])
    stream(ros_client, goal, 0.6)
    ros_client.spin_for(0.8)  # past the 0.5 s command timeout
    held_goals, held = arm.goals(), wait_joints(ros_client, topics['joints'])
    ros_client.spin_for(1.0)
    np.testing.assert_array_equal(arm.goals(), held_goals)
    assert np.abs(wait_joints(ros_client, topics['joints']) - held).max() < 3 * TICK_RAD
    np.testing.assert_allclose(held, goal, atol=3 * TICK_RAD)
    info = values(next_status(ros_client, topics['diagnostics']))
    assert int(info['command_timeouts']) >= 1 and info['mode'] == 'hold'


def test_enable_torque_off_lets_the_arm_be_moved_and_on_holds_without_a_jump(
        ros_client, driver, topics, arm):
    response = enable_torque(ros_client, False)
    assert response.success, response.message
    assert np.all(arm.register('Torque_Enable') == 0)
    goals = arm.goals()
    stream(ros_client, np.zeros(6), 0.3)  # refused while the torque is off
    np.testing.assert_array_equal(arm.goals(), goals)
    with arm.bus.lock:
        servo = arm.bus.servo(2)
        servo.move_by_hand(servo.present_position() - 200)  # a hand lowers the upper arm
    moved = wait_joints(ros_client, topics['joints'])
    assert moved[1] == pytest.approx(arm.positions_rad()[1], abs=2 * TICK_RAD)
    assert np.abs(moved[1] - arm.mapping.to_rad(goals)[1]) > 0.25
    assert enable_torque(ros_client, True).success
    assert np.all(arm.register('Torque_Enable') == 1)
    ros_client.spin_for(0.5)
    # the goal is where the hand left the arm: nothing jumped back
    assert np.abs(arm.goals() - arm.ticks(moved)).max() <= 2
    assert np.abs(wait_joints(ros_client, topics['joints']) - moved).max() < 3 * TICK_RAD


def test_occasional_corrupted_replies_are_retried_and_motion_continues(ros_client, driver,
                                                                       topics, arm):
    before = values(next_status(ros_client, topics['diagnostics']))
    arm.bus.set_corrupt_probability(0.02)
    try:
        goal = np.array([0.4, -0.3, 0.4, -0.5, 0.6, 0.2])
        stream(ros_client, goal, 1.5)
        np.testing.assert_allclose(wait_joints(ros_client, topics['joints']), goal,
                                   atol=3 * TICK_RAD)
    finally:
        arm.bus.set_corrupt_probability(0.0)
    after = values(next_status(ros_client, topics['diagnostics']))
    assert arm.bus.corrupted_replies > 0
    assert int(after['checksum_errors']) > int(before['checksum_errors'])
    assert int(after['retries']) > int(before['retries'])
    assert ros_client.lifecycle_state(NODE) == 'active'


def test_a_silent_servo_gives_retries_a_clear_error_and_a_hold_without_a_jump(
        ros_client, driver, topics, arm):
    goal = np.array([0.2, -0.2, 0.2, -0.2, 0.2, 0.5])
    stream(ros_client, goal, 0.8)
    ros_client.spin_for(0.7)  # holding after the command timeout
    goals = arm.goals()
    arm.bus.set_silent(5)
    status = next_status(ros_client, topics['diagnostics'], is_error)
    assert 'servo id 5 (wrist_roll) did not answer' in status.message
    assert 'after 3 tries' in status.message and 'holding' in status.message
    info = values(status)
    assert int(info['read_errors']) >= 1 and int(info['retries']) >= 2
    publish = command_publisher(ros_client)
    for _ in range(10):  # commands are refused while the arm cannot be read
        publish(np.zeros(6))
        ros_client.spin_for(0.1)
    np.testing.assert_array_equal(arm.goals(), goals)  # no jump, no stale command
    assert driver[0].is_running() and ros_client.lifecycle_state(NODE) == 'active'
    arm.bus.set_silent(5, False)
    next_status(ros_client, topics['diagnostics'], is_not_error)
    np.testing.assert_array_equal(arm.goals(), goals)  # it goes on holding the same goal
    stream(ros_client, goal - 0.1, 0.8)  # and takes commands again
    np.testing.assert_allclose(wait_joints(ros_client, topics['joints']), goal - 0.1,
                               atol=3 * TICK_RAD)


def test_an_overload_bit_holds_the_arm_mid_move_until_acknowledged(ros_client, driver,
                                                                   topics, arm):
    start = wait_joints(ros_client, topics['joints'])
    goal = start + np.array([0.6, 0.5, -0.5, 0.5, 0.6, 0.0])
    trajectory(ros_client, goal, 2.0)
    ros_client.spin_for(0.7)
    arm.bus.set_error(3, 'overload')
    status = next_status(ros_client, topics['diagnostics'], is_error)
    assert 'fault' in status.message and 'elbow_flex: overload' in status.message
    assert values(status)['elbow_flex.faults'] == 'overload'
    held_goals = arm.goals()
    held = arm.mapping.to_rad(held_goals)
    moving = slice(0, 5)
    assert np.all(np.abs(held[moving] - start[moving]) > 0.05)  # stopped mid-way
    assert np.all(np.abs(held[moving] - goal[moving]) > 0.05)
    stream(ros_client, goal, 0.5)  # refused while faulted
    np.testing.assert_array_equal(arm.goals(), held_goals)
    np.testing.assert_allclose(wait_joints(ros_client, topics['joints']), held,
                               atol=3 * TICK_RAD)
    response = enable_torque(ros_client, True)  # the servo still reports it
    assert not response.success and 'still reported' in response.message
    arm.bus.set_error(3)
    response = enable_torque(ros_client, True)  # the operator acknowledges
    assert response.success, response.message
    next_status(ros_client, topics['diagnostics'], is_not_error)
    stream(ros_client, goal, 0.8)
    np.testing.assert_allclose(wait_joints(ros_client, topics['joints']), goal,
                               atol=3 * TICK_RAD)


def test_reset_episode_moves_the_real_arm_home(ros_client, driver, topics, arm):
    from hilserl_msgs.srv import ResetEpisode

    response = ros_client.call(ResetEpisode, '/so101_driver/reset_episode',
                               ResetEpisode.Request(), timeout_s=10)
    assert response.success and response.message == 'moved home'
    np.testing.assert_allclose(response.joint_positions, HOME, atol=0.01)
    np.testing.assert_allclose(arm.positions_rad(), HOME, atol=0.01)


def test_deactivate_holds_the_arm_where_it_is(ros_client, driver, topics, arm):
    start = wait_joints(ros_client, topics['joints'])
    goal = start - np.array([0.5, 0.5, -0.5, 0.5, 0.5, 0.0])
    trajectory(ros_client, goal, 2.0)
    ros_client.spin_for(0.8)
    assert ros_client.lifecycle_transition(NODE, 'deactivate')
    ros_client.spin_for(0.3)
    held_goals = arm.goals()
    held = arm.mapping.to_rad(held_goals)
    assert np.all(np.abs(held[:5] - start[:5]) > 0.05)
    assert np.all(np.abs(held[:5] - goal[:5]) > 0.05)
    ros_client.spin_for(1.0)
    np.testing.assert_array_equal(arm.goals(), held_goals)
    assert ros_client.lifecycle_state(NODE) == 'inactive'


def test_a_vanished_port_is_an_error_and_cleanup_configure_reconnects(ros_client, driver,
                                                                      topics, arm, tmp_path):
    from hilserl_testing.processes import executable_path, wait_until

    arm.stop()  # as a USB adapter pulled out
    status = next_status(ros_client, topics['diagnostics'],
                         lambda s: 'connection lost' in s.message)
    assert is_error(status) and 'cleanup and configure' in status.message
    assert driver[0].is_running() and ros_client.lifecycle_state(NODE) == 'inactive'
    assert ros_client.lifecycle_transition(NODE, 'cleanup')
    # What a user without hardware runs: the virtual_bus executable with a calibration file.
    group = driver[1]
    bus = group.start('virtual_bus', [executable_path('so101_driver', 'virtual_bus'),
                                      '--link', arm.link,
                                      '--calibration', arm.calibration_file])
    wait_until(lambda: arm.link.exists() and 'Ctrl+C' in bus.output(), 10, 'the virtual bus')
    assert ros_client.lifecycle_transition(NODE, 'configure', timeout_s=30)
    assert ros_client.lifecycle_transition(NODE, 'activate')
    stream(ros_client, HOME * 0.5, 1.0)
    np.testing.assert_allclose(wait_joints(ros_client, topics['joints']), HOME * 0.5,
                               atol=3 * TICK_RAD)
    assert bus.stop() == 0


def test_sigint_shuts_the_driver_down_cleanly(ros_client, driver):
    assert ros_client.lifecycle_state(NODE) == 'active'
    assert driver[0].stop(timeout_s=10.0) == 0
