"""Joint trajectories for smooth moves (resets, scripted motions): validation and interpolation.

A trajectory is a list of waypoints with times from its start. The interpolation is a
piecewise cubic Hermite spline in every joint:

- waypoints with velocities (all of them): the spline passes through each point with its
  velocity (as ros2_controllers' joint_trajectory_controller does), except that it starts
  and ends at rest (the driver holds the last point);
- positions only: the spline starts and ends at rest, and at an inner waypoint takes the
  Fritsch-Butland slope (zero where the motion reverses), so it never overshoots a waypoint.

The segment from the start position to the first waypoint is part of the spline, so a
single-point trajectory is a smooth rest-to-rest move.
"""
import dataclasses

import numpy as np

from so101_driver.errors import CommandError


@dataclasses.dataclass(frozen=True)
class TrajectoryCommand:
    """A trajectory as received (ROS-free mirror of trajectory_msgs/JointTrajectory)."""

    joint_names: tuple[str, ...]
    times_s: object
    """(k,) time of each waypoint from the trajectory's start (array or sequence)."""
    positions: object
    """(k, len(joint_names)) rad (array or nested sequence; checked on use)."""
    velocities: object = None
    """(k, len(joint_names)) rad/s, or None when the waypoints carry no velocities."""


class JointTrajectory:
    """A validated trajectory over all driver joints, sampled by time since its start."""

    def __init__(self, command: TrajectoryCommand, all_joint_names: tuple[str, ...],
                 start_positions, start_tolerance_rad: float = 0.1):
        """Joints missing from ``command`` stay at ``start_positions``.

        Raises CommandError with the reason when the command is malformed.
        """
        start = np.asarray(start_positions, dtype=float)
        index = _joint_index(command.joint_names, all_joint_names)
        times, positions, velocities = _checked_arrays(command, len(index))
        if times[0] == 0.0:
            # A first point at time 0 is the start (what MoveIt sends); it must be close.
            distance = np.abs(positions[0] - start[index]).max()
            if distance > start_tolerance_rad:
                raise CommandError(
                    f'trajectory: the first point is at time 0 but {distance:.3f} rad from the '
                    f'current position (tolerance {start_tolerance_rad} rad); give it a time')
            start = start.copy()
            start[index] = positions[0]
            times, positions = times[1:], positions[1:]
            velocities = None if velocities is None else velocities[1:]
        full = np.repeat(start[None, :], len(times) + 1, axis=0)
        full[1:, index] = positions
        self.times_s = np.concatenate([[0.0], times])
        self.positions = full
        if velocities is None:
            self.velocities = _shape_preserving_velocities(self.times_s, full)
        else:
            self.velocities = np.zeros_like(full)
            self.velocities[1:, index] = velocities
            self.velocities[-1] = 0.0  # the driver holds the last point: arrive at rest

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1])

    def sample(self, elapsed_s: float) -> np.ndarray:
        """Positions at ``elapsed_s`` after the start (the last point after the end)."""
        times = self.times_s
        if elapsed_s >= times[-1]:
            return self.positions[-1].copy()
        if elapsed_s <= 0.0:
            return self.positions[0].copy()
        segment = int(np.searchsorted(times, elapsed_s, side='right')) - 1
        dt = times[segment + 1] - times[segment]
        s = (elapsed_s - times[segment]) / dt
        h00 = 2 * s**3 - 3 * s**2 + 1
        h10 = s**3 - 2 * s**2 + s
        h01 = -2 * s**3 + 3 * s**2
        h11 = s**3 - s**2
        p0, p1 = self.positions[segment], self.positions[segment + 1]
        v0, v1 = self.velocities[segment], self.velocities[segment + 1]
        return h00 * p0 + h10 * dt * v0 + h01 * p1 + h11 * dt * v1


def _joint_index(names, all_joint_names) -> np.ndarray:
    if len(names) == 0:
        raise CommandError('trajectory: no joint names')
    if len(set(names)) != len(names):
        raise CommandError(f'trajectory: duplicate joint names {list(names)}')
    unknown = [name for name in names if name not in all_joint_names]
    if unknown:
        raise CommandError(f'trajectory: unknown joints {unknown}; the driver has '
                           f'{list(all_joint_names)}')
    return np.array([all_joint_names.index(name) for name in names])


def _as_array(values, what: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise CommandError(f'trajectory: {what} must be numbers, the same count in every '
                           f'point ({error})') from error


def _checked_arrays(command: TrajectoryCommand, joint_count: int):
    times = _as_array(command.times_s, 'times')
    positions = _as_array(command.positions, 'positions')
    if times.ndim != 1 or len(times) == 0:
        raise CommandError('trajectory: no points')
    if positions.shape != (len(times), joint_count):
        raise CommandError(f'trajectory: every point needs {joint_count} positions (one per '
                           f'joint name), got shape {positions.shape}')
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(positions))):
        raise CommandError('trajectory: NaN or infinite time or position')
    if times[0] < 0.0 or np.any(np.diff(times) <= 0.0):
        raise CommandError(f'trajectory: times must be >= 0 and strictly increasing, got '
                           f'{times.tolist()}')
    if times[0] == 0.0 and len(times) == 1:
        raise CommandError('trajectory: a single point needs a time > 0')
    velocities = command.velocities
    if velocities is not None:
        velocities = _as_array(velocities, 'velocities')
        if velocities.shape != positions.shape:
            raise CommandError(f'trajectory: velocities must be given for all points and '
                               f'joints or for none, got shape {velocities.shape}')
        if not np.all(np.isfinite(velocities)):
            raise CommandError('trajectory: NaN or infinite velocity')
    return times, positions, velocities


def _shape_preserving_velocities(times: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Zero at both ends; inside, the harmonic mean of the neighbouring slopes when they have
    the same sign, else zero (Fritsch-Butland: no overshoot).
    """
    velocities = np.zeros_like(positions)
    slopes = np.diff(positions, axis=0) / np.diff(times)[:, None]
    before, after = slopes[:-1], slopes[1:]
    same_sign = before * after > 0.0
    with np.errstate(divide='ignore', invalid='ignore'):
        harmonic = np.where(same_sign, 2.0 * before * after / (before + after), 0.0)
    velocities[1:-1] = harmonic
    return velocities
