"""The safety filter in front of the simulated arm: the installed safety_filter_node and
driver_node (MuJoCo backend, real time, no cameras) as separate processes, driven by the test
client through topics, services and lifecycle transitions only.

What "stops within one control period" means here (P = 1 / control_rate_hz = 0.1 s), with
every time taken by the test client's clock when a message arrives or is sent:

- the trigger T: the e-stop message or service call sent; for the effort trip, the arrival of
  the first /joint_states sample of the run of stalled samples that tripped; for the
  watchdog, the last command sent plus command_timeout_s;
- the SafetyEvent arrives by T + P (plus MARGIN_S of delivery and scheduling slack on a loaded
  2-core machine; the measured latency is printed);
- the filter's output stops: every /forward_position_controller/commands message that arrives
  after the event is the hold target, which is the last target the filter published before
  or with the event (no output after the trigger moves the target);
- the simulated arm comes to rest at the hold (joint speeds from the driver's /joint_states).

The tests share one driver and one filter process and run in file order; the last ones swap
in a second filter configured with estop_action torque_off and check the exit codes.
"""
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

DRIVER = '/so101_driver'
FILTER = '/safety_filter'
TORQUE_OFF_FILTER = '/safety_filter_torque_off'
PERIOD_S = 0.1
MARGIN_S = 0.25
TCP_TOLERANCE_M = 0.005  # the acceptance bound for the simulated TCP outside the box
BOX_MIN = np.array([0.14, -0.20, 0.01])
BOX_MAX = np.array([0.35, 0.20, 0.25])
DRIVER_PARAMS = {
    'control_rate_hz': 100.0, 'real_time_factor': 1.0, 'camera_rate_hz': 0.0,
    'home_randomization_rad': 0.0, 'command_timeout_s': 0.5, 'diagnostics_period_s': 0.25,
}
FILTER_PARAMS = {
    'control_rate_hz': 10.0, 'command_timeout_s': 0.5, 'trip_hold_s': 0.5,
    'diagnostics_period_s': 0.25,
    # the sim backend's effort convention: N·m (the defaults, spelled out)
    'effort_unit': 'N.m', 'max_effort_nm': [3.0, 3.0, 3.0, 3.0, 3.0, 5.0],
    'effort_trip_samples': 5, 'stall_velocity_rad_s': 0.2,
}
EFFORT_SAMPLES = FILTER_PARAMS['effort_trip_samples']
JOINT_INDEX = {name: i for i, name in enumerate(
    ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper'))}
STATE_PERIOD_S = 1.0 / DRIVER_PARAMS['control_rate_hz']


@pytest.fixture(scope='module')
def graph(ros_domain, tmp_path_factory):
    from hilserl_testing.processes import ProcessGroup

    group = ProcessGroup(tmp_path_factory.mktemp('safety_sim_logs'))
    group.start_node('so101_driver', 'driver_node', name='so101_driver',
                     parameters=DRIVER_PARAMS)
    group.start_node('hilserl_safety', 'safety_filter_node', name='safety_filter',
                     parameters=FILTER_PARAMS)
    group.start_node('hilserl_safety', 'safety_filter_node', name='safety_filter_torque_off',
                     parameters={**FILTER_PARAMS, 'estop_action': 'torque_off'})
    yield group
    group.stop_all()
    print(group.logs())  # shown by pytest only when a test of the module failed


@pytest.fixture(scope='module')
def io(ros_client, graph):
    """Publishers and message logs the tests share (made before anything is configured)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Bool, Float64MultiArray

    from hilserl_msgs.msg import EndEffectorCommand, JointCommand, SafetyEvent, SimGroundTruth
    from hilserl_testing.client import KEEP_ALL

    class Io:
        ee = ros_client.publisher(EndEffectorCommand, '/hilserl/ee_command')
        joint = ros_client.publisher(JointCommand, '/hilserl/joint_command')
        estop = ros_client.publisher(Bool, '/hilserl/estop')
        targets = ros_client.subscribe(Float64MultiArray, '/forward_position_controller/commands')
        events = ros_client.subscribe(SafetyEvent, '/hilserl/safety_events', KEEP_ALL)
        states = ros_client.subscribe(JointState, '/joint_states')
        truth = ros_client.subscribe(SimGroundTruth, '/so101_driver/ground_truth')
        diagnostics = ros_client.subscribe(DiagnosticArray, '/diagnostics')

    return Io


# --- helpers -----------------------------------------------------------------------------
def ee_command(dx=0.0, dy=0.0, dz=0.0, gripper=0):
    from hilserl_msgs.msg import EndEffectorCommand

    msg = EndEffectorCommand(source=EndEffectorCommand.SOURCE_HUMAN, gripper_command=gripper)
    msg.delta_m.x, msg.delta_m.y, msg.delta_m.z = float(dx), float(dy), float(dz)
    return msg


def stream(client, publisher, messages, period_s=PERIOD_S):
    """Publish one message per period while spinning; return the send times."""
    times = []
    for msg in messages:
        publisher.publish(msg)
        times.append(time.monotonic())
        client.spin_for(period_s)
    return times


def events_since(io, since, limit=None, severity=None):
    return [(event, io.events.arrival_s[since + i])
            for i, event in enumerate(io.events.messages[since:])
            if (limit is None or event.limit == limit)
            and (severity is None or event.severity == severity)]


def wait_event(client, io, since, limit, severity=None, timeout_s=5.0):
    """(event, arrival time) of the first matching event after index ``since``."""
    return client.spin_until(lambda: next(iter(events_since(io, since, limit, severity)), None),
                             timeout_s, f'safety event limit={limit} severity={severity}')


def tcp_of(truth) -> np.ndarray:
    """The simulated TCP in the base frame (the simulation's world frame is base_link)."""
    assert truth.header.frame_id in ('world', 'base_link', ''), truth.header.frame_id
    p = truth.tcp_pose.position
    return np.array([p.x, p.y, p.z])


def box_distance(points) -> np.ndarray:
    points = np.atleast_2d(points)
    outside = np.maximum(BOX_MIN - points, 0.0) + np.maximum(points - BOX_MAX, 0.0)
    return np.linalg.norm(outside, axis=1)


def arm_speed(state) -> float:
    return float(np.abs(np.array(state.velocity)[:5]).max())


def wait_at_rest(client, io, after_s, timeout_s=3.0, speed_rad_s=0.02, samples=10):
    """The time when ``samples`` /joint_states in a row after ``after_s`` show the arm still."""
    def rested():
        still = 0
        for state, arrival in zip(io.states.messages, io.states.arrival_s):
            if arrival < after_s:
                continue
            still = still + 1 if arm_speed(state) < speed_rad_s else 0
            if still >= samples:
                return arrival
        return None
    return client.spin_until(rested, timeout_s, 'the simulated arm at rest')


def targets_since(io, since_s):
    return [np.array(m.data) for m, arrival in zip(io.targets.messages, io.targets.arrival_s)
            if arrival >= since_s]


def last_target_before(io, until_s):
    before = [np.array(m.data) for m, arrival in zip(io.targets.messages, io.targets.arrival_s)
              if arrival <= until_s]
    return before[-1] if before else None


def last_state_before(io, until_s):
    before = [np.array(m.position) for m, arrival in zip(io.states.messages, io.states.arrival_s)
              if arrival <= until_s]
    return before[-1]


def assert_output_held(io, event_arrival_s, hold, what):
    """No output after the event moves the target away from ``hold``."""
    after = targets_since(io, event_arrival_s)
    moved = [np.abs(target - hold).max() for target in after if not np.allclose(target, hold)]
    assert not moved, f'{what}: the filter moved the target after the event by {moved}'


def reset_episode(client, seed=0, randomize_object=False):
    from hilserl_msgs.srv import ResetEpisode

    request = ResetEpisode.Request(use_seed=True, seed=seed, randomize_object=randomize_object)
    response = client.call(ResetEpisode, f'{DRIVER}/reset_episode', request)
    assert response.success, response.message
    client.spin_for(0.3)  # the filter sees the new pose before the next command
    return response


def diagnostics_of(io, prefix):
    """Key values of the newest /diagnostics status whose name starts with ``prefix``."""
    for array in reversed(io.diagnostics.messages):
        for status in array.status:
            if status.name.startswith(prefix):
                return {kv.key: kv.value for kv in status.values}
    return None


def driver_diagnostics_after(client, io, since_s, timeout_s=3.0):
    def fresh():
        for array, arrival in zip(reversed(io.diagnostics.messages),
                                  reversed(io.diagnostics.arrival_s)):
            if arrival < since_s:
                return None
            for status in array.status:
                if status.name.startswith('so101_driver'):
                    return {kv.key: kv.value for kv in status.values}
        return None
    return client.spin_until(fresh, timeout_s, 'driver diagnostics')


# --- tests -------------------------------------------------------------------------------
def test_bring_up_and_the_effort_convention(ros_client, io):
    from sensor_msgs.msg import JointState

    from hilserl_msgs.msg import SafetyEvent

    for node in (DRIVER, FILTER, TORQUE_OFF_FILTER):
        assert ros_client.lifecycle_state(node, timeout_s=30) == 'unconfigured'
    assert ros_client.lifecycle_transition(DRIVER, 'configure', timeout_s=60)
    assert ros_client.lifecycle_transition(DRIVER, 'activate')
    ros_client.bring_up(FILTER)
    ros_client.wait_for_subscribers(io.ee)
    state = ros_client.wait_for_message(JointState, '/joint_states')
    # The sim driver always publishes efforts (N·m) and velocities, which the filter needs.
    assert len(state.effort) == len(state.name) == len(state.velocity) == 6
    since = len(io.events.messages)
    reset_episode(ros_client)
    ros_client.spin_for(1.0)  # the arm holds its home pose against gravity
    efforts = np.array([s.effort for s in io.states.messages[-50:]])
    print(f'gravity load at home: max |effort| per joint {np.abs(efforts).max(axis=0).round(3)}')
    assert np.abs(efforts).max() < 1.0  # far under the 3 N·m trip threshold
    assert not events_since(io, since, SafetyEvent.LIMIT_EFFORT)
    values = ros_client.spin_until(lambda: diagnostics_of(io, 'safety_filter: '), 5.0,
                                   'filter diagnostics')
    assert values['effort_unit'] == 'N.m' and values['active'] == 'True'


def test_a_stream_pushing_out_of_the_box_keeps_the_simulated_tcp_inside(ros_client, io):
    from hilserl_msgs.msg import SafetyEvent

    reset_episode(ros_client)
    since, start = len(io.events.messages), time.monotonic()
    # out through every reachable wall, along them and into corners: +y, diagonally along
    # the +y wall, -y, -x, down to the floor, diagonally into the floor's -x/-y corner
    pushes = ([ee_command(dy=0.05)] * 9 + [ee_command(dx=-0.05, dy=0.05, dz=-0.03)] * 4
              + [ee_command(dx=0.03)] + [ee_command(dy=-0.06)] * 19
              + [ee_command(dx=-0.05)] * 5 + [ee_command(dx=0.03)] * 5
              + [ee_command(dz=-0.05)] * 8 + [ee_command(dx=-0.05, dy=-0.05, dz=-0.05)] * 5
              + [ee_command(dx=0.05, dz=0.05)] * 3)
    stream(ros_client, io.ee, pushes)
    ros_client.spin_for(0.7)  # and after the stream: the arm settles
    tcps = np.array([tcp_of(t) for t, arrival in zip(io.truth.messages, io.truth.arrival_s)
                     if arrival >= start])
    outside = box_distance(tcps)
    print(f'simulated TCP over {len(tcps)} samples: at most {outside.max() * 1e3:.2f} mm '
          f'outside the box; reached min {tcps.min(axis=0).round(4)} max '
          f'{tcps.max(axis=0).round(4)}')
    assert outside.max() <= TCP_TOLERANCE_M
    # the stream did push against the walls it aimed at
    assert tcps[:, 1].max() > BOX_MAX[1] - 0.005 and tcps[:, 1].min() < BOX_MIN[1] + 0.005
    assert tcps[:, 0].min() < BOX_MIN[0] + 0.005 and tcps[:, 2].min() < BOX_MIN[2] + 0.005
    assert events_since(io, since, SafetyEvent.LIMIT_WORKSPACE)
    # normal motion, however saturated the servos, is no effort trip
    assert not events_since(io, since, SafetyEvent.LIMIT_EFFORT), \
        [e.message for e, _ in events_since(io, since, SafetyEvent.LIMIT_EFFORT)]


def test_a_scripted_grasp_through_the_filter_lifts_the_cube_without_a_trip(ros_client, io):
    from hilserl_msgs.msg import JointCommand, SafetyEvent
    from so101_driver.model_files import JOINT_NAMES
    from so101_driver.sim.scripted import TopDownPicker

    start = reset_episode(ros_client, seed=100, randomize_object=True)
    since = len(io.events.messages)
    picker = TopDownPicker(0.025)
    picker.reset(np.array(start.joint_positions))
    for _ in range(40):
        if picker.done:
            break
        truth = io.truth.last
        o = truth.object_pose
        targets = picker.act(np.array([o.position.x, o.position.y, o.position.z]),
                             np.array([o.orientation.w, o.orientation.x, o.orientation.y,
                                       o.orientation.z]), PERIOD_S)
        io.joint.publish(JointCommand(source=JointCommand.SOURCE_SCRIPT, names=JOINT_NAMES,
                                      positions=[float(v) for v in targets]))
        ros_client.spin_for(PERIOD_S)
    ros_client.spin_for(0.3)
    truth = io.truth.last
    print(f'scripted grasp: cube {truth.object_height_m * 1e3:.1f} mm above the table, '
          f'grasped {truth.object_grasped}')
    assert picker.done and truth.object_grasped and truth.success
    assert not events_since(io, since, SafetyEvent.LIMIT_EFFORT)


def test_an_effort_trip_stops_the_arm_within_one_control_period(ros_client, io):
    from hilserl_msgs.msg import EndEffectorCommand, SafetyEvent

    reset_episode(ros_client)  # the cube lies at the centre of its region, under the arm
    cube = io.truth.last.object_pose.position
    tcp = tcp_of(io.truth.last)
    over = (np.array([cube.x, cube.y]) - tcp[:2]) / 2
    stream(ros_client, io.ee, [ee_command(over[0], over[1], gripper=EndEffectorCommand
                                          .GRIPPER_CLOSE)] * 2 + [ee_command()] * 6)
    since, state_index = len(io.events.messages), len(io.states.messages)
    pushing = [ee_command(dz=-0.02)] * 15  # the closed jaws land on the cube and push
    for msg in pushing:
        io.ee.publish(msg)
        ros_client.spin_for(PERIOD_S)
        if events_since(io, since, SafetyEvent.LIMIT_EFFORT):
            break
    event, arrival = wait_event(ros_client, io, since, SafetyEvent.LIMIT_EFFORT,
                                SafetyEvent.SEVERITY_TRIP)
    # the trigger: the first sample of the run of stalled, overloaded samples that tripped
    tripped = [JOINT_INDEX[name] for name in event.names]
    threshold, stall = FILTER_PARAMS['max_effort_nm'], FILTER_PARAMS['stall_velocity_rad_s']
    run_start = None
    for state, state_arrival in zip(io.states.messages[state_index:],
                                    io.states.arrival_s[state_index:]):
        if state_arrival > arrival:
            break
        stalled = any(abs(state.effort[i]) > threshold[i] and abs(state.velocity[i]) <= stall
                      for i in tripped)
        run_start = (run_start or state_arrival) if stalled else None
    assert run_start is not None, 'no stalled, overloaded sample before the trip'
    latency = arrival - run_start
    loads = ', '.join(f'{value:.2f}' for value in event.offending_values)
    print(f'effort trip ({", ".join(event.names)} at {loads} N·m): event '
          f'{latency * 1e3:.0f} ms after the push began to stall the joint')
    assert latency <= (EFFORT_SAMPLES - 1) * STATE_PERIOD_S + PERIOD_S + MARGIN_S
    assert event.source == EndEffectorCommand.SOURCE_HUMAN
    # the output with the trip is the hold at the measured position: the push stops
    hold = last_target_before(io, arrival + 0.02)
    np.testing.assert_allclose(hold[tripped], event.clipped_values)
    measured = last_state_before(io, arrival)
    assert np.abs(hold[:5] - measured[:5]).max() < 0.01  # where the arm was, not below it
    pushing = last_target_before(io, run_start)
    assert np.abs(pushing[:5] - measured[:5]).max() > 0.02  # the target it replaced
    stream(ros_client, io.ee, [ee_command(dz=-0.02)] * 3)  # dropped while tripped
    assert_output_held(io, arrival, hold, 'effort trip')
    rest = wait_at_rest(ros_client, io, arrival)
    loads = np.array([s.effort for s in io.states.messages[-10:]])
    print(f'effort trip: the arm at rest {(rest - arrival) * 1e3:.0f} ms after the event; '
          f'loads then {np.abs(loads).max(axis=0).round(2)} N·m')
    assert np.all(np.abs(loads)[:, :5] < np.array(threshold[:5]))  # no longer pushing
    # once the hold time is over and the loads are calm, commands move the arm again
    ros_client.spin_for(FILTER_PARAMS['trip_hold_s'])
    count = len(io.targets)
    stream(ros_client, io.ee, [ee_command(dz=0.03, gripper=EndEffectorCommand.GRIPPER_OPEN)] * 5)
    assert len(io.targets) > count and not np.allclose(io.targets.last.data, hold)
    assert events_since(io, since, SafetyEvent.LIMIT_EFFORT, SafetyEvent.SEVERITY_INFO)


def test_the_watchdog_holds_within_one_control_period(ros_client, io):
    from hilserl_msgs.msg import SafetyEvent

    reset_episode(ros_client)
    sent = stream(ros_client, io.ee, [ee_command(dx=0.03, dy=-0.03)] * 5, period_s=PERIOD_S)
    since = len(io.events.messages)
    last_sent = sent[-1]
    event, arrival = wait_event(ros_client, io, since, SafetyEvent.LIMIT_WATCHDOG)
    late = arrival - (last_sent + FILTER_PARAMS['command_timeout_s'])
    print(f'watchdog: event {late * 1e3:.0f} ms after command_timeout_s expired')
    assert event.limit_name == 'command_timeout_s'
    assert event.severity == SafetyEvent.SEVERITY_INFO
    assert -0.05 <= late <= PERIOD_S + MARGIN_S
    hold = last_target_before(io, arrival + 0.02)
    np.testing.assert_allclose(hold, last_target_before(io, last_sent + PERIOD_S))
    rest = wait_at_rest(ros_client, io, arrival)
    ros_client.spin_for(0.5)
    assert_output_held(io, arrival, hold, 'watchdog')
    # the arm rests at the held target (kinematics of the target vs. the simulated TCP)
    from so101_driver.kinematics import So101Kinematics

    error = np.linalg.norm(So101Kinematics().fk(hold[:5]) - tcp_of(io.truth.last))
    print(f'watchdog: at rest {(rest - arrival) * 1e3:.0f} ms after the event, '
          f'{error * 1e3:.1f} mm from the held target')
    assert error < 0.005


@pytest.mark.parametrize('via', ['topic', 'service'])
def test_the_estop_stops_the_arm_within_one_control_period_and_latches(ros_client, io, via):
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool

    from hilserl_msgs.msg import SafetyEvent

    reset_episode(ros_client)
    ros_client.wait_for_subscribers(io.estop)
    stream(ros_client, io.ee, [ee_command(dx=0.03, dy=0.03)] * 3)
    since = len(io.events.messages)
    io.ee.publish(ee_command(dx=0.03, dy=0.03))  # moving when the button is pressed
    pressed = time.monotonic()
    if via == 'topic':
        io.estop.publish(Bool(data=True))
    else:
        client = ros_client.client(SetBool, f'{FILTER}/estop')
        future = client.call_async(SetBool.Request(data=True))
    event, arrival = wait_event(ros_client, io, since, SafetyEvent.LIMIT_ESTOP,
                                SafetyEvent.SEVERITY_ESTOP)
    if via == 'service':
        ros_client.spin_until(future.done, 5.0, 'e-stop service response')
        assert future.result().success
    latency = arrival - pressed
    print(f'e-stop ({via}): event {latency * 1e3:.0f} ms after the press')
    assert latency <= PERIOD_S + MARGIN_S
    hold = last_target_before(io, arrival + 0.02)
    # latched: a stream of commands and a false on the topic change nothing
    io.estop.publish(Bool(data=False))
    stream(ros_client, io.ee, [ee_command(dx=-0.03, dy=-0.03)] * 8)
    assert_output_held(io, arrival, hold, f'e-stop ({via})')
    rest = wait_at_rest(ros_client, io, arrival)
    print(f'e-stop ({via}): the arm at rest {(rest - arrival) * 1e3:.0f} ms after the event')
    truth_before = tcp_of(io.truth.last)
    stream(ros_client, io.ee, [ee_command(dx=-0.03, dy=-0.03)] * 3)
    assert np.linalg.norm(tcp_of(io.truth.last) - truth_before) < 1e-3
    values = diagnostics_of(io, 'safety_filter: ')
    assert values['estop_latched'] == 'True'
    # only the service releases it; then commands move the arm again
    response = ros_client.call(SetBool, f'{FILTER}/estop', SetBool.Request(data=False))
    assert response.success, response.message
    wait_event(ros_client, io, since, SafetyEvent.LIMIT_ESTOP, SafetyEvent.SEVERITY_INFO)
    count = len(io.targets)
    stream(ros_client, io.ee, [ee_command(dx=-0.03, dy=-0.03)] * 3)
    assert len(io.targets) > count and not np.allclose(io.targets.last.data, hold)


def test_estop_with_torque_off_disables_the_driver_torque_until_released(ros_client, io):
    from std_srvs.srv import SetBool

    from hilserl_msgs.msg import SafetyEvent

    assert ros_client.lifecycle_transition(FILTER, 'deactivate')
    assert ros_client.lifecycle_transition(FILTER, 'cleanup')
    ros_client.bring_up(TORQUE_OFF_FILTER)
    reset_episode(ros_client)
    stream(ros_client, io.ee, [ee_command(dx=0.02)] * 3)
    since = len(io.events.messages)
    before = np.array(io.states.last.position)
    pressed = time.monotonic()
    response = ros_client.call(SetBool, f'{TORQUE_OFF_FILTER}/estop',
                               SetBool.Request(data=True))
    assert response.success
    event, arrival = wait_event(ros_client, io, since, SafetyEvent.LIMIT_ESTOP,
                                SafetyEvent.SEVERITY_ESTOP)
    print(f'e-stop (torque_off): event {(arrival - pressed) * 1e3:.0f} ms after the press')
    assert arrival - pressed <= PERIOD_S + MARGIN_S
    values = driver_diagnostics_after(ros_client, io, arrival + 0.05)
    assert values['torque_enabled'] == 'False'
    ros_client.spin_for(0.8)
    sagged = np.array(io.states.last.position)
    print(f'e-stop (torque_off): joints sagged by {np.abs(sagged - before).round(3)} rad')
    assert np.abs(sagged - before)[:4].max() > 0.05  # the arm falls without torque
    assert np.abs(np.array(io.states.last.effort)).max() < 1e-6
    # release: torque back on, the arm holds where it is (no jump back)
    response = ros_client.call(SetBool, f'{TORQUE_OFF_FILTER}/estop',
                               SetBool.Request(data=False))
    assert response.success, response.message
    released = time.monotonic()
    values = driver_diagnostics_after(ros_client, io, released + 0.05)
    assert values['torque_enabled'] == 'True'
    held = np.array(io.states.last.position)
    ros_client.spin_for(0.5)
    assert np.abs(np.array(io.states.last.position) - held)[:5].max() < 0.02
    count = len(io.targets)
    stream(ros_client, io.ee, [ee_command(dz=0.03)] * 3)
    assert len(io.targets) > count


def test_the_processes_exit_cleanly(ros_client, graph):
    assert ros_client.lifecycle_transition(TORQUE_OFF_FILTER, 'deactivate')
    assert ros_client.lifecycle_transition(DRIVER, 'deactivate')
    assert graph.stop_all() == {'so101_driver': 0, 'safety_filter': 0,
                                'safety_filter_torque_off': 0}
