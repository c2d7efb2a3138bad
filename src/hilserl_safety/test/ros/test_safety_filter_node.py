"""safety_filter_node across real processes: the installed executable, driven through topics,
services and lifecycle transitions, with the test client playing the driver (arm_echo.py).

The tests share one node process and run in file order (the last one checks the exit code).
"""
import importlib.util
import pathlib
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

NODE = '/safety_filter'
PERIOD_S = 0.1  # control_rate_hz 10
MARGIN_S = 0.25  # delivery and scheduling slack on a loaded 2-core machine
PARAMS = {
    'control_rate_hz': 10.0, 'command_timeout_s': 0.5, 'heartbeat_timeout_s': 0.4,
    'joint_state_timeout_s': 0.5, 'effort_trip_samples': 2, 'trip_hold_s': 0.5,
    'estop_action': 'torque_off', 'diagnostics_period_s': 0.2,
    # full steps up to the walls (the slow zone along them: unit tests and the sim tests)
    'wall_zone_m': 0.0,
}
BOX_MIN = np.array([0.14, -0.20, 0.01])
BOX_MAX = np.array([0.35, 0.20, 0.25])


def _load(name):
    spec = importlib.util.spec_from_file_location(name, pathlib.Path(__file__).parent
                                                  / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


arm_echo = _load('arm_echo')


@pytest.fixture(scope='module')
def node_process(ros_domain, tmp_path_factory):
    from hilserl_testing.processes import ProcessGroup

    group = ProcessGroup(tmp_path_factory.mktemp('safety_filter_logs'))
    group.start_node('hilserl_safety', 'safety_filter_node', name='safety_filter',
                     parameters=PARAMS)
    yield group
    group.stop_all()
    print(group.logs())  # shown by pytest only when a test of the module failed


@pytest.fixture(scope='module')
def arm(ros_client, node_process):
    return arm_echo.ArmEcho(ros_client)


@pytest.fixture(scope='module')
def io(ros_client, arm):
    """Publishers and logs the tests share."""
    from std_msgs.msg import Bool

    from hilserl_msgs.msg import EndEffectorCommand, JointCommand, SafetyEvent
    from hilserl_testing.client import KEEP_ALL

    class Io:
        ee = ros_client.publisher(EndEffectorCommand, '/hilserl/ee_command')
        joint = ros_client.publisher(JointCommand, '/hilserl/joint_command')
        estop = ros_client.publisher(Bool, '/hilserl/estop')
        events = ros_client.subscribe(SafetyEvent, '/hilserl/safety_events', KEEP_ALL)

    return Io


@pytest.fixture(scope='module')
def kinematics():
    from so101_driver.kinematics import So101Kinematics

    return So101Kinematics()


def ee_command(dx=0.0, dy=0.0, dz=0.0, source=1, gripper=0, position=0.0):
    from hilserl_msgs.msg import EndEffectorCommand

    msg = EndEffectorCommand(source=source, gripper_command=gripper,
                             gripper_position_rad=position)
    msg.delta_m.x, msg.delta_m.y, msg.delta_m.z = dx, dy, dz
    return msg


def stream(client, publisher, messages, period_s=PERIOD_S):
    """Publish messages one per period while spinning; return the publish times."""
    times = []
    for msg in messages:
        publisher.publish(msg)
        times.append(time.monotonic())
        client.spin_for(period_s)
    return times


def events_of(io, limit, severity=None, since=0):
    return [e for e in io.events.messages[since:]
            if e.limit == limit and (severity is None or e.severity == severity)]


def wait_event(client, io, limit, severity=None, since=0, timeout_s=5.0):
    """The first matching event after index ``since`` and its arrival time."""
    def found():
        for index in range(since, len(io.events.messages)):
            event = io.events.messages[index]
            if event.limit == limit and (severity is None or event.severity == severity):
                return event, io.events.arrival_s[index]
        return None
    return client.spin_until(found, timeout_s, f'safety event limit={limit}')


def test_starts_from_measured_state_only_after_joint_states(ros_client, arm, io):
    assert ros_client.lifecycle_state(NODE) == 'unconfigured'
    ros_client.bring_up(NODE)
    ros_client.wait_for_subscribers(io.ee)
    stream(ros_client, io.ee, [ee_command(dx=0.01)] * 3)
    assert len(arm.targets) == 0, 'the filter sent a target before any /joint_states'
    arm.publishing = True
    ros_client.spin_for(0.2)
    io.ee.publish(ee_command(dx=0.01))
    ros_client.spin_until(lambda: len(arm.targets) >= 1, 5.0, 'first target')
    first = np.array(arm.targets.messages[0].data)
    assert np.all(np.abs(first - arm_echo.HOME) <= 3.0 * PERIOD_S + 1e-9)
    assert np.abs(first - arm_echo.HOME).max() > 1e-4  # it moved from the measured pose


def test_stream_pushing_out_of_the_box_keeps_the_tcp_inside(ros_client, arm, io, kinematics):
    arm.targets.clear()
    since = len(io.events.messages)
    pushes = [ee_command(dy=0.06, dz=-0.05)] * 14 + [ee_command(dx=-0.08, dy=-0.02)] * 8
    stream(ros_client, io.ee, pushes)
    ros_client.spin_until(lambda: len(arm.targets) >= len(pushes), 5.0, 'all targets')
    tcps = np.array([kinematics.fk(np.array(m.data)[:5]) for m in arm.targets.messages])
    assert np.all(tcps >= BOX_MIN - 0.002) and np.all(tcps <= BOX_MAX + 0.002), tcps
    assert tcps[:, 2].min() < 0.02, 'the stream should have reached the floor of the box'
    assert tcps[:, 1].max() > 0.19, 'the stream should have reached the side of the box'
    assert tcps[:, 0].min() < 0.15, 'the stream should have reached the back of the box'
    from hilserl_msgs.msg import SafetyEvent

    assert events_of(io, SafetyEvent.LIMIT_WORKSPACE, since=since)
    assert events_of(io, SafetyEvent.LIMIT_EE_STEP, since=since)
    steps = np.abs(np.diff([m.data for m in arm.targets.messages], axis=0))
    assert steps.max() <= 3.0 * PERIOD_S + 1e-9  # no joint faster than its limit


def test_effort_trip_stops_motion_within_one_period(ros_client, arm, io):
    from hilserl_msgs.msg import SafetyEvent

    since = len(io.events.messages)
    stream(ros_client, io.ee, [ee_command(dx=0.02)] * 2)
    arm.efforts = np.array([0.0, 0.0, 3.3, 0.0, 0.0, 0.0])  # elbow blocked (sim limit 3.35)
    started = time.monotonic()
    event, arrived = wait_event(ros_client, io, SafetyEvent.LIMIT_EFFORT,
                                SafetyEvent.SEVERITY_TRIP, since)
    # two samples at 50 Hz must exceed, then the trip is immediate
    latency = arrived - started
    print(f'effort trip: event {latency * 1e3:.0f} ms after the load rose')
    assert latency <= 2 * 0.02 + PERIOD_S + MARGIN_S
    assert list(event.names) == ['elbow_flex'] and event.offending_values[0] == pytest.approx(3.3)
    ros_client.spin_for(0.05)
    hold = np.array(arm.targets.last.data)
    count = len(arm.targets)
    stream(ros_client, io.ee, [ee_command(dx=-0.02)] * 3)
    assert all(np.allclose(m.data, hold) for m in arm.targets.messages[count:])
    arm.efforts = np.zeros(6)
    ros_client.spin_for(0.5)
    stream(ros_client, io.ee, [ee_command(dx=-0.02)] * 3)
    assert not np.allclose(arm.targets.last.data, hold), 'motion did not resume after the trip'
    assert events_of(io, SafetyEvent.LIMIT_EFFORT, SafetyEvent.SEVERITY_INFO, since)


def test_watchdog_holds_and_reports_within_one_period(ros_client, arm, io):
    from hilserl_msgs.msg import SafetyEvent

    times = stream(ros_client, io.ee, [ee_command(dy=0.01)] * 3)
    since = len(io.events.messages)
    count = len(arm.targets)
    event, arrived = wait_event(ros_client, io, SafetyEvent.LIMIT_WATCHDOG, since=since)
    late = arrived - times[-1] - PARAMS['command_timeout_s']
    print(f'watchdog: event {late * 1e3:.0f} ms after the timeout expired')
    assert event.limit_name == 'command_timeout_s'
    assert late <= PERIOD_S + MARGIN_S
    assert all(np.allclose(m.data, arm.targets.messages[count - 1].data)
               for m in arm.targets.messages[count:])


def test_policy_commands_need_the_actor_heartbeat(ros_client, arm, io):
    from hilserl_msgs.msg import EndEffectorCommand, SafetyEvent

    since, count = len(io.events.messages), len(arm.targets)
    policy = EndEffectorCommand.SOURCE_POLICY
    stream(ros_client, io.ee, [ee_command(dx=0.01, source=policy)] * 3)
    wait_event(ros_client, io, SafetyEvent.LIMIT_HEARTBEAT, SafetyEvent.SEVERITY_TRIP, since)
    assert len(arm.targets) == count, 'policy commands passed without a heartbeat'
    stream(ros_client, io.ee, [ee_command(dx=0.01)] * 2)  # a human needs no heartbeat
    assert len(arm.targets) == count + 2
    arm.heartbeat = True
    ros_client.spin_for(0.2)
    stream(ros_client, io.ee, [ee_command(dx=-0.01, source=policy)] * 3)
    assert len(arm.targets) == count + 5
    since = len(io.events.messages)
    arm.heartbeat = False
    stop = time.monotonic()
    stream(ros_client, io.ee, [ee_command(dx=0.01, source=policy)] * 8)
    event, arrived = wait_event(ros_client, io, SafetyEvent.LIMIT_HEARTBEAT, since=since)
    print(f'heartbeat: event {(arrived - stop) * 1e3:.0f} ms after the last heartbeat')
    assert arrived - stop <= PARAMS['heartbeat_timeout_s'] + PERIOD_S + MARGIN_S


def test_estop_latches_until_released_by_the_service(ros_client, arm, io):
    from std_msgs.msg import Bool
    from std_srvs.srv import SetBool

    from hilserl_msgs.msg import SafetyEvent

    ros_client.wait_for_subscribers(io.estop)
    since, count = len(io.events.messages), len(arm.targets)
    pressed = time.monotonic()
    io.estop.publish(Bool(data=True))
    event, arrived = wait_event(ros_client, io, SafetyEvent.LIMIT_ESTOP,
                                SafetyEvent.SEVERITY_ESTOP, since)
    print(f'e-stop: event {(arrived - pressed) * 1e3:.0f} ms after the button')
    assert arrived - pressed <= PERIOD_S + MARGIN_S
    ros_client.spin_until(lambda: arm.torque_requests, 2.0, 'torque disable request')
    assert arm.torque_requests[-1][0] is False
    hold = np.array(arm.targets.last.data)
    io.estop.publish(Bool(data=False))  # a false on the topic never releases
    stream(ros_client, io.ee, [ee_command(dx=0.02)] * 3)
    assert all(np.allclose(m.data, hold) for m in arm.targets.messages[count:])
    response = ros_client.call(SetBool, f'{NODE}/estop', SetBool.Request(data=False))
    assert response.success, response.message
    ros_client.spin_until(lambda: arm.torque_requests[-1][0], 2.0, 'torque enable request')
    wait_event(ros_client, io, SafetyEvent.LIMIT_ESTOP, SafetyEvent.SEVERITY_INFO, since)
    count = len(arm.targets)
    stream(ros_client, io.ee, [ee_command(dx=0.02)] * 2)
    assert len(arm.targets) > count and not np.allclose(arm.targets.last.data, hold)
    since = len(io.events.messages)
    assert ros_client.call(SetBool, f'{NODE}/estop', SetBool.Request(data=True)).success
    wait_event(ros_client, io, SafetyEvent.LIMIT_ESTOP, SafetyEvent.SEVERITY_ESTOP, since)
    assert ros_client.call(SetBool, f'{NODE}/estop', SetBool.Request(data=False)).success


def test_malformed_commands_are_rejected_and_reported(ros_client, arm, io):
    from hilserl_msgs.msg import JointCommand, SafetyEvent

    ros_client.wait_for_subscribers(io.joint)
    since, count = len(io.events.messages), len(arm.targets)
    io.ee.publish(ee_command(dx=float('nan')))
    io.ee.publish(ee_command(dz=float('inf')))
    io.ee.publish(ee_command(gripper=9))
    io.joint.publish(JointCommand(names=['elbow'], positions=[0.1]))
    io.joint.publish(JointCommand(names=['elbow_flex', 'gripper'], positions=[0.1]))
    ros_client.spin_until(lambda: len(events_of(io, SafetyEvent.LIMIT_MALFORMED, since=since))
                          >= 5, 5.0, 'five malformed events')
    assert len(arm.targets) == count
    names = {e.limit_name for e in events_of(io, SafetyEvent.LIMIT_MALFORMED, since=since)}
    assert names == {'delta_m', 'gripper_command', 'names'}


def test_joint_commands_are_limited(ros_client, arm, io, kinematics):
    from hilserl_msgs.msg import JointCommand, SafetyEvent

    since, count = len(io.events.messages), len(arm.targets)
    far = JointCommand(source=JointCommand.SOURCE_HUMAN, names=['shoulder_lift', 'gripper'],
                       positions=[3.0, 9.0])
    stream(ros_client, io.joint, [far] * 8)
    ros_client.spin_until(lambda: len(arm.targets) >= count + 8, 5.0, 'joint targets')
    targets = np.array([m.data for m in arm.targets.messages[count:]])
    assert np.all(targets[:, 1] <= 1.74533 - 0.05 + 1e-9)
    assert np.all(targets[:, 5] <= 1.74533 - 0.05 + 1e-9)
    assert np.all(np.abs(np.diff(targets, axis=0)) <= 3.0 * PERIOD_S + 1e-9)
    tcps = np.array([kinematics.fk(t[:5]) for t in targets])
    assert np.all(tcps >= BOX_MIN - 0.002) and np.all(tcps <= BOX_MAX + 0.002), tcps
    limits = {e.limit for e in io.events.messages[since:]}
    assert {SafetyEvent.LIMIT_JOINT_POSITION, SafetyEvent.LIMIT_JOINT_VELOCITY} <= limits


def test_limits_tighten_at_run_time_but_never_loosen(ros_client, arm, io, kinematics):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    def set_param(name, value):
        kind = (ParameterType.PARAMETER_DOUBLE_ARRAY if isinstance(value, list)
                else ParameterType.PARAMETER_DOUBLE)
        parameter_value = ParameterValue(type=kind)
        if isinstance(value, list):
            parameter_value.double_array_value = value
        else:
            parameter_value.double_value = value
        request = SetParameters.Request(parameters=[Parameter(name=name, value=parameter_value)])
        return ros_client.call(SetParameters, f'{NODE}/set_parameters', request).results[0]

    assert not set_param('workspace_max_m', [0.40, 0.20, 0.25]).successful  # loosening
    assert not set_param('ee_max_step_m', 0.05).successful
    assert not set_param('control_rate_hz', 20.0).successful  # read-only
    assert not set_param('workspace_max_m', [0.35, 0.20, 0.005]).successful  # empty box
    assert set_param('workspace_max_m', [0.35, 0.05, 0.25]).successful  # tighter y
    assert set_param('ee_max_step_m', 0.02).successful
    count = len(arm.targets)
    stream(ros_client, io.ee, [ee_command(dy=0.05)] * 10)
    ros_client.spin_until(lambda: len(arm.targets) >= count + 10, 5.0, 'targets')
    tcps = np.array([kinematics.fk(np.array(m.data)[:5]) for m in arm.targets.messages[count:]])
    # the arm was outside the tightened box: it is led back (never farther out), then held
    # at the new wall while the commands keep pushing out, at the tightened step
    assert np.all(np.diff(tcps[:, 1]) <= 1e-6)
    assert np.all(tcps[-3:, 1] <= 0.05 + 0.002)
    assert np.all(np.linalg.norm(np.diff(tcps, axis=0), axis=1) <= 0.02 + 0.002)


def test_diagnostics_and_markers(ros_client, arm, io):
    from diagnostic_msgs.msg import DiagnosticArray
    from visualization_msgs.msg import MarkerArray

    from hilserl_testing.client import RELIABLE

    diagnostics = ros_client.wait_for_message(
        DiagnosticArray, '/diagnostics',
        predicate=lambda m: m.status and m.status[0].name.startswith('safety_filter'))
    values = {kv.key: kv.value for kv in diagnostics.status[0].values}
    assert int(values['events_workspace']) > 0 and int(values['events_effort']) > 0
    assert int(values['events_malformed']) >= 5 and values['estop_latched'] == 'False'
    markers = ros_client.wait_for_message(MarkerArray, f'{NODE}/markers', qos=RELIABLE)
    box, target = markers.markers
    assert len(box.points) == 24 and box.header.frame_id == 'base_link'
    corners = np.array([[p.x, p.y, p.z] for p in box.points])
    assert corners.min(axis=0) == pytest.approx(BOX_MIN)
    assert target.pose.position.y <= 0.05 + 0.002


def test_deactivate_holds_and_the_process_exits_cleanly(ros_client, arm, io, node_process):
    count = len(arm.targets)
    assert ros_client.lifecycle_transition(NODE, 'deactivate')
    ros_client.spin_until(lambda: len(arm.targets) > count, 2.0, 'hold target on deactivate')
    assert np.allclose(arm.targets.last.data, arm.targets.messages[count - 1].data)
    stream(ros_client, io.ee, [ee_command(dx=0.02)] * 2)
    assert len(arm.targets) == count + 1, 'an inactive filter moved the arm'
    assert ros_client.lifecycle_transition(NODE, 'cleanup')
    assert ros_client.lifecycle_state(NODE) == 'unconfigured'
    assert node_process.stop_all() == {'safety_filter': 0}


def test_bad_configuration_fails_configure(ros_client, ros_processes):
    ros_processes.start_node('hilserl_safety', 'safety_filter_node', name='bad_filter',
                             parameters={'workspace_min_m': [0.3, -0.2, 0.0],
                                         'workspace_max_m': [0.2, 0.2, 0.2]})
    assert not ros_client.lifecycle_transition('/bad_filter', 'configure')
    assert ros_client.lifecycle_state('/bad_filter') == 'unconfigured'
    assert ros_processes.stop_all() == {'bad_filter': 0}
