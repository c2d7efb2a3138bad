"""lifecycle_manager across real processes: bring-up, tear-down, failures, supervision."""
import pathlib
import signal
import sys

import pytest

pytestmark = pytest.mark.ros

COUNTER_NODE = pathlib.Path(__file__).resolve().parent / 'lifecycle_test_node.py'
MANAGER = '/lifecycle_manager'


def start_counter(ros_processes, name, **parameters):
    argv = [sys.executable, COUNTER_NODE, '--ros-args', '-r', f'__node:={name}']
    for key, value in parameters.items():
        argv += ['-p', f'{key}:={str(value).lower() if isinstance(value, bool) else value}']
    return ros_processes.start(name, argv)


def start_manager(ros_processes, node_names, **parameters):
    return ros_processes.start_node(
        'hilserl_bringup', 'lifecycle_manager', name='lifecycle_manager',
        parameters={'node_names': node_names, 'service_timeout_s': 60.0,
                    'transition_timeout_s': 20.0, **parameters})


def prepare_clients(ros_client, nodes):
    """Create the test's service clients before the servers start, so that both directions
    of each service are matched by the time it is ready (Fast DDS drops a response whose
    reader the server has not matched yet)."""
    from lifecycle_msgs.srv import GetState
    from std_srvs.srv import Trigger

    from hilserl_msgs.srv import ManageGraph

    ros_client.client(ManageGraph, f'{MANAGER}/manage_graph')
    ros_client.client(Trigger, f'{MANAGER}/is_active')
    for node in nodes:
        ros_client.client(GetState, f'{node}/get_state')


def state_of(ros_client, node):
    """get_state of ``node``, asked again if an answer is lost (it is idempotent)."""
    for _attempt in range(3):
        try:
            return ros_client.lifecycle_state(node, timeout_s=5.0)
        except TimeoutError:
            continue
    raise TimeoutError(f'{node}/get_state: no answer to 3 requests')


def manage(ros_client, command):
    from hilserl_msgs.srv import ManageGraph

    return ros_client.call(ManageGraph, f'{MANAGER}/manage_graph',
                           ManageGraph.Request(command=command), timeout_s=60)


def is_active(ros_client):
    from std_srvs.srv import Trigger

    return ros_client.call(Trigger, f'{MANAGER}/is_active', timeout_s=30).success


def graph_status(log, predicate=lambda status: True):
    """The newest lifecycle_manager diagnostics status matching ``predicate``, or None."""
    for message in reversed(log.messages):
        for status in message.status:
            if status.name.startswith('lifecycle_manager') and predicate(status):
                return status
    return None


def values(status):
    return {kv.key: kv.value for kv in status.values}


def test_commands_bring_two_nodes_up_and_down(ros_client, ros_processes):
    from diagnostic_msgs.msg import DiagnosticStatus
    from std_msgs.msg import UInt64

    from hilserl_msgs.srv import ManageGraph

    prepare_clients(ros_client, ['counter_a', 'counter_b'])
    diagnostics = ros_client.subscribe(_diagnostic_array(), '/diagnostics')
    counts = ros_client.subscribe(UInt64, '/counter_b/counter')
    start_counter(ros_processes, 'counter_a')
    start_counter(ros_processes, 'counter_b')
    start_manager(ros_processes, ['counter_a', 'counter_b'], autostart=False,
                  monitor_period_s=0.3)

    response = manage(ros_client, ManageGraph.Request.STARTUP)
    assert response.success, response.message
    assert list(response.node_names) == ['counter_a', 'counter_b']
    assert list(response.node_states) == ['active', 'active']
    for node in ('counter_a', 'counter_b'):
        assert state_of(ros_client, node) == 'active'
    ros_client.spin_until(lambda: len(counts) >= 3, 15, 'counter messages while active')
    assert is_active(ros_client)
    ok = ros_client.spin_until(lambda: graph_status(
        diagnostics, lambda s: s.level == DiagnosticStatus.OK and values(s).get('counter_b')
        == 'active'), 15, 'OK diagnostics with counter_b active')
    assert values(ok)['counter_a'] == 'active'

    response = manage(ros_client, ManageGraph.Request.PAUSE)
    assert response.success and list(response.node_states) == ['inactive', 'inactive']
    assert state_of(ros_client, 'counter_a') == 'inactive'
    assert not is_active(ros_client)
    ros_client.spin_for(0.3)
    counts.clear()
    ros_client.spin_for(0.5)
    assert len(counts) == 0  # deactivated: the node's work stopped

    for command, state in ((ManageGraph.Request.RESUME, 'active'),
                           (ManageGraph.Request.RESET, 'unconfigured'),
                           (ManageGraph.Request.RESTART, 'active'),
                           (ManageGraph.Request.SHUTDOWN, 'finalized')):
        response = manage(ros_client, command)
        assert response.success, response.message
        assert list(response.node_states) == [state, state]
        assert state_of(ros_client, 'counter_b') == state
    assert ros_processes.stop_all() == {'lifecycle_manager': 0, 'counter_b': 0, 'counter_a': 0}


