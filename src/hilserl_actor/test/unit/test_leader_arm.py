"""The leader arm core against the virtual STS3215 bus: torque off, calibration, readings."""
import numpy as np
import pytest

from hilserl_actor.leader_arm import LeaderArm, LeaderArmError, default_leader_calibration_path
from hilserl_actor.params import DEFAULT_JOINT_NAMES
from so101_driver.errors import DriverError
from so101_driver.feetech import calibration as cal
from so101_driver.feetech.virtual_bus import DEFAULT_IDS, DEFAULT_RAW_MID, VirtualBus

OFFSETS = {name: DEFAULT_RAW_MID[i] - 2047 for name, i in DEFAULT_IDS.items()}
CALIBRATION = cal.synthetic_calibration(DEFAULT_IDS, OFFSETS)


@pytest.fixture
def leader_bus():
    with VirtualBus(seed=5) as bus:
        bus.apply_calibration(CALIBRATION)
        yield bus


@pytest.fixture
def calibration_file(tmp_path):
    path = tmp_path / 'leader.json'
    cal.save_calibration(path, CALIBRATION)
    return path


def leader(port, calibration_file):
    return LeaderArm(port, str(calibration_file), DEFAULT_JOINT_NAMES, timeout_margin_s=0.05,
                     read_retries=1)


def test_reads_the_calibrated_joints_with_the_torque_off(leader_bus, calibration_file):
    for servo in leader_bus.servos:  # a leader left powered with torque on by someone
        servo.set('Torque_Enable', 1)
    arm = leader(leader_bus.port, calibration_file)
    arm.connect()
    try:
        assert all(servo.get('Torque_Enable') == 0 for servo in leader_bus.servos)
        mapping = cal.JointMapping(CALIBRATION, DEFAULT_JOINT_NAMES)
        assert arm.read() == pytest.approx(np.zeros(6), abs=2e-3)  # the zero pose
        with leader_bus.lock:
            leader_bus.servo(2).move_by_hand(2047 + 300)
            leader_bus.servo(6).move_by_hand(CALIBRATION['gripper'].range_max)
        reading = arm.read()
        assert reading[1] == pytest.approx(mapping.to_rad(np.full(6, 2047 + 300))[1], abs=2e-3)
        assert reading[1] == pytest.approx(300 * 2 * np.pi / 4096, abs=2e-3)
        assert reading[5] == pytest.approx(cal.URDF_JOINT_LIMITS_RAD['gripper'][1], abs=2e-3)
        assert all(servo.get('Torque_Enable') == 0 for servo in leader_bus.servos)
        assert arm.counters()['reads'] == 2
    finally:
        arm.close()


def test_a_servo_lost_while_reading_raises_a_driver_error(leader_bus, calibration_file):
    arm = leader(leader_bus.port, calibration_file)
    arm.connect()
    try:
        leader_bus.set_silent(4)
        with pytest.raises(DriverError, match='wrist_flex'):
            arm.read()
        leader_bus.set_silent(4, False)
        assert arm.read().shape == (6,)
        assert arm.counters()['failed_reads'] == 1
    finally:
        arm.close()


def test_configure_problems_are_named(leader_bus, calibration_file, tmp_path):
    with pytest.raises(LeaderArmError, match='cannot open'):
        leader(str(tmp_path / 'no_port'), calibration_file).connect()
    with pytest.raises(LeaderArmError, match='no calibration file'):
        leader(leader_bus.port, tmp_path / 'absent.json').connect()
    leader_bus.set_silent(3)
    with pytest.raises(LeaderArmError, match='elbow_flex'):
        leader(leader_bus.port, calibration_file).connect()
    leader_bus.set_silent(3, False)
    other = dict(CALIBRATION)
    other['shoulder_pan'] = cal.MotorCalibration(1, 0, 12, 100, 4000)
    wrong = tmp_path / 'other.json'
    cal.save_calibration(wrong, other)
    with pytest.raises(LeaderArmError, match='do not hold the calibration'):
        leader(leader_bus.port, wrong).connect()


def test_default_calibration_location(monkeypatch, tmp_path):
    monkeypatch.setenv('HF_LEROBOT_CALIBRATION', str(tmp_path))
    assert default_leader_calibration_path('my_leader') == (
        tmp_path / 'teleoperators' / 'so101_leader' / 'my_leader.json')
