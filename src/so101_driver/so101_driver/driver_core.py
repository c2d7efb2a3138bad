"""The driver's control logic without ROS: command checks, clamping, hold, trajectories, loop.

``DriverCore`` owns one ``RobotBackend`` and decides, every control cycle, which joint targets
to write: the latest streamed position command, a trajectory sample, or a hold. It is what
makes the driver safe, so the rules live here and unit-test without ROS:

- a position command must have one finite value per joint; otherwise it is rejected
  (``CommandError``) and nothing moves;
- targets are clamped to the backend's calibrated joint range;
- streamed commands older than ``command_timeout_s`` make the arm hold where it is (the arm
  joints at their measured position, the gripper at its last target so that a held object is
  not dropped);
- deactivation and a torque change also hold; commands are only taken while active, with the
  torque on, no fault and a working reading;
- a fault (reported by the actuators with a reading or by the health check, the torque dropping
  by itself, a lost connection) holds every joint, the gripper too, at its last measured
  position and is latched: commands are refused until ``set_torque(True)`` acknowledges it and
  the backend no longer reports it;
- a failed reading writes nothing (the servos keep their last goal, so nothing jumps), stops a
  running trajectory or stream, and refuses commands until a reading succeeds again; the arm
  then goes on holding that same goal.

``driver_loop.DriverLoop`` runs ``cycle()`` in a thread of its own.
"""
import dataclasses
import enum
import threading

import numpy as np

from so101_driver.backend import BackendHealth, JointSample, RobotBackend
from so101_driver.errors import (
    CommandError,
    DriverError,
    ServoFaultError,
    TransportError,
)
from so101_driver.params import DriverParams
from so101_driver.trajectory import JointTrajectory, TrajectoryCommand

CONNECTION_LOST = 'connection lost'
"""Prefix of the latched fault of a lost port: it needs cleanup + configure (a new
connection); an acknowledgement fails while the port is gone."""


class Mode(enum.Enum):
    HOLD = 'hold'
    """Hold a fixed target (at start, after a timeout, deactivation, fault or torque change)."""
    STREAM = 'stream'
    """Follow the latest /forward_position_controller/commands."""
    TRAJECTORY = 'trajectory'
    """Follow an interpolated trajectory, then hold its last point."""


@dataclasses.dataclass(frozen=True)
class CycleResult:
    """What one control cycle read and wrote."""

    sample: JointSample
    target_rad: np.ndarray
    """Targets written to the backend this cycle."""
    mode: Mode
    events: tuple[str, ...] = ()
    """Things that happened this cycle, e.g. 'command_timeout', 'trajectory_done'."""


@dataclasses.dataclass
class CoreCounters:
    commands_accepted: int = 0
    commands_rejected: int = 0
    commands_clamped: int = 0
    trajectories_accepted: int = 0
    command_timeouts: int = 0
    cycles: int = 0
    read_errors: int = 0


