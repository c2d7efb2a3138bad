"""DriverCore and DriverLoop without ROS: the rules that keep the arm safe."""
import time

import numpy as np
import pytest

from so101_driver.backend import BackendHealth, JointHealth, JointSample, make_backend
from so101_driver.driver_core import DriverCore, Mode
from so101_driver.driver_loop import DriverLoop
from so101_driver.errors import (
    CommandError,
    ConfigurationError,
    DriverError,
    ProtocolError,
    ServoFaultError,
    TransportError,
)
from so101_driver.model_files import JOINT_NAMES
from so101_driver.params import DriverParams, SimParams
from so101_driver.sim.backend import SimBackend
from so101_driver.trajectory import TrajectoryCommand

LOWER = np.array([-1.9, -1.7, -1.7, -1.6, -2.7, -0.17])
UPPER = np.array([1.9, 1.7, 1.7, 1.6, 2.8, 1.7])
START = np.array([0.1, -0.5, 0.5, 1.0, 0.2, 0.4])


class IdealServoBackend:
    """A backend whose joints reach their targets at the next ``advance`` (plus an optional
    sag per step), with a clock of its own: deterministic core tests."""

    joint_names = JOINT_NAMES
    lower_limits_rad = LOWER
    upper_limits_rad = UPPER

    def __init__(self, sag_rad: float = 0.0):
        self.positions = START.copy()
        self.targets = START.copy()
        self.time_s = 0.0
        self.sag_rad = sag_rad
        self.torque = True
        self.writes = 0
        self.faults = ()
        self.sample_faults = {}
        self.cleared = 0
        self.read_failures = 0
        self.read_error = ProtocolError('servo id 5 (wrist_roll) did not answer')

    def connect(self):
        pass

    def read(self):
        if self.read_failures:
            self.read_failures -= 1
            raise self.read_error
        return JointSample(self.positions.copy(), np.zeros(6), np.zeros(6), self.time_s,
                           joint_faults=dict(self.sample_faults))

    def write_positions(self, positions):
        self.writes += 1
        self.targets = np.array(positions)

    def advance(self, duration_s):
        self.time_s += duration_s
        if self.torque:
            self.positions = self.targets.copy()
        self.positions[:-1] -= self.sag_rad

    def set_torque(self, enabled):
        self.torque = enabled

    def health(self):
        return BackendHealth(self.torque, {name: JointHealth(faults=self.faults)
                                           for name in JOINT_NAMES})

    def clear_faults(self):
        self.cleared += 1

    def close(self):
        pass


def make_core(backend=None, **params):
    backend = backend or IdealServoBackend()
    core = DriverCore(backend, DriverParams(**params))
    core.start()
    return core, backend


def run(core, backend, seconds, period=0.01):
    result = None
    for _ in range(int(round(seconds / period))):
        result = core.cycle()
        backend.advance(period)
    return result


def test_start_holds_where_the_arm_is_and_commands_need_activation():
    backend = IdealServoBackend()
    backend.torque = False
    backend.targets = START + 1.0  # a stale goal in the servos
    core, backend = make_core(backend)
    np.testing.assert_allclose(core.target_rad, START)
    np.testing.assert_allclose(backend.targets, START)  # goal = present, then torque on
    assert backend.torque and core.torque_enabled
    with pytest.raises(CommandError, match='not active'):
        core.submit_positions(START + 0.1)
    run(core, backend, 0.1)
    np.testing.assert_allclose(backend.positions, START)


def test_position_commands_are_followed_and_clamped():
    core, backend = make_core()
    core.activate()
    goal = START + 0.2
    np.testing.assert_allclose(core.submit_positions(goal), goal)
    run(core, backend, 0.05)
    np.testing.assert_allclose(backend.positions, goal)
    clamped = core.submit_positions([5.0, -5.0, 0.0, 0.0, 0.0, 9.0])
    np.testing.assert_allclose(clamped, [UPPER[0], LOWER[1], 0.0, 0.0, 0.0, UPPER[5]])
    assert core.counters.commands_clamped == 1 and core.counters.commands_accepted == 2


