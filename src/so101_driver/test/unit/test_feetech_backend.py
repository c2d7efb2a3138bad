"""FeetechBackend (the real-robot RobotBackend) against the virtual STS3215 bus."""
import dataclasses
import time

import numpy as np
import pytest

from so101_driver.backend import RobotBackend
from so101_driver.errors import (
    CommandError,
    ConfigurationError,
    ServoMissingError,
    TransportError,
    WrongServoModelError,
)
from so101_driver.feetech import calibration as cal
from so101_driver.feetech.backend import FeetechBackend
from so101_driver.feetech.config import FeetechBackendConfig
from so101_driver.feetech.virtual_bus import DEFAULT_IDS, DEFAULT_RAW_MID, VirtualBus
from so101_driver.model_files import JOINT_NAMES

OFFSETS = {name: DEFAULT_RAW_MID[i] - 2047 for name, i in DEFAULT_IDS.items()}
CALIBRATION = cal.synthetic_calibration(DEFAULT_IDS, OFFSETS)


@pytest.fixture
def virtual():
    with VirtualBus(seed=2) as bus:
        bus.apply_calibration(CALIBRATION)
        yield bus


@pytest.fixture
def config(virtual, tmp_path):
    path = tmp_path / 'so101_follower.json'
    cal.save_calibration(path, CALIBRATION)
    return FeetechBackendConfig(port=virtual.port, calibration_file=str(path),
                                timeout_margin_s=0.2)


@pytest.fixture
def backend(config):
    robot = FeetechBackend(config)
    robot.connect()
    yield robot
    robot.close()


def wait_until_close(robot, target, tolerance, timeout_s=3.0):
    deadline = time.monotonic() + timeout_s
    while True:
        sample = robot.read()
        if np.all(np.abs(sample.positions_rad - target) < tolerance):
            return sample
        if time.monotonic() > deadline:
            return sample
        time.sleep(0.02)


def test_config_validation_names_the_field():
    assert FeetechBackendConfig(port='/dev/ttyACM0', calibration_file='x.json').ordered_ids == (
        1, 2, 3, 4, 5, 6)
    with pytest.raises(ValueError, match='baudrate'):
        FeetechBackendConfig(port='p', baudrate=12345, calibration_file='x')
    with pytest.raises(ValueError, match='servo_ids'):
        FeetechBackendConfig(port='p', calibration_file='x', servo_ids={'gripper': 6})
    ids = dict(DEFAULT_IDS, gripper=1)
    with pytest.raises(ValueError, match='distinct'):
        FeetechBackendConfig(port='p', calibration_file='x', servo_ids=ids)
    with pytest.raises(ValueError, match='gripper_max_torque'):
        FeetechBackendConfig(port='p', calibration_file='x', gripper_max_torque=1001)
    with pytest.raises(ValueError, match='on_calibration_mismatch'):
        FeetechBackendConfig(port='p', calibration_file='x', on_calibration_mismatch='ignore')
    with pytest.raises(ValueError, match='port'):
        FeetechBackendConfig(port='', calibration_file='x')
    assert FeetechBackendConfig().calibration_file.endswith(
        'robots/so101_follower/so101_follower.json')


def test_connect_configures_the_servos_like_lerobot(backend, virtual):
    for member in ('joint_names', 'lower_limits_rad', 'upper_limits_rad', 'connect', 'read',
                   'write_positions', 'set_torque', 'health', 'close'):
        assert hasattr(RobotBackend, member) or member in RobotBackend.__annotations__
        assert hasattr(backend, member), member
    for servo_id in range(1, 7):
        servo = virtual.servo(servo_id)
        assert servo.get('Return_Delay_Time') == 0
        assert (servo.get('P_Coefficient'), servo.get('I_Coefficient'),
                servo.get('D_Coefficient')) == (16, 0, 32)
        assert servo.get('Acceleration') == 254 and servo.get('Maximum_Acceleration') == 254
        assert servo.get('Operating_Mode') == 0
        assert servo.get('Phase') & 0x10 == 0
        assert servo.get('Torque_Enable') == 0
    gripper = virtual.servo(6)
    assert gripper.get('Max_Torque_Limit') == 500 and gripper.get('Torque_Limit') == 500
    assert gripper.get('Protection_Current') == 250 and gripper.get('Overload_Torque') == 25
    # The EEPROM was unlocked while configuring, so the settings survive a power cycle.
    gripper.power_cycle()
    assert gripper.get('Max_Torque_Limit') == 500
    assert any('configured' in note for note in backend.notes)


