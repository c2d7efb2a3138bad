"""find_joint_limits across real processes: it records what /joint_states shows, writes the
limit file the safety filter loads, and refuses to write one from too little motion."""
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

NAMES = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']


def publish_sweep(client, amplitude, until, rate_hz=40.0):
    """Publish a sinusoidal sweep (phase per joint) until ``until(seconds published)``."""
    from sensor_msgs.msg import JointState

    publisher = client.publisher(JointState, '/joint_states')
    client.wait_for_subscribers(publisher, timeout_s=20.0)
    started = time.monotonic()
    while not until(time.monotonic() - started):
        t = time.monotonic() - started
        positions = amplitude * np.sin(2 * np.pi * t / 1.5 + np.arange(6))
        publisher.publish(JointState(name=['extra_joint'] + NAMES,
                                     position=[9.0] + positions.tolist()))
        client.spin_for(1.0 / rate_hz)
        if time.monotonic() - started > 30.0:
            raise TimeoutError('find_joint_limits did not finish')


def test_writes_the_recorded_ranges(ros_client, ros_processes, tmp_path):
    from hilserl_safety.limits import load_limits_file

    output = tmp_path / 'limits.yaml'
    finder = ros_processes.start_node(
        'hilserl_safety', 'find_joint_limits',
        arguments=['--output', output, '--duration-s', 3.5, '--min-duration-s', 2.0,
                   '--min-range-rad', 0.3, '--print-period-s', 0.5])
    amplitude = np.array([0.4, 0.3, 0.3, 0.3, 0.5, 0.6])
    publish_sweep(ros_client, amplitude, lambda elapsed: not finder.is_running())
    assert ros_processes.stop_all() == {'find_joint_limits': 0}, finder.output()
    limits = load_limits_file(output)
    for name, expected in zip(NAMES, amplitude):
        low, high = limits.joint_ranges_rad[name]
        assert low == pytest.approx(-expected, abs=0.03) and high == pytest.approx(expected,
                                                                                 abs=0.03)
    assert limits.tcp_box is not None and limits.samples > 40
    assert 'shoulder_pan' in finder.output() and 'range' in finder.output()


def test_refuses_to_write_from_too_little_motion(ros_client, ros_processes, tmp_path):
    output = tmp_path / 'limits.yaml'
    finder = ros_processes.start_node(
        'hilserl_safety', 'find_joint_limits',
        arguments=['--output', output, '--min-duration-s', 1.0, '--min-range-rad', 0.5])
    amplitude = np.array([0.4, 0.05, 0.4, 0.4, 0.4, 0.4])  # shoulder_lift barely moves
    publish_sweep(ros_client, amplitude, lambda elapsed: elapsed > 2.5)
    assert ros_processes.stop_all() == {'find_joint_limits': 2}  # SIGINT ends the recording
    assert not output.exists()
    log = finder.output()
    assert 'not writing a limit file' in log and 'shoulder_lift moved over' in log
    assert 'shoulder_pan moved over' not in log


def test_the_filter_loads_the_finder_file(ros_client, ros_processes, tmp_path):
    """A file in the finder's format narrows the filter's joint range (configure succeeds)."""
    from hilserl_safety.limits import LimitsFile, save_limits_file

    path = tmp_path / 'limits.yaml'
    save_limits_file(path, LimitsFile({'shoulder_pan': (-0.5, 0.5)}, None, 10, 10.0))
    ros_processes.start_node('hilserl_safety', 'safety_filter_node', name='filter_with_file',
                             parameters={'limits_file': str(path)})
    assert ros_client.lifecycle_transition('/filter_with_file', 'configure')
    broken = tmp_path / 'broken.yaml'
    broken.write_text('format: something_else\n')
    ros_processes.start_node('hilserl_safety', 'safety_filter_node', name='filter_bad_file',
                             parameters={'limits_file': str(broken)})
    assert not ros_client.lifecycle_transition('/filter_bad_file', 'configure')
    codes = ros_processes.stop_all()
    assert codes == {'filter_with_file': 0, 'filter_bad_file': 0}