def test_configure_failure_is_reported_and_rolled_back(ros_client, ros_processes):
    from diagnostic_msgs.msg import DiagnosticStatus
    from std_msgs.msg import String

    from hilserl_msgs.srv import ManageGraph
    from hilserl_testing.client import LATCHED

    prepare_clients(ros_client, ['first', 'second', 'third'])
    diagnostics = ros_client.subscribe(_diagnostic_array(), '/diagnostics')
    start_counter(ros_processes, 'first')
    start_counter(ros_processes, 'second', fail_on_configure=True)
    start_counter(ros_processes, 'third')
    start_manager(ros_processes, ['first', 'second', 'third'], autostart=True,
                  monitor_period_s=0.3)

    # autostart runs STARTUP: 'second' fails to configure, 'first' is rolled back
    error = ros_client.spin_until(lambda: graph_status(
        diagnostics, lambda s: s.level == DiagnosticStatus.ERROR), 60, 'ERROR diagnostics')
    assert values(error)['failed_node'] == 'second'
    assert values(error)['failed_transition'] == 'configure'
    assert 'second' in error.message and 'configure' in error.message
    history = ros_client.wait_for_message(String, '/first/history', qos=LATCHED,
                                          predicate=lambda m: m.data.count(',') >= 3)
    assert history.data == 'configure,activate,deactivate,cleanup'  # up, then rolled back

    response = manage(ros_client, ManageGraph.Request.STARTUP)
    assert not response.success
    assert 'second' in response.message and 'configure' in response.message
    assert 'rolled back' in response.message
    assert list(response.node_states) == ['unconfigured', 'unconfigured', 'unconfigured']
    for node in ('first', 'second', 'third'):
        assert state_of(ros_client, node) == 'unconfigured'
    assert not is_active(ros_client)
    assert ros_processes.stop_all()['lifecycle_manager'] == 0


def test_dead_node_is_reported_and_the_rest_brought_down(ros_client, ros_processes):
    from diagnostic_msgs.msg import DiagnosticStatus

    prepare_clients(ros_client, ['keeper', 'victim'])
    diagnostics = ros_client.subscribe(_diagnostic_array(), '/diagnostics')
    start_counter(ros_processes, 'keeper')
    victim = start_counter(ros_processes, 'victim')
    start_manager(ros_processes, ['keeper', 'victim'], autostart=True, monitor_period_s=0.2,
                  on_node_failure='reset')
    ros_client.spin_until(lambda: is_active(ros_client), 60, 'graph active after autostart')

    victim.send_signal(signal.SIGTERM)
    error = ros_client.spin_until(lambda: graph_status(
        diagnostics, lambda s: s.level == DiagnosticStatus.ERROR), 30, 'ERROR diagnostics')
    assert 'victim' in error.message and values(error)['failed_node'] == 'victim'
    ros_client.spin_until(lambda: state_of(ros_client, 'keeper') == 'unconfigured', 30,
                          'keeper reset after the failure')
    assert not is_active(ros_client)
    codes = ros_processes.stop_all()
    assert codes['lifecycle_manager'] == 0 and codes['victim'] == 0


def test_invalid_parameters_exit_non_zero(ros_processes):
    from hilserl_testing.processes import wait_until

    manager = start_manager(ros_processes, ['a', 'a'])
    wait_until(lambda: not manager.is_running(), 30, 'manager exit on invalid node_names')
    assert manager.process.returncode == 1
    assert 'node_names' in manager.output()


def _diagnostic_array():
    from diagnostic_msgs.msg import DiagnosticArray

    return DiagnosticArray