def test_reads_the_zero_pose_and_the_calibrated_limits(backend):
    sample = backend.read()
    assert sample.effort_unit == 'percent'
    np.testing.assert_allclose(sample.positions_rad, 0.0, atol=2e-3)
    np.testing.assert_allclose(sample.velocities_rad_s, 0.0)
    assert sample.stamp_s == pytest.approx(time.monotonic(), abs=1.0)
    np.testing.assert_allclose(backend.lower_limits_rad[:4],
                               [cal.URDF_JOINT_LIMITS_RAD[n][0] for n in JOINT_NAMES[:4]],
                               atol=2e-3)
    assert backend.upper_limits_rad[5] == pytest.approx(1.74533)


def test_follows_position_commands(backend, virtual):
    backend.set_torque(True)
    assert virtual.servo(2).get('Torque_Enable') == 1 and virtual.servo(2).get('Lock') == 1
    target = np.array([0.5, -0.8, 0.9, 0.6, 1.0, 1.0])
    backend.write_positions(target)
    # While moving, velocities and loads point towards the target.
    signs_seen = False
    deadline = time.monotonic() + 2.0
    while not signs_seen and time.monotonic() < deadline:
        moving = backend.read()
        signs_seen = (np.all(np.sign(moving.velocities_rad_s) == np.sign(target))
                      and np.all(np.sign(moving.efforts) == np.sign(target)))
    assert signs_seen
    sample = wait_until_close(backend, target, 3e-3)
    np.testing.assert_allclose(sample.positions_rad, target, atol=3e-3)
    # Out-of-range commands are clamped to the calibrated range.
    backend.write_positions(np.array([5.0, 0, 0, 0, 0, -1.0]))
    sample = wait_until_close(backend, np.array([backend.upper_limits_rad[0], 0, 0, 0, 0,
                                                 backend.lower_limits_rad[5]]), 3e-3)
    assert sample.positions_rad[0] == pytest.approx(backend.upper_limits_rad[0], abs=3e-3)
    assert sample.positions_rad[5] == pytest.approx(backend.lower_limits_rad[5], abs=3e-3)
    with pytest.raises(CommandError, match='non-finite'):
        backend.write_positions(np.array([0, 0, np.inf, 0, 0, 0]))


def test_torque_on_holds_the_present_pose(backend, virtual):
    virtual.servo(1).set('Goal_Position', 3000)  # a stale goal must not make the arm jump
    backend.set_torque(True)
    time.sleep(0.1)
    np.testing.assert_allclose(backend.read().positions_rad, 0.0, atol=2e-3)
    backend.set_torque(False)
    assert virtual.servo(1).get('Torque_Enable') == 0 and virtual.servo(1).get('Lock') == 0
    assert backend.health().torque_enabled is False


def test_health_reports_sensors_and_latched_faults(backend, virtual):
    backend.set_torque(True)
    health = backend.health()
    assert health.torque_enabled and not health.faulted
    assert health.joints['elbow_flex'].voltage_v == pytest.approx(12.0)
    assert health.joints['elbow_flex'].temperature_c == pytest.approx(30.0, abs=1.0)
    assert 0 < health.joints['elbow_flex'].current_a < 0.1
    assert health.counters['failures'] == 0
    virtual.set_error(3, 'overload')
    backend.read()
    virtual.set_error(3)  # the bit is gone from the servo, but stays latched
    health = backend.health()
    assert health.faulted
    assert health.joints['elbow_flex'].faults == ('overload',)
    assert 'elbow_flex' in health.message
    backend.clear_faults()
    assert not backend.health().faulted
    # A servo that unloads itself (overload protection) shows up as torque lost.
    virtual.servo(4).set('Torque_Enable', 0)
    health = backend.health()
    assert not health.torque_enabled and 'torque dropped' in health.message


def test_read_survives_corrupted_replies(backend, virtual):
    virtual.corrupt_next(6, 2)
    backend.read()
    assert backend.health().counters['retries'] == 2


