"""run_graph: start a graph description without ``ros2 launch`` (ROS-free: subprocess + signals).

    run_graph <graph> [name:=value ...] [--dry-run] [--allow-missing]
    run_graph --list [<graph>]

Every node runs as its own process (the installed executable, as ``ros2 run`` would, with
``--ros-args``), in its own process group, with its output lines prefixed by its name. SIGINT
and SIGTERM are forwarded: the lifecycle manager is stopped first (it brings the managed nodes
down in reverse order), then every other node; each gets SIGINT, then SIGTERM, then SIGKILL
after timeouts. When a required node exits on its own, the graph is stopped: with an error
naming it when it failed, quietly when it finished (exit code 0, e.g. a recorder done with its
session). Nodes that exist only on full ROS 2 installs (rviz2,
robot_state_publisher, joy_node) are skipped with a note.

Exit codes: 0 stopped by SIGINT/SIGTERM (or a required node exited 0), 1 a node failed or an
executable is missing, 2 bad command line (unknown graph or argument, invalid value).
"""
import argparse
from collections.abc import Callable
import contextlib
import dataclasses
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import TextIO

from hilserl_bringup.errors import BringupError, GraphSpecError, MissingExecutablesError
from hilserl_bringup.graphs import GRAPHS, GraphSpec, ResolvedNode

PACKAGE = 'hilserl_bringup'
ExecutableFinder = Callable[[str, str], 'list[str] | None']


def installed_executable(package: str, executable: str) -> list[str] | None:
    """``[<prefix>/lib/<package>/<executable>]`` from the ament index, None if not installed."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = get_package_prefix(package)
    except (PackageNotFoundError, ValueError):
        return None
    path = pathlib.Path(prefix) / 'lib' / package / executable
    return [str(path)] if path.is_file() and os.access(path, os.X_OK) else None


def installed_share_dir() -> pathlib.Path:
    from ament_index_python.packages import get_package_share_directory

    return pathlib.Path(get_package_share_directory(PACKAGE))


def ros_arguments(node: ResolvedNode) -> list[str]:
    """The ``--ros-args`` part of a node's command line (inline values as YAML via JSON)."""
    args = ['--ros-args', '-r', f'__node:={node.name}']
    if node.namespace:
        args += ['-r', f'__ns:=/{node.namespace.strip("/")}']
    for path in node.parameter_files:
        args += ['--params-file', str(path)]
    for key, value in node.parameters.items():
        args += ['-p', f'{key}:={json.dumps(value)}']
    for source, target in node.remappings:
        args += ['-r', f'{source}:={target}']
    return args + ['--log-level', node.log_level]


@dataclasses.dataclass
class Child:
    """One started node process."""

    node: ResolvedNode
    argv: list[str]
    process: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    reported: bool = False

    @property
    def name(self) -> str:
        return self.node.qualified_name

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: a killed runner leaves no orphan nodes


try:  # resolved in the parent: nothing may be imported between fork and exec
    import ctypes

    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == 'linux' else None
except (OSError, AttributeError):  # pragma: no cover
    _PRCTL = None


