"""The only mapping between hilserl_actor's core types and ROS messages."""
from builtin_interfaces.msg import Time
import numpy as np
from sensor_msgs.msg import Image, JointState, Joy
from std_msgs.msg import Bool, Header

from hilserl_actor.actions import HumanEeCommand, HumanJointCommand, Source, StepAction
from hilserl_actor.episode import EpisodeSummary, ResetOutcome, ResetRequest, TransitionRecord
from hilserl_actor.observation_builder import (
    BuiltObservation,
    Frame,
    GroundTruthReading,
    JointReading,
)
from hilserl_actor.recording.types import FrameRef, StatsInfo, TransitionInfo
from hilserl_actor.teleop.types import (
    EpisodeEvent as CoreEpisodeEvent,
)
from hilserl_actor.teleop.types import (
    EpisodeEventType as CoreEpisodeEventType,
)
from hilserl_actor.teleop.types import (
    Gripper,
    HumanCommand,
    InterventionStatus,
)
from hilserl_learner.nodes.conversions import array_to_image
from hilserl_msgs.msg import (
    EndEffectorCommand,
    EpisodeEvent,
    EpisodeStats,
    InterventionState,
    JointCommand,
    SimGroundTruth,
)
from hilserl_msgs.msg import Observation as ObservationMsg
from hilserl_msgs.msg import Transition as TransitionMsg
from hilserl_msgs.srv import ResetEpisode


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


# --- actor -------------------------------------------------------------------------------
def seconds(stamp) -> float:
    """builtin_interfaces/Time -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def time_message(seconds_value: float) -> Time:
    nanoseconds = int(round(max(0.0, seconds_value) * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def joint_reading(message: JointState, joint_names, received_s: float) -> JointReading:
    """/joint_states by name -> positions in ``joint_names`` order (ValueError if missing)."""
    index = {name: i for i, name in enumerate(message.name)}
    missing = [name for name in joint_names if name not in index]
    if missing or len(message.position) != len(message.name):
        raise ValueError(f'joint state without positions for {missing or "every joint"}')
    positions = np.array([message.position[index[name]] for name in joint_names], dtype=float)
    if not np.all(np.isfinite(positions)):
        raise ValueError('joint state with NaN/inf positions')
    return JointReading(positions, seconds(message.header.stamp), received_s)


def camera_frame(message: Image, received_s: float) -> Frame:
    """An rgb8 / bgr8 image -> Frame (RGB uint8 array, the raw header kept)."""
    if message.encoding not in ('rgb8', 'bgr8'):
        raise ValueError(f'image encoding {message.encoding!r} (expected rgb8 or bgr8)')
    height, width, step = message.height, message.width, message.step
    if height < 1 or width < 1 or step < width * 3 or len(message.data) != height * step:
        raise ValueError(f'image of {len(message.data)} bytes does not fit {width}x{height} '
                         f'with step {step}')
    rows = np.frombuffer(bytes(message.data), np.uint8).reshape(height, step)
    image = rows[:, :width * 3].reshape(height, width, 3)
    if message.encoding == 'bgr8':
        image = image[:, :, ::-1]
    image = np.ascontiguousarray(image)
    header = Header(stamp=message.header.stamp, frame_id=message.header.frame_id)
    return Frame(image, seconds(message.header.stamp), received_s, header)


def _vector(point) -> np.ndarray:
    return np.array([point.x, point.y, point.z], dtype=float)


def ground_truth_reading(message: SimGroundTruth, received_s: float) -> GroundTruthReading:
    pose = message.object_pose
    quaternion = np.array([pose.orientation.w, pose.orientation.x, pose.orientation.y,
                           pose.orientation.z], dtype=float)
    return GroundTruthReading(
        object_position_m=_vector(pose.position), object_quaternion_wxyz=quaternion,
        object_velocity_m_s=_vector(message.object_twist.linear),
        tcp_position_m=_vector(message.tcp_pose.position),
        object_height_m=float(message.object_height_m),
        object_grasped=bool(message.object_grasped), success=bool(message.success),
        episode_seed=int(message.episode_seed), stamp_s=seconds(message.header.stamp),
        received_s=received_s)


def tcp_quaternion(message: SimGroundTruth) -> np.ndarray:
    orientation = message.tcp_pose.orientation
    return np.array([orientation.w, orientation.x, orientation.y, orientation.z], dtype=float)


def human_ee_command(message: EndEffectorCommand, received_s: float) -> HumanEeCommand:
    """A human (or oracle) EE command; GRIPPER_POSITION is not a human command (ValueError)."""
    if message.gripper_command not in (EndEffectorCommand.GRIPPER_STAY,
                                       EndEffectorCommand.GRIPPER_CLOSE,
                                       EndEffectorCommand.GRIPPER_OPEN):
        raise ValueError(f'gripper_command {message.gripper_command} (expected STAY, CLOSE or '
                         'OPEN)')
    if message.source not in (EndEffectorCommand.SOURCE_HUMAN, EndEffectorCommand.SOURCE_SCRIPT):
        raise ValueError(f'source {message.source} on the human command topic (expected '
                         'SOURCE_HUMAN or SOURCE_SCRIPT)')
    return HumanEeCommand(_vector(message.delta_m), Gripper(message.gripper_command), received_s,
                          Source(message.source))


def human_joint_command(message: JointCommand, received_s: float) -> HumanJointCommand:
    return HumanJointCommand(tuple(message.names), np.asarray(message.positions, dtype=float),
                             received_s)


def episode_event_type(message: EpisodeEvent) -> CoreEpisodeEventType:
    return CoreEpisodeEventType(message.event)


def ee_command_message(action: StepAction, stamp, frame_id: str) -> EndEffectorCommand:
    message = EndEffectorCommand()
    message.header.stamp = stamp
    message.header.frame_id = frame_id
    message.source = int(action.source)
    message.delta_m.x, message.delta_m.y, message.delta_m.z = (float(v) for v in action.delta_m)
    message.gripper_command = int(action.gripper)
    return message


def joint_command_message(names, positions, source: int, stamp, frame_id: str) -> JointCommand:
    message = JointCommand(source=int(source), names=list(names),
                           positions=[float(v) for v in positions])
    message.header.stamp = stamp
    message.header.frame_id = frame_id
    return message


def observation_message(built: BuiltObservation, state_names, privileged_names,
                        run_id: str) -> ObservationMsg:
    """The policy observation; images[i].header = the raw frame's header (stamp, frame_id)."""
    observation = built.observation
    message = ObservationMsg()
    message.header.stamp = time_message(built.stamp_s)
    message.header.frame_id = run_id
    message.state_names = list(state_names)
    message.state = np.asarray(observation.state, np.float32).tolist()
    message.camera_names = list(observation.images)
    images = []
    for name, image in observation.images.items():
        image_message = array_to_image(image)
        header = built.frame_headers.get(name)
        if header is not None:
            image_message.header = header
        images.append(image_message)
    message.images = images
    message.privileged_names = list(privileged_names)
    message.privileged_state = np.asarray(observation.privileged, np.float32).tolist()
    return message


