"""Unit tests of the launch-less runner: command lines, checks, and process handling.

The process tests start plain Python child processes (no ROS) so that signal forwarding,
escalation and output relaying are checked quickly; the ROS graph tests are in
test_run_graph_ros.py.
"""
import io
import json
import os
import pathlib
import signal
import sys
import threading
import time

import pytest

from hilserl_bringup.errors import MissingExecutablesError
from hilserl_bringup.graphs import GRAPHS, GraphSpec, NodeSpec, ResolvedNode
from hilserl_bringup.runner import Child, GraphRunner, main, plan, ros_arguments

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]


def resolved(name='n', required=True, stop_first=False, **kwargs):
    fields = {'package': 'p', 'executable': 'e', 'name': name, 'namespace': '',
              'parameter_files': (), 'parameters': {}, 'remappings': (), 'arguments': (),
              'log_level': 'info', 'managed': False, 'full_ros_only': False,
              'required': required, 'stop_first': stop_first}
    return ResolvedNode(**{**fields, **kwargs})


def python_child(name, code, **kwargs):
    return Child(resolved(name, **kwargs), [sys.executable, '-u', '-c', code])


def pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_ros_arguments_encode_every_part():
    node = resolved('safety_filter', namespace='robot',
                    parameter_files=(pathlib.Path('/c/a.yaml'),),
                    parameters={'use_sim_time': True, 'node_names': ['a', 'b'], 'mode': 'demo',
                                'rate_hz': 10.0},
                    remappings=(('~/stats', '/hilserl/learner_stats'),), log_level='debug')
    args = ros_arguments(node)
    assert args[:5] == ['--ros-args', '-r', '__node:=safety_filter', '-r', '__ns:=/robot']
    assert args[5:7] == ['--params-file', '/c/a.yaml']
    assert 'use_sim_time:=true' in args and 'node_names:=["a", "b"]' in args
    assert 'mode:="demo"' in args and 'rate_hz:=10.0' in args
    assert args[-2:] == ['--log-level', 'debug']
    assert args[args.index('~/stats:=/hilserl/learner_stats') - 1] == '-r'


def fake_installed(available):
    return lambda package, executable: (
        [f'/install/{package}/lib/{package}/{executable}']
        if (package, executable) in available else None)


def test_missing_executables_are_all_named_before_anything_starts():
    notes = []
    with pytest.raises(MissingExecutablesError) as error:
        plan(GRAPHS['sim'], {}, PACKAGE_DIR,
             fake_installed({('hilserl_bringup', 'lifecycle_manager')}), say=notes.append)
    for name in ('so101_driver/driver_node', 'hilserl_safety/safety_filter_node',
                 'hilserl_learner/learner_node', 'hilserl_actor/actor_node',
                 'hilserl_actor/oracle_node'):
        assert name in str(error.value)
    assert any('rviz2' in n and 'full ROS' in n for n in notes)


def test_allow_missing_starts_the_rest_and_manages_only_them():
    available = {('hilserl_bringup', 'lifecycle_manager'), ('so101_driver', 'driver_node'),
                 ('hilserl_safety', 'safety_filter_node')}
    notes = []
    children = plan(GRAPHS['sim'], {}, PACKAGE_DIR, fake_installed(available),
                    allow_missing=True, say=notes.append)
    assert [c.name for c in children] == ['so101_driver', 'safety_filter', 'lifecycle_manager']
    manager = children[-1]
    assert manager.argv[0] == '/install/hilserl_bringup/lib/hilserl_bringup/lifecycle_manager'
    assert 'node_names:=["so101_driver", "safety_filter"]' in manager.argv
    assert sum('not installed' in n for n in notes) == 3


def test_cli_errors_and_listing():
    out = io.StringIO()
    assert main(['--list'], out=out) == 0
    assert all(name in out.getvalue() for name in GRAPHS)
    for argv, code, text in ((['nosuch'], 2, "no graph 'nosuch'"),
                             (['sim', 'backend:=gazebo'], 2, 'backend'),
                             (['sim', 'backend=sim'], 2, 'name:=value'),
                             (['sim', 'colour:=red'], 2, 'colour')):
        out = io.StringIO()
        assert main(argv, out=out, share_dir=PACKAGE_DIR) == code, argv
        assert text in out.getvalue()


