"""Trajectory validation and interpolation (ROS-free)."""
import numpy as np
import pytest

from so101_driver.errors import CommandError
from so101_driver.model_files import JOINT_NAMES
from so101_driver.trajectory import JointTrajectory, TrajectoryCommand

START = np.array([0.0, -0.5, 0.5, 1.0, 0.0, 0.3])


def trajectory(names=JOINT_NAMES, times=(1.0,), positions=None, velocities=None, start=START):
    positions = [np.zeros(len(names))] if positions is None else positions
    return JointTrajectory(TrajectoryCommand(tuple(names), times, positions, velocities),
                           JOINT_NAMES, start)


def test_single_point_is_a_smooth_rest_to_rest_move():
    goal = START + 0.4
    path = trajectory(times=(2.0,), positions=[goal])
    times = np.linspace(0.0, 2.0, 201)
    samples = np.array([path.sample(t) for t in times])
    np.testing.assert_allclose(samples[0], START)
    np.testing.assert_allclose(samples[-1], goal)
    np.testing.assert_allclose(path.sample(5.0), goal)  # holds after the end
    steps = np.diff(samples, axis=0)
    assert np.all(steps >= -1e-12)  # monotone, no overshoot
    speed = steps / np.diff(times)[:, None]
    assert speed[0].max() < 0.02 and speed[-1].max() < 0.02  # starts and ends at rest
    assert speed.max() == pytest.approx(1.5 * 0.4 / 2.0, rel=0.02)  # cubic peak speed


def test_waypoints_are_passed_without_overshoot():
    names = ('shoulder_pan',)
    path = trajectory(names, times=(1.0, 2.0, 3.0), positions=[[0.5], [0.6], [0.2]])
    assert path.sample(1.0)[0] == pytest.approx(0.5)
    assert path.sample(2.0)[0] == pytest.approx(0.6)
    samples = np.array([path.sample(t)[0] for t in np.linspace(0, 3, 301)])
    assert samples.max() <= 0.6 + 1e-9 and samples.min() >= 0.0 - 1e-9
    # joints not named stay where they were
    np.testing.assert_allclose(path.sample(1.5)[1:], START[1:])


def test_given_velocities_are_honoured_inside_and_the_end_is_at_rest():
    names = ('gripper',)
    path = trajectory(names, times=(1.0, 2.0), positions=[[0.5], [1.0]],
                      velocities=[[0.8], [3.0]])
    dt = 1e-4
    assert (path.sample(1.0 + dt)[5] - path.sample(1.0 - dt)[5]) / (2 * dt) == \
        pytest.approx(0.8, rel=1e-3)
    assert abs(path.sample(2.0)[5] - path.sample(2.0 - dt)[5]) / dt < 1e-2


def test_first_point_at_time_zero_is_the_start_when_close():
    path = trajectory(times=(0.0, 1.0), positions=[START + 0.05, START + 0.3])
    np.testing.assert_allclose(path.sample(0.0), START + 0.05)
    np.testing.assert_allclose(path.sample(1.0), START + 0.3)
    with pytest.raises(CommandError, match='time 0'):
        trajectory(times=(0.0, 1.0), positions=[START + 0.5, START])


@pytest.mark.parametrize('kwargs, match', [
    ({'times': (1.0,), 'positions': [[np.nan] * 6]}, 'NaN'),
    ({'times': (np.inf,), 'positions': [START]}, 'NaN'),
    ({'times': (1.0,), 'positions': [[0.0] * 5]}, 'positions'),
    ({'times': (1.0, 2.0), 'positions': [[0.0] * 6, [0.0] * 5]}, 'same count'),
    ({'times': (2.0, 1.0), 'positions': [START, START]}, 'increasing'),
    ({'times': (-1.0,), 'positions': [START]}, 'increasing'),
    ({'times': (), 'positions': []}, 'no points'),
    ({'times': (0.0,), 'positions': [START]}, 'single point'),
    ({'names': ('shoulder_pan', 'elbow'), 'positions': [[0.0, 0.0]]}, 'unknown joints'),
    ({'names': ('gripper', 'gripper'), 'positions': [[0.0, 0.0]]}, 'duplicate'),
    ({'names': (), 'positions': [[]]}, 'no joint names'),
    ({'times': (1.0,), 'positions': [START], 'velocities': [[0.0] * 3]}, 'velocities'),
    ({'times': (1.0,), 'positions': [START], 'velocities': [[np.nan] * 6]}, 'velocity'),
])
def test_malformed_trajectories_are_rejected_with_the_reason(kwargs, match):
    with pytest.raises(CommandError, match=match):
        trajectory(**kwargs)
