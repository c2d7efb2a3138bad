"""Helpers of the teleop cross-process tests: a Joy publisher that behaves like joy's nodes."""
import time

from rclpy.qos import QoSProfile, ReliabilityPolicy

GC_AXES, GC_BUTTONS = 6, 21  # the game_controller layout
A, B, X, Y, BACK, START, LB, RB = 0, 1, 2, 3, 4, 6, 9, 10
LEFT_X, LEFT_Y, RIGHT_X, RIGHT_Y, LEFT_TRIGGER, RIGHT_TRIGGER = range(6)
JOY_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def joy_state(*pressed, **axes):
    """(axes, buttons) of the game_controller layout: named axes set, the rest at rest."""
    values = [0.0] * GC_AXES
    for name, value in axes.items():
        values[globals()[name.upper()]] = value
    buttons = [0] * GC_BUTTONS
    for index in pressed:
        buttons[index] = 1
    return values, buttons


class JoyDriver:
    """Publishes /joy like joy's nodes do: the held state, repeated at ``rate_hz``."""

    def __init__(self, client, rate_hz: float = 20.0):
        from sensor_msgs.msg import Joy

        self._joy = Joy
        self.client = client
        self.period_s = 1.0 / rate_hz
        self.publisher = client.publisher(Joy, '/joy', JOY_QOS)

    def publish(self, axes, buttons) -> None:
        message = self._joy()
        message.header.stamp = self.client.node.get_clock().now().to_msg()
        message.axes = [float(v) for v in axes]
        message.buttons = [int(b) for b in buttons]
        self.publisher.publish(message)

    def hold(self, state, duration_s: float, until=None) -> None:
        """Publish ``state`` every period for ``duration_s`` (or until ``until()`` is true)."""
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            self.publish(*state)
            self.client.spin_for(self.period_s)
            if until is not None and until():
                return
        if until is not None:
            raise TimeoutError(f'condition not met while holding {state} for {duration_s} s')