class GraphRunner:
    """Starts the resolved nodes, relays their output, supervises and stops them."""

    def __init__(self, children: list[Child], out: TextIO = sys.stdout,
                 sigint_timeout_s: float = 10.0, sigterm_timeout_s: float = 5.0):
        self.children = children
        self._out = out
        self._out_lock = threading.Lock()
        self._sigint_timeout_s = sigint_timeout_s
        self._sigterm_timeout_s = sigterm_timeout_s
        self._signals = 0
        self._escalate = threading.Event()

    def say(self, text: str) -> None:
        self._write(f'[run_graph] {text}\n')

    def run(self) -> int:
        """Start everything, wait for a signal or a required node's exit, stop everything."""
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            exit_code = self._supervise() if self._start_all() else 1
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return exit_code

    def _start_all(self) -> bool:
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        if self._out.isatty():  # the children write to a pipe: keep rcutils' colours
            env.setdefault('RCUTILS_COLORIZED_OUTPUT', '1')
        for child in self.children:
            if self._signals:
                break  # stopped while starting: _supervise sees the signal
            try:
                child.process = subprocess.Popen(
                    child.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, env=env, start_new_session=True,
                    preexec_fn=_die_with_parent)
            except OSError as error:
                self.say(f'ERROR: cannot start {child.name}: {error}')
                return False
            child.reader = threading.Thread(target=self._relay, args=(child,), daemon=True)
            child.reader.start()
            self.say(f'started {child.name} (pid {child.process.pid})')
        return True

    def _supervise(self) -> int:
        while not self._signals:
            for child in self.children:
                code = child.process.poll()
                if code is None:
                    continue
                if child.node.required and code != 0:
                    self.say(f'ERROR: required node {child.name} failed (exit code {code}); '
                             'stopping the graph')
                    return 1
                if child.node.required:  # done, e.g. a recorder that finished its session
                    self.say(f'required node {child.name} finished (exit code 0); stopping '
                             'the graph')
                    return 0
                if not child.reported:
                    child.reported = True
                    self.say(f'{child.name} exited (exit code {code}); not required, going on')
            time.sleep(0.05)
        self.say('signal received: stopping the graph')
        return 0

    def stop_all(self) -> None:
        """Stop the lifecycle manager first, then everything else (SIGINT/SIGTERM/SIGKILL)."""
        first = [c for c in self.children if c.node.stop_first]
        rest = [c for c in self.children if not c.node.stop_first]
        for group in (first, rest):
            self._stop_group([c for c in group if c.process is not None])
        for child in self.children:
            if child.process is not None:
                child.signal_group(signal.SIGKILL)  # leftovers of a node's own children
                if child.reader is not None:
                    child.reader.join(timeout=2.0)
                if child.process.returncode not in (0, None):
                    self.say(f'{child.name} exit code {child.process.returncode}')

    def _stop_group(self, group: list[Child]) -> None:
        stages = ((signal.SIGINT, self._sigint_timeout_s),
                  (signal.SIGTERM, self._sigterm_timeout_s), (signal.SIGKILL, 5.0))
        for sig, timeout_s in stages:
            running = [c for c in group if c.running()]
            if not running:
                return
            if sig != signal.SIGINT:
                self.say(f'{signal.Signals(sig).name} to ' + ', '.join(c.name for c in running))
            self._escalate.clear()
            for child in running:
                child.signal_group(sig)
            deadline = time.monotonic() + timeout_s
            while (any(c.running() for c in running) and time.monotonic() < deadline
                   and not self._escalate.is_set()):
                time.sleep(0.02)

    def _on_signal(self, signum, _frame) -> None:
        self._signals += 1
        if self._signals > 1:
            self._escalate.set()  # another Ctrl-C while stopping: next stage now

    def _relay(self, child: Child) -> None:
        prefix = f'[{child.name}] '
        for raw in iter(child.process.stdout.readline, b''):
            self._write(prefix + raw.decode('utf-8', errors='replace').rstrip('\n') + '\n')
        child.process.stdout.close()

    def _write(self, text: str) -> None:
        with self._out_lock:
            self._out.write(text)
            self._out.flush()


