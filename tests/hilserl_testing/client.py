"""An rclpy client node for tests: subscribe, wait, call services, drive lifecycle nodes."""
import threading
import time

from lifecycle_msgs.msg import Transition as LifecycleTransition
from lifecycle_msgs.srv import ChangeState, GetState
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
KEEP_ALL = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                      reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
SENSOR = qos_profile_sensor_data

TRANSITIONS = {
    'configure': LifecycleTransition.TRANSITION_CONFIGURE,
    'cleanup': LifecycleTransition.TRANSITION_CLEANUP,
    'activate': LifecycleTransition.TRANSITION_ACTIVATE,
    'deactivate': LifecycleTransition.TRANSITION_DEACTIVATE,
    'shutdown': LifecycleTransition.TRANSITION_INACTIVE_SHUTDOWN,
}
# (state before, state after) of each transition, to tell a lost request or response apart
# from one still running when a change_state call gets no answer.
TRANSITION_STATES = {
    'configure': ('unconfigured', 'inactive'), 'cleanup': ('inactive', 'unconfigured'),
    'activate': ('inactive', 'active'), 'deactivate': ('active', 'inactive'),
    'shutdown': ('inactive', 'finalized'),
}


class MessageLog:
    """Every message received on one subscription, with arrival times (monotonic seconds)."""

    def __init__(self):
        self.messages = []
        self.arrival_s = []
        self._lock = threading.Lock()

    def append(self, message) -> None:
        with self._lock:
            self.messages.append(message)
            self.arrival_s.append(time.monotonic())

    def __len__(self) -> int:
        return len(self.messages)

    @property
    def last(self):
        return self.messages[-1] if self.messages else None

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.arrival_s.clear()


class RosTestClient:
    """One node in its own rclpy context and domain, spun only while a test waits on it."""

    def __init__(self, domain_id: int, name: str = 'test_client'):
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._clients = {}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()

    # --- waiting -------------------------------------------------------------------------
    def spin_for(self, duration_s: float) -> None:
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=min(0.02, max(0.0, deadline - time.monotonic())))

    def spin_until(self, predicate, timeout_s: float, what: str):
        """Spin until ``predicate()`` is truthy; return its value or raise TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f'{what}: not within {timeout_s} s')
            self.executor.spin_once(timeout_sec=0.02)

    # --- topics --------------------------------------------------------------------------
    def subscribe(self, msg_type, topic: str, qos=RELIABLE) -> MessageLog:
        log = MessageLog()
        self.node.create_subscription(msg_type, topic, log.append, qos)
        return log

    def publisher(self, msg_type, topic: str, qos=RELIABLE):
        return self.node.create_publisher(msg_type, topic, qos)

    def wait_for_subscribers(self, publisher, count: int = 1, timeout_s: float = 10.0) -> None:
        self.spin_until(lambda: publisher.get_subscription_count() >= count, timeout_s,
                        f'{count} subscriber(s) on {publisher.topic_name}')

    def wait_for_message(self, msg_type, topic: str, timeout_s: float = 10.0, predicate=None,
                         qos=RELIABLE):
        """The first message on ``topic`` (matching ``predicate``) within ``timeout_s``."""
        log = self.subscribe(msg_type, topic, qos)

        def matching():
            return next((m for m in log.messages if predicate is None or predicate(m)), None)
        return self.spin_until(matching, timeout_s, f'a message on {topic}')

    # --- services ------------------------------------------------------------------------
    def client(self, srv_type, name: str):
        key = (srv_type, name)
        if key not in self._clients:
            self._clients[key] = self.node.create_client(srv_type, name)
        return self._clients[key]

    def call(self, srv_type, name: str, request=None, timeout_s: float = 10.0,
             attempts: int = 1):
        """Call a service and return the response; TimeoutError if unavailable or slow.

        ``attempts`` > 1 re-sends an idempotent request whose response did not come: under
        load Fast DDS can drop the response to a client the server has not matched yet.
        """
        client = self.client(srv_type, name)
        self.spin_until(client.service_is_ready, timeout_s, f'service {name}')
        request = request if request is not None else srv_type.Request()
        for attempt in range(1, attempts + 1):
            future = client.call_async(request)
            try:
                self.spin_until(future.done, timeout_s / attempts, f'response of {name}')
            except TimeoutError:
                client.remove_pending_request(future)
                if attempt == attempts:
                    raise
                continue
            if future.exception() is not None:
                raise future.exception()
            return future.result()

    # --- lifecycle -----------------------------------------------------------------------
    def lifecycle_state(self, node: str, timeout_s: float = 10.0) -> str:
        """The lifecycle state label of ``node`` (e.g. 'unconfigured', 'active')."""
        response = self.call(GetState, f'{node}/get_state', timeout_s=timeout_s, attempts=3)
        return response.current_state.label

    def lifecycle_transition(self, node: str, transition: str, timeout_s: float = 30.0) -> bool:
        """Request a transition ('configure', 'activate', ...); return whether it succeeded.

        Under load Fast DDS can drop the request or the response of a client the server has
        not matched yet. When no answer comes within a few seconds, the node's state says
        which: the goal state = it happened; the start state = re-send (a transition that ran
        and failed returns to the start state too, and fails again the same way); otherwise
        it is still running and the answer is awaited until ``timeout_s``.
        """
        start, goal = TRANSITION_STATES[transition]
        name = f'{node}/change_state'
        client = self.client(ChangeState, name)
        self.spin_until(client.service_is_ready, timeout_s, f'service {name}')
        request = ChangeState.Request()
        request.transition.id = TRANSITIONS[transition]
        deadline = time.monotonic() + timeout_s
        future, resent = client.call_async(request), False
        while True:
            left_s = max(deadline - time.monotonic(), 0.0)
            try:
                self.spin_until(future.done, min(5.0, left_s), f'response of {name}')
            except TimeoutError:
                if left_s <= 5.0:
                    client.remove_pending_request(future)
                    raise
                state = self.lifecycle_state(node)
                if state == goal:
                    client.remove_pending_request(future)
                    return True
                if state == start:
                    client.remove_pending_request(future)
                    future, resent = client.call_async(request), True
                continue
            if future.exception() is not None:
                raise future.exception()
            # A re-sent request refused because the first one did arrive and succeed after all.
            if not future.result().success and resent:
                return self.lifecycle_state(node) == goal
            return future.result().success

    def bring_up(self, node: str, timeout_s: float = 30.0) -> None:
        """configure + activate, asserting both succeed."""
        for transition in ('configure', 'activate'):
            if not self.lifecycle_transition(node, transition, timeout_s):
                raise AssertionError(f'{node}: {transition} failed')
