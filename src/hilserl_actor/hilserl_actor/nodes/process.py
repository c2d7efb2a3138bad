"""Process start-up shared by the hilserl_actor executables: exit signals that allow clean-up.

rclpy's own SIGINT/SIGTERM handlers shut the context down before ``main`` regains control, so
a node could no longer publish its last word (the intervention ending). The teleop programs
therefore handle SIGINT, SIGTERM and SIGHUP themselves: the handler only records the request
(raising from it could land inside a C++ call and surface as an unrelated error), the spin
loops see it within ``WAKE_PERIOD_S`` and return, and ``main``'s ``finally`` releases the
intervention, restores the terminal, then shuts rclpy down. A second signal while that cleanup
runs raises KeyboardInterrupt, so a stuck exit can still be forced.
"""
import signal

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
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


def run_lifecycle_node(make_node, on_exit: str, args=None) -> None:
    """The ``main`` of a lifecycle node: init with exit signals, build it with ``make_node()``,
    configure and activate it when its ``autostart`` parameter is true, spin until an exit
    signal, then call its ``on_exit`` method (e.g. release an intervention, hold the arm),
    destroy it and shut rclpy down.
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
            getattr(node, on_exit)()
            node.destroy_node()
        rclpy.try_shutdown()
