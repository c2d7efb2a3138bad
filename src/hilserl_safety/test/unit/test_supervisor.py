"""Scenario tests of the safety supervisor: waiting, trips, watchdogs, e-stop, re-sync."""
import functools

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
    Source,
)
from hilserl_safety.limits import effective_limits, urdf_joint_limits
from hilserl_safety.params import SafetyFilterParams
from hilserl_safety.supervisor import SafetySupervisor

HOME = np.array([-6.1e-05, -0.15178, 0.51356, 1.20902, 0.0, 0.5])  # TCP (0.20, 0, 0.03), down
QUIET = np.zeros(6)
HUMAN, POLICY = Source.HUMAN, Source.POLICY


@functools.cache
def kinematics():
    from so101_driver.kinematics import So101Kinematics

    return So101Kinematics()


def make(**overrides) -> SafetySupervisor:
    from so101_driver.model_files import official_model_files

    params = SafetyFilterParams(**overrides)
    urdf = urdf_joint_limits(official_model_files().urdf, params.joint_names)
    return SafetySupervisor(CommandFilter(params, effective_limits(params, *urdf), kinematics()))


def started(**overrides) -> SafetySupervisor:
    supervisor = make(**overrides)
    supervisor.activate(0.0)
    supervisor.on_joint_state(HOME, QUIET, 0.0)
    return supervisor


def ee(dx=0.0, dy=0.0, dz=0.0, source=HUMAN, gripper=Gripper.STAY, position=0.0):
    return EeCommand(np.array([dx, dy, dz]), gripper, position, source)


def limits_of(output):
    return [(e.limit, e.severity) for e in output.events]


def test_nothing_is_sent_before_a_joint_state_then_it_starts_from_it():
    supervisor = make()
    supervisor.activate(0.0)
    assert supervisor.on_ee_command(ee(dx=0.01), 0.0).target is None
    assert supervisor.counters.dropped == 1
    assert supervisor.on_joint_state(HOME, QUIET, 0.05).target is None
    np.testing.assert_array_equal(supervisor.target, HOME)
    target = supervisor.on_ee_command(ee(dx=0.01), 0.1).target
    np.testing.assert_allclose(kinematics().fk(target[:ARM]), kinematics().fk(HOME[:ARM])
                               + [0.01, 0.0, 0.0], atol=2e-4)
    assert target[ARM] == HOME[ARM]  # GRIPPER_STAY


def test_the_step_shrinks_with_the_time_since_the_last_output():
    supervisor = started(wall_zone_m=0.0)  # HOME is 2 cm above the floor of the box
    first = supervisor.on_ee_command(ee(dz=0.05), 0.1)
    assert (Limit.EE_STEP, Severity.CLIP) in limits_of(first)
    start = kinematics().fk(first.target[:ARM])
    second = supervisor.on_ee_command(ee(dz=0.05), 0.125)  # a quarter period later
    moved = kinematics().fk(second.target[:ARM]) - start
    assert np.linalg.norm(moved) == pytest.approx(0.03 / 4, abs=3e-4)


def test_near_the_walls_the_tcp_moves_at_the_wall_step():
    supervisor = started()  # HOME: TCP 2 cm above the floor, inside the 3 cm wall zone
    start = kinematics().fk(HOME[:ARM])
    output = supervisor.on_ee_command(ee(dz=0.05), 0.1)
    moved = kinematics().fk(output.target[:ARM]) - start
    assert 0.0097 <= np.linalg.norm(moved) <= 0.01 * 1.001
    assert moved[2] > 0.0097  # still straight up
    [event] = [e for e in output.events if e.limit_name == 'ee_wall_max_step_m']
    assert (event.limit, event.severity) == (Limit.EE_STEP, Severity.CLIP)
    supervisor.on_joint_state(supervisor.target, QUIET, 0.2)
    supervisor.on_ee_command(ee(dz=0.05), 0.2)  # z 0.04 -> 0.05, still slow
    supervisor.on_joint_state(supervisor.target, QUIET, 0.3)
    before = kinematics().fk(supervisor.target[:ARM])
    assert before[2] > 0.045
    output = supervisor.on_ee_command(ee(dy=0.05), 0.3)  # out of the zone: the full step
    assert np.linalg.norm(kinematics().fk(output.target[:ARM]) - before) == pytest.approx(
        0.03, abs=3e-4)
    for now, limit in ((0.4, 0.01), (0.425, 0.01 / 4)):  # down into the zone, then a quarter
        supervisor.on_joint_state(supervisor.target, QUIET, now)  # period later: slowed
        before = kinematics().fk(supervisor.target[:ARM])
        output = supervisor.on_ee_command(ee(dz=-0.05), now)
        moved = np.linalg.norm(kinematics().fk(output.target[:ARM]) - before)
        assert 0.97 * limit <= moved <= 1.001 * limit