def test_dry_run_prints_command_lines():
    out = io.StringIO()
    code = main(['driver_only', 'backend:=real', '--dry-run'], out=out, share_dir=PACKAGE_DIR,
                find_executable=lambda p, e: [f'/bin/{e}'])
    lines = out.getvalue().splitlines()
    assert code == 0
    commands = [line for line in lines if line.startswith('/bin/')]
    assert [c.split()[0] for c in commands] == ['/bin/driver_node', '/bin/camera_node',
                                                '/bin/camera_node', '/bin/safety_filter_node',
                                                '/bin/lifecycle_manager']
    assert '-p \'backend:="real"\'' in commands[0]  # shell-quoted YAML string
    assert 'use_sim_time:=false' in commands[0]


def test_runner_relays_prefixed_output_and_stops_on_signal():
    out = io.StringIO()
    children = [python_child('talker', 'import time\nprint("hello", flush=True)\n'
                             'time.sleep(60)'),
                python_child('quiet', 'import time\ntime.sleep(60)')]
    runner = GraphRunner(children, out, sigint_timeout_s=5.0)
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    assert runner.run() == 0
    assert time.monotonic() - started < 10
    text = out.getvalue()
    assert '[talker] hello' in text
    assert all(pid_gone(c.process.pid) for c in children)
    assert all(c.process.returncode is not None for c in children)


def test_runner_escalates_to_sigterm_and_sigkill():
    out = io.StringIO()
    stubborn = ('import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n'
                'signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("up", flush=True)\n'
                'time.sleep(60)')
    children = [python_child('stubborn', stubborn)]
    runner = GraphRunner(children, out, sigint_timeout_s=0.5, sigterm_timeout_s=0.5)
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    assert runner.run() == 0
    assert 'SIGTERM to stubborn' in out.getvalue() and 'SIGKILL to stubborn' in out.getvalue()
    assert children[0].process.returncode == -signal.SIGKILL


def test_required_child_exit_stops_the_graph_with_its_name():
    out = io.StringIO()
    children = [python_child('steady', 'import time\ntime.sleep(60)'),
                python_child('crasher', 'import time, sys\ntime.sleep(0.5)\nsys.exit(3)'),
                python_child('optional', 'pass', required=False)]
    assert GraphRunner(children, out).run() == 1
    text = out.getvalue()
    assert 'required node crasher failed (exit code 3)' in text
    assert 'optional exited (exit code 0); not required' in text
    assert pid_gone(children[0].process.pid)


def test_required_child_finishing_stops_the_graph_without_an_error():
    out = io.StringIO()
    children = [python_child('steady', 'import time\ntime.sleep(60)'),
                python_child('recorder', 'import time\ntime.sleep(0.5)')]
    assert GraphRunner(children, out).run() == 0
    text = out.getvalue()
    assert 'required node recorder finished (exit code 0); stopping the graph' in text
    assert 'ERROR' not in text
    assert pid_gone(children[0].process.pid)


def test_stop_first_children_are_stopped_before_the_rest():
    out = io.StringIO()
    record = ('import signal, sys, time, json\n'
              'def stop(*_):\n'
              '    print(json.dumps(["stopped", time.monotonic()]), flush=True)\n'
              '    time.sleep({delay})\n    sys.exit(0)\n'
              'signal.signal(signal.SIGINT, stop)\ntime.sleep(60)')
    children = [python_child('node', record.format(delay=0)),
                python_child('manager', record.format(delay=0.5), stop_first=True)]
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    assert GraphRunner(children, out).run() == 0
    stamps = {}
    for line in out.getvalue().splitlines():
        if '["stopped"' in line:
            name = line[1:line.index(']')]
            stamps[name] = json.loads(line[line.index('] ') + 2:])[1]
    assert stamps['manager'] + 0.4 < stamps['node']  # node signalled after manager exited


def test_plan_skips_full_ros_nodes_with_a_note():
    graph = GraphSpec('g', 'test', (), (NodeSpec('rviz2', 'rviz2', 'rviz2', full_ros_only=True,
                                                 required=False),
                                        NodeSpec('p', 'e', 'n')))
    notes = []
    children = plan(graph, {}, PACKAGE_DIR, lambda p, e: ['/bin/true'], say=notes.append)
    assert [c.name for c in children] == ['n']
    assert len(notes) == 1 and 'rviz2' in notes[0]