def transition_message(record: TransitionRecord, observation: ObservationMsg,
                       next_observation: ObservationMsg, stamp) -> TransitionMsg:
    """Transition (header.frame_id = the actor run id) from prebuilt observation messages."""
    transition = record.transition
    message = TransitionMsg(
        episode_id=int(transition.episode_id), step_index=int(transition.step_index),
        reward=float(transition.reward), terminated=bool(transition.terminated),
        truncated=bool(transition.truncated), is_intervention=bool(transition.is_intervention),
        gripper_penalty=float(transition.gripper_penalty))
    message.header.stamp = stamp
    message.header.frame_id = transition.source
    message.observation = observation
    message.next_observation = next_observation
    message.action = np.asarray(transition.action, np.float32).tolist()
    return message


def episode_stats_message(summary: EpisodeSummary, stamp) -> EpisodeStats:
    message = EpisodeStats(
        episode_id=summary.episode_id, policy_version=summary.policy_version,
        episode_return=float(summary.episode_return), success=summary.success,
        length=summary.length, intervention_steps=summary.intervention_steps,
        intervention_count=summary.intervention_count,
        intervention_rate=float(summary.intervention_rate),
        policy_rate_hz=float(summary.policy_rate_hz), duration_s=float(summary.duration_s),
        terminated=summary.terminated, truncated=summary.truncated,
        end_reason=summary.end_reason)
    message.header.stamp = stamp
    return message


def reset_request(request: ResetRequest) -> ResetEpisode.Request:
    message = ResetEpisode.Request(randomize_object=request.randomize_object)
    message.use_seed = request.seed is not None
    message.seed = int(request.seed or 0)
    return message


def reset_outcome(response) -> ResetOutcome:
    joints = np.asarray(response.joint_positions, dtype=float)
    return ResetOutcome(bool(response.success), response.message, int(response.seed),
                        joints if joints.size else None)


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


def observation_frames(observation: ObservationMsg) -> tuple[FrameRef, ...]:
    refs = (frame_ref(image) for image in observation.images)
    return tuple(ref for ref in refs if ref is not None)


def transition_info(message: TransitionMsg) -> TransitionInfo:
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