def test_effort_trip_holds_at_the_measured_position_until_calm():
    supervisor = started(effort_trip_samples=3, trip_hold_s=1.0)
    supervisor.on_ee_command(ee(dx=0.02), 0.1)
    measured = supervisor.target.copy()
    measured[1] += 0.01  # the arm stopped a little short of its target
    high = np.array([0.0, 0.0, 3.2, 0.0, 0.0, 0.0])
    for t in (0.11, 0.12):
        assert supervisor.on_joint_state(measured, high, t).events == []
    output = supervisor.on_joint_state(measured, high, 0.13)
    [event] = output.events
    assert (event.limit, event.severity, event.names) == (Limit.EFFORT, Severity.TRIP,
                                                          ('elbow_flex',))
    assert event.offending == (3.2,)
    np.testing.assert_allclose(output.target[:ARM], measured[:ARM])
    assert supervisor.on_ee_command(ee(dx=0.02), 0.2).target is None  # dropped while tripped
    supervisor.on_joint_state(measured, QUIET, 1.0)
    assert supervisor.on_ee_command(ee(dx=0.02), 1.0).target is None  # hold time not over
    supervisor.on_joint_state(measured, high, 1.2)
    assert supervisor.on_ee_command(ee(dx=0.02), 1.2).target is None  # still loaded
    supervisor.on_joint_state(measured, QUIET, 1.3)
    output = supervisor.on_ee_command(ee(dx=0.02), 1.3)
    assert output.target is not None and (Limit.EFFORT, Severity.INFO) in limits_of(output)


def test_effort_counts_only_while_the_joint_is_stalled():
    """A servo saturates its torque while it accelerates (no trip); a blocked joint pushes
    without moving (trip after effort_trip_samples).
    """
    supervisor = started(effort_trip_samples=3, stall_velocity_rad_s=0.2)
    high = np.array([0.0, 3.3, -3.3, 0.0, 0.0, 0.0])
    moving = np.array([0.0, 1.5, -0.8, 0.0, 0.0, 0.0])
    t = 0.0
    for index in range(20):  # accelerating and braking: saturated but moving
        t += 0.01
        velocity = moving if index % 4 else moving * 0.05  # a slow sample now and then
        assert supervisor.on_joint_state(HOME, high, t, velocity).events == [], index
    stalled = np.array([0.0, 0.05, -0.3, 0.0, 0.0, 0.0])  # the elbow still turns
    for _ in range(2):
        t += 0.01
        assert supervisor.on_joint_state(HOME, high, t, stalled).events == []
    t += 0.01
    [event] = supervisor.on_joint_state(HOME, high, t, stalled).events
    assert (event.limit, event.severity, event.names) == (Limit.EFFORT, Severity.TRIP,
                                                          ('shoulder_lift',))
    assert supervisor.tripped


def test_effort_counts_every_sample_without_usable_velocities():
    for velocities in (None, np.full(6, np.nan), np.zeros(5)):
        supervisor = started(effort_trip_samples=2)
        high = np.array([0.0, 0.0, 3.3, 0.0, 0.0, 0.0])
        assert supervisor.on_joint_state(HOME, high, 0.01, velocities).events == []
        assert supervisor.on_joint_state(HOME, high, 0.02, velocities).events != []


def test_effort_trip_keeps_the_target_when_the_measured_pose_is_outside_the_box():
    supervisor = started(effort_trip_samples=1)
    outside = HOME.copy()
    outside[1] += 0.35  # TCP pushed below the box floor
    assert kinematics().fk(outside[:ARM])[2] < 0.0
    output = supervisor.on_joint_state(outside, np.array([0, 3.2, 0, 0, 0, 0.0]), 0.1)
    np.testing.assert_array_equal(output.target, HOME)


