"""run_graph across real processes: a graph of lifecycle nodes, Ctrl-C, a dying node."""
import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

from hilserl_testing.processes import executable_path, wait_until

pytestmark = pytest.mark.ros

SCRIPT = pathlib.Path(__file__).resolve().parent / 'graph_runner_script.py'
NODES = ('counter_a', 'counter_b', 'lifecycle_manager')


def started_pids(runner, names=NODES, timeout_s=30.0):
    """{node: pid} from run_graph's 'started <node> (pid N)' lines."""
    def parse():
        found = dict(re.findall(r'\[run_graph\] started (\S+) \(pid (\d+)\)', runner.output()))
        return found if set(names) <= set(found) else None
    return {name: int(pid) for name, pid in wait_until(parse, timeout_s, 'children').items()}


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def prepare_clients(ros_client):
    """Clients made before the servers start: both directions matched once they are ready."""
    from lifecycle_msgs.srv import GetState
    from std_srvs.srv import Trigger

    ros_client.client(Trigger, '/lifecycle_manager/is_active')
    ros_client.client(GetState, 'counter_b/get_state')


def graph_active(ros_client):
    from std_srvs.srv import Trigger

    return ros_client.call(Trigger, '/lifecycle_manager/is_active', timeout_s=30).success


def test_sigint_stops_every_child_after_bringing_the_graph_down(ros_client, ros_processes):
    from lifecycle_msgs.msg import TransitionEvent

    prepare_clients(ros_client)
    events = ros_client.subscribe(TransitionEvent, '/counter_a/transition_event')
    runner = ros_processes.start('run_graph', [sys.executable, SCRIPT, 'counters'])
    pids = started_pids(runner)
    ros_client.spin_until(lambda: graph_active(ros_client), 60, 'graph active')
    assert ros_client.lifecycle_state('counter_b') == 'active'
    # the events of the shutdown need our subscription matched with counter_a's publisher
    ros_client.spin_until(
        lambda: ros_client.node.count_publishers('/counter_a/transition_event') >= 1, 20,
        "counter_a's transition_event publisher discovered")
    ros_client.spin_for(0.5)

    runner.send_signal(signal.SIGINT)
    # spin while waiting, so the transition events are taken while their publisher lives
    ros_client.spin_until(lambda: not runner.is_running(), 60, 'run_graph exit after SIGINT')
    assert runner.process.returncode == 0, runner.output()
    assert all(gone(pid) for pid in pids.values()), pids
    # the lifecycle manager was stopped first and brought the managed nodes down
    primary = ('unconfigured', 'inactive', 'active', 'finalized')
    goals = [e.goal_state.label for e in events.messages if e.goal_state.label in primary]
    assert goals[-3:] == ['inactive', 'unconfigured', 'finalized'], goals


def test_dying_required_child_stops_the_graph(ros_client, ros_processes):
    prepare_clients(ros_client)
    runner = ros_processes.start('run_graph', [sys.executable, SCRIPT, 'counters'])
    pids = started_pids(runner)
    ros_client.spin_until(lambda: graph_active(ros_client), 60, 'graph active')

    os.kill(pids['counter_b'], signal.SIGKILL)
    wait_until(lambda: not runner.is_running(), 60, 'run_graph exit after a child died')
    assert runner.process.returncode == 1
    assert 'required node counter_b failed' in runner.output()
    assert all(gone(pid) for pid in pids.values()), pids


def test_missing_executable_is_reported_before_anything_starts(ros_processes):
    runner = ros_processes.start('run_graph', [sys.executable, SCRIPT, 'broken'])
    wait_until(lambda: not runner.is_running(), 60, 'run_graph exit')
    assert runner.process.returncode == 1
    output = runner.output()
    assert 'hilserl_bringup/no_such_node (node ghost)' in output
    assert 'started' not in output


def test_installed_run_graph_lists_the_graphs():
    done = subprocess.run([executable_path('hilserl_bringup', 'run_graph'), '--list'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for graph in ('sim', 'real', 'record_demos', 'learner_only', 'actor_only', 'driver_only'):
        assert f'{graph}: ' in done.stdout
    bad = subprocess.run([executable_path('hilserl_bringup', 'run_graph'), 'sim',
                          'backend:=gazebo'], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and 'backend' in bad.stdout
