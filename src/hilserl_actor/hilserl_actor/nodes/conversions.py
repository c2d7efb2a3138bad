"""The only mapping between hilserl_actor's core types and ROS messages."""
from sensor_msgs.msg import Joy
from std_msgs.msg import Bool

from hilserl_actor.teleop.types import (
    EpisodeEvent as CoreEpisodeEvent,
)
from hilserl_actor.teleop.types import (
    HumanCommand,
    InterventionStatus,
)
from hilserl_msgs.msg import EndEffectorCommand, EpisodeEvent, InterventionState


def joy_arrays(message: Joy) -> tuple[list[float], list[int]]:
    """A Joy message's axes and buttons as plain lists (validated by the mapping core)."""
    return list(message.axes), list(message.buttons)


def joy_message(axes: list[float], buttons: list[int], stamp, frame_id: str = 'joy') -> Joy:
    message = Joy()
    message.header.stamp = stamp
    message.header.frame_id = frame_id
    message.axes = [float(v) for v in axes]
    message.buttons = [int(b) for b in buttons]
    return message


def human_command_message(command: HumanCommand, stamp, frame_id: str) -> EndEffectorCommand:
    """A human end-effector command (source SOURCE_HUMAN), delta in metres per control step."""
    message = EndEffectorCommand()
    message.header.stamp = stamp
    message.header.frame_id = frame_id
    message.source = EndEffectorCommand.SOURCE_HUMAN
    message.delta_m.x, message.delta_m.y, message.delta_m.z = command.delta_m
    message.gripper_command = int(command.gripper)
    message.gripper_position_rad = 0.0
    return message


def intervention_message(status: InterventionStatus, stamp) -> InterventionState:
    message = InterventionState()
    message.header.stamp = stamp
    message.source = int(status.device)
    message.active = status.active
    message.intervention_count = status.count
    return message


def episode_event_message(event: CoreEpisodeEvent, stamp, source: str) -> EpisodeEvent:
    message = EpisodeEvent()
    message.header.stamp = stamp
    message.event = int(event.event)
    message.source = source
    message.reason = event.reason
    return message


def estop_message() -> Bool:
    """The e-stop latch request (true = latch; the safety filter's service releases it)."""
    return Bool(data=True)