def test_percent_effort_unit_uses_its_thresholds():
    supervisor = started(effort_unit='percent', effort_trip_samples=1)
    assert supervisor.on_joint_state(HOME, np.full(6, 50.0), 0.1).events == []
    loaded = np.array([0.0, -85.0, 0.0, 0.0, 0.0, 0.0])
    assert limits_of(supervisor.on_joint_state(HOME, loaded, 0.2)) == [(Limit.EFFORT,
                                                                         Severity.TRIP)]


def test_watchdog_holds_once_after_the_timeout_and_the_next_command_resumes():
    supervisor = started(command_timeout_s=0.5)
    supervisor.on_joint_state(HOME, QUIET, 2.0)
    assert supervisor.tick(2.0).events == []  # not armed before the first command
    moved = supervisor.on_ee_command(ee(dy=0.01), 2.0).target
    for t in (2.2, 2.4):
        supervisor.on_joint_state(moved, QUIET, t)
        assert supervisor.tick(t).events == []
    supervisor.on_joint_state(moved, QUIET, 2.55)
    output = supervisor.tick(2.55)
    assert limits_of(output) == [(Limit.WATCHDOG, Severity.INFO)]
    np.testing.assert_array_equal(output.target, moved)
    supervisor.on_joint_state(moved, QUIET, 2.6)
    assert supervisor.tick(2.6).events == []
    assert supervisor.on_ee_command(ee(dy=0.01), 2.6).target is not None


def test_policy_commands_need_a_fresh_heartbeat():
    supervisor = started(heartbeat_timeout_s=0.5)
    output = supervisor.on_ee_command(ee(dx=0.01, source=POLICY), 0.1)
    assert output.target is None and limits_of(output) == [(Limit.HEARTBEAT, Severity.TRIP)]
    assert supervisor.on_ee_command(ee(dx=0.01, source=POLICY), 0.2).events == []  # once
    assert supervisor.on_ee_command(ee(dx=0.01, source=HUMAN), 0.3).target is not None
    supervisor.on_heartbeat(0.3)
    assert supervisor.on_ee_command(ee(dx=0.01, source=POLICY), 0.4).target is not None
    supervisor.on_joint_state(supervisor.target, QUIET, 0.75)
    assert supervisor.tick(0.75).events == []
    supervisor.on_joint_state(supervisor.target, QUIET, 0.85)
    output = supervisor.tick(0.85)  # heartbeat lost while the policy drives
    assert limits_of(output) == [(Limit.HEARTBEAT, Severity.TRIP)]


@pytest.mark.parametrize('action', ['hold', 'torque_off'])
def test_estop_latches_until_released(action):
    supervisor = started(estop_action=action)
    target = supervisor.on_ee_command(ee(dx=0.01), 0.1).target
    output = supervisor.latch_estop(0.2, 'topic')
    assert limits_of(output) == [(Limit.ESTOP, Severity.ESTOP)]
    np.testing.assert_array_equal(output.target, target)
    assert output.torque is (False if action == 'torque_off' else None)
    assert supervisor.latch_estop(0.25, 'service').events == []  # idempotent
    supervisor.on_joint_state(target, QUIET, 0.3)
    assert supervisor.on_ee_command(ee(dx=0.01), 0.3).target is None
    assert supervisor.tick(5.0).events == [] or supervisor.estop_latched
    moved_by_hand = target + np.array([0.2, 0, 0, 0, 0, 0])
    supervisor.on_joint_state(moved_by_hand, QUIET, 6.0)
    ok, _, output = supervisor.release_estop(6.0)
    assert ok and not supervisor.estop_latched
    assert limits_of(output) == [(Limit.ESTOP, Severity.INFO)]
    if action == 'torque_off':
        assert output.torque is True
        np.testing.assert_array_equal(output.target, moved_by_hand)  # re-synchronised
    assert supervisor.on_ee_command(ee(dx=0.01), 6.1).target is not None


def test_torque_off_release_needs_a_fresh_joint_state():
    supervisor = started(estop_action='torque_off', joint_state_timeout_s=0.5)
    supervisor.latch_estop(0.1, 'topic')
    ok, reason, output = supervisor.release_estop(2.0)
    assert not ok and 'joint_states' in reason and supervisor.estop_latched
    assert output.torque is None


