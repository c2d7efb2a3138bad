"""lifecycle_manager: Nav2-style bring-up, supervision and tear-down of the managed nodes.

A plain rclpy node (not itself a lifecycle node), like nav2_lifecycle_manager. The sequencing
lives in ``hilserl_bringup.lifecycle_sequencer``; this module only maps it onto ROS.
"""
import dataclasses
import signal
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException, ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_srvs.srv import Trigger

from hilserl_bringup.errors import NodeUnreachableError
from hilserl_bringup.lifecycle_sequencer import (
    UNREACHABLE,
    Command,
    CommandResult,
    GraphSequencer,
    SequencerTimeouts,
)
from hilserl_bringup.params import LifecycleManagerParams
from hilserl_msgs.srv import ManageGraph
from so101_driver.dataclass_docs import field_docs

TRANSITION_IDS = {
    'configure': Transition.TRANSITION_CONFIGURE,
    'cleanup': Transition.TRANSITION_CLEANUP,
    'activate': Transition.TRANSITION_ACTIVATE,
    'deactivate': Transition.TRANSITION_DEACTIVATE,
    'unconfigured_shutdown': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
    'inactive_shutdown': Transition.TRANSITION_INACTIVE_SHUTDOWN,
    'active_shutdown': Transition.TRANSITION_ACTIVE_SHUTDOWN,
}
DIAGNOSTICS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class RosLifecycleClient:
    """The sequencer's LifecycleClient over <node>/get_state and <node>/change_state."""

    def __init__(self, node: Node, node_names, callback_group, cancelled: threading.Event):
        self._node = node
        self._cancelled = cancelled
        self._clients = {
            name: (node.create_client(GetState, f'{name}/get_state',
                                      callback_group=callback_group),
                   node.create_client(ChangeState, f'{name}/change_state',
                                      callback_group=callback_group))
            for name in node_names}

    def is_available(self, node: str) -> bool:
        return all(client.service_is_ready() for client in self._clients[node])

    def wait_until_available(self, node: str, timeout_s: float) -> bool:
        """Wait for the services, then for a get_state answer (the response path matched).

        A service can be 'ready' (our requests reach it) before the server has matched our
        response reader; Fast DDS then drops the response. get_state is idempotent, so it is
        retried until it answers, before any transition is requested.
        """
        deadline = time.monotonic() + timeout_s
        while not self._cancelled.is_set():
            remaining = deadline - time.monotonic()
            if self.is_available(node):
                try:
                    self.get_state(node, max(0.05, min(1.0, remaining)))
                    return True
                except NodeUnreachableError:
                    pass
            if remaining <= 0:
                return False
            time.sleep(0.05)
        return False

    def get_state(self, node: str, timeout_s: float) -> str:
        response = self._call(node, 0, GetState.Request(), timeout_s)
        return response.current_state.label

    def change_state(self, node: str, transition: str, timeout_s: float) -> bool:
        request = ChangeState.Request(transition=Transition(id=TRANSITION_IDS[transition]))
        return bool(self._call(node, 1, request, timeout_s).success)

    def _call(self, node: str, which: int, request, timeout_s: float):
        client = self._clients[node][which]
        service = f'{node}/{("get_state", "change_state")[which]}'
        if not client.service_is_ready():
            raise NodeUnreachableError(node, service, 'is not available')
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        deadline = time.monotonic() + timeout_s
        while not done.wait(0.05):
            if time.monotonic() >= deadline or self._cancelled.is_set():
                client.remove_pending_request(future)
                reason = ('cancelled' if self._cancelled.is_set()
                          else f'did not answer within {timeout_s:g} s')
                raise NodeUnreachableError(node, service, reason)
        if future.exception() is not None:
            raise NodeUnreachableError(node, service, f'failed: {future.exception()}')
        return future.result()


