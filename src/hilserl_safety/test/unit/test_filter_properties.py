"""Property-based tests of the ROS-free safety core: no input sequence breaks a limit.

Hypothesis drives a SafetySupervisor with arbitrary sequences of end-effector and joint
commands (random, huge, NaN, inf, every source, mixed), ticks, effort spikes, e-stop latches and
releases, heartbeat gaps and irregular timing, while a simulated arm reports its measured
state. Every output must stay within the joint limits, within the per-step velocity limit of
the time since the previous output, and have its TCP inside the workspace box (within the IK
tolerance).
"""
import dataclasses
import functools
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import numpy as np
import pytest

from hilserl_safety.filter import (
    ARM,
    CommandFilter,
    EeCommand,
    Gripper,
    JointCommand,
    Limit,
    Severity,
)
from hilserl_safety.limits import WorkspaceBox, effective_limits, urdf_joint_limits
from hilserl_safety.params import SafetyFilterParams
from hilserl_safety.supervisor import SafetySupervisor

PROPERTY_SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.data_too_large])
TOLERANCE = 1e-9


@functools.cache
def kinematics():
    from so101_driver.kinematics import So101Kinematics

    return So101Kinematics()


@functools.cache
def urdf_limits():
    from so101_driver.model_files import official_model_files

    return urdf_joint_limits(official_model_files().urdf, SafetyFilterParams().joint_names)


@functools.cache
def start_poses():
    """Seeded joint configurations within the limits whose TCP is inside the default box."""
    limits = effective_limits(SafetyFilterParams(), *urdf_limits())
    rng = np.random.default_rng(7)
    poses = []
    while len(poses) < 24:
        q = rng.uniform(limits.joints.lower_rad, limits.joints.upper_rad)
        if limits.box.contains(kinematics().fk(q[:ARM])):
            poses.append(q)
    return tuple(poses)


finite = st.floats(-0.2, 0.2)
wild = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, 1e6, -1e300, 0.0]),
                 st.floats(allow_nan=True, allow_infinity=True))
valid_sources = st.integers(0, 2)
names = SafetyFilterParams().joint_names


@st.composite
def ee_command(draw):
    """Mostly valid deltas (up to 20 cm, beyond the step limit), some huge, NaN, inf or of the
    wrong length, with every gripper command and source (and invalid ones)."""
    kind = draw(st.integers(0, 9))
    delta = draw(st.lists(finite, min_size=3, max_size=3))
    if kind == 0:
        delta = draw(st.lists(st.one_of(finite, wild), min_size=2, max_size=4))
    elif kind == 1:
        delta[draw(st.integers(0, 2))] = draw(st.sampled_from([1.0, -1.0, 1e6, -1e300]))
    gripper = draw(st.integers(0, 4) if kind == 2 else st.integers(0, 3))
    gripper_position = draw(st.one_of(st.floats(-1.0, 2.5), wild) if kind == 3
                            else st.floats(-1.0, 2.5))
    source = draw(st.integers(0, 5) if kind == 4 else valid_sources)
    return ('ee', EeCommand(np.array(delta, dtype=float), gripper, gripper_position, source))


@st.composite
def joint_command(draw):
    """Subsets of the joints anywhere in (-4, 4) rad, some malformed (unknown or repeated
    names, NaN, count mismatch)."""
    kind = draw(st.integers(0, 7))
    pool = names + ('elbow', '') if kind == 0 else names
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1 if kind else 0, max_size=6,
                           unique=kind != 1))
    values = draw(st.lists(st.one_of(st.floats(-4.0, 4.0), wild) if kind == 2
                           else st.floats(-4.0, 4.0),
                           min_size=len(chosen), max_size=len(chosen) + (kind == 3)))
    return ('joint', JointCommand(tuple(chosen), tuple(values),
                                  draw(st.integers(0, 5) if kind == 4 else valid_sources)))


events = st.one_of(
    ee_command(), ee_command(), ee_command(), ee_command(), ee_command(), ee_command(),
    joint_command(), joint_command(), joint_command(),
    st.tuples(st.just('tick')),
    st.tuples(st.just('effort'), st.integers(0, 5), st.floats(-10.0, 10.0)),
    st.tuples(st.just('estop')), st.tuples(st.just('release')),
    st.tuples(st.just('heartbeat'), st.booleans()),
)


