"""Nav2-style sequencing of lifecycle transitions over an ordered list of nodes (ROS-free).

The sequencer decides which transition each node needs, in which order, and what to undo when
one fails; talking to the nodes is left to a ``LifecycleClient`` (the ROS node implements it
with ``<node>/get_state`` and ``<node>/change_state`` service calls, tests with a fake).

Up commands (STARTUP, RESUME) go through the list in order and stop at the first failure,
then return every node they touched to the state it had before the command, in reverse
order. Down commands (PAUSE, RESET, SHUTDOWN) go through the list in reverse and carry on
past failures, so as much of the graph as possible reaches the safe state.
"""
from collections.abc import Callable
import dataclasses
import enum
import time
from typing import Protocol

from hilserl_bringup.errors import NodeUnreachableError

UNCONFIGURED = 'unconfigured'
INACTIVE = 'inactive'
ACTIVE = 'active'
FINALIZED = 'finalized'
UNREACHABLE = 'unreachable'
"""Pseudo-state of a node whose lifecycle services are gone or do not answer."""
PRIMARY_STATES = (UNCONFIGURED, INACTIVE, ACTIVE, FINALIZED)

TRANSITIONS: dict[str, tuple[str, str]] = {
    'configure': (UNCONFIGURED, INACTIVE),
    'cleanup': (INACTIVE, UNCONFIGURED),
    'activate': (INACTIVE, ACTIVE),
    'deactivate': (ACTIVE, INACTIVE),
    'unconfigured_shutdown': (UNCONFIGURED, FINALIZED),
    'inactive_shutdown': (INACTIVE, FINALIZED),
    'active_shutdown': (ACTIVE, FINALIZED),
}
"""Transition name -> (start state, goal state); the names of lifecycle_msgs/Transition."""

_LEVEL = {UNCONFIGURED: 0, INACTIVE: 1, ACTIVE: 2, FINALIZED: -1, UNREACHABLE: -1}


class Command(enum.IntEnum):
    """The commands of hilserl_msgs/srv/ManageGraph (same values)."""

    STARTUP = 0
    PAUSE = 1
    RESUME = 2
    RESET = 3
    SHUTDOWN = 4
    RESTART = 5


