"""Start installed node executables as separate processes and stop them the way a launcher does."""
import contextlib
import dataclasses
import os
import pathlib
import signal
import subprocess
import time

import yaml


def executable_path(package: str, executable: str) -> pathlib.Path:
    """``<prefix>/lib/<package>/<executable>`` of an installed package (what ros2 run runs)."""
    from ament_index_python.packages import get_package_prefix

    path = pathlib.Path(get_package_prefix(package)) / 'lib' / package / executable
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f'{path} is not an installed executable of {package}')
    return path


def ros_arguments(node_name: str | None = None, namespace: str | None = None,
                  params_files: list[pathlib.Path] = (), remappings: dict[str, str] | None = None,
                  log_level: str | None = None) -> list[str]:
    """The ``--ros-args`` part of a node command line."""
    args = ['--ros-args']
    if node_name:
        args += ['-r', f'__node:={node_name}']
    if namespace:
        args += ['-r', f'__ns:={namespace}']
    for params_file in params_files:
        args += ['--params-file', str(params_file)]
    for source, target in (remappings or {}).items():
        args += ['-r', f'{source}:={target}']
    if log_level:
        args += ['--log-level', log_level]
    return args


def write_params_file(path: pathlib.Path, parameters: dict) -> pathlib.Path:
    """A ROS 2 parameters file that applies ``parameters`` to any node (``/**``)."""
    path.write_text(yaml.safe_dump({'/**': {'ros__parameters': parameters}}))
    return path


@dataclasses.dataclass
class RosProcess:
    """One child process with its output captured to a log file."""

    name: str
    argv: list[str]
    log_path: pathlib.Path
    env: dict[str, str] | None = None
    process: subprocess.Popen | None = None
    stopped: bool = False

    def start(self) -> 'RosProcess':
        self._log = open(self.log_path, 'wb')  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=self.env, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send_signal(self, sig: int) -> None:
        if self.is_running():
            self.process.send_signal(sig)

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGINT, then SIGTERM, then SIGKILL (each after ``timeout_s``); return the exit code."""
        self.stopped = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            if not self.is_running():
                break
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                continue
        if self.is_running():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout_s)
        # Children of the node (if any) go with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if not self._log.closed:
            self._log.close()
        return self.process.returncode

    def output(self) -> str:
        if hasattr(self, '_log') and not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''


class ProcessGroup:
    """The processes one test started; all of them are stopped at the end of the test."""

    def __init__(self, log_dir: pathlib.Path):
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[RosProcess] = []
        self.exit_codes: dict[str, int] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> RosProcess:
        process = RosProcess(name, [str(a) for a in argv], self.log_dir / f'{name}.log',
                             env=env).start()
        self.processes.append(process)
        return process

    def start_node(self, package: str, executable: str, name: str | None = None,
                   parameters: dict | None = None, params_files: list[pathlib.Path] = (),
                   remappings: dict[str, str] | None = None, namespace: str | None = None,
                   arguments: list[str] = (), env: dict[str, str] | None = None,
                   log_level: str | None = None) -> RosProcess:
        """Start an installed node executable, as ``ros2 run`` with ``--ros-args`` would."""
        label = name or executable
        files = list(params_files)
        if parameters:
            files.append(write_params_file(self.log_dir / f'{label}.params.yaml', parameters))
        argv = [executable_path(package, executable), *arguments,
                *ros_arguments(name, namespace, files, remappings, log_level)]
        return self.start(label, argv, env)

    def stop_all(self, timeout_s: float = 10.0) -> dict[str, int]:
        """Stop every process not stopped yet, newest first; return the exit codes by name
        (of the newest process of each name stopped in this call)."""
        recorded = set()
        for process in reversed(self.processes):
            if process.stopped:
                continue
            code = process.stop(timeout_s)
            if process.name not in recorded:
                self.exit_codes[process.name] = code
                recorded.add(process.name)
        return dict(self.exit_codes)

    def logs(self, tail_chars: int = 4000) -> str:
        return '\n'.join(f'----- {p.name} (pid {p.process.pid}) -----\n{p.output()[-tail_chars:]}'
                         for p in self.processes)


def wait_until(predicate, timeout_s: float, what: str, poll_s: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'{what}: not within {timeout_s} s')
        time.sleep(poll_s)