@pytest.mark.parametrize('values, match', [
    ([0.0] * 5, 'has 5 values, expected 6'),
    ([0.0] * 7, 'has 7 values'),
    ([], 'has 0 values'),
    ([0.0, np.nan, 0.0, 0.0, 0.0, 0.0], r"NaN/inf for \['shoulder_lift'\]"),
    ([0.0, 0.0, 0.0, 0.0, 0.0, np.inf], 'gripper'),
    (['a'] * 6, 'not numeric'),
])
def test_bad_commands_are_rejected_and_nothing_moves(values, match):
    core, backend = make_core()
    core.activate()
    with pytest.raises(CommandError, match=match):
        core.submit_positions(values)
    run(core, backend, 0.05)
    np.testing.assert_allclose(backend.positions, START)
    assert core.counters.commands_rejected == 1 and match.split()[0] in core.last_rejection


def test_command_timeout_holds_the_measured_position_without_drift():
    core, backend = make_core(IdealServoBackend(sag_rad=0.001), command_timeout_s=0.2)
    core.activate()
    core.submit_positions(START + 0.1)
    result = run(core, backend, 0.1)
    assert result.mode is Mode.STREAM
    result = run(core, backend, 0.15)  # 0.25 s after the command: timed out
    assert result.mode is Mode.HOLD and core.counters.command_timeouts == 1
    held = core.target_rad
    # arm joints held at the measured (sagged) position, gripper at its last command
    assert held[5] == pytest.approx(START[5] + 0.1)
    assert np.all(held[:-1] < START[:-1] + 0.1)
    run(core, backend, 0.5)
    np.testing.assert_allclose(core.target_rad, held)  # the hold target does not creep


def test_trajectory_is_followed_then_held_and_a_stream_command_cancels_it():
    core, backend = make_core()
    core.activate()
    goal = START - 0.3
    core.submit_trajectory(TrajectoryCommand(JOINT_NAMES, [1.0], [goal]))
    positions = []
    for _ in range(100):
        core.cycle()
        backend.advance(0.01)
        positions.append(backend.positions.copy())
    positions = np.array(positions)
    assert np.all(np.diff(positions, axis=0) <= 1e-12)  # monotone towards the goal
    np.testing.assert_allclose(positions[-1], goal, atol=1e-3)
    result = run(core, backend, 1.0)  # no timeout after a trajectory: the goal is held
    assert result.mode is Mode.HOLD
    np.testing.assert_allclose(backend.positions, goal)
    core.submit_trajectory(TrajectoryCommand(JOINT_NAMES, [1.0], [START]))
    run(core, backend, 0.3)
    core.submit_positions(backend.positions)
    assert core.mode is Mode.STREAM and not core.trajectory_running()


def test_deactivate_holds_where_the_arm_is_and_refuses_commands():
    core, backend = make_core()
    core.activate()
    core.submit_trajectory(TrajectoryCommand(JOINT_NAMES, [1.0], [START + 0.5]))
    run(core, backend, 0.5)
    core.deactivate()
    stopped = core.last_sample.positions_rad  # the last reading before the deactivation
    assert np.all(stopped < START + 0.45)  # stopped mid-way
    run(core, backend, 1.0)
    np.testing.assert_allclose(backend.positions[:-1], stopped[:-1])
    with pytest.raises(CommandError, match='not active'):
        core.submit_positions(START)


def test_torque_off_refuses_commands_and_torque_on_holds_without_a_jump():
    core, backend = make_core()
    core.activate()
    core.set_torque(False)
    assert not backend.torque
    with pytest.raises(CommandError, match='torque'):
        core.submit_positions(START)
    writes = backend.writes
    backend.positions = START - 0.2  # moved by hand
    run(core, backend, 0.1)
    assert backend.writes == writes  # nothing written while the torque is off
    core.set_torque(True)
    run(core, backend, 0.1)
    np.testing.assert_allclose(backend.positions, START - 0.2)


def test_a_backend_fault_holds_and_blocks_commands_until_cleared_and_acknowledged():
    core, backend = make_core()
    core.activate()
    core.submit_positions(START + 0.1)
    backend.faults = ('overload',)
    assert core.check_health().faulted
    assert core.mode is Mode.HOLD and 'overload' in core.fault
    with pytest.raises(CommandError, match='fault'):
        core.submit_positions(START)
    backend.faults = ()
    core.check_health()  # gone from the backend, but latched: fails closed
    with pytest.raises(CommandError, match='fault'):
        core.submit_positions(START)
    core.set_torque(True)  # the acknowledgement
    core.submit_positions(START)


