"""teleop_node: gamepad teleoperation, /joy -> human commands, interventions, episode events."""
import pathlib
import time

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Joy

from hilserl_actor.errors import MalformedJoyError, TeleopError
from hilserl_actor.nodes import conversions
from hilserl_actor.nodes.parameters import declare_from_dataclass, params_from_node, summary
from hilserl_actor.nodes.teleop_outputs import JOY_QOS, JOY_TOPIC, TeleopPublishers
from hilserl_actor.params import TeleopParams
from hilserl_actor.teleop.gamepad import GamepadSettings, GamepadTeleop
from hilserl_actor.teleop.mapping import load_mapping
from hilserl_actor.teleop.session import SessionSettings, TeleopSession
from hilserl_actor.teleop.types import InputDevice, TeleopOutputs
from so101_driver.nodes.process import run_lifecycle_node

PACKAGE = 'hilserl_actor'


def builtin_mapping_path(layout: str) -> pathlib.Path:
    """The installed mapping file of a built-in gamepad layout."""
    return pathlib.Path(get_package_share_directory(PACKAGE)) / 'config' / f'teleop_{layout}.yaml'


class TeleopNode(LifecycleNode):
    """Gamepad teleoperation (lifecycle node ``teleop``).

    Subscribes:
      /joy (sensor_msgs/Joy, reliable depth 10): from joy's game_controller_node or joy_node,
        or from gamepad_node.
    Publishes:
      /hilserl/human/ee_command (hilserl_msgs/EndEffectorCommand, reliable depth 10):
        source SOURCE_HUMAN, delta_m in metres per control step, at control_rate_hz while the
        takeover control is held (always, with always_active).
      /hilserl/intervention (hilserl_msgs/InterventionState, reliable, transient local,
        depth 1): source SOURCE_GAMEPAD; on every change and every intervention_period_s.
      /hilserl/episode_event (hilserl_msgs/EpisodeEvent, reliable, keep all): source 'gamepad'.
      /hilserl/estop (std_msgs/Bool, reliable depth 10): true when the e-stop control is pressed.
    Parameters: see hilserl_actor.params.TeleopParams (all read-only; applied at configure).
    A malformed Joy message is rejected with a throttled warning and changes nothing.
    """

    def __init__(self, **kwargs):
        super().__init__('teleop', **kwargs)
        declare_from_dataclass(self, TeleopParams)
        self._core: GamepadTeleop | None = None
        self._outputs: TeleopPublishers | None = None
        self._subscription = None
        self._teleop_timers = []

    # --- transitions -------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            params = params_from_node(self, TeleopParams)
            path = (pathlib.Path(params.mapping_file) if params.mapping_file
                    else builtin_mapping_path(params.gamepad_layout))
            mapping = load_mapping(path)
        except (ValueError, TeleopError, PackageNotFoundError) as error:
            self.get_logger().error(f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        session = TeleopSession(SessionSettings(
            InputDevice.GAMEPAD, params.control_rate_hz, params.max_ee_speed_m_s,
            params.always_active, params.event_debounce_s, params.initial_speed_scale,
            params.speed_scale_step))
        self._core = GamepadTeleop(mapping, session, GamepadSettings(
            params.deadzone, params.trigger_threshold, params.joy_timeout_s))
        self._params = params
        self._outputs = TeleopPublishers(self, 'gamepad', params.frame_id, lifecycle=True)
        self.get_logger().info(
            f'configured: mapping {mapping.name!r} from {path} (Joy with '
            f'>= {mapping.min_axes} axes, >= {mapping.min_buttons} buttons); {summary(params)}')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        params = self._params
        self._subscription = self.create_subscription(Joy, JOY_TOPIC, self._on_joy, JOY_QOS)
        self._teleop_timers = [
            self.create_timer(1.0 / params.control_rate_hz, self._on_control_tick),
            self.create_timer(params.intervention_period_s, self._on_period)]
        self._outputs.publish_intervention(self._core.session.intervention)
        self.get_logger().info(f'active: reading {JOY_TOPIC}; hold takeover to drive the arm'
                               + (' (always_active: commands without takeover)'
                                  if params.always_active else ''))
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self.get_logger().info('inactive: human commands stopped, intervention released')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_cleanup(state)
        self._release_all()
        self.get_logger().info('cleaned up')
        return result

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self._release_all()
        return super().on_shutdown(state)

    def _stop(self) -> None:
        """Stop reading the pad and end the intervention (publishers still active)."""
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        for timer in self._teleop_timers:
            self.destroy_timer(timer)
        self._teleop_timers = []
        if self._core is not None and self._outputs is not None:
            self._publish(self._core.release())

    def release_on_exit(self) -> None:
        """The process is ending while active: stop and publish the intervention's end."""
        if self._subscription is not None and self.context.ok():
            self._stop()
            self._outputs.flush()

    def _release_all(self) -> None:
        if self._outputs is not None:
            self._outputs.destroy()
        self._outputs, self._core = None, None

    # --- callbacks ---------------------------------------------------------------------
    def _on_joy(self, message: Joy) -> None:
        try:
            outputs = self._core.on_joy(*conversions.joy_arrays(message), time.monotonic())
        except MalformedJoyError as error:
            self.get_logger().warning(f'{error}; the last valid input stays in effect until '
                                      'joy_timeout_s', throttle_duration_sec=5.0)
            return
        self._publish(outputs)

    def _on_control_tick(self) -> None:
        self._publish(self._core.tick(time.monotonic()))

    def _on_period(self) -> None:
        self._outputs.publish_intervention(self._core.session.intervention)

    def _publish(self, outputs: TeleopOutputs) -> None:
        for warning in outputs.warnings:
            self.get_logger().warning(warning)
        if outputs.estop:
            self.get_logger().warning('e-stop pressed: latch requested on /hilserl/estop')
        for event in outputs.events:
            self.get_logger().info(f'episode event {event.event.name} ({event.reason})')
        if outputs.speed_scale is not None:
            self.get_logger().info(f'speed scale {outputs.speed_scale:.2f} '
                                   f'({self._core.session.max_step_m * 1000:.1f} mm per step)')
        self._outputs.publish(outputs)


def main(args=None):
    run_lifecycle_node(TeleopNode, args, on_exit='release_on_exit')


if __name__ == '__main__':
    main()
