"""gamepad_node: an SDL2 gamepad -> /joy, for machines without ROS 2's ``joy`` package."""
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Joy

from hilserl_actor.errors import GamepadError
from hilserl_actor.nodes import conversions
from hilserl_actor.nodes.parameters import declare_from_dataclass, params_from_node, summary
from hilserl_actor.nodes.teleop_outputs import JOY_QOS
from hilserl_actor.params import GamepadParams
from hilserl_actor.teleop.joy_layout import JoyPublishScheduler
from hilserl_actor.teleop.sdl_gamepad import SdlGamepad
from so101_driver.nodes.process import init_with_exit_signals, spin

NO_PAD_WARNING_PERIOD_S = 10.0


class GamepadNode(Node):
    """SDL2 gamepad publisher (plain node ``gamepad``, like joy's nodes).

    Publishes:
      joy (sensor_msgs/Joy, reliable depth 10, frame_id 'joy'): with layout game_controller,
        the layout of joy's game_controller_node (6 axes, 21 buttons, SDL game-controller
        order); with layout joystick, that of joy's joy_node (raw SDL joystick order).
        Sticks read +1 left / up; game-controller triggers 0 at rest, -1 fully pressed.
    Parameters: see hilserl_actor.params.GamepadParams (device_id, device_name, layout,
      deadzone, autorepeat_rate, coalesce_interval_ms as joy's; poll_rate_hz, scan_interval_s).
    Without a pad it publishes nothing, warns every 10 s and looks for one every
    scan_interval_s (hot-plug); when the pad is unplugged it stops publishing, warns, and
    resumes when it is plugged back in.
    """

    def __init__(self, **kwargs):
        super().__init__('gamepad', **kwargs)
        declare_from_dataclass(self, GamepadParams)
        self.params = params_from_node(self, GamepadParams)  # ValueError: main reports it
        params = self.params
        self._pad = SdlGamepad(params.layout, params.device_id, params.device_name,
                               params.deadzone)
        self._scheduler = JoyPublishScheduler(params.autorepeat_rate,
                                              params.coalesce_interval_ms / 1000.0)
        self._publisher = self.create_publisher(Joy, 'joy', JOY_QOS)
        self._last_no_pad_warning_s = None
        self._timer = None
        self._set_period(params.scan_interval_s)
        self.get_logger().info(f'started: {summary(params)}')

    def _set_period(self, period_s: float) -> None:
        """Poll at poll_rate_hz while a pad is open, and only every scan_interval_s without."""
        if self._timer is not None:
            if abs(self._timer.timer_period_ns - period_s * 1e9) < 1e3:
                return
            self.destroy_timer(self._timer)
        self._timer = self.create_timer(period_s, self._on_poll)

    def _on_poll(self) -> None:
        now = time.monotonic()
        result = self._pad.poll(scan=not self._pad.connected)
        self._set_period(1.0 / self.params.poll_rate_hz if self._pad.connected
                         else self.params.scan_interval_s)
        for line in result.info:
            self.get_logger().info(line)
        for line in result.warnings:
            self._warn(line, now)
        if result.disconnected:
            self._scheduler.reset()
            self._last_no_pad_warning_s = now  # the disconnect warning says it all for now
        if result.axes is None:
            return
        self._last_no_pad_warning_s = None
        if self._scheduler.should_publish(result.axes, result.buttons, now):
            self._publisher.publish(conversions.joy_message(
                result.axes, result.buttons, self.get_clock().now().to_msg()))

    def _warn(self, line: str, now: float) -> None:
        """Warn; 'no gamepad found' only every NO_PAD_WARNING_PERIOD_S."""
        if line.startswith('no gamepad found'):
            last = self._last_no_pad_warning_s
            if last is not None and now - last < NO_PAD_WARNING_PERIOD_S:
                return
            self._last_no_pad_warning_s = now
        self.get_logger().warning(line)

    def destroy_node(self) -> None:
        self._pad.shutdown()
        super().destroy_node()


def main(args=None):
    init_with_exit_signals(args)
    node = None
    status = 0
    try:
        node = GamepadNode()
        spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, GamepadError) as error:
        rclpy.logging.get_logger('gamepad').error(f'cannot start: {error}')
        status = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return status


if __name__ == '__main__':
    raise SystemExit(main())
