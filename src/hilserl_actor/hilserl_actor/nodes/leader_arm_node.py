"""leader_arm_node: an SO-101 leader arm (torque off) -> human joint commands."""
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy

from hilserl_actor.leader_arm import LeaderArm, LeaderArmError, default_leader_calibration_path
from hilserl_actor.nodes import conversions
from hilserl_actor.nodes.parameters import declare_from_dataclass, params_from_node, summary
from hilserl_actor.nodes.teleop_outputs import INTERVENTION_QOS, INTERVENTION_TOPIC
from hilserl_actor.params import LeaderArmParams
from hilserl_msgs.msg import InterventionState, JointCommand
from so101_driver.errors import DriverError
from so101_driver.nodes.process import run_lifecycle_node

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
COMMAND_TOPIC = '/hilserl/human/joint_command'
THROTTLE_S = 2.0


class LeaderArmNode(LifecycleNode):
    """SO-101 leader arm teleoperation (lifecycle node ``leader_arm``).

    Publishes: /hilserl/human/joint_command (hilserl_msgs/JointCommand, SOURCE_HUMAN,
      reliable 10): the six follower joints (rad) at control_rate_hz while active and the arm
      is readable; /hilserl/intervention (InterventionState, SOURCE_LEADER_ARM, reliable
      transient local 1) with always_active; /diagnostics (diagnostic_msgs/DiagnosticArray,
      every diagnostics_period_s).
    The leader's torque is turned off at configure and never turned on. configure fails (with
    the reason) on a missing port, missing servos, a wrong model or a calibration that does not
    match; a servo lost while active stops the commands (throttled ERROR, diagnostics ERROR,
    intervention released) until it answers again.
    Parameters: hilserl_actor.params.LeaderArmParams (read-only; applied at configure).
    """

    def __init__(self, **kwargs):
        super().__init__('leader_arm', **kwargs)
        declare_from_dataclass(self, LeaderArmParams)
        self._arm: LeaderArm | None = None
        self._arm_timers = []
        self._diagnostics_timer = None
        self._command_publisher = None
        self._intervention_publisher = None
        self._active = False
        self._count = 0
        self._error = ''
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)

    # --- transitions -------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            params = params_from_node(self, LeaderArmParams)
            calibration = params.calibration_file or str(
                default_leader_calibration_path(params.leader_id))
            arm = LeaderArm(params.port, calibration, params.joint_names, params.baudrate,
                            params.read_retries, params.bus_timeout_margin_s)
            arm.connect()
        except (ValueError, LeaderArmError) as error:
            message = f'configure failed: {error}'
            self.get_logger().error(message)
            self._publish_diagnostics(DiagnosticStatus.ERROR, message)
            return TransitionCallbackReturn.FAILURE
        self._params, self._arm, self._error = params, arm, ''
        self._command_publisher = self.create_lifecycle_publisher(JointCommand, COMMAND_TOPIC,
                                                                  RELIABLE)
        self._intervention_publisher = self.create_lifecycle_publisher(
            InterventionState, INTERVENTION_TOPIC, INTERVENTION_QOS)
        self._diagnostics_timer = self.create_timer(
            params.diagnostics_period_s, self._on_diagnostics,
            clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f'configured: leader arm on {params.port}, calibration '
                               f'{calibration}, torque off; {summary(params)}')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        params = self._params
        self._arm_timers = [self.create_timer(1.0 / params.control_rate_hz, self._on_tick)]
        if params.always_active:
            self._arm_timers.append(self.create_timer(params.intervention_period_s,
                                                      self._publish_state))
        self._publish_state()
        self.get_logger().info('active: streaming joint commands'
                               + (' (always_active: intervention reported active)'
                                  if params.always_active else
                                  ' (they drive while the gamepad/keyboard takeover is held)'))
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info('cleaned up: port closed')
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self._release()
        return super().on_shutdown(state)

    def _stop(self) -> None:
        for timer in self._arm_timers:
            self.destroy_timer(timer)
        if self._arm_timers:
            self._set_active(False)
        self._arm_timers = []

    def _release(self) -> None:
        if self._arm is not None:
            self._arm.close()
            self._arm = None
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        for publisher in (self._command_publisher, self._intervention_publisher):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._command_publisher = self._intervention_publisher = None

    def release_on_exit(self) -> None:
        if self._arm_timers and self.context.ok():
            self._stop()
        if self._arm is not None:
            self._arm.close()

    # --- reading -----------------------------------------------------------------------
    def _on_tick(self) -> None:
        try:
            positions = self._arm.read()
        except DriverError as error:
            if not self._error:
                self.get_logger().error(f'reading the leader arm failed, joint commands '
                                        f'stopped: {error}')
            self._error = f'{type(error).__name__}: {error}'
            self.get_logger().error(f'leader arm unreadable: {error}',
                                    throttle_duration_sec=THROTTLE_S)
            self._set_active(False)
            return
        if self._error:
            self.get_logger().info('the leader arm answers again: joint commands resumed')
            self._error = ''
        stamp = self.get_clock().now().to_msg()
        self._command_publisher.publish(conversions.joint_command_message(
            self._params.joint_names, positions, JointCommand.SOURCE_HUMAN, stamp,
            self._params.frame_id))
        if self._params.always_active:
            self._set_active(True)

    def _set_active(self, active: bool) -> None:
        if active == self._active:
            return
        self._active = active
        if active:
            self._count += 1
        if self._params.always_active or not active:
            self._publish_state()

    def _publish_state(self) -> None:
        if self._intervention_publisher is None or not self._params.always_active:
            return
        message = InterventionState(source=InterventionState.SOURCE_LEADER_ARM,
                                    active=self._active, intervention_count=self._count)
        message.header.stamp = self.get_clock().now().to_msg()
        self._intervention_publisher.publish(message)

    # --- diagnostics -------------------------------------------------------------------
    def _on_diagnostics(self) -> None:
        if self._arm is None:
            return
        if self._error:
            level, message = DiagnosticStatus.ERROR, f'leader arm unreadable: {self._error}'
        elif not self._arm_timers:
            level, message = DiagnosticStatus.OK, 'connected, not streaming (inactive)'
        else:
            level, message = DiagnosticStatus.OK, 'streaming joint commands'
        self._publish_diagnostics(level, message, self._arm.counters())

    def _publish_diagnostics(self, level, message: str, values: dict | None = None) -> None:
        port = self.get_parameter('port').value
        status = DiagnosticStatus(level=level, name=f'{self.get_name()}: SO-101 leader arm',
                                  hardware_id='so101_leader', message=message)
        values = {'port': port, 'streaming': bool(self._arm_timers) and not self._error,
                  'intervention_active': self._active, **(values or {})}
        status.values = [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(array)


def main(args=None):
    run_lifecycle_node(LeaderArmNode, args, on_exit='release_on_exit')


if __name__ == '__main__':
    main()