class LifecycleClient(Protocol):
    """How the sequencer reaches the managed nodes."""

    def is_available(self, node: str) -> bool:
        """Whether the node's lifecycle services are available now."""

    def wait_until_available(self, node: str, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the node's lifecycle services; False if they are not."""

    def get_state(self, node: str, timeout_s: float) -> str:
        """The node's state label; raises NodeUnreachableError without an answer."""

    def change_state(self, node: str, transition: str, timeout_s: float) -> bool:
        """Request a transition (a key of TRANSITIONS); raises NodeUnreachableError."""


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """Outcome of one command, as the ManageGraph response reports it."""

    command: str
    success: bool
    message: str
    states: dict[str, str]
    """Every managed node's state after the command, in list order."""
    failed_node: str = ''
    failed_transition: str = ''


@dataclasses.dataclass(frozen=True)
class NodeFailure:
    """A node found dead or below the state it should be in."""

    node: str
    expected: str
    actual: str
    reason: str = ''

    def describe(self) -> str:
        why = f' ({self.reason})' if self.reason else ''
        return f'{self.node} is {self.actual}, expected {self.expected}{why}'


@dataclasses.dataclass(frozen=True)
class SequencerTimeouts:
    service_s: float = 30.0
    transition_s: float = 30.0
    state_query_s: float = 5.0


class _StepError(Exception):
    def __init__(self, node: str, transition: str, reason: str):
        super().__init__(f'{node}: {transition} {reason}')
        self.node, self.transition, self.reason = node, transition, reason


class _AbortedError(Exception):
    pass


def plan(state: str, target: str) -> list[str]:
    """The transitions that take a node from ``state`` to ``target`` (shutdown via cleanup)."""
    if state == target:
        return []
    if state not in PRIMARY_STATES or state == FINALIZED:
        raise ValueError(f'no way from {state!r} to {target!r}')
    if target == FINALIZED:
        return plan(state, UNCONFIGURED) + ['unconfigured_shutdown']
    up = _LEVEL[target] > _LEVEL[state]
    steps = []
    while state != target:
        name = next(t for t, (start, goal) in TRANSITIONS.items()
                    if start == state and goal != FINALIZED
                    and (_LEVEL[goal] > _LEVEL[start]) == up)
        steps.append(name)
        state = TRANSITIONS[name][1]
    return steps


def is_worse(actual: str, expected: str) -> bool:
    """Whether ``actual`` is a failure for a node that should be in ``expected``."""
    return _LEVEL.get(actual, 99) < _LEVEL.get(expected, -1)


class GraphSequencer:
    """Runs ManageGraph commands over ``node_names`` and watches the nodes' health."""

    def __init__(self, node_names, client: LifecycleClient,
                 timeouts: SequencerTimeouts = SequencerTimeouts(),
                 abort: Callable[[], bool] = lambda: False,
                 on_transition: Callable[[str, str, bool, float], None] | None = None):
        self.node_names = tuple(node_names)
        self._client = client
        self._timeouts = timeouts
        self._abort = abort
        self._on_transition = on_transition
        self.expected: dict[str, str] = {}
        """Each node's state after the last command (updated by check_health)."""
        self.last_error = ''
        """Why the graph is degraded: a failed command or node failure; '' when healthy."""

    # --- queries -------------------------------------------------------------------------
    @property
    def graph_active(self) -> bool:
        """Whether the last command brought every node to active and none has failed since."""
        return all(self.expected.get(n) == ACTIVE for n in self.node_names)

    def missing_nodes(self, timeout_s: float) -> list[str]:
        """The nodes whose lifecycle services do not appear within ``timeout_s`` in total."""
        deadline = time.monotonic() + timeout_s
        missing = []
        for node in self.node_names:
            remaining = max(0.0, deadline - time.monotonic())
            if not self._client.wait_until_available(node, remaining):
                missing.append(node)
        return missing

    def snapshot(self) -> dict[str, str]:
        """Every node's current state, 'unreachable' where it does not answer."""
        return {node: self._query(node) for node in self.node_names}

    # --- commands ------------------------------------------------------------------------
    def run(self, command: Command, exclude=()) -> CommandResult:
        """Execute ``command`` over the managed nodes (except ``exclude``)."""
        command = Command(command)
        nodes = [n for n in self.node_names if n not in exclude]
        if command == Command.RESTART:
            reset = self._down(Command.RESET, nodes)
            if not reset.success:
                return self._finish(dataclasses.replace(reset, command='RESTART'))
            result = self._up(Command.STARTUP, nodes)
            return self._finish(dataclasses.replace(result, command='RESTART'))
        if command in (Command.STARTUP, Command.RESUME):
            return self._finish(self._up(command, nodes))
        return self._finish(self._down(command, nodes))

    def check_health(self) -> list[NodeFailure]:
        """Poll every node with an expected state; return the ones that fell below it."""
        failures = []
        for node in self.node_names:
            expected = self.expected.get(node)
            if expected is None:
                continue
            actual, reason = self._poll(node)
            if actual not in PRIMARY_STATES and actual != UNREACHABLE:
                continue  # mid-transition: judge it at the next check
            if is_worse(actual, expected):
                failures.append(NodeFailure(node, expected, actual, reason))
            self.expected[node] = actual
        if failures:
            self.last_error = 'node failure: ' + '; '.join(f.describe() for f in failures)
        return failures

    def _poll(self, node: str) -> tuple[str, str]:
        """(state, reason): a node whose services are gone is dead at once; one that does
        not answer gets a second chance (a lost answer or a briefly busy node).
        """
        reason = ''
        for _attempt in range(2):
            if not self._client.is_available(node):
                return UNREACHABLE, 'its lifecycle services are gone'
            try:
                return self._client.get_state(node, self._timeouts.state_query_s), ''
            except NodeUnreachableError as error:
                reason = error.reason
        return UNREACHABLE, reason

    def react(self, failures: list[NodeFailure], policy: str) -> CommandResult | None:
        """Apply ``policy`` ('reset', 'pause', 'ignore') to the nodes that did not fail."""
        if not failures or policy == 'ignore':
            return None
        if policy not in ('reset', 'pause'):
            raise ValueError(f'unknown failure policy {policy!r}')
        reported = 'node failure: ' + '; '.join(f.describe() for f in failures)
        command = Command.PAUSE if policy == 'pause' else Command.RESET
        result = self.run(command, exclude={f.node for f in failures})
        self.last_error = f'{reported}; {result.message}'
        return result

    # --- internals -----------------------------------------------------------------------
    def _up(self, command: Command, nodes: list[str]) -> CommandResult:
        allowed = {'configure', 'activate'} if command == Command.STARTUP else {'activate'}
        states: dict[str, str] = {}
        before: dict[str, str] = {}
        touched: list[str] = []
        try:
            for node in nodes:
                self._check_abort()
                if not self._client.wait_until_available(node, self._timeouts.service_s):
                    raise _StepError(node, 'wait_for_service', 'lifecycle services not available '
                                  f'within {self._timeouts.service_s:g} s')
                before[node] = states[node] = self._get(node, 'get_state')
                touched.append(node)
                self._drive(node, ACTIVE, states, allowed)
        except _AbortedError:
            return self._result(command, False, f'{command.name} aborted', states)
        except _StepError as failure:
            if failure.node in states:
                states[failure.node] = self._query(failure.node)
            undone = self._rollback(touched, before, states)
            message = (f'{command.name} failed: node {failure.node}: {failure.transition} '
                       f'{failure.reason}')
            if failure.node in states:
                message += f' (the node is {states[failure.node]})'
            if undone:
                message += '; rolled back: ' + ', '.join(undone)
            return self._result(command, False, message, states, failure.node,
                                failure.transition)
        return self._result(command, True, f'{command.name}: {len(nodes)} node(s) active',
                            states)

    def _down(self, command: Command, nodes: list[str]) -> CommandResult:
        target = {Command.PAUSE: INACTIVE, Command.RESET: UNCONFIGURED,
                  Command.SHUTDOWN: FINALIZED}[command]
        states: dict[str, str] = {}
        failures: list[_StepError] = []
        gone: list[str] = []
        for node in reversed(nodes):
            try:
                self._check_abort()
                if command == Command.SHUTDOWN and not self._client.is_available(node):
                    # Its lifecycle services are gone: the process has exited (a recorder
                    # that finished its session, or a crash its exit code reports). It is as
                    # down as SHUTDOWN would bring it; waiting for it would only fail.
                    states[node] = UNREACHABLE
                    gone.append(node)
                    continue
                if not self._client.wait_until_available(node, self._timeouts.state_query_s):
                    states[node] = UNREACHABLE
                    raise _StepError(node, 'wait_for_service', 'lifecycle services not available')
                states[node] = self._get(node, 'get_state')
                goal = target
                if target != FINALIZED and _LEVEL[states[node]] <= _LEVEL[target]:
                    goal = states[node]  # already at or below the target: leave it
                self._drive(node, goal, states, set(TRANSITIONS) - {'configure', 'activate'})
            except _AbortedError:
                return self._result(command, False, f'{command.name} aborted', states)
            except _StepError as failure:
                failures.append(failure)
                if states.get(node) != UNREACHABLE:
                    states[node] = self._query(node)
        if failures:
            first = failures[0]
            message = f'{command.name} incomplete: ' + '; '.join(
                f'node {f.node}: {f.transition} {f.reason} (the node is {states[f.node]})'
                for f in failures)
            return self._result(command, False, message, states, first.node, first.transition)
        message = (f'{command.name}: {len(nodes) - len(gone)} node(s) '
                   f'{target if target != INACTIVE else "at most inactive"}')
        if gone:
            message += '; already exited: ' + ', '.join(reversed(gone))
        return self._result(command, True, message, states)

    def _drive(self, node: str, goal: str, states: dict[str, str], allowed: set[str]) -> None:
        state = states[node]
        if state not in PRIMARY_STATES:
            raise _StepError(node, 'get_state', f'reported {state!r}, not a primary state')
        try:
            steps = plan(state, goal)
        except ValueError:
            raise _StepError(node, 'plan', f'cannot go from {state} to {goal}') from None
        for transition in steps:
            if transition not in allowed:
                raise _StepError(node, transition, f'is needed to reach {goal} from {state} but '
                              'this command does not do it')
            self._check_abort()
            started = time.monotonic()
            try:
                ok = self._client.change_state(node, transition, self._timeouts.transition_s)
            except NodeUnreachableError as error:
                self._notify(node, transition, False, started)
                raise _StepError(node, transition, error.reason) from None
            self._notify(node, transition, ok, started)
            if not ok:
                raise _StepError(node, transition, 'failed')
            state = states[node] = TRANSITIONS[transition][1]

    def _rollback(self, touched: list[str], before: dict[str, str],
                  states: dict[str, str]) -> list[str]:
        undone = []
        for node in reversed(touched):
            if states.get(node) in (UNREACHABLE, FINALIZED) or states[node] == before[node]:
                continue
            try:
                self._drive(node, before[node], states, {'deactivate', 'cleanup'})
                undone.append(f'{node} ({states[node]})')
            except _StepError as failure:
                undone.append(f'{node} (rollback {failure.transition} {failure.reason})')
                states[node] = self._query(node)
            except _AbortedError:
                break
        return undone

    def _get(self, node: str, what: str) -> str:
        try:
            return self._client.get_state(node, self._timeouts.state_query_s)
        except NodeUnreachableError as error:
            raise _StepError(node, what, error.reason) from None

    def _query(self, node: str) -> str:
        try:
            if not self._client.is_available(node):
                return UNREACHABLE
            return self._client.get_state(node, self._timeouts.state_query_s)
        except NodeUnreachableError:
            return UNREACHABLE

    def _check_abort(self) -> None:
        if self._abort():
            raise _AbortedError()

    def _notify(self, node: str, transition: str, ok: bool, started: float) -> None:
        if self._on_transition is not None:
            self._on_transition(node, transition, ok, time.monotonic() - started)

    def _result(self, command: Command, success: bool, message: str, states: dict[str, str],
                failed_node: str = '', failed_transition: str = '') -> CommandResult:
        return CommandResult(command.name, success, message, states, failed_node,
                             failed_transition)

    def _finish(self, result: CommandResult) -> CommandResult:
        states = {n: result.states.get(n) or self._query(n) for n in self.node_names}
        self.expected.update(states)
        self.last_error = '' if result.success else result.message
        return dataclasses.replace(result, states=states)
