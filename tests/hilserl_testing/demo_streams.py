"""Synthetic demo episodes: what an actor in demo mode publishes, for recorder/loader tests.

ROS-free. ``episode_messages(make, plan)`` lists the messages of one episode in publication
order as ``(topic, message)``; ``make(typename, **fields)`` builds a message, so the same
episodes become rosbags objects (``rosbags_maker``: unit tests, bags written directly) or
rclpy messages (``rclpy_maker``: the cross-process publisher). Every value is derived from
(episode_id, step), so tests can check what they read back against ``steps_of(plan)``.

Images: camera ``front``, raw frames 24x32 (frame_id ``front_camera``, stamps from
``frame_stamp_ns``); the recorded policy image is the 16x16 window at (y 4, x 8)
(``RECORDED_CROP``), another crop (``OTHER_CROP``, window at (y 6, x 2)) re-crops them.
"""
import array
import dataclasses
import math

import numpy as np

CAMERA = 'front'
FRAME_ID = 'front_camera'
RAW_SHAPE = (24, 32)
CROP_SIZE = (16, 16)
STATE_DIM = 4
ACTION_DIM = 3  # + the discrete gripper command
PRIVILEGED_DIM = 2
RUN_ID = 'actor-run-1'


def window_crop(y: int, x: int, size=CROP_SIZE):
    """A real crop config whose ``front`` crop is the window at (y, x) of ``size`` (h, w),
    output at the same size (so the crop is an exact copy of those pixels)."""
    from hilserl_learner.preprocessing import CameraCrop, CropConfig, Roi

    height, width = size
    return CropConfig({CAMERA: CameraCrop(Roi(x, y, width, height), width, height)})


RECORDED_CROP = window_crop(4, 8)
OTHER_CROP = window_crop(6, 2)


@dataclasses.dataclass(frozen=True)
class EpisodePlan:
    episode_id: int
    steps: int
    end_reason: str
    """success | failure | time_limit | rerecord | safety_trip | operator."""

    @property
    def success(self) -> bool:
        return self.end_reason == 'success'


@dataclasses.dataclass(frozen=True)
class Step:
    step_index: int
    state: np.ndarray
    next_state: np.ndarray
    action: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    is_intervention: bool
    gripper_penalty: float


def frame_stamp_ns(episode_id: int, frame: int) -> int:
    return (1000 + 100 * episode_id + frame) * 100_000_000


def raw_frame(episode_id: int, frame: int) -> np.ndarray:
    """A 24x32 RGB frame unique to (episode, frame): every pixel differs from its neighbours."""
    y, x = np.mgrid[0:RAW_SHAPE[0], 0:RAW_SHAPE[1]]
    base = (episode_id * 37 + frame * 11) % 97
    image = np.stack([(base + 3 * y + x) % 256, (base * 2 + y + 5 * x) % 256,
                      np.full_like(y, (episode_id * 50 + frame) % 256)], axis=-1)
    return image.astype(np.uint8)


def state(episode_id: int, frame: int) -> np.ndarray:
    return np.array([episode_id, frame / 10, math.sin(frame), math.cos(frame)], np.float32)


def steps_of(plan: EpisodePlan) -> list[Step]:
    last = plan.steps - 1
    ends = {'success': (True, False), 'failure': (True, False), 'safety_trip': (True, False),
            'time_limit': (False, True), 'operator': (False, True), 'rerecord': (False, False)}
    terminated, truncated = ends[plan.end_reason]
    return [Step(
        step_index=t, state=state(plan.episode_id, t), next_state=state(plan.episode_id, t + 1),
        action=np.array([0.1 * (t % 10) - 0.5, 0.2, -0.3, t % 3], np.float32),
        reward=1.0 if plan.success and t == last else 0.0,
        terminated=terminated and t == last, truncated=truncated and t == last,
        is_intervention=t % 4 != 3, gripper_penalty=-0.02 if t % 3 == 1 else 0.0)
        for t in range(plan.steps)]


# --- message builders -------------------------------------------------------------------------
def _time(make, stamp_ns: int):
    return make('builtin_interfaces/msg/Time', sec=stamp_ns // 1_000_000_000,
                nanosec=stamp_ns % 1_000_000_000)


def _header(make, stamp_ns: int, frame_id: str = ''):
    return make('std_msgs/msg/Header', stamp=_time(make, stamp_ns), frame_id=frame_id)


def _image(make, pixels: np.ndarray, stamp_ns: int):
    height, width = pixels.shape[:2]
    return make('sensor_msgs/msg/Image', header=_header(make, stamp_ns, FRAME_ID),
                height=height, width=width, encoding='rgb8', is_bigendian=0, step=width * 3,
                data=np.ascontiguousarray(pixels).reshape(-1))


def raw_image_message(make, episode_id: int, frame: int):
    return _image(make, raw_frame(episode_id, frame), frame_stamp_ns(episode_id, frame))


def observation_message(make, episode_id: int, frame: int):
    crop = RECORDED_CROP.apply(CAMERA, raw_frame(episode_id, frame))
    stamp = frame_stamp_ns(episode_id, frame)
    return make('hilserl_msgs/msg/Observation', header=_header(make, stamp),
                state_names=['a', 'b', 'c', 'd'], state=state(episode_id, frame),
                camera_names=[CAMERA], images=[_image(make, crop, stamp)],
                privileged_names=['px', 'py'],
                privileged_state=np.array([0.5, frame], np.float32))


