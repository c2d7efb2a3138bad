"""safety_filter: the lifecycle node every command to the SO-101 passes through."""
import time

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, Header
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from hilserl_msgs.msg import EndEffectorCommand, JointCommand, SafetyEvent
from hilserl_safety.errors import SafetyError
from hilserl_safety.filter import ARM, CommandFilter, Severity
from hilserl_safety.limits import effective_limits, load_limits_file, urdf_joint_limits
from hilserl_safety.nodes import conversions
from hilserl_safety.nodes.parameters import declare_parameters, read_parameters
from hilserl_safety.params import SafetyFilterParams, loosened_fields
from hilserl_safety.supervisor import SafetySupervisor
from so101_driver.nodes.process import run_lifecycle_node

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
KEEP_ALL = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                      reliability=ReliabilityPolicy.RELIABLE)
LATEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


class SafetyFilterNode(LifecycleNode):
    """Safety filter between every command source and the arm (see the package README).

    Interface:
      Subscriptions: /hilserl/ee_command (hilserl_msgs/EndEffectorCommand),
        /hilserl/joint_command (hilserl_msgs/JointCommand) [active only];
        /joint_states (sensor_msgs/JointState), /hilserl/actor_heartbeat (std_msgs/Header),
        /hilserl/estop (std_msgs/Bool, true latches; false is ignored) [from configure].
      Publications: /forward_position_controller/commands (std_msgs/Float64MultiArray),
        /hilserl/safety_events (hilserl_msgs/SafetyEvent, reliable keep-all),
        /diagnostics (diagnostic_msgs/DiagnosticArray), ~/markers
        (visualization_msgs/MarkerArray).
      Services: ~/estop (std_srvs/SetBool: true latches, false releases).
      Clients: /so101_driver/enable_torque (std_srvs/SetBool) with estop_action torque_off.
      Parameters: SafetyFilterParams (hilserl_safety/params.py).
    """

    def __init__(self, **kwargs):
        super().__init__('safety_filter', **kwargs)
        declare_parameters(self, SafetyFilterParams)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._supervisor = None
        self._entities = []
        self._command_subscriptions = []
        self._params = None
        self._estop_carried = (False, False)

    # --- transitions ---------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            params = read_parameters(self, SafetyFilterParams)
            self._build_core(params)
        except (ValueError, SafetyError, FileNotFoundError) as error:
            self.get_logger().error(f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        self._params = params
        self._mapper = conversions.JointStateMapper(params.joint_names)
        self._commands = self.create_publisher(
            Float64MultiArray, '/forward_position_controller/commands', RELIABLE)
        self._events = self.create_publisher(SafetyEvent, '/hilserl/safety_events', KEEP_ALL)
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)
        self._markers = self.create_publisher(MarkerArray, '~/markers', LATEST)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._entities = [
            self._commands, self._events, self._diagnostics, self._markers,
            self.create_subscription(JointState, '/joint_states', self._on_joint_state,
                                     RELIABLE),
            self.create_subscription(Header, '/hilserl/actor_heartbeat', self._on_heartbeat,
                                     RELIABLE),
            self.create_subscription(Bool, '/hilserl/estop', self._on_estop_topic, RELIABLE),
            self.create_service(SetBool, '~/estop', self._on_estop_service),
            self.create_timer(params.period_s, self._on_tick, clock=steady),
            self.create_timer(params.diagnostics_period_s, self._on_diagnostics, clock=steady),
        ]
        self._torque = self.create_client(SetBool, params.torque_service)
        self._entities.append(self._torque)
        limits = self._supervisor.filter.limits
        self.get_logger().info(
            f'configured: {params}; effective joint limits lower '
            f'{limits.joints.lower_rad.round(3).tolist()} upper '
            f'{limits.joints.upper_rad.round(3).tolist()} rad; workspace box min '
            f'{limits.box.min_m.tolist()} max {limits.box.max_m.tolist()} m')
        return TransitionCallbackReturn.SUCCESS

    def _build_core(self, params: SafetyFilterParams) -> None:
        from so101_driver.kinematics import So101Kinematics
        from so101_driver.model_files import official_model_files

        urdf = params.urdf_path or str(official_model_files().urdf)
        kinematics = So101Kinematics(urdf)
        self._urdf_limits = urdf_joint_limits(urdf, params.joint_names)
        self._limits_file = load_limits_file(params.limits_file) if params.limits_file else None
        limits = effective_limits(params, *self._urdf_limits, self._limits_file)
        self._supervisor = SafetySupervisor(CommandFilter(params, limits, kinematics))
        # A latched e-stop survives cleanup and configure: only the service releases it.
        self._supervisor.restore_estop(self._estop_carried)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._supervisor.activate(time.monotonic())
        self._command_subscriptions = [
            self.create_subscription(EndEffectorCommand, '/hilserl/ee_command',
                                     self._on_ee_command, RELIABLE),
            self.create_subscription(JointCommand, '/hilserl/joint_command',
                                     self._on_joint_command, RELIABLE),
        ]
        self.get_logger().info('active: waiting for /joint_states, then accepting commands')
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy(self._command_subscriptions)
        self._command_subscriptions = []
        self._emit(self._supervisor.deactivate())
        self.get_logger().info('inactive: holding the last target')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_all()
        self.get_logger().info('cleaned up')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._supervisor is not None and self._command_subscriptions:
            self._emit(self._supervisor.deactivate())
        self._release_all()
        return TransitionCallbackReturn.SUCCESS

    def _release_all(self) -> None:
        self._destroy(self._command_subscriptions + self._entities)
        self._command_subscriptions, self._entities = [], []
        if self._supervisor is not None:
            self._estop_carried = self._supervisor.estop_state
        self._supervisor = None

    def _destroy(self, entities) -> None:
        for entity in entities:
            kind = type(entity).__name__
            destroy = {'Publisher': self.destroy_publisher, 'Subscription':
                       self.destroy_subscription, 'Service': self.destroy_service,
                       'Client': self.destroy_client, 'Timer': self.destroy_timer}.get(kind)
            if destroy is not None:
                destroy(entity)

    # --- callbacks: convert, call the core, emit -----------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        positions, efforts, velocities = self._mapper(msg)
        if positions is None:
            self._supervisor.counters.invalid_joint_states += 1
            self.get_logger().warning('/joint_states lacks some of the joints '
                                   f'{self._params.joint_names}; ignored',
                                   throttle_duration_sec=2.0)
            return
        if efforts is None and self._params.require_effort:
            self.get_logger().warning('/joint_states has no efforts but require_effort is true: '
                                   'the filter cannot check loads and holds',
                                   throttle_duration_sec=2.0)
        self._emit(self._supervisor.on_joint_state(positions, efforts, time.monotonic(),
                                                   velocities))

    def _on_heartbeat(self, msg: Header) -> None:
        self._supervisor.on_heartbeat(time.monotonic())

    def _on_ee_command(self, msg: EndEffectorCommand) -> None:
        command = conversions.ee_command_from_msg(msg)
        self._emit(self._supervisor.on_ee_command(command, time.monotonic()))

    def _on_joint_command(self, msg: JointCommand) -> None:
        command = conversions.joint_command_from_msg(msg)
        self._emit(self._supervisor.on_joint_command(command, time.monotonic()))

    def _on_estop_topic(self, msg: Bool) -> None:
        if msg.data:
            self._emit(self._supervisor.latch_estop(time.monotonic(), '/hilserl/estop'))
        elif self._supervisor.estop_latched:
            self.get_logger().warning('/hilserl/estop false ignored: release the e-stop with the '
                                   f'service {self.get_fully_qualified_name()}/estop',
                                   throttle_duration_sec=2.0)

    def _on_estop_service(self, request, response):
        now = time.monotonic()
        if request.data:
            self._emit(self._supervisor.latch_estop(now, 'service'))
            response.success, response.message = True, 'e-stop latched'
            return response
        success, reason, output = self._supervisor.release_estop(now)
        self._emit(output)
        response.success, response.message = success, reason
        if not success:
            self.get_logger().error(f'e-stop release refused: {reason}')
        return response

    def _on_tick(self) -> None:
        if self._supervisor is None:
            return
        self._emit(self._supervisor.tick(time.monotonic()))
        target = self._supervisor.target
        tcp = None if target is None else self._supervisor.filter.kinematics.fk(target[:ARM])
        self._markers.publish(conversions.markers_msg(
            self.get_clock().now().to_msg(), self._supervisor.filter.limits.box, tcp))

    def _on_diagnostics(self) -> None:
        supervisor = self._supervisor
        if supervisor is None:
            return
        level, summary = self._status()
        extra = {'estop_latched': supervisor.estop_latched,
                 'effort_tripped': supervisor.tripped,
                 'active': supervisor.active, 'effort_unit': self._params.effort_unit}
        self._diagnostics.publish(conversions.diagnostics_msg(
            self.get_clock().now().to_msg(), self.get_name(), level, summary,
            supervisor.counters, extra))

    def _status(self) -> tuple[str, str]:
        supervisor = self._supervisor
        if supervisor.estop_latched:
            return 'error', 'e-stop latched'
        if supervisor.tripped:
            return 'error', 'effort trip: holding'
        if not supervisor.active:
            return 'ok', 'inactive'
        if supervisor.target is None:
            return 'warn', 'waiting for /joint_states'
        return 'ok', 'filtering commands'

    def _emit(self, output) -> None:
        if output.target is not None:
            self._commands.publish(conversions.target_to_msg(output.target,
                                                             self._params.joint_names))
        stamp = self.get_clock().now().to_msg()
        for event in output.events:
            self._events.publish(conversions.event_to_msg(event, stamp))
            self._log_event(event)
        if output.torque is not None:
            self._request_torque(output.torque)

    def _log_event(self, event) -> None:
        text = f'{event.limit.name.lower()} ({event.limit_name}): {event.message}'
        logger = self.get_logger()
        if event.severity in (Severity.TRIP, Severity.ESTOP):
            logger.error(text)
        elif event.limit.name == 'MALFORMED':
            logger.error(text, throttle_duration_sec=1.0)
        elif event.severity == Severity.CLIP:
            logger.warning(text, throttle_duration_sec=1.0)
        else:
            logger.info(text)

    def _request_torque(self, enable: bool) -> None:
        if not self._torque.service_is_ready():
            self.get_logger().error(f'{self._params.torque_service} is not available: torque '
                                    f'not {"enabled" if enable else "disabled"}')
            return
        future = self._torque.call_async(SetBool.Request(data=enable))

        def done(result):
            response = result.result()
            if response is None or not response.success:
                self.get_logger().error(f'{self._params.torque_service}({enable}) failed: '
                                        f'{getattr(response, "message", "no response")}')
        future.add_done_callback(done)

    # --- run-time parameter changes: tighten only ----------------------------------------
    def _on_set_parameters(self, parameters) -> SetParametersResult:
        current = self._params or read_parameters(self, SafetyFilterParams)
        changes = {p.name: p.value for p in parameters if hasattr(current, p.name)}
        try:
            candidate = read_parameters(self, SafetyFilterParams, changes)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        loosened = loosened_fields(current, candidate)
        if loosened:
            return SetParametersResult(successful=False,
                                       reason='rejected: ' + '; '.join(loosened))
        if self._supervisor is not None and self._params is not None:
            try:
                limits = effective_limits(candidate, *self._urdf_limits, self._limits_file)
            except SafetyError as error:
                return SetParametersResult(successful=False, reason=str(error))
            self._supervisor.filter.set_limits(candidate, limits)
            self._params = candidate
            self.get_logger().info(f'limits tightened: {sorted(changes)}')
        return SetParametersResult(successful=True)


def main(args=None) -> None:
    run_lifecycle_node(SafetyFilterNode, args)


if __name__ == '__main__':
    main()