def test_stale_joint_states_trip_once_and_drop_commands():
    supervisor = started(joint_state_timeout_s=0.5)
    assert supervisor.tick(0.4).events == []
    output = supervisor.tick(0.6)
    assert limits_of(output) == [(Limit.WATCHDOG, Severity.TRIP)]
    assert output.events[0].limit_name == 'joint_state_timeout_s'
    assert supervisor.tick(0.7).events == []
    assert supervisor.on_ee_command(ee(dx=0.01), 0.7).target is None
    supervisor.on_joint_state(HOME, QUIET, 0.8)
    assert supervisor.on_ee_command(ee(dx=0.01), 0.8).target is not None


def test_invalid_joint_states_are_ignored_and_efforts_are_required():
    supervisor = started()
    supervisor.on_joint_state(np.full(6, np.nan), QUIET, 0.1)
    supervisor.on_joint_state(HOME[:5], QUIET, 0.1)
    supervisor.on_joint_state(HOME, None, 0.1)
    assert supervisor.counters.invalid_joint_states == 3
    relaxed = started(require_effort=False)
    relaxed.on_joint_state(HOME, None, 0.1)
    assert relaxed.counters.invalid_joint_states == 0


def test_target_resyncs_when_the_arm_was_moved_away():
    supervisor = started(resync_threshold_rad=0.3)
    supervisor.on_ee_command(ee(dx=0.01), 0.1)
    reset_pose = HOME.copy()
    reset_pose[0] = 0.6  # a reset moved the arm while nothing was commanded
    supervisor.on_joint_state(reset_pose, QUIET, 1.0)
    output = supervisor.on_ee_command(ee(dx=0.01), 1.0)
    assert (Limit.TRACKING, Severity.INFO) in limits_of(output)
    assert abs(output.target[0] - 0.6) < 0.05  # continues from where the arm is


def test_gripper_commands_map_to_positions_at_the_gripper_speed():
    supervisor = started()

    def gripper(t, command, position=0.0):
        supervisor.on_joint_state(supervisor.target, QUIET, t)
        return supervisor.on_ee_command(ee(gripper=command, position=position), t).target[ARM]

    assert gripper(0.1, Gripper.OPEN) == pytest.approx(0.5 + 0.3)  # 3 rad/s * 0.1 s
    assert [gripper(t, Gripper.OPEN) for t in (0.2, 0.3, 0.4)][-1] == pytest.approx(1.2)
    closing = [gripper(t, Gripper.CLOSE) for t in np.arange(0.5, 1.05, 0.1)]
    assert closing[-1] == pytest.approx(-0.1) and closing[0] == pytest.approx(0.9)
    assert gripper(1.1, Gripper.STAY) == pytest.approx(-0.1)
    assert gripper(1.2, Gripper.POSITION, 0.0) == pytest.approx(0.0)
    assert gripper(1.3, Gripper.POSITION, 5.0) == pytest.approx(0.3)  # toward the limit


def test_joint_commands_move_only_named_joints_within_limits():
    supervisor = started()
    output = supervisor.on_joint_command(
        JointCommand(('wrist_roll', 'gripper'), (9.0, -9.0), HUMAN), 0.1)
    assert output.target[4] == pytest.approx(0.3) and output.target[ARM] == pytest.approx(0.2)
    np.testing.assert_array_equal(output.target[:4], HOME[:4])
    assert {Limit.JOINT_POSITION, Limit.JOINT_VELOCITY} <= {e.limit for e in output.events}
    bad = supervisor.on_joint_command(JointCommand(('wrist_roll',), (1.0, 2.0), HUMAN), 0.2)
    assert bad.target is None and limits_of(bad) == [(Limit.MALFORMED, Severity.CLIP)]


def test_deactivate_returns_the_hold_and_forgets_the_state():
    supervisor = started()
    target = supervisor.on_ee_command(ee(dx=0.01), 0.1).target
    output = supervisor.deactivate()
    np.testing.assert_array_equal(output.target, target)
    assert supervisor.target is None and not supervisor.active
    assert supervisor.on_ee_command(ee(dx=0.01), 0.2).target is None
