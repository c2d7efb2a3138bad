"""The ``main`` of our lifecycle nodes (driver, camera, safety filter, actor, teleop): exit
signals that leave time for clean-up.

rclpy's own SIGINT/SIGTERM handlers shut the context down and raise KeyboardInterrupt wherever
the main thread happens to be: inside a callback (half-way through a bus write), inside a
destructor (where it is swallowed and the spin goes on with a dead context, ending in
"failed to initialize wait set: the given context is not valid"), or after the context is gone,
so a node could no longer publish its last word (the hold, the intervention ending). These
programs therefore handle SIGINT, SIGTERM and SIGHUP themselves: the handler only records the
request, the spin loop sees it within ``WAKE_PERIOD_S`` and returns, and ``main``'s ``finally``
runs the node's exit method (release the hardware, the intervention), destroys the node, then
shuts rclpy down. A second signal while that clean-up runs raises KeyboardInterrupt, so a stuck
exit can still be forced.
"""
from collections.abc import Callable
import signal

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions

WAKE_PERIOD_S = 0.1
_exit_signal: list[str] = []


def _request_exit(signum, frame):
    if _exit_signal:
        raise KeyboardInterrupt(signal.Signals(signum).name)
    _exit_signal.append(signal.Signals(signum).name)


def init_with_exit_signals(args=None) -> None:
    """``rclpy.init`` without rclpy's signal handlers; SIGINT, SIGTERM, SIGHUP request exit."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _request_exit)


def exit_requested() -> bool:
    """Whether an exit signal arrived."""
    return bool(_exit_signal)


def spin(node) -> None:
    """Spin ``node`` until its context shuts down or an exit signal arrives."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while node.context.ok() and not exit_requested():
            executor.spin_once(timeout_sec=WAKE_PERIOD_S)
    finally:
        executor.remove_node(node)
        executor.shutdown(timeout_sec=0.0)


def run_lifecycle_node(make_node: Callable[[], LifecycleNode], args=None,
                       on_exit: str = 'release') -> None:
    """Init rclpy with exit signals, build the node, configure and activate it when its
    ``autostart`` parameter is true (a failed configure was reported by the node, which stays
    up unconfigured for a lifecycle manager to retry), spin until an exit signal or shutdown,
    then call its ``on_exit`` method if it has one (release the hardware, hold the arm, end an
    intervention), destroy it and shut rclpy down.
    """
    init_with_exit_signals(args)
    node = None
    try:
        node = make_node()
        if (node.get_parameter('autostart').value is True
                and node.trigger_configure() == TransitionCallbackReturn.SUCCESS):
            node.trigger_activate()
        spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            exit_method = getattr(node, on_exit, None)
            if exit_method is not None:
                exit_method()
            node.destroy_node()
        rclpy.try_shutdown()