def test_silent_servo_is_reported_by_read_and_health(backend, virtual):
    virtual.set_silent(5)
    with pytest.raises(ServoMissingError, match=r'servo id 5 \(wrist_roll\)'):
        backend.read()
    health = backend.health()
    assert 'wrist_roll' in health.message
    assert np.isnan(health.joints['wrist_roll'].temperature_c)
    virtual.set_silent(5, False)
    backend.read()


def test_connect_names_missing_servos(config, virtual):
    virtual.set_silent(3)
    virtual.set_silent(6)
    robot = FeetechBackend(dataclasses.replace(config, read_retries=0, timeout_margin_s=0.02))
    with pytest.raises(ServoMissingError, match=r'elbow_flex.*gripper.*power supply'):
        robot.connect()
    assert not robot.bus.is_open
    robot.close()


def test_connect_rejects_a_wrong_model(config, virtual):
    virtual.servo(4).set('Model_Number', 1284)
    with pytest.raises(WrongServoModelError, match=r'servo id 4 \(wrist_flex\).*1284'):
        FeetechBackend(config).connect()


def test_calibration_mismatch_is_refused_or_written(config, virtual):
    virtual.servo(2).set('Homing_Offset', 40)
    with pytest.raises(ConfigurationError, match=r'shoulder_lift \(id 2\): homing_offset'):
        FeetechBackend(config).connect()
    robot = FeetechBackend(dataclasses.replace(config, on_calibration_mismatch='write'))
    robot.connect()
    try:
        assert virtual.servo(2).get('Homing_Offset') == CALIBRATION['shoulder_lift'].homing_offset
        assert any('wrote the calibration' in note for note in robot.notes)
    finally:
        robot.close()


def test_calibration_of_another_arm_is_refused(config, tmp_path):
    other = dict(CALIBRATION, gripper=dataclasses.replace(CALIBRATION['gripper'], id=9))
    cal.save_calibration(tmp_path / 'other.json', other)
    robot = FeetechBackend(dataclasses.replace(config, calibration_file=str(tmp_path /
                                                                            'other.json')))
    with pytest.raises(ConfigurationError, match='servo ids'):
        robot.connect()


def test_missing_port_and_calibration_file(config, tmp_path):
    robot = FeetechBackend(dataclasses.replace(config, port=str(tmp_path / 'ttyACM0')))
    with pytest.raises(TransportError, match='cannot open .*dialout|cannot open .*no such'):
        robot.connect()
    robot = FeetechBackend(dataclasses.replace(config, calibration_file=str(tmp_path / 'x')))
    with pytest.raises(ConfigurationError, match='no calibration file'):
        robot.connect()
    with pytest.raises(TransportError, match='not connected'):
        robot.read()


def test_close_is_idempotent_and_respects_the_torque_setting(config, virtual):
    robot = FeetechBackend(config)
    robot.connect()
    robot.set_torque(True)
    robot.close()
    robot.close()
    assert virtual.servo(1).get('Torque_Enable') == 0
    keep = FeetechBackend(dataclasses.replace(config, disable_torque_on_close=False))
    keep.connect()
    keep.set_torque(True)
    keep.close()
    assert virtual.servo(1).get('Torque_Enable') == 1


def test_a_reading_carries_the_error_bits_of_its_status_packets(backend, virtual):
    assert backend.read().joint_faults == {}
    virtual.set_error(3, 'overload', 'overheat')
    assert backend.read().joint_faults == {'elbow_flex': ('overheat', 'overload')}
    virtual.set_error(3)
    assert backend.read().joint_faults == {}  # per reading; health() keeps them latched
    assert backend.health().joints['elbow_flex'].faults == ('overheat', 'overload')


def test_health_warns_once_about_a_failed_reading_and_about_a_failed_health_read(
        config, virtual):
    robot = FeetechBackend(dataclasses.replace(config, timeout_margin_s=0.02))
    robot.connect()
    try:
        assert robot.health().warnings == ()
        virtual.set_silent(2)
        with pytest.raises(ServoMissingError):
            robot.read()
        warnings = robot.health().warnings
        assert len(warnings) == 2 and 'since the last health check' in warnings[0]
        assert 'health read failed' in warnings[1] and 'shoulder_lift' in warnings[1]
        virtual.set_silent(2, False)
        robot.read()
        assert robot.health().warnings == ()  # not repeated once it works again
    finally:
        robot.close()
