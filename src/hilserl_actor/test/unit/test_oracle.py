"""The scripted oracle: the pick controller through the real safety filter core and simulation
(with the actor's one-step command delay), and the takeover decision on synthetic runs."""
import dataclasses
import math

import numpy as np
import pytest

from hilserl_actor.oracle import (
    InterventionDecider,
    Phase,
    PickConfig,
    PickController,
    Scene,
    TakeoverConfig,
    rotation_from_quaternion,
    task_distance,
)

QUARTER = np.array([math.cos(math.pi / 8), 0.0, 0.0, math.sin(math.pi / 8)])


def test_rotation_from_quaternion():
    assert rotation_from_quaternion([1, 0, 0, 0]) == pytest.approx(np.eye(3))
    rotation = rotation_from_quaternion(QUARTER)  # 45 deg about z
    assert rotation @ np.array([1.0, 0, 0]) == pytest.approx([0.70710678, 0.70710678, 0])


@pytest.fixture(scope='module')
def sim_and_filter():
    from hilserl_safety.filter import CommandFilter
    from hilserl_safety.limits import effective_limits, urdf_joint_limits
    from hilserl_safety.params import SafetyFilterParams
    from hilserl_safety.supervisor import SafetySupervisor
    from so101_driver.kinematics import So101Kinematics
    from so101_driver.model_files import official_model_files
    from so101_driver.params import SimParams
    from so101_driver.sim.so101_sim import So101Sim

    # The default limits, effort trip included: the simulated servos saturate (3.35 N.m)
    # during ordinary steps of a position target, but only a jaw pressing on the cube keeps
    # them there without moving for effort_trip_samples (0.8 s at the driver's 100 Hz).
    params = SafetyFilterParams()
    lower, upper = urdf_joint_limits(official_model_files().urdf, params.joint_names)
    supervisor = SafetySupervisor(CommandFilter(params, effective_limits(params, lower, upper),
                                                So101Kinematics()))
    sim = So101Sim(SimParams(camera_names=()))
    yield sim, supervisor
    sim.close()


def run_episode(sim, supervisor, seed, config, clock, max_steps=60):
    """One episode as the graph runs it: at each 10 Hz tick the actor forwards the oracle's
    previous command to the safety filter, and the oracle plans the next one knowing it; the
    filter watches the joint states at the driver's 100 Hz. Returns (success, steps, phases,
    actions, trips)."""
    from hilserl_safety.filter import EeCommand

    def joint_state():
        output = supervisor.on_joint_state(sim.joint_positions(), sim.joint_efforts(),
                                           clock[0], sim.joint_velocities())
        return [e for e in output.events if e.severity >= 2]

    sim.reset(seed=seed)
    supervisor.deactivate()
    supervisor.activate(clock[0])
    joint_state()
    oracle = PickController(config, seed=seed)
    previous, phases, actions = None, [], []
    for step in range(max_steps):
        truth = sim.ground_truth()
        if truth.success:
            return True, step, phases, actions, []
        target = None
        if previous is not None:
            output = supervisor.on_ee_command(
                EeCommand(previous.delta_m, int(previous.gripper), 0.0, 2), clock[0])
            assert not [e for e in output.events if e.severity >= 2], output.events
            target = output.target
        scene = Scene(truth.object_position_m, truth.tcp_position_m, truth.tcp_quaternion_wxyz,
                      truth.object_grasped, float(sim.joint_positions()[5]), truth.success,
                      truth.object_quaternion_wxyz)
        command = oracle.act(scene, None if previous is None else previous.delta_m)
        phases.append(command.phase)
        actions.append(command.delta_m)
        for _ in range(10):
            sim.step(target, 0.01)
            clock[0] += 0.01
            trips = joint_state()
            if trips:  # the filter holds the arm and the actor ends the episode
                return False, step, phases, actions, trips
        previous = command
    return False, max_steps, phases, actions, []


def test_oracle_picks_the_cube_in_randomised_episodes(sim_and_filter):
    sim, supervisor = sim_and_filter
    clock = [0.0]
    config = PickConfig(noise_std_m=0.002)
    # Seeds 0-19 hold cubes yawed up to 45 degrees to the jaws; before the oracle allowed for
    # the yaw, the fixed jaw landed on the cube in seeds 6, 14, 15 and 16 and the effort trip
    # ended those episodes.
    results = [run_episode(sim, supervisor, seed, config, clock) for seed in range(20)]
    assert all(r[0] for r in results), [(seed, r[1], r[4]) for seed, r in enumerate(results)
                                        if not r[0]]
    assert np.mean([r[1] for r in results if r[0]]) < 35
    for success, _, phases, actions, _ in results:
        if success:
            order = [p for i, p in enumerate(phases) if i == 0 or p is not phases[i - 1]]
            grasp = order.index(Phase.CLOSE)
            assert order[0] is Phase.HOVER and order[grasp - 1] is Phase.DESCEND, order
            assert order[grasp + 1:] in ([Phase.LIFT], [Phase.LIFT, Phase.HOLD]), order
            assert order.count(Phase.CLOSE) == 1, order  # one grasp, no retries
            # planned with the pending command: no back-and-forth while approaching
            hover = np.array([a for a, p in zip(actions, phases) if p is Phase.HOVER])
            flips = np.sum(np.sign(hover[1:, :2]) * np.sign(hover[:-1, :2]) < 0)
            assert flips <= 4, hover