def plan(graph: GraphSpec, overrides: dict[str, str], share_dir,
         find_executable: ExecutableFinder = installed_executable, allow_missing: bool = False,
         say: Callable[[str], None] = print) -> list[Child]:
    """The processes to start: skips full-ROS-only nodes, checks every executable first."""
    values = graph.argument_values(overrides)
    selected = graph.selected_nodes(values)
    skipped = {(n.package, n.executable) for n in selected if n.full_ros_only}
    for node in selected:
        if node.full_ros_only:
            say(f'skipping {node.name} ({node.package}/{node.executable}): full ROS 2 installs '
                f'only; use ros2 launch {PACKAGE} {graph.name}.launch.py there')
    commands = {}
    missing = []
    for node in selected:
        if node.full_ros_only:
            continue
        command = find_executable(node.package, node.executable)
        if command is None:
            missing.append(f'{node.package}/{node.executable} (node {node.name})')
            skipped.add((node.package, node.executable))
        commands[(node.package, node.executable)] = command
    if missing and not allow_missing:
        raise MissingExecutablesError(missing)
    for entry in missing:
        say(f'skipping {entry}: not installed (--allow-missing)')
    nodes = graph.resolve(values, share_dir, exclude=skipped)
    return [Child(n, [*commands[(n.package, n.executable)], *n.arguments, *ros_arguments(n)])
            for n in nodes]


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog='run_graph', description='Start a HIL-SERL graph without ros2 launch.',
        epilog='Graph arguments are name:=value pairs; run_graph --list shows them.')
    parser.add_argument('graph', nargs='?', help='graph name (see --list)')
    parser.add_argument('assignments', nargs='*', metavar='name:=value')
    parser.add_argument('--list', action='store_true', help='list graphs and their arguments')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the command lines instead of starting anything')
    parser.add_argument('--allow-missing', action='store_true',
                        help='start the installed nodes even if some executables are missing')
    parser.add_argument('--sigint-timeout', type=float, default=10.0, metavar='S',
                        help='seconds a node gets to exit after SIGINT (default 10)')
    parser.add_argument('--sigterm-timeout', type=float, default=5.0, metavar='S',
                        help='seconds after SIGTERM before SIGKILL (default 5)')
    return parser, parser.parse_args(argv)


def describe(graph: GraphSpec) -> str:
    lines = [f'{graph.name}: {graph.description}', '  arguments:']
    for arg in graph.arguments:
        choices = f' [{"|".join(arg.choices)}]' if arg.choices else ''
        default = arg.default or "''"
        lines.append(f'    {arg.name}:={default}{choices}  {arg.description}')
    lines.append('  nodes: ' + ', '.join(
        n.name + ('*' if n.managed else '') + (' (full ROS)' if n.full_ros_only else '')
        + (' (conditional)' if n.when else '') for n in graph.nodes))
    return '\n'.join(lines) + '\n  (* = managed by the lifecycle manager)'


def main(argv=None, graphs: dict[str, GraphSpec] = GRAPHS,
         find_executable: ExecutableFinder = installed_executable, share_dir=None,
         out: TextIO = sys.stdout) -> int:
    """Entry point of ``run_graph``; returns the exit code."""
    parser, options = _parse(argv)
    if options.list or options.graph is None:
        chosen = [graphs[options.graph]] if options.graph in graphs else graphs.values()
        out.write('\n\n'.join(describe(g) for g in chosen) + '\n')
        return 0 if options.list else 2
    try:
        if options.graph not in graphs:
            raise GraphSpecError(f'no graph {options.graph!r}; graphs: {", ".join(graphs)}')
        overrides = {}
        for assignment in options.assignments:
            name, sep, value = assignment.partition(':=')
            if not sep or not name:
                raise GraphSpecError(f'{assignment!r}: expected name:=value')
            overrides[name] = value
        runner_say = GraphRunner([], out).say
        children = plan(graphs[options.graph], overrides,
                        share_dir if share_dir is not None else installed_share_dir(),
                        find_executable, options.allow_missing, runner_say)
    except GraphSpecError as error:
        out.write(f'run_graph: error: {error}\n')
        return 2
    except MissingExecutablesError as error:
        out.write(f'run_graph: error: graph {options.graph}: {error}\n'
                  '  Build the workspace (bash scripts/setup.sh) and source it '
                  '(source scripts/ros_env.sh); nodes of packages that are not written yet '
                  'cannot start. --allow-missing starts the installed ones.\n')
        return 1
    except BringupError as error:
        out.write(f'run_graph: error: {error}\n')
        return 1
    if not children:
        out.write(f'run_graph: error: graph {options.graph}: nothing to start\n')
        return 1
    if options.dry_run:
        out.write(''.join(f'{shlex.join(c.argv)}\n' for c in children))
        return 0
    runner = GraphRunner(children, out, options.sigint_timeout, options.sigterm_timeout)
    runner.say(f'graph {options.graph}: starting ' + ', '.join(c.name for c in children))
    return runner.run()


if __name__ == '__main__':
    raise SystemExit(main())