class LifecycleManager(Node):
    """Brings the managed nodes up in list order and down in reverse; watches their health.

    Interface (README.md has the details):
      services    ~/manage_graph (hilserl_msgs/ManageGraph): STARTUP, PAUSE, RESUME, RESET,
                  SHUTDOWN, RESTART; ~/is_active (std_srvs/Trigger)
      publishes   /diagnostics (diagnostic_msgs/DiagnosticArray): one status for the graph
      calls       <node>/get_state, <node>/change_state (lifecycle_msgs) of each managed node
      parameters  node_names (string[], read-only), autostart (true), service_timeout_s (30 s),
                  transition_timeout_s (30 s), state_query_timeout_s (5 s),
                  monitor_period_s (1 s, 0 = off), on_node_failure (reset|pause|ignore),
                  shutdown_graph_on_exit (true)
    """

    def __init__(self, node_name: str = 'lifecycle_manager'):
        super().__init__(node_name)
        self.params = self._declare_and_read_params()
        self._command_lock = threading.Lock()
        self._cancel = threading.Event()
        self._closing = False
        self._waiting_for = ''
        self._failed = ('', '')
        services_group = ReentrantCallbackGroup()
        timers_group = MutuallyExclusiveCallbackGroup()
        self._lifecycle = RosLifecycleClient(self, self.params.node_names,
                                             ReentrantCallbackGroup(), self._cancel)
        self.sequencer = GraphSequencer(
            self.params.node_names, self._lifecycle,
            SequencerTimeouts(self.params.service_timeout_s, self.params.transition_timeout_s,
                              self.params.state_query_timeout_s),
            abort=self._cancel.is_set, on_transition=self._log_transition)
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics',
                                                  DIAGNOSTICS_QOS)
        self.create_service(ManageGraph, '~/manage_graph', self._on_manage_graph,
                            callback_group=services_group)
        self.create_service(Trigger, '~/is_active', self._on_is_active,
                            callback_group=services_group)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if self.params.monitor_period_s > 0:
            self.create_timer(self.params.monitor_period_s, self._on_monitor,
                              callback_group=timers_group, clock=steady)
        self._autostart_timer = None
        if self.params.autostart:
            self._autostart_timer = self.create_timer(0.05, self._on_autostart,
                                                      callback_group=timers_group, clock=steady)
        self.get_logger().info(
            f'managing {", ".join(self.params.node_names)} '
            f'({"autostart" if self.params.autostart else "waiting for commands"}); '
            f'config: {dataclasses.asdict(self.params)}')

    # --- parameters ----------------------------------------------------------------------
    def _declare_and_read_params(self) -> LifecycleManagerParams:
        docs = field_docs(LifecycleManagerParams)
        values = {}
        for field in dataclasses.fields(LifecycleManagerParams):
            descriptor = ParameterDescriptor(
                description=docs.get(field.name, ''),
                read_only=bool(field.metadata.get('read_only', False)))
            if field.name == 'node_names':
                self.declare_parameter(field.name, Parameter.Type.STRING_ARRAY, descriptor)
                try:
                    values[field.name] = tuple(self.get_parameter(field.name).value)
                except ParameterUninitializedException:
                    values[field.name] = ()
                continue
            default = field.default
            if isinstance(default, float):
                low, high = field.metadata['range']
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(low), to_value=float(high))]
                descriptor.dynamic_typing = True  # accept 30 as well as 30.0 from YAML
            value = self.declare_parameter(field.name, default, descriptor).value
            if isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f'{field.name}: {value!r} is not a number')
                value = float(value)
            values[field.name] = value
        return LifecycleManagerParams(**values)

    # --- callbacks -----------------------------------------------------------------------
    def _on_autostart(self) -> None:
        self._autostart_timer.cancel()
        self._waiting_for = 'lifecycle services of ' + ', '.join(self.params.node_names)
        self._publish_diagnostics()
        with self._command_lock:
            missing = self.sequencer.missing_nodes(self.params.service_timeout_s)
            self._waiting_for = ''
            if self._cancel.is_set():
                return
            if missing:
                self.sequencer.last_error = (
                    f'autostart: lifecycle services of {", ".join(missing)} did not appear '
                    f'within {self.params.service_timeout_s:g} s; call '
                    f'{self.get_fully_qualified_name()}/manage_graph STARTUP when they run')
                self._failed = (missing[0], 'wait_for_service')
                self.get_logger().error(self.sequencer.last_error)
                self._publish_diagnostics()
                return
            self._run(Command.STARTUP)

    def _on_manage_graph(self, request, response):
        response.node_names = list(self.params.node_names)
        try:
            command = Command(request.command)
        except ValueError:
            response.success, response.message = False, f'unknown command {request.command}'
            return response
        # Wait out a health check or a short command; refuse if one runs for too long.
        if self._closing or not self._command_lock.acquire(
                timeout=self.params.transition_timeout_s):
            response.success = False
            response.message = ('the manager is exiting' if self._closing
                                else 'busy: another command is still in progress')
            return response
        if self._closing:
            self._command_lock.release()
            response.success, response.message = False, 'the manager is exiting'
            return response
        try:
            result = self._run(command)
        finally:
            self._command_lock.release()
        response.success, response.message = result.success, result.message
        response.node_states = [result.states[name] for name in self.params.node_names]
        return response

    def _on_is_active(self, _request, response):
        response.success = self.sequencer.graph_active
        response.message = 'active' if response.success else (
            self.sequencer.last_error or 'not active: ' + ', '.join(
                f'{n} {self.sequencer.expected.get(n, "unknown")}'
                for n in self.params.node_names))
        return response

    def _on_monitor(self) -> None:
        if not self._command_lock.acquire(blocking=False):
            return  # a command is running; it reports for itself
        try:
            failures = self.sequencer.check_health()
            if failures:
                for failure in failures:
                    self.get_logger().error(f'managed node failed: {failure.describe()}')
                self._failed = (failures[0].node, '')
                reaction = self.sequencer.react(failures, self.params.on_node_failure)
                policy = f'on_node_failure={self.params.on_node_failure}'
                if reaction is not None and reaction.success:
                    self.get_logger().info(f'{policy}: {reaction.message}')
                elif reaction is not None:
                    self.get_logger().error(f'{policy}: {reaction.message}')
        finally:
            self._command_lock.release()
        self._publish_diagnostics()

    # --- actions -------------------------------------------------------------------------
    def _run(self, command: Command) -> CommandResult:
        self.get_logger().info(f'{command.name} requested')
        result = self.sequencer.run(command)
        if result.success:
            self._failed = ('', '')
            self.get_logger().info(result.message)
        else:
            self._failed = (result.failed_node, result.failed_transition)
            self.get_logger().error(result.message)
        self._publish_diagnostics()
        return result

    def shutdown_graph(self) -> None:
        """On exit: cancel a running command, then SHUTDOWN the nodes this manager drove."""
        self._closing = True
        if not self.params.shutdown_graph_on_exit:
            return
        self._cancel.set()
        if not self._command_lock.acquire(timeout=self.params.transition_timeout_s + 1.0):
            self.get_logger().error('exiting while a command is still running; the graph '
                                    'was not brought down')
            return
        try:
            self._cancel.clear()
            driven = [n for n, s in self.sequencer.expected.items() if s != UNREACHABLE]
            if driven:
                self._run(Command.SHUTDOWN)
        finally:
            self._command_lock.release()

    def cancel(self) -> None:
        """Abort whatever is running (a second SIGINT): waits end, no new transitions."""
        self._cancel.set()

    def _log_transition(self, node: str, transition: str, ok: bool, duration_s: float) -> None:
        # (one call site per severity: rclpy rejects a severity change at a call site)
        if ok:
            self.get_logger().info(f'{node}: {transition} done ({duration_s * 1e3:.0f} ms)')
        else:
            self.get_logger().error(f'{node}: {transition} FAILED ({duration_s * 1e3:.0f} ms)')

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name=f'{self.get_name()}: managed graph',
                                  hardware_id=self.get_fully_qualified_name())
        if self.sequencer.last_error:
            status.level, status.message = DiagnosticStatus.ERROR, self.sequencer.last_error
        elif self._waiting_for:
            status.level = DiagnosticStatus.WARN
            status.message = f'waiting for {self._waiting_for}'
        elif self.sequencer.graph_active:
            status.level, status.message = DiagnosticStatus.OK, 'all managed nodes active'
        else:
            status.level, status.message = DiagnosticStatus.OK, 'managed nodes not active'
        status.values = [KeyValue(key=name, value=self.sequencer.expected.get(name, 'unknown'))
                         for name in self.params.node_names]
        status.values += [KeyValue(key='failed_node', value=self._failed[0]),
                          KeyValue(key='failed_transition', value=self._failed[1]),
                          KeyValue(key='on_node_failure', value=self.params.on_node_failure)]
        message = DiagnosticArray(status=[status])
        message.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(message)


def main(args=None) -> int:
    stop = threading.Event()
    node = None
    executor = None
    spinner = None
    exit_code = 0

    def on_signal(_signum, _frame):
        if stop.is_set() and node is not None:
            node.cancel()  # second signal: stop waiting for the graph
        stop.set()

    # Our own handlers (installed first), so that a signal brings the graph down before
    # rclpy shuts its context down.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = LifecycleManager()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, name='executor', daemon=True)
        spinner.start()
        while not stop.wait(0.1) and spinner.is_alive():
            pass
        node.shutdown_graph()
    except (ValueError, ParameterException) as error:
        rclpy.logging.get_logger('lifecycle_manager').error(f'invalid parameters: {error}')
        exit_code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:
            executor.shutdown()
        if spinner is not None:
            spinner.join(timeout=10.0)  # no rcl object may go while the executor still runs
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return exit_code


if __name__ == '__main__':
    raise SystemExit(main())
