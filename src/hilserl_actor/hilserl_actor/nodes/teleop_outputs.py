"""Topics and QoS of the teleop outputs, shared by teleop_node and keyboard_teleop."""
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool

from hilserl_actor.nodes import conversions
from hilserl_actor.teleop.types import InterventionStatus, TeleopOutputs
from hilserl_msgs.msg import EndEffectorCommand, EpisodeEvent, InterventionState

HUMAN_COMMAND_TOPIC = '/hilserl/human/ee_command'
INTERVENTION_TOPIC = '/hilserl/intervention'
EPISODE_EVENT_TOPIC = '/hilserl/episode_event'
ESTOP_TOPIC = '/hilserl/estop'
JOY_TOPIC = '/joy'

# Commands and safety: reliable. The intervention state is latched (transient local, depth 1)
# so a late subscriber learns who holds the arm; events are never dropped (keep all).
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
INTERVENTION_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
EVENT_QOS = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                       reliability=ReliabilityPolicy.RELIABLE)
ESTOP_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
JOY_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # as joy's publishers


class TeleopPublishers:
    """The four teleop publishers of one node, and publishing a TeleopOutputs."""

    def __init__(self, node, source: str, frame_id: str, lifecycle: bool):
        create = node.create_lifecycle_publisher if lifecycle else node.create_publisher
        self._node, self._lifecycle = node, lifecycle
        self.source, self.frame_id = source, frame_id
        self.command = create(EndEffectorCommand, HUMAN_COMMAND_TOPIC, COMMAND_QOS)
        self.intervention = create(InterventionState, INTERVENTION_TOPIC, INTERVENTION_QOS)
        self.event = create(EpisodeEvent, EPISODE_EVENT_TOPIC, EVENT_QOS)
        self.estop = create(Bool, ESTOP_TOPIC, ESTOP_QOS)

    def _stamp(self):
        return self._node.get_clock().now().to_msg()

    def publish(self, outputs: TeleopOutputs) -> None:
        """Publish what ``outputs`` holds: e-stop first, then events, state and command."""
        stamp = self._stamp()
        if outputs.estop:
            self.estop.publish(conversions.estop_message())
        for event in outputs.events:
            self.event.publish(conversions.episode_event_message(event, stamp, self.source))
        if outputs.intervention is not None:
            self.publish_intervention(outputs.intervention)
        if outputs.command is not None:
            self.command.publish(conversions.human_command_message(outputs.command, stamp,
                                                                   self.frame_id))

    def publish_intervention(self, status: InterventionStatus) -> None:
        self.intervention.publish(conversions.intervention_message(status, self._stamp()))

    def flush(self, timeout_s: float = 1.0) -> bool:
        """Wait until the subscribers acknowledged everything published (before exiting)."""
        deadline = Duration(seconds=timeout_s)
        acked = [publisher.wait_for_all_acked(deadline)  # every one, no short-circuit
                 for publisher in (self.estop, self.event, self.intervention, self.command)]
        return all(acked)

    def destroy(self) -> None:
        destroy = (self._node.destroy_lifecycle_publisher if self._lifecycle
                   else self._node.destroy_publisher)
        for publisher in (self.command, self.intervention, self.event, self.estop):
            destroy(publisher)
