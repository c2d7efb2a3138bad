"""The only mapping between hilserl_actor's core types and ROS messages."""
from sensor_msgs.msg import Image, Joy
from std_msgs.msg import Bool

from hilserl_actor.recording.types import FrameRef, StatsInfo, TransitionInfo
from hilserl_actor.teleop.types import (
    EpisodeEvent as CoreEpisodeEvent,
)
from hilserl_actor.teleop.types import (
    HumanCommand,
    InterventionStatus,
)
from hilserl_msgs.msg import (
    EndEffectorCommand,
    EpisodeEvent,
    EpisodeStats,
    InterventionState,
    Observation,
    Transition,
)


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


# --- demo recorder ------------------------------------------------------------------------
EPISODE_EVENT_NAMES = {
    EpisodeEvent.SUCCESS: 'SUCCESS', EpisodeEvent.FAILURE: 'FAILURE',
    EpisodeEvent.RERECORD: 'RERECORD', EpisodeEvent.END_SESSION: 'END_SESSION',
    EpisodeEvent.START_EPISODE: 'START_EPISODE',
}


def frame_ref(image: Image) -> FrameRef | None:
    """The raw frame an image came from (its header); None for an unstamped image."""
    stamp_ns = image.header.stamp.sec * 1_000_000_000 + image.header.stamp.nanosec
    if stamp_ns == 0 and not image.header.frame_id:
        return None
    return FrameRef(image.header.frame_id, stamp_ns)


def observation_frames(observation: Observation) -> tuple[FrameRef, ...]:
    refs = (frame_ref(image) for image in observation.images)
    return tuple(ref for ref in refs if ref is not None)


def transition_info(message: Transition) -> TransitionInfo:
    return TransitionInfo(
        run_id=message.header.frame_id, episode_id=int(message.episode_id),
        step_index=int(message.step_index), is_intervention=bool(message.is_intervention),
        camera_names=tuple(message.observation.camera_names),
        frames=observation_frames(message.observation)
        + observation_frames(message.next_observation),
        ends_episode=bool(message.terminated or message.truncated))


def stats_info(message: EpisodeStats) -> StatsInfo:
    return StatsInfo(
        run_id=message.header.frame_id, episode_id=int(message.episode_id),
        end_reason=message.end_reason, success=bool(message.success),
        length=int(message.length), intervention_steps=int(message.intervention_steps),
        intervention_count=int(message.intervention_count),
        policy_version=int(message.policy_version),
        episode_return=float(message.episode_return), terminated=bool(message.terminated),
        truncated=bool(message.truncated), duration_s=float(message.duration_s))


def event_name(message: EpisodeEvent) -> str:
    return EPISODE_EVENT_NAMES.get(message.event, f'UNKNOWN_{message.event}')