def test_loop_paces_a_simulation_to_the_real_time_factor():
    core, backend = make_core()
    cycles = []
    loop = DriverLoop(core, 0.01, cycles.append, pytest.fail, advance=backend.advance,
                      real_time_factor=4.0)
    started = time.monotonic()
    loop.start()
    time.sleep(0.5)
    assert loop.stop(2.0)
    wall = time.monotonic() - started
    assert 0.5 * 4.0 * wall < backend.time_s < 1.5 * 4.0 * wall
    stamps = [result.sample.stamp_s for result in cycles]
    assert np.allclose(np.diff(stamps), 0.01)


def test_loop_survives_read_errors_and_reports_them():
    core, backend = make_core()
    errors, cycles, exited = [], [], []
    loop = DriverLoop(core, 0.01, cycles.append, errors.append, advance=backend.advance,
                      real_time_factor=0.0, on_exit=lambda: exited.append(True))
    backend.read_failures = 3
    loop.start()
    deadline = time.monotonic() + 5.0
    while len(cycles) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert loop.stop(2.0) and exited == [True]
    assert len(errors) == 3 and all(isinstance(e, ProtocolError) for e in errors)
    assert len(cycles) >= 20 and core.counters.read_errors == 3


def test_sim_backend_tracks_commands_and_holds_on_timeout():
    backend = SimBackend(SimParams(home_randomization_rad=0.0))
    backend.connect()
    try:
        core = DriverCore(backend, DriverParams(command_timeout_s=0.3))
        core.start()
        core.activate()
        goal = np.array(SimParams().home_joint_positions_rad) + [0.2, 0.1, -0.1, 0.1, 0.3, 0.2]
        core.submit_positions(goal)
        for _ in range(25):
            core.cycle()
            backend.advance(0.01)
        np.testing.assert_allclose(core.last_sample.positions_rad, goal, atol=0.01)
        for _ in range(50):  # past the timeout: hold
            core.cycle()
            backend.advance(0.01)
        held = core.last_sample.positions_rad
        assert core.mode is Mode.HOLD
        for _ in range(100):
            core.cycle()
            backend.advance(0.01)
        assert np.abs(core.last_sample.positions_rad - held).max() < 1e-3
    finally:
        backend.close()


def test_real_backend_without_hardware_fails_with_a_driver_error():
    params = DriverParams(backend='real', port='/dev/does-not-exist-so101')
    try:
        backend = make_backend(params)
    except ConfigurationError as error:  # before the Feetech backend is merged
        assert 'real' in str(error)
        return
    with pytest.raises(DriverError):
        backend.connect()


def test_report_levels_for_diagnostics():
    core, backend = make_core()
    level, message, values = core.report(loop_running=True, loop_rate_hz=99.5)
    assert (level, message) == ('ok', 'ok') and values['loop_rate_hz'] == '99.5'
    assert values['commands_rejected'] == 0 and values['mode'] == 'hold'
    core.set_torque(False)
    assert core.report(loop_running=True)[0] == 'warn'
    core.set_torque(True)
    backend.faults = ('overheat',)
    level, message, _ = core.report(loop_running=True)
    assert level == 'error' and 'overheat' in message and core.mode is Mode.HOLD
    backend.faults = ()
    level, message, _ = core.report(loop_running=False, loop_error='TransportError: timeout')
    assert level == 'error' and 'loop stopped' in message and 'timeout' in message


def test_a_failed_reading_stops_a_trajectory_where_it_is():
    core, backend = make_core()
    core.activate()
    core.submit_trajectory(TrajectoryCommand(JOINT_NAMES, [1.0], [START + 0.5]))
    run(core, backend, 0.3)
    target = core.target_rad
    backend.read_failures = 1
    with pytest.raises(ProtocolError):
        core.cycle()
    backend.time_s += 1.0  # the bus was silent for a second
    result = run(core, backend, 0.1)
    assert result.mode is Mode.HOLD
    np.testing.assert_allclose(result.target_rad, target)  # no jump ahead


def test_a_failed_reading_writes_nothing_refuses_commands_and_resumes_without_a_jump():
    core, backend = make_core()
    core.activate()
    core.submit_positions(START + 0.2)
    run(core, backend, 0.02)
    goal = backend.targets.copy()
    writes = backend.writes
    backend.read_failures = 3
    for _ in range(3):
        with pytest.raises(ProtocolError):
            core.cycle()
    assert backend.writes == writes and 'wrist_roll' in core.read_error
    with pytest.raises(CommandError, match='cannot be read'):
        core.submit_positions(START)
    core.deactivate()  # a hold while the reading is stale keeps the last goal
    core.activate()
    level, message, values = core.report(loop_running=True, loop_error='ProtocolError: x')
    assert level == 'error' and 'reading the arm failed' in message
    assert values['read_errors'] == 3
    result = core.cycle()
    assert 'read_recovered' in result.events and not core.read_error
    np.testing.assert_allclose(backend.targets, goal)  # the servos' goal did not move
    np.testing.assert_allclose(core.submit_positions(START), START)  # commands work again


