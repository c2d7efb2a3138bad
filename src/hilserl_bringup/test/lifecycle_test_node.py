"""A small lifecycle node for the bring-up tests (not installed).

Parameters: fail_on_configure, fail_on_activate (bool: return FAILURE from that transition),
publish_rate_hz. Publishes std_msgs/UInt64 on ~/counter while active, so a test can tell that
activation really started the node's work, and the comma-separated history of its transition
callbacks on ~/history (std_msgs/String, transient local: late subscribers get the latest).
Exits 0 on SIGINT/SIGTERM.
"""
import signal
import threading

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String, UInt64

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


class CounterNode(LifecycleNode):
    def __init__(self):
        super().__init__('counter_node')
        self.declare_parameter('fail_on_configure', False)
        self.declare_parameter('fail_on_activate', False)
        self.declare_parameter('publish_rate_hz', 20.0)
        self._publisher = None
        self._timer = None
        self._count = 0
        self._history = []
        self._history_publisher = self.create_publisher(String, '~/history', LATCHED)

    def _record(self, callback):
        self._history.append(callback)
        self._history_publisher.publish(String(data=','.join(self._history)))

    def on_configure(self, state):
        self._record('configure')
        if self.get_parameter('fail_on_configure').value:
            self.get_logger().error('configure fails on purpose (fail_on_configure)')
            return TransitionCallbackReturn.FAILURE
        self._publisher = self.create_lifecycle_publisher(UInt64, '~/counter', 10)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state):
        self._record('activate')
        if self.get_parameter('fail_on_activate').value:
            self.get_logger().error('activate fails on purpose (fail_on_activate)')
            return TransitionCallbackReturn.FAILURE
        period = 1.0 / self.get_parameter('publish_rate_hz').value
        self._timer = self.create_timer(period, self._tick)
        return super().on_activate(state)

    def on_deactivate(self, state):
        self._record('deactivate')
        self._stop_timer()
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        self._record('cleanup')
        self._stop_timer()
        if self._publisher is not None:
            self.destroy_lifecycle_publisher(self._publisher)
            self._publisher = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state):
        self._record('shutdown')
        self._stop_timer()
        return TransitionCallbackReturn.SUCCESS

    def _stop_timer(self):
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None

    def _tick(self):
        self._count += 1
        self._publisher.publish(UInt64(data=self._count))


def main():
    # Own handlers: rclpy's can shut the context down while spin() builds a wait set, which
    # then raises RCLError (exit 1) instead of a clean exit.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = CounterNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
