"""The joint-limit finder's core: ranges, TCP box, refusal on too little motion."""
import numpy as np
import pytest

from hilserl_safety.errors import InsufficientMotionError
from hilserl_safety.range_recorder import RangeRecorder

NAMES = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')


def sweep(recorder, amplitude, seconds=10.0, rate_hz=20.0):
    for step in range(int(seconds * rate_hz)):
        t = step / rate_hz
        recorder.add(amplitude * np.sin(2 * np.pi * t / seconds + np.arange(6)), t)


def test_records_joint_and_tcp_ranges():
    from so101_driver.kinematics import So101Kinematics

    kinematics = So101Kinematics()
    recorder = RangeRecorder(NAMES, kinematics)
    sweep(recorder, np.full(6, 0.5))
    assert not recorder.add([np.nan] * 6, 10.0) and recorder.rejected == 1
    assert recorder.samples == 200 and recorder.duration_s == pytest.approx(9.95)
    np.testing.assert_allclose(recorder.ranges_rad, 1.0, atol=0.01)
    limits = recorder.limits_file(min_range_rad=0.5, min_duration_s=5.0)
    assert set(limits.joint_ranges_rad) == set(NAMES)
    low, high = limits.joint_ranges_rad['elbow_flex']
    assert low == pytest.approx(-0.5, abs=0.01) and high == pytest.approx(0.5, abs=0.01)
    assert np.all(limits.tcp_box.min_m < limits.tcp_box.max_m)
    assert 'elbow_flex' in recorder.summary() and 'TCP min' in recorder.summary()


def test_refuses_too_little_motion_and_names_the_joints():
    recorder = RangeRecorder(NAMES)
    assert recorder.problems(0.3, 5.0) and 'waiting' in recorder.summary()
    amplitude = np.array([0.5, 0.5, 0.05, 0.5, 0.5, 0.5])
    sweep(recorder, amplitude, seconds=3.0)
    with pytest.raises(InsufficientMotionError) as error:
        recorder.limits_file(min_range_rad=0.3, min_duration_s=5.0)
    assert 'elbow_flex' in str(error.value) and 'need at least 5.0 s' in str(error.value)
    assert 'shoulder_pan' not in str(error.value)


def test_partial_file_leaves_out_unmoved_joints():
    recorder = RangeRecorder(NAMES)
    sweep(recorder, np.array([0.5, 0.5, 0.05, 0.5, 0.5, 0.5]))
    limits = recorder.limits_file(min_range_rad=0.3, min_duration_s=5.0, allow_partial=True)
    assert 'elbow_flex' not in limits.joint_ranges_rad and len(limits.joint_ranges_rad) == 5
    assert limits.tcp_box is None