def test_faults_reported_with_a_reading_hold_every_joint_until_acknowledged():
    core, backend = make_core(IdealServoBackend(sag_rad=0.001))
    core.activate()
    core.submit_positions(START + 0.3)
    core.cycle()
    backend.positions = START + 0.1  # mid-way
    backend.sample_faults = {'gripper': ('overload',)}
    result = core.cycle()
    assert result.mode is Mode.HOLD and core.fault == 'gripper: overload'
    # every joint, the gripper too (stop squeezing), holds its measured position
    np.testing.assert_allclose(result.target_rad, START + 0.1)
    np.testing.assert_allclose(backend.targets, START + 0.1)
    with pytest.raises(CommandError, match='fault'):
        core.submit_positions(START)
    backend.sample_faults = {}
    backend.faults = ('overload',)  # the health check still sees it (latched)
    level, message, values = core.report(loop_running=True)
    assert level == 'error' and 'overload' in message and values['gripper.faults'] == 'overload'
    with pytest.raises(ServoFaultError, match='still reported'):
        core.set_torque(True)
    assert backend.cleared == 1 and core.fault
    backend.faults = ()
    core.set_torque(True)  # acknowledged: the servos no longer report it
    events = core.take_events()
    assert not core.fault and any(e.startswith('fault_cleared:') for e in events)
    core.submit_positions(START)


def test_torque_dropping_by_itself_is_a_fault():
    core, backend = make_core()
    core.activate()
    backend.torque = False  # a servo unloaded itself (overload protection)
    core.check_health()
    assert 'torque dropped' in core.fault and core.mode is Mode.HOLD
    with pytest.raises(CommandError, match='fault'):
        core.submit_positions(START)
    core.set_torque(True)
    assert not core.fault and backend.torque


def test_a_lost_connection_is_latched_until_a_new_configure():
    core, backend = make_core()
    core.activate()
    backend.read_error = TransportError('/dev/ttyACM0: read failed; was the USB cable unplugged?')
    backend.read_failures = 1
    with pytest.raises(TransportError):
        core.cycle()
    assert core.fault.startswith('connection lost') and 'unplugged' in core.fault
    assert 'cleanup and configure' in core.fault
    core.cycle()  # even if a reading works again, and the health check is fine
    core.check_health()
    assert core.fault.startswith('connection lost')
    with pytest.raises(CommandError, match='connection lost'):
        core.submit_positions(START)


def test_trajectory_outcome_tells_done_from_cancelled():
    core, backend = make_core()
    core.activate()
    core.submit_trajectory(TrajectoryCommand(JOINT_NAMES, [0.1], [START + 0.05]))
    assert core.trajectory_outcome == 'running'
    run(core, backend, 0.2)
    assert core.trajectory_outcome == 'done'
    core.submit_trajectory(TrajectoryCommand(JOINT_NAMES, [1.0], [START]))
    run(core, backend, 0.1)
    backend.sample_faults = {'elbow_flex': ('overheat',)}
    core.cycle()
    assert core.trajectory_outcome == 'cancelled (fault)'


def test_real_backend_configuration_comes_from_the_driver_parameters(tmp_path):
    from so101_driver.backend import feetech_config

    params = DriverParams(backend='real', port='/tmp/bus', baudrate=500_000,
                          calibration_file=str(tmp_path / 'arm.json'), read_retries=4,
                          bus_timeout_margin_s=0.1, on_calibration_mismatch='write')
    config = feetech_config(params)
    assert (config.port, config.baudrate, config.calibration_file) == (
        '/tmp/bus', 500_000, str(tmp_path / 'arm.json'))
    assert (config.read_retries, config.timeout_margin_s, config.on_calibration_mismatch) == (
        4, 0.1, 'write')
    assert config.disable_torque_on_close is False  # the node decides (cleanup parameter)
    default = feetech_config(DriverParams(backend='real'))
    assert default.calibration_file.endswith('robots/so101_follower/so101_follower.json')
    with pytest.raises(ConfigurationError, match='baudrate must be one of'):
        feetech_config(DriverParams(backend='real', baudrate=12345))