def transition_message(make, plan: EpisodePlan, step: Step, run_id: str = RUN_ID):
    t = step.step_index
    return make('hilserl_msgs/msg/Transition',
                header=_header(make, frame_stamp_ns(plan.episode_id, t + 1), run_id),
                episode_id=plan.episode_id, step_index=t,
                observation=observation_message(make, plan.episode_id, t), action=step.action,
                reward=step.reward,
                next_observation=observation_message(make, plan.episode_id, t + 1),
                terminated=step.terminated, truncated=step.truncated,
                is_intervention=step.is_intervention, gripper_penalty=step.gripper_penalty)


def stats_message(make, plan: EpisodePlan, run_id: str = RUN_ID):
    steps = steps_of(plan)
    interventions = sum(s.is_intervention for s in steps)
    return make('hilserl_msgs/msg/EpisodeStats',
                header=_header(make, frame_stamp_ns(plan.episode_id, plan.steps), run_id),
                episode_id=plan.episode_id, policy_version=7,
                episode_return=float(sum(s.reward for s in steps)), success=plan.success,
                length=plan.steps, intervention_steps=interventions,
                intervention_count=sum(1 for i, s in enumerate(steps) if s.is_intervention
                                       and (i == 0 or not steps[i - 1].is_intervention)),
                intervention_rate=interventions / plan.steps, policy_rate_hz=10.0,
                duration_s=plan.steps / 10,
                terminated=steps[-1].terminated, truncated=steps[-1].truncated,
                end_reason=plan.end_reason)


def command_message(make, episode_id: int, frame: int):
    delta = make('geometry_msgs/msg/Vector3', x=0.01, y=0.0, z=-0.01 * (frame % 2))
    return make('hilserl_msgs/msg/EndEffectorCommand',
                header=_header(make, frame_stamp_ns(episode_id, frame), 'base_link'), source=1,
                delta_m=delta, gripper_command=0, gripper_position_rad=0.0)


def event_message(make, event: int, source: str = 'oracle'):
    return make('hilserl_msgs/msg/EpisodeEvent', header=_header(make, 0), event=event,
                source=source, reason='test')


def intervention_message(make, active: bool, count: int):
    return make('hilserl_msgs/msg/InterventionState', header=_header(make, 0), source=4,
                active=active, intervention_count=count)


def joint_state_message(make, episode_id: int, frame: int):
    return make('sensor_msgs/msg/JointState', header=_header(make, frame_stamp_ns(
        episode_id, frame)), name=['shoulder_pan', 'gripper'],
        position=np.array([0.1 * frame, 0.2], np.float64), velocity=np.zeros(2, np.float64),
        effort=np.zeros(2, np.float64))


START_EPISODE = 4


def episode_messages(make, plan: EpisodePlan, run_id: str = RUN_ID,
                     with_stats: bool = True) -> list[tuple[str, object]]:
    """The episode's messages in the order an actor, a teleop and a camera publish them."""
    messages = [('/hilserl/episode_event', event_message(make, START_EPISODE)),
                ('/hilserl/intervention', intervention_message(make, True, plan.episode_id))]
    for step in steps_of(plan):
        t = step.step_index
        if t == 0:
            messages.append(('/cameras/front/image_raw',
                             raw_image_message(make, plan.episode_id, 0)))
        messages += [
            ('/hilserl/observation', observation_message(make, plan.episode_id, t)),
            ('/joint_states', joint_state_message(make, plan.episode_id, t)),
            ('/hilserl/human/ee_command', command_message(make, plan.episode_id, t)),
            ('/hilserl/ee_command', command_message(make, plan.episode_id, t)),
            ('/cameras/front/image_raw', raw_image_message(make, plan.episode_id, t + 1)),
            ('/hilserl/transitions', transition_message(make, plan, step, run_id)),
        ]
    if with_stats:
        messages.append(('/hilserl/episode_stats', stats_message(make, plan, run_id)))
    return messages


def rosbags_maker(typestore):
    """``make`` for rosbags message objects."""
    def make(typename, **fields):
        return typestore.types[typename](**fields)
    return make


_ARRAY_CODES = {np.dtype(np.float32): 'f', np.dtype(np.float64): 'd', np.dtype(np.uint8): 'B'}


def rclpy_maker():
    """``make`` for rclpy messages (numpy arrays become array.array)."""
    import importlib

    def make(typename, **fields):
        package, _, name = typename.split('/')
        cls = getattr(importlib.import_module(f'{package}.msg'), name)
        for key, value in fields.items():
            if isinstance(value, np.ndarray):
                fields[key] = array.array(_ARRAY_CODES[value.dtype], value.tobytes())
        return cls(**fields)
    return make


def source_typestore():
    """rosbags typestore: ROS 2 Kilted's standard messages + hilserl_msgs from this checkout
    (no build needed)."""
    import pathlib

    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    typestore = get_typestore(Stores.ROS2_KILTED)
    msg_dir = pathlib.Path(__file__).resolve().parents[2] / 'src' / 'hilserl_msgs' / 'msg'
    types = {}
    for path in sorted(msg_dir.glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'hilserl_msgs/msg/{path.stem}'))
    typestore.register(types)
    return typestore