@st.composite
def scenario(draw):
    start = draw(st.integers(0, len(start_poses()) - 1))
    shrink = draw(st.lists(st.floats(0.0, 0.45), min_size=6, max_size=6))
    steps = draw(st.lists(st.tuples(events, st.floats(0.0, 0.16)), min_size=20, max_size=50))
    estop_action = draw(st.sampled_from(['hold', 'torque_off']))
    return start, shrink, steps, estop_action


def make_supervisor(start_q, shrink, estop_action, **overrides):
    """A supervisor whose box is shrunk around the start TCP by the drawn fractions."""
    params = SafetyFilterParams(estop_action=estop_action, **overrides)
    default = effective_limits(params, *urdf_limits()).box
    tcp = kinematics().fk(start_q[:ARM])
    low = default.min_m + np.array(shrink[:3]) * (tcp - default.min_m)
    high = default.max_m - np.array(shrink[3:]) * (default.max_m - tcp)
    params = dataclasses.replace(params, workspace_min_m=tuple(low - 1e-3),
                                 workspace_max_m=tuple(high + 1e-3))
    limits = effective_limits(params, *urdf_limits())
    return SafetySupervisor(CommandFilter(params, limits, kinematics()))


class Checker:
    """Follows the outputs and asserts the invariants on each one.

    Outputs must stay inside the joint limits and the box. The only exception is a
    re-synchronisation to the measured position (e-stop release after torque off: the arm is
    where a person left it; effort trip: hold where the arm stopped): that output equals the
    measured position, and from there on no output may be farther outside the limits or the box
    than the last one (the filter leads the arm back, it never goes farther out).
    """

    def __init__(self, supervisor, start_q):
        self.supervisor = supervisor
        self.params = supervisor.params
        self.limits = supervisor.filter.limits
        self.previous = np.array(start_q, dtype=float)
        self.previous_move_s = None
        self.allowed_excess = np.zeros(6)
        self.allowed_box_m = self.params.workspace_tolerance_m
        self.outputs = 0

    def check(self, output, now_s, from_command, resync_to=None):
        if output.target is None:
            return
        self.outputs += 1
        out = output.target
        assert out.shape == (6,) and np.all(np.isfinite(out))
        joints, box = self.limits.joints, self.limits.box
        excess = joints.excess(out)
        tcp_distance = box.distance(kinematics().fk(out[:ARM]))
        if resync_to is not None:
            np.testing.assert_allclose(out[:ARM], resync_to[:ARM], atol=TOLERANCE)
            self.allowed_excess = np.maximum(excess, self.allowed_excess)
            self.allowed_box_m = max(tcp_distance, self.allowed_box_m)
        assert np.all(excess <= self.allowed_excess + TOLERANCE), (out, joints)
        assert tcp_distance <= self.allowed_box_m + TOLERANCE, (out, box)
        self.allowed_excess = excess
        self.allowed_box_m = max(tcp_distance, self.params.workspace_tolerance_m)
        if resync_to is None:
            elapsed = self.params.period_s if self.previous_move_s is None else min(
                now_s - self.previous_move_s, self.params.period_s)
            max_step = np.array(self.params.max_joint_speed_rad_s) * elapsed + TOLERANCE
            assert np.all(np.abs(out - self.previous) <= max_step), (
                out - self.previous, max_step)
            self.check_wall_zone(out, elapsed)
        if from_command:
            self.previous_move_s = now_s
        self.previous = out.copy()

    def check_wall_zone(self, out, elapsed_s):
        """Near a wall the TCP moves at most ee_wall_max_step_m per period."""
        params, box = self.params, self.limits.box
        before, after = kinematics().fk(self.previous[:ARM]), kinematics().fk(out[:ARM])
        if min(box.margin(before), box.margin(after)) >= params.wall_zone_m:
            return
        limit = min(params.ee_wall_max_step_m, params.ee_max_step_m) * elapsed_s / (
            params.period_s)
        assert np.linalg.norm(after - before) <= limit * 1.001 + TOLERANCE, (before, after)


