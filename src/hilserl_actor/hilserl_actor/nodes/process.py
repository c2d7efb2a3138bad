"""Process start-up shared by the teleop executables: exit signals that leave time to clean up.

rclpy's own SIGINT/SIGTERM handlers shut the context down before ``main`` regains control, so
a node could no longer publish its last word (the intervention ending). The teleop programs
therefore let SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread instead:
``main``'s ``finally`` releases the intervention, restores the terminal, then shuts rclpy down.
Python runs signal handlers between bytecodes only, so ``spin`` wakes at least every
``WAKE_PERIOD_S`` even when the node has no timer (e.g. an unconfigured lifecycle node).
"""
import signal

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

WAKE_PERIOD_S = 0.1


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def init_with_exit_signals(args=None) -> None:
    """``rclpy.init`` without rclpy's signal handlers; SIGTERM and SIGHUP act like Ctrl-C."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)


def spin(node) -> None:
    """Spin ``node`` until its context shuts down or a signal raises KeyboardInterrupt."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while node.context.ok():
            executor.spin_once(timeout_sec=WAKE_PERIOD_S)
    finally:
        executor.remove_node(node)
        executor.shutdown(timeout_sec=0.0)
