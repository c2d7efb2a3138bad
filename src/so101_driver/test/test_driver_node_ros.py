"""The driver node with the sim backend, across real processes, through topics and services.

One driver process serves the module (starting MuJoCo takes a few seconds); every test that
moves the arm starts from a seeded episode reset.
"""
import math

import numpy as np
import pytest

pytestmark = pytest.mark.ros

NODE = '/so101_driver'
JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
PARAMETERS = {'control_rate_hz': 100.0, 'camera_rate_hz': 10.0, 'command_timeout_s': 0.5,
              'real_time_factor': 1.0, 'home_randomization_rad': 0.0, 'use_sim_time': True}


@pytest.fixture(scope='module')
def driver(ros_domain, tmp_path_factory):
    from hilserl_testing.processes import ProcessGroup

    group = ProcessGroup(tmp_path_factory.mktemp('driver_logs'))
    process = group.start_node('so101_driver', 'driver_node', parameters=PARAMETERS)
    yield process
    group.stop_all()
    print('\n' + group.logs())


@pytest.fixture(scope='module')
def topics(ros_client, driver):
    """Subscriptions kept for the whole module, made before the driver is configured."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image, JointState

    from hilserl_msgs.msg import SimGroundTruth
    from hilserl_testing.client import SENSOR

    return {
        'joints': ros_client.subscribe(JointState, '/joint_states'),
        'truth': ros_client.subscribe(SimGroundTruth, '/so101_driver/ground_truth'),
        'diagnostics': ros_client.subscribe(DiagnosticArray, '/diagnostics'),
        'clock': ros_client.subscribe(Clock, '/clock'),
        'front': ros_client.subscribe(Image, '/cameras/front/image_raw', SENSOR),
        'wrist': ros_client.subscribe(Image, '/cameras/wrist/image_raw', SENSOR),
        'front_info': ros_client.subscribe(CameraInfo, '/cameras/front/camera_info', SENSOR),
    }


def ensure_state(client, state):
    path = {'unconfigured': [], 'inactive': ['configure'], 'active': ['configure', 'activate']}
    current = client.lifecycle_state(NODE, timeout_s=20)
    if current == 'active' and state == 'inactive':
        assert client.lifecycle_transition(NODE, 'deactivate')
    for transition in path[state][len(path.get(current, [])):]:
        assert client.lifecycle_transition(NODE, transition, timeout_s=60), transition
    assert client.lifecycle_state(NODE) == state


def positions(log):
    return np.array(log.last.position)


def wait_joints(client, log, count=5):
    start = len(log)
    client.spin_until(lambda: len(log) >= start + count, 10, 'joint states')
    return positions(log)


def reset(client, seed, randomize=True):
    from hilserl_msgs.srv import ResetEpisode

    request = ResetEpisode.Request(use_seed=True, seed=seed, randomize_object=randomize)
    response = client.call(ResetEpisode, '/so101_driver/reset_episode', request)
    assert response.success, response.message
    return response


def command_publisher(client, wait=True):
    from std_msgs.msg import Float64MultiArray

    publisher = client.publisher(Float64MultiArray, '/forward_position_controller/commands')
    if wait:
        client.wait_for_subscribers(publisher)
    return publisher, Float64MultiArray


def stream(client, goal, seconds, rate_hz=20.0, wait=True):
    publisher, message_type = command_publisher(client, wait)
    for _ in range(int(seconds * rate_hz)):
        publisher.publish(message_type(data=[float(v) for v in goal]))
        client.spin_for(1.0 / rate_hz)


def driver_status(log):
    status = log.last.status[0]
    return status, {item.key: item.value for item in status.values}


def test_state_description_and_diagnostics_flow_once_configured(ros_client, driver, topics):
    from std_msgs.msg import String

    from hilserl_testing.client import LATCHED

    ensure_state(ros_client, 'inactive')
    joints = topics['joints']
    ros_client.spin_until(lambda: len(joints) >= 20, 20, 'joint states')
    assert list(joints.last.name) == JOINTS
    assert len(joints.last.position) == len(joints.last.velocity) == len(joints.last.effort) == 6
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in joints.messages[-20:]]
    assert np.allclose(np.diff(stamps), 0.01, atol=1e-6)  # 100 Hz of simulated time
    description = ros_client.wait_for_message(String, '/robot_description', qos=LATCHED)
    assert '<robot' in description.data and 'file:///' in description.data
    assert 'filename="assets/' not in description.data
    ros_client.spin_until(lambda: len(topics['diagnostics']) >= 1, 10, 'diagnostics')
    status, values = driver_status(topics['diagnostics'])
    assert values['backend'] == 'sim' and values['active'] == 'False'
    stamp = topics['diagnostics'].last.header.stamp
    assert stamp.sec < 3600  # use_sim_time: the node's clock is the simulated /clock
    clock = topics['clock']
    ros_client.spin_until(lambda: len(clock) >= 10, 10, '/clock')
    assert clock.messages[-1].clock.sec * 1e9 + clock.messages[-1].clock.nanosec > \
        clock.messages[-10].clock.sec * 1e9 + clock.messages[-10].clock.nanosec


def test_position_commands_are_followed(ros_client, driver, topics):
    ensure_state(ros_client, 'active')
    start = np.array(reset(ros_client, 1).joint_positions)
    goal = start + np.array([0.3, 0.2, -0.2, 0.1, 0.4, -0.3])
    stream(ros_client, goal, 1.5)
    np.testing.assert_allclose(wait_joints(ros_client, topics['joints']), goal, atol=0.02)


def test_nan_and_wrong_length_commands_are_rejected_and_the_node_keeps_running(
        ros_client, driver, topics):
    ensure_state(ros_client, 'active')
    reset(ros_client, 2)
    publisher, message_type = command_publisher(ros_client)
    before = wait_joints(ros_client, topics['joints'])
    bad = [[0.1, math.nan, 0.0, 0.0, 0.0, 0.0], [0.5] * 5, [0.5] * 7, [],
           [math.inf] * 6]
    for values in bad * 4:
        publisher.publish(message_type(data=values))
        ros_client.spin_for(0.05)
    ros_client.spin_for(0.5)
    after = wait_joints(ros_client, topics['joints'])
    assert np.abs(after - before).max() < 0.01  # no motion
    assert ros_client.lifecycle_state(NODE) == 'active'
    count = len(topics['diagnostics'])
    ros_client.spin_until(lambda: len(topics['diagnostics']) > count, 5, 'diagnostics')
    _, values = driver_status(topics['diagnostics'])
    assert int(values['commands_rejected']) >= len(bad) * 4
    stream(ros_client, before + 0.1, 1.0)  # a good command still works
    np.testing.assert_allclose(wait_joints(ros_client, topics['joints']), before + 0.1,
                               atol=0.02)


def test_trajectory_interpolation_moves_smoothly(ros_client, driver, topics):
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    ensure_state(ros_client, 'active')
    start = np.array(reset(ros_client, 3).joint_positions)
    goal = start + np.array([0.5, 0.3, -0.3, 0.2, 0.6, 0.4])
    publisher = ros_client.publisher(JointTrajectory,
                                     '/joint_trajectory_controller/joint_trajectory')
    ros_client.wait_for_subscribers(publisher)
    point = JointTrajectoryPoint(positions=[float(v) for v in goal],
                                 time_from_start=Duration(sec=2))
    joints = topics['joints']
    first = len(joints)
    publisher.publish(JointTrajectory(joint_names=JOINTS, points=[point]))
    ros_client.spin_until(lambda: np.abs(positions(joints) - goal).max() < 0.02, 10,
                          'the trajectory goal')
    ros_client.spin_for(0.3)
    path = np.array([m.position for m in joints.messages[first:]])
    steps = np.diff(path, axis=0)
    assert np.abs(steps).max() < 0.03  # no jumps between 10 ms samples
    direction = np.sign(goal - start)
    assert np.all(steps * direction >= -2e-3)  # every joint moves one way only
    velocities = np.array([m.velocity for m in joints.messages[first:]])
    peak = np.abs(velocities).max(axis=0)
    assert np.all(peak < 2.0 * 1.5 * np.abs(goal - start) / 2.0 + 0.05)  # ~cubic profile
    assert len(path) > 150  # it took about the 2 s asked for


def test_command_timeout_holds_the_current_position(ros_client, driver, topics):
    ensure_state(ros_client, 'active')
    start = np.array(reset(ros_client, 4).joint_positions)
    stream(ros_client, start + np.array([0.2, 0.15, -0.15, 0.1, 0.0, 0.0]), 1.0)
    ros_client.spin_for(0.8)  # past the 0.5 s timeout
    held = wait_joints(ros_client, topics['joints'])
    ros_client.spin_for(1.5)
    after = wait_joints(ros_client, topics['joints'])
    assert np.abs(after - held).max() < 2e-3  # no drift
    assert np.abs(held - start).max() > 0.1  # it holds where it is, not at the start


def test_enable_torque_off_lets_the_arm_sag_and_on_holds(ros_client, driver, topics):
    from std_srvs.srv import SetBool

    ensure_state(ros_client, 'active')
    reset(ros_client, 5)
    before = wait_joints(ros_client, topics['joints'])
    response = ros_client.call(SetBool, '/so101_driver/enable_torque', SetBool.Request(data=False))
    assert response.success
    ros_client.spin_for(1.0)
    sagged = wait_joints(ros_client, topics['joints'])
    assert np.abs(sagged - before).max() > 0.05
    assert np.abs(np.array(topics['joints'].last.effort)).max() < 1e-6
    assert ros_client.call(SetBool, '/so101_driver/enable_torque',
                           SetBool.Request(data=True)).success
    ros_client.spin_for(0.3)
    held = wait_joints(ros_client, topics['joints'])
    ros_client.spin_for(1.0)
    assert np.abs(wait_joints(ros_client, topics['joints']) - held).max() < 3e-3


def test_reset_episode_with_a_seed_is_reproducible(ros_client, driver, topics):
    ensure_state(ros_client, 'active')
    first, again, other = reset(ros_client, 42), reset(ros_client, 42), reset(ros_client, 43)
    assert first.seed == again.seed == 42 and other.seed == 43

    def xyz(pose):
        return np.array([pose.position.x, pose.position.y, pose.position.z])

    np.testing.assert_array_equal(xyz(first.object_pose), xyz(again.object_pose))
    assert list(first.joint_positions) == list(again.joint_positions)
    assert np.linalg.norm(xyz(first.object_pose) - xyz(other.object_pose)) > 1e-3
    truth = topics['truth']
    ros_client.spin_until(lambda: truth.last is not None and truth.last.episode_seed == 43, 5,
                          'ground truth of episode 43')
    np.testing.assert_allclose(xyz(truth.last.object_pose), xyz(other.object_pose), atol=2e-3)
    from hilserl_msgs.srv import ResetEpisode

    drawn = ros_client.call(ResetEpisode, '/so101_driver/reset_episode',
                            ResetEpisode.Request(use_seed=False, randomize_object=True))
    assert drawn.success and len(drawn.joint_positions) == 6


def test_ground_truth_and_camera_images_are_published(ros_client, driver, topics):
    ensure_state(ros_client, 'active')
    reset(ros_client, 6)
    for name in ('front', 'wrist', 'truth'):
        topics[name].clear()
    ros_client.spin_for(1.0)
    truth = topics['truth'].last
    assert truth.header.frame_id == 'world'
    assert 0.0 < truth.tcp_pose.position.z < 0.3 and not truth.success
    assert abs(truth.object_height_m) < 2e-3
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
              for m in topics['truth'].messages]
    simulated_s = stamps[-1] - stamps[0]  # the sim may run slower than real time under load
    assert simulated_s > 0.2 and len(stamps) == pytest.approx(100 * simulated_s + 1, abs=2)
    for camera in ('front', 'wrist'):
        images = topics[camera]
        assert len(images) == pytest.approx(10 * simulated_s, abs=2), camera  # 10 Hz
        image = images.last
        assert (image.width, image.height, image.encoding) == (128, 128, 'rgb8')
        pixels = np.frombuffer(bytes(image.data), np.uint8).reshape(128, 128, 3)
        assert pixels.std() > 10
    info = topics['front_info'].last
    assert info.width == 128 and info.k[0] > 0


def test_parameter_changes_are_refused_while_configured(ros_client, driver):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    ensure_state(ros_client, 'active')
    value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=2.0)
    request = SetParameters.Request(parameters=[Parameter(name='command_timeout_s', value=value)])
    result = ros_client.call(SetParameters, '/so101_driver/set_parameters', request).results[0]
    assert not result.successful and 'read at configure' in result.reason


def test_deactivate_holds_the_arm_and_cleanup_stops_the_streams(ros_client, driver, topics):
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    ensure_state(ros_client, 'active')
    start = np.array(reset(ros_client, 7).joint_positions)
    goal = start + np.array([0.8, 0.4, -0.4, 0.3, 0.8, 0.0])
    publisher = ros_client.publisher(JointTrajectory,
                                     '/joint_trajectory_controller/joint_trajectory')
    ros_client.wait_for_subscribers(publisher)
    publisher.publish(JointTrajectory(joint_names=JOINTS, points=[JointTrajectoryPoint(
        positions=[float(v) for v in goal], time_from_start=Duration(sec=3))]))
    ros_client.spin_for(1.0)
    assert ros_client.lifecycle_transition(NODE, 'deactivate')
    ros_client.spin_for(0.3)
    stopped = wait_joints(ros_client, topics['joints'])
    assert np.abs(stopped - start).max() > 0.1 and np.abs(stopped - goal).max() > 0.1
    stream(ros_client, goal, 0.5, wait=False)  # nobody listens while inactive
    ros_client.spin_for(1.0)
    assert np.abs(wait_joints(ros_client, topics['joints']) - stopped).max() < 3e-3
    assert ros_client.lifecycle_state(NODE) == 'inactive'
    assert ros_client.lifecycle_transition(NODE, 'cleanup')
    ros_client.spin_for(0.3)
    count = len(topics['joints'])
    ros_client.spin_for(0.5)
    assert len(topics['joints']) == count
    assert ros_client.lifecycle_state(NODE) == 'unconfigured'


def test_sigint_shuts_the_driver_down_cleanly(ros_client, driver):
    ensure_state(ros_client, 'active')
    assert driver.stop(timeout_s=10.0) == 0