class DriverCore:
    """Command validation, clamping, timeout hold, faults and trajectories for one backend.

    Thread-safe: commands arrive from ROS callbacks while ``cycle()`` runs in the loop thread.
    Hold ``lock`` to do several things atomically (the loop holds it for a whole cycle).
    """

    def __init__(self, backend: RobotBackend, params: DriverParams):
        self.backend = backend
        self.params = params
        self.joint_names = tuple(backend.joint_names)
        self.lock = threading.RLock()
        self.counters = CoreCounters()
        self.mode = Mode.HOLD
        self.active = False
        self.torque_enabled = True
        self.fault = ''
        """Latched fault description ('' = none): the arm holds and commands are refused."""
        self.read_error = ''
        """Why the latest reading failed ('' once a reading succeeds again)."""
        self.last_rejection = ''
        self.trajectory_outcome = ''
        """'running', 'done' or 'cancelled (<reason>)' of the latest trajectory."""
        self.last_sample: JointSample | None = None
        self._target = None
        self._stream_time_s = 0.0
        self._trajectory: JointTrajectory | None = None
        self._trajectory_start_s = 0.0
        self._events: list[str] = []

    # --- set-up --------------------------------------------------------------------------
    def start(self) -> JointSample:
        """Hold the arm where it is, torque on (call once after ``backend.connect()``).

        The goal is set to the present position before the torque goes on, so nothing jumps.
        Faults reported with the first reading are latched (the arm holds; commands wait for
        the acknowledgement).
        """
        with self.lock:
            sample = self.backend.read()
            self._check_sample(sample)
            self.last_sample = sample
            self._target = self._clamp(sample.positions_rad)[0]
            self.backend.write_positions(self._target.copy())
            self.backend.set_torque(True)
            self.torque_enabled = True
            self.mode = Mode.HOLD
            if sample.joint_faults:
                self.set_fault(format_faults(sample.joint_faults))
            return sample

    @property
    def lower_limits_rad(self) -> np.ndarray:
        return np.asarray(self.backend.lower_limits_rad, dtype=float)

    @property
    def upper_limits_rad(self) -> np.ndarray:
        return np.asarray(self.backend.upper_limits_rad, dtype=float)

    @property
    def target_rad(self) -> np.ndarray:
        with self.lock:
            return self._target.copy()

    # --- commands ------------------------------------------------------------------------
    def submit_positions(self, positions) -> np.ndarray:
        """Stream a position target for every joint; return it clamped. Raises CommandError."""
        with self.lock:
            try:
                values = np.asarray(positions, dtype=float)
            except (TypeError, ValueError) as error:
                raise self._reject(f'position command is not numeric: {error}') from error
            if values.shape != (len(self.joint_names),):
                raise self._reject(
                    f'position command has {values.size} values, expected '
                    f'{len(self.joint_names)} ({", ".join(self.joint_names)})')
            if not np.all(np.isfinite(values)):
                bad = [n for n, v in zip(self.joint_names, values) if not np.isfinite(v)]
                raise self._reject(f'position command has NaN/inf for {bad}')
            self._require_ready()
            target, clamped = self._clamp(values)
            self.counters.commands_accepted += 1
            self.counters.commands_clamped += int(clamped)
            self._cancel_trajectory('position command')
            self._target = target
            self.mode = Mode.STREAM
            self._stream_time_s = self._now()
            return target.copy()

    def submit_trajectory(self, command: TrajectoryCommand) -> JointTrajectory:
        """Start following a trajectory from the current target. Raises CommandError."""
        with self.lock:
            try:
                trajectory = JointTrajectory(command, self.joint_names, self._target,
                                             self.params.trajectory_start_tolerance_rad)
            except CommandError as error:
                raise self._reject(str(error)) from error
            self._require_ready()
            self.counters.trajectories_accepted += 1
            self._cancel_trajectory('new trajectory')
            self._trajectory = trajectory
            self._trajectory_start_s = self._now()
            self.trajectory_outcome = 'running'
            self.mode = Mode.TRAJECTORY
            return trajectory

    def take_events(self) -> tuple[str, ...]:
        """Events since the last cycle (or call), e.g. 'fault_cleared:...'; then forgotten."""
        with self.lock:
            events, self._events = tuple(self._events), []
            return events

    def trajectory_running(self) -> bool:
        with self.lock:
            return self.mode is Mode.TRAJECTORY

    # --- state changes -------------------------------------------------------------------
    def activate(self) -> None:
        with self.lock:
            self.hold('activate')
            self.active = True

    def deactivate(self) -> None:
        """Safe hold: stop any motion where the arm is; refuse commands."""
        with self.lock:
            self.active = False
            self.hold('deactivate')

    def hold(self, reason: str = '', all_joints: bool = False) -> None:
        """Hold the arm joints at their measured position, the gripper at its last target
        (``all_joints``: the gripper at its measured position too).

        While readings fail the target is kept: the last reading is stale, and the servos
        already hold the last goal written.
        """
        with self.lock:
            self._cancel_trajectory(reason or 'hold')
            self.mode = Mode.HOLD
            if self.last_sample is not None and self._target is not None \
                    and not self.read_error:
                target = self._target.copy()
                count = len(target) if all_joints else len(target) - 1
                target[:count] = self.last_sample.positions_rad[:count]
                self._target = self._clamp(target)[0]
            if reason:
                self._events.append(f'hold:{reason}')

    def hold_at(self, positions) -> None:
        """Hold exactly ``positions`` (after a simulation reset moved the arm there)."""
        with self.lock:
            self._cancel_trajectory('reset')
            self.mode = Mode.HOLD
            self._target = self._clamp(np.asarray(positions, dtype=float))[0]

    def set_torque(self, enabled: bool) -> None:
        """Switch the servos' torque; the arm then holds where it is (no jump on re-enable).

        Enabling also acknowledges a latched fault: the backend forgets its latched faults and
        the torque goes on only if the actuators no longer report any (else ServoFaultError,
        and nothing changes).
        """
        with self.lock:
            if enabled:
                self.backend.clear_faults()
                health = self.backend.health()
                remaining = {name: joint.faults for name, joint in health.joints.items()
                             if joint.faults}
                if remaining:
                    self.set_fault(format_faults(remaining))
                    raise ServoFaultError(
                        f'cannot enable the torque: {format_faults(remaining)} still reported; '
                        'remove the cause (load, temperature, supply) first',
                        {name: list(faults) for name, faults in remaining.items()})
            self.backend.set_torque(bool(enabled))
            self.torque_enabled = bool(enabled)
            if enabled and self.fault:
                self._events.append(f'fault_cleared:{self.fault}')
                self.fault = ''
            if self.last_sample is not None and not self.read_error:
                self._target = self._clamp(self.last_sample.positions_rad)[0]
            self._cancel_trajectory('torque change')
            self.mode = Mode.HOLD

    def check_health(self) -> BackendHealth:
        """Ask the backend for its health; a fault holds the arm and blocks commands until
        ``set_torque(True)`` acknowledges it.

        Raises DriverError when the backend cannot tell (lost connection).
        """
        with self.lock:
            health = self.backend.health()
            faults = {name: joint.faults for name, joint in health.joints.items() if joint.faults}
            fault = format_faults(faults)
            if self.torque_enabled and not health.torque_enabled:
                fault = '; '.join(filter(None, [fault, 'torque dropped by itself (servo '
                                                'protection or power loss)']))
            if fault:
                self.set_fault(fault)
            return health

    def report(self, loop_running: bool, loop_error: str = '',
               loop_rate_hz: float = 0.0) -> tuple[str, str, dict]:
        """Diagnostics: level ('ok', 'warn', 'error'), message and key values.

        Runs the health check (a fault holds the arm); a failing health check holds too.
        """
        level, problems, health = 'ok', [], None
        values = {}
        try:
            health = self.check_health()
            values.update(health.counters)
            values['backend_message'] = health.message
        except DriverError as error:
            level = 'error'
            problems.append(f'health check failed: {error}')
            self.hold('health_check_failed', all_joints=True)
        if self.fault:
            level = 'error'
            problems.append(f'fault, holding (acknowledge with enable_torque once fixed): '
                            f'{self.fault}')
        if self.read_error:
            level = 'error'
            problems.append(f'reading the arm failed, holding: {self.read_error}')
        elif loop_error:
            level = 'error'
            problems.append(f'control cycle failing: {loop_error}')
        if not loop_running:
            level = 'error'
            problems.append('control loop stopped')
        if level == 'ok' and health is not None and health.warnings:
            level = 'warn'
            problems.extend(health.warnings)
        if level == 'ok' and not self.torque_enabled:
            level = 'warn'
            problems.append('torque disabled')
        sample = self.last_sample
        values.update({'active': self.active, 'mode': self.mode.value,
                       'torque_enabled': self.torque_enabled, 'fault': self.fault,
                       'read_error': self.read_error,
                       'effort_unit': sample.effort_unit if sample else '',
                       'loop_rate_hz': f'{loop_rate_hz:.1f}',
                       'last_rejection': self.last_rejection,
                       **dataclasses.asdict(self.counters)})
        if health is not None:
            values.update(health.joint_values())
        return level, '; '.join(problems) or 'ok', values

    # --- the control cycle ---------------------------------------------------------------
    def cycle(self) -> CycleResult:
        """Read the backend, choose the targets, write them. Raises DriverError on failure."""
        with self.lock:
            self.counters.cycles += 1
            try:
                sample = self.backend.read()
                self._check_sample(sample)
            except DriverError as error:
                self._read_failed(error)
                raise
            self.last_sample = sample
            if self.read_error:
                self.read_error = ''
                self._events.append('read_recovered')
            if sample.joint_faults:
                self.set_fault(format_faults(sample.joint_faults))
            now = sample.stamp_s
            if self.mode is Mode.STREAM and \
                    now - self._stream_time_s > self.params.command_timeout_s:
                self.counters.command_timeouts += 1
                self.hold('command_timeout')
            if self.mode is Mode.TRAJECTORY:
                elapsed = now - self._trajectory_start_s
                self._target = self._clamp(self._trajectory.sample(elapsed))[0]
                if elapsed >= self._trajectory.duration_s:
                    self._trajectory = None
                    self.trajectory_outcome = 'done'
                    self.mode = Mode.HOLD
                    self._events.append('trajectory_done')
            if self.torque_enabled:
                try:
                    self.backend.write_positions(self._target.copy())
                except TransportError as error:
                    self.set_fault(connection_lost(error))
                    raise
            return CycleResult(sample, self._target.copy(), self.mode, self.take_events())

    # --- helpers -------------------------------------------------------------------------
    def _read_failed(self, error: DriverError) -> None:
        """Without a reading nothing may move on: stop a trajectory or a stream (which would
        otherwise jump ahead or resume a stale command); the servos keep their last goal.
        """
        self.counters.read_errors += 1
        self._cancel_trajectory('reading failed')
        self.mode = Mode.HOLD
        self.read_error = f'{type(error).__name__}: {error}'
        if isinstance(error, TransportError):
            self.set_fault(connection_lost(error))

    def set_fault(self, fault: str) -> None:
        """Latch a fault: hold every joint where it is, refuse commands until acknowledged."""
        if not self.fault:
            self.hold('fault', all_joints=True)
        self.fault = fault

    def _cancel_trajectory(self, reason: str) -> None:
        if self._trajectory is not None:
            self._trajectory = None
            self.trajectory_outcome = f'cancelled ({reason})'

    def _now(self) -> float:
        return self.last_sample.stamp_s if self.last_sample is not None else 0.0

    def _clamp(self, values: np.ndarray) -> tuple[np.ndarray, bool]:
        clamped = np.clip(values, self.lower_limits_rad, self.upper_limits_rad)
        return clamped, bool(np.any(clamped != values))

    def _reject(self, reason: str) -> CommandError:
        self.counters.commands_rejected += 1
        self.last_rejection = reason
        return CommandError(reason)

    def _require_ready(self) -> None:
        if not self.active:
            raise self._reject('the driver is not active')
        if not self.torque_enabled:
            raise self._reject('the torque is disabled (call ~/enable_torque)')
        if self.fault:
            raise self._reject(f'the backend reports a fault: {self.fault}')
        if self.read_error:
            raise self._reject(f'the arm cannot be read: {self.read_error}')

    def _check_sample(self, sample: JointSample) -> None:
        count = len(self.joint_names)
        if sample.positions_rad.shape != (count,) or not np.all(
                np.isfinite(sample.positions_rad)):
            raise DriverError(f'backend returned invalid joint positions {sample.positions_rad}')


def connection_lost(error: Exception) -> str:
    return (f'{CONNECTION_LOST} ({error}); the servos hold their last goal; cleanup and '
            'configure the driver to reconnect')


def format_faults(faults: dict) -> str:
    """{'elbow_flex': ('overload',)} -> 'elbow_flex: overload'."""
    return '; '.join(f'{name}: {", ".join(names)}' for name, names in faults.items())