def run(start, shrink, steps, estop_action, noise_rad=0.0, seed=0):
    start_q = start_poses()[start]
    supervisor = make_supervisor(start_q, shrink, estop_action)
    checker = Checker(supervisor, start_q)
    rng = np.random.default_rng(seed)
    efforts = np.zeros(6)
    heartbeat = True
    now = 0.0
    supervisor.activate(now)
    supervisor.on_joint_state(start_q, efforts, now)
    for (kind, *args), dt in steps:
        now += dt
        if heartbeat:
            supervisor.on_heartbeat(now)
        arm = supervisor.target
        measured = arm + rng.uniform(-noise_rad, noise_rad, 6) * (np.arange(6) < ARM)
        state_output = supervisor.on_joint_state(measured, efforts, now)
        trip = any(e.limit == Limit.EFFORT and e.severity == Severity.TRIP
                   for e in state_output.events)
        held_at_measured = trip and not np.array_equal(state_output.target, checker.previous)
        checker.check(state_output, now, False, measured if held_at_measured else None)
        if kind == 'ee':
            checker.check(supervisor.on_ee_command(args[0], now), now, True)
        elif kind == 'joint':
            checker.check(supervisor.on_joint_command(args[0], now), now, True)
        elif kind == 'tick':
            checker.check(supervisor.tick(now), now, False)
        elif kind == 'effort':
            efforts = np.zeros(6)
            efforts[args[0]] = args[1]
        elif kind == 'estop':
            checker.check(supervisor.latch_estop(now, 'test'), now, False)
        elif kind == 'release':
            output = supervisor.release_estop(now)[2]
            checker.check(output, now, False, measured if output.torque else None)
        else:
            heartbeat = args[0]
    return checker


@PROPERTY_SETTINGS
@given(scenario())
def test_outputs_stay_within_every_limit_with_perfect_tracking(case):
    run(*case)


@PROPERTY_SETTINGS
@given(scenario(), st.integers(0, 1000))
def test_outputs_stay_within_limits_with_measurement_noise(case, seed):
    run(*case, noise_rad=0.02, seed=seed)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(0, len(start_poses()) - 1),
       st.lists(st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)),
                min_size=5, max_size=25))
def test_a_stream_pushing_out_of_the_box_keeps_the_tcp_inside(start, deltas):
    """Huge (up to 1 m) EE deltas every period from a human: the TCP never leaves the box."""
    start_q = start_poses()[start]
    supervisor = make_supervisor(start_q, [0.0] * 6, 'hold')
    checker = Checker(supervisor, start_q)
    supervisor.activate(0.0)
    supervisor.on_joint_state(start_q, np.zeros(6), 0.0)
    for step, delta in enumerate(deltas, start=1):
        now = step * 0.1
        supervisor.on_joint_state(supervisor.target, np.zeros(6), now)
        output = supervisor.on_ee_command(EeCommand(np.array(delta), Gripper.OPEN, 0.0, 1), now)
        assert output.target is not None
        checker.check(output, now, True)
    assert checker.outputs == len(deltas)


def test_the_checker_catches_a_violation():
    """The invariant checker is not vacuous: a target outside the box or too fast fails."""
    from hilserl_safety.supervisor import Output

    start_q = start_poses()[0]
    supervisor = make_supervisor(start_q, [0.0] * 6, 'hold')
    checker = Checker(supervisor, start_q)
    jump = start_q.copy()
    jump[0] += 0.5
    with pytest.raises(AssertionError):
        checker.check(Output(jump), 0.1, True)
    outside = np.zeros(6)  # TCP at x = 0.39 m, z = 0.23 m: outside a box shrunk around start
    tight = make_supervisor(start_q, [0.45] * 6, 'hold')
    with pytest.raises(AssertionError):
        Checker(tight, outside).check(Output(outside), 0.1, True)


def test_shrunk_box_contains_the_start():
    for q in start_poses():
        supervisor = make_supervisor(q, [0.45] * 6, 'hold')
        assert isinstance(supervisor.filter.limits.box, WorkspaceBox)
        assert supervisor.filter.limits.box.contains(kinematics().fk(q[:ARM]))
