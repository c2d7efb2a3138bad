"""The ``main`` shared by this package's lifecycle nodes (and the safety filter's)."""
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn


def run_lifecycle_node(make_node: Callable[[], LifecycleNode], args=None) -> None:
    """Init rclpy, build the node, configure and activate it when its ``autostart`` parameter
    is true (a failed configure was reported by the node, which stays up unconfigured for a
    lifecycle manager to retry), spin until Ctrl-C or shutdown, then ``release()`` it (if it
    has hardware to let go of), destroy it and shut rclpy down.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        if (node.get_parameter('autostart').value
                and node.trigger_configure() == TransitionCallbackReturn.SUCCESS):
            node.trigger_activate()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if hasattr(node, 'release'):
                node.release()
            node.destroy_node()
        rclpy.try_shutdown()