def scene_at(point_offset, grasped=False, gripper=1.2, cube=(0.2, 0.0, 0.0125)):
    """A scene whose grasp point is ``point_offset`` from the cube (TCP pointing down)."""
    controller = PickController()
    quaternion = np.array([0.0, 1.0, 0.0, 0.0])  # 180 deg about x: z axis down
    offset = controller.grasp_point(Scene(np.asarray(cube, float), np.zeros(3), quaternion,
                                          grasped, gripper))
    tcp = np.asarray(cube) + np.asarray(point_offset) - offset
    return Scene(np.asarray(cube, float), tcp, quaternion, grasped, gripper)


def test_phases_are_chosen_from_the_scene():
    controller = PickController(PickConfig(max_step_m=0.02, careful_step_m=0.01))
    far = controller.act(scene_at([0.1, 0.05, 0.08]))
    assert far.phase is Phase.HOVER and np.linalg.norm(far.delta_m) == pytest.approx(0.02)
    low_and_aside = controller.act(scene_at([0.08, 0.0, 0.0]))
    assert low_and_aside.phase is Phase.HOVER
    assert low_and_aside.delta_m[:2] == pytest.approx([0, 0]) and low_and_aside.delta_m[2] > 0
    above = controller.act(scene_at([0.002, 0.0, 0.04]))
    assert above.phase is Phase.DESCEND and above.delta_m[2] == pytest.approx(-0.01, abs=2e-3)
    at = controller.act(scene_at([0.0, 0.0, 0.002]))
    assert at.phase is Phase.CLOSE and at.gripper.name == 'CLOSE'
    for _ in range(4):
        assert controller.act(scene_at([0.0, 0.0, 0.002], gripper=0.3)).phase is Phase.CLOSE
    lift = controller.act(scene_at([0.0, 0.0, 0.0], grasped=True, gripper=0.3))
    assert lift.phase is Phase.LIFT and lift.delta_m[2] > 0
    # closed on nothing (a miss, or a policy closed the jaws): open and rise
    missed = PickController().act(scene_at([0.03, 0.0, 0.0], gripper=0.1))
    assert missed.phase is Phase.RETREAT and missed.gripper.name == 'OPEN'
    # a pending command is accounted for: planning from where the arm is going
    pending = PickController().act(scene_at([0.0, 0.0, 0.012]), pending_delta_m=[0, 0, -0.01])
    assert pending.phase is Phase.CLOSE


def yaw_quaternion(yaw_rad):
    return np.array([math.cos(yaw_rad / 2), 0.0, 0.0, math.sin(yaw_rad / 2)])


def test_a_yawed_cube_keeps_the_fixed_jaw_further_off():
    """Along the jaw axis a cube is s/2 wide when square to the jaws and s/sqrt(2) at 45
    degrees; the grasp point keeps the fixed pad clearance_m from that extent."""
    controller = PickController()
    square = scene_at([0.0, 0.0, 0.03])
    half = controller.config.cube_size_m / 2
    assert controller.cube_extent_along_jaws(square) == pytest.approx(half)
    for yaw, extent in ((0.0, half), (math.pi / 2, half), (math.pi / 4, half * math.sqrt(2)),
                        (-math.pi / 6, half * (math.cos(math.pi / 6) + 0.5))):
        yawed = dataclasses.replace(square, cube_quaternion_wxyz=yaw_quaternion(yaw))
        assert controller.cube_extent_along_jaws(yawed) == pytest.approx(extent)
        shift = controller.grasp_point(yawed) - controller.grasp_point(square)
        assert np.linalg.norm(shift) == pytest.approx(extent - half, abs=1e-9)


def test_the_descent_aligns_above_the_cube_while_the_fixed_jaw_would_land_on_it():
    controller = PickController(PickConfig(noise_std_m=0.0))
    config, cube_top = controller.config, 0.0125 + controller.config.cube_size_m / 2
    jaw = -rotation_from_quaternion([0.0, 1.0, 0.0, 0.0])[:, 0]  # scene_at's TCP: along +x
    assert jaw == pytest.approx([-1.0, 0.0, 0.0])
    off = 0.6 * config.align_tolerance_m  # within the horizontal tolerance of a descent
    # Grasp point off the cube centre along the jaw axis: the cube sits towards the fixed jaw.
    high = controller.act(scene_at([-off, 0.0, 0.025]))
    assert high.phase is Phase.DESCEND
    # It descends only to where the jaw tips clear the cube's top face, over the cube ...
    assert 0.0125 + 0.025 + high.delta_m[2] == pytest.approx(cube_top
                                                             + config.jaw_clear_height_m)
    assert high.delta_m[0] == pytest.approx(off)
    # ... and below that height it aligns without descending.
    low = controller.act(scene_at([-off, 0.0, 0.012]))
    assert low.phase is Phase.DESCEND and low.delta_m[2] == pytest.approx(0.0)
    assert low.delta_m[0] == pytest.approx(off)
    # Off towards the moving jaw (wide open): straight on down.
    other_side = PickController(PickConfig(noise_std_m=0.0)).act(scene_at([off, 0.0, 0.012]))
    assert other_side.phase is Phase.DESCEND and other_side.delta_m[2] < -0.005


def test_task_distance_falls_as_the_task_progresses():
    controller = PickController()
    values = [task_distance(controller, scene_at(o)) for o in
              ([0.1, 0, 0.1], [0.05, 0, 0.05], [0, 0, 0.05], [0, 0, 0.0])]
    assert values == sorted(values, reverse=True)
    held = task_distance(controller, scene_at([0, 0, 0], grasped=True, cube=(0.2, 0, 0.05)))
    assert held == pytest.approx(controller.config.lift_height_m - 0.05)


def decider(**overrides):
    values = {'drift_window_steps': 3, 'drift_threshold_m': 0.02, 'heading_steps': 3,
              'heading_cosine': -0.3, 'stall_steps': 6, 'progress_epsilon_m': 0.005,
              'takeover_steps': 4, 'cooldown_steps': 5, 'probability_start': 1.0,
              'probability_end': 0.0, 'decay_episodes': 10.0}
    values.update(overrides)
    return InterventionDecider(TakeoverConfig(**values), seed=3)


def test_steady_progress_never_triggers():
    d = decider()
    for distance in np.linspace(0.3, 0.0, 40):
        assert not d.step(distance, np.array([1.0, 0, 0]), np.array([1.0, 0, 0])).intervene
    assert d.takeovers == 0


def test_drift_triggers_a_brief_takeover():
    d = decider()
    distances = [0.20, 0.19, 0.18, 0.19, 0.21, 0.23, 0.25]
    decisions = [d.step(x) for x in distances]
    started = [i for i, dec in enumerate(decisions) if dec.started]
    assert started == [5] and decisions[5].reason == 'drift'  # 0.23 - 0.19 > 0.02
    assert decisions[6].intervene
    following = [d.step(0.25).intervene for _ in range(10)]
    assert following == [True] * 2 + [False] * 8  # takeover_steps = 4 in all
    assert d.takeovers == 1


def test_stall_and_heading_trigger():
    d = decider()
    decisions = [d.step(0.1) for _ in range(8)]
    assert [dec.reason for dec in decisions if dec.started] == ['stall']
    d = decider()
    away = [d.step(0.3 - 0.01 * i, np.array([-1.0, 0, 0]), np.array([1.0, 0.1, 0]))
            for i in range(4)]
    assert [dec.started for dec in away] == [False, False, True, False]
    assert away[2].reason == 'heading'


def test_takeovers_get_rarer_as_episodes_pass():
    d = decider(probability_start=1.0, probability_end=0.0, decay_episodes=5.0)
    assert d.probability(0) == 1.0 and d.probability(5) == pytest.approx(math.exp(-1))
    taken = []
    for _ in range(30):
        before = d.takeovers
        for _step in range(20):  # a stalled policy all episode long
            d.step(0.1)
        taken.append(d.takeovers - before)
        d.new_episode()
    assert sum(taken[:5]) > sum(taken[-10:]) and sum(taken[-10:]) <= 1
    assert d.episode == 30


def test_declined_trigger_waits_for_the_cooldown():
    d = decider(probability_start=0.0, probability_end=0.0)
    decisions = [d.step(0.1) for _ in range(7)]
    assert 'declined' in decisions[6].reason and not decisions[6].intervene
    assert [d.step(0.1).reason for _ in range(5)] == [''] * 5  # cooling down
    with pytest.raises(ValueError):
        TakeoverConfig(takeover_steps=0)
