"""Recorded demonstrations -> the learner's transitions and the reward classifier's frames.

ROS-free: bags are read with ``rosbags`` using the message definitions embedded in them.
``path`` may be one episode directory, a directory of episodes (a recording session), a
directory of sessions (searched recursively), or a demo buffer saved by ``load_demos
--output`` (``demo_buffer.py``).

Transitions (``load_transitions``):
- episodes labelled ``success`` and ``failure`` are used; ``interrupted`` ones only on request
  (their last transition is marked truncated), re-recorded ones no longer exist;
- flags are the recorded ones; if an episode's last transition carries neither terminated
  nor truncated, they come from its EpisodeStats (terminated, else truncated);
- images are uint8 (H, W, 3) of the spec's size: the recorded (already cropped) policy images
  when no crop is given or the given crop config equals the recorded one; otherwise every
  policy image is re-cropped from the raw camera frame it was cut from (matched by header
  stamp and frame_id) with ``crop.apply(camera, image)`` (``hilserl_learner.preprocessing``).

Labelled frames (``load_labelled_frames``): an episode of T transitions has T + 1 frames
(the observation of each step, then the last next observation). A frame is a **success** when
the transition that led to it has reward > 0, or when it is one of the last
``success_tail_frames`` frames of an episode labelled success; every other frame is a
**failure**. Balancing happens in the classifier.
"""
import dataclasses
import pathlib

import numpy as np

from hilserl_learner import bag_io, demo_buffer
from hilserl_learner import demo_format as fmt
from hilserl_learner.errors import DatasetError
from hilserl_learner.observation import Observation, ObservationSpec, Transition
from hilserl_learner.preprocessing import CropConfig, CropError, load_crop_config


@dataclasses.dataclass
class Episode:
    """One recorded episode, read back."""

    directory: pathlib.Path
    info: fmt.EpisodeInfo
    transitions: list
    """Transition messages (rosbags objects), by step_index."""
    raw_frames: dict
    """(frame_id, stamp_ns) -> raw sensor_msgs/Image (rosbags object)."""


@dataclasses.dataclass
class LabelledFrames:
    """Frames with success labels for the reward classifier."""

    images: dict[str, np.ndarray]
    """camera -> (N, H, W, 3) uint8."""
    success: np.ndarray
    """(N,) bool."""
    episode: np.ndarray
    """(N,) int: index of the frame's episode in the order they were read."""
    frame_index: np.ndarray
    """(N,) int: 0..T within its episode (T = the final next observation)."""

    def __len__(self) -> int:
        return len(self.success)


# --- finding and reading episodes -------------------------------------------------------------
def find_episodes(path, labels=fmt.KEPT_LABELS) -> list[pathlib.Path]:
    """Episode directories under ``path`` whose label is in ``labels``, in path order."""
    path = pathlib.Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f'{path} does not exist')
    if fmt.is_episode_dir(path):
        candidates = [path]
    else:
        candidates = sorted(p for p in path.rglob(f'{fmt.EPISODE_PREFIX}*')
                            if fmt.EPISODE_DIR_PATTERN.match(p.name) and fmt.is_episode_dir(p))
    if not candidates:
        raise DatasetError(f'no recorded episodes (episode_NNNN/ with {fmt.SIDECAR}) in {path}')
    chosen = []
    for directory in candidates:
        info = fmt.read_sidecar(directory)
        if info is None:
            raise DatasetError(f'{directory}: unreadable {fmt.SIDECAR} and metadata.yaml')
        if info.label in labels:
            chosen.append(directory)
    return chosen


def read_episode(directory, raw_frames: bool = True) -> Episode:
    """Read an episode's transitions (and raw camera frames) back from its bag."""
    directory = pathlib.Path(directory)
    info = fmt.read_sidecar(directory)
    if info is None:
        raise DatasetError(f'{directory}: not an episode directory')
    if not (directory / fmt.BAG_METADATA).is_file():
        raise DatasetError(f'{directory}: the bag is unfinished (no metadata.yaml); start the '
                           'recorder once to repair it')
    topics = {fmt.TRANSITIONS}
    if raw_frames:
        topics |= {fmt.raw_image_topic(c).name for c in info.raw_camera_names}
    steps, frames = {}, {}
    for topic, _, message in bag_io.read_messages(directory, topics):
        if topic == fmt.TRANSITIONS:
            steps.setdefault(int(message.step_index), message)
        else:
            stamp = message.header.stamp
            frames[(message.header.frame_id, stamp.sec * 1_000_000_000 + stamp.nanosec)] = message
    return Episode(directory, info, [steps[k] for k in sorted(steps)], frames)


# --- images -----------------------------------------------------------------------------------
def image_array(image, where: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an rgb8 / bgr8 sensor_msgs/Image (rosbags object)."""
    height, width, step = int(image.height), int(image.width), int(image.step)
    data = np.asarray(image.data, np.uint8)
    if image.encoding not in ('rgb8', 'bgr8'):
        raise DatasetError(f'{where}: image encoding {image.encoding!r} (expected rgb8/bgr8)')
    if step < width * 3 or data.size != height * step:
        raise DatasetError(f'{where}: {data.size} bytes for {height}x{width}, step {step}')
    array = data.reshape(height, step)[:, :width * 3].reshape(height, width, 3)
    return array[..., ::-1].copy() if image.encoding == 'bgr8' else array


def _frame_key(image) -> tuple[str, int]:
    stamp = image.header.stamp
    return (image.header.frame_id, stamp.sec * 1_000_000_000 + stamp.nanosec)


class _Images:
    """Policy images of an episode: recorded ones, or re-cropped from the raw frames."""

    def __init__(self, episode: Episode, crop, size: tuple[int, int] | None):
        self.episode, self.crop, self.size = episode, crop, size

    def get(self, image, camera: str, where: str) -> np.ndarray:
        if self.crop is None:
            array = image_array(image, where)
        else:
            raw = self.episode.raw_frames.get(_frame_key(image))
            if raw is None:
                reason = ('no raw frames were recorded (record_raw_images was off)'
                          if not self.episode.info.raw_camera_names else
                          'its raw camera frame is not in the bag')
                raise DatasetError(f'{where}: cannot re-crop camera {camera}: {reason}')
            array = self.crop.apply(camera, image_array(raw, where))
        if self.size is not None and (array.dtype != np.uint8 or array.shape != (*self.size, 3)):
            hint = (' (the crop config gives another size)' if self.crop is not None else
                    ': pass the crop config that produces this size (load_demos '
                    '--crop-config) or set the learner image size to the recorded one')
            raise DatasetError(f'{where}: camera {camera} image is {array.dtype} '
                               f'{array.shape}, expected uint8 {(*self.size, 3)}{hint}')
        return array


def load_crop(crop) -> tuple[CropConfig | None, dict | None]:
    """None, a ``CropConfig`` or a crop config YAML path -> (config, its normalised content).

    The content is what an episode's recorded crop is compared with (see ``_crop_for``).
    """
    if crop is None:
        return None, None
    if not isinstance(crop, CropConfig):
        try:
            crop = load_crop_config(pathlib.Path(crop).expanduser())
        except CropError as error:
            raise DatasetError(str(error)) from error
    return crop, crop.to_dict()


def normalised_crop(recorded: dict | None) -> dict | None:
    """The recorded crop config in ``CropConfig.to_dict`` form (None if absent or invalid)."""
    if recorded is None:
        return None
    try:
        return CropConfig.from_dict(recorded).to_dict()
    except CropError:
        return None


def _crop_for(info: fmt.EpisodeInfo, crop, crop_content):
    """The crop to apply to an episode: None when its recorded images already match."""
    if crop is None or (crop_content is not None
                        and crop_content == normalised_crop(info.crop_config)):
        return None
    return crop


# --- transitions ------------------------------------------------------------------------------
def episode_transitions(episode: Episode, spec: ObservationSpec, crop=None,
                        crop_content=None) -> list[Transition]:
    """The core transitions of one episode, checked against ``spec``."""
    images = _Images(episode, _crop_for(episode.info, crop, crop_content),
                     tuple(spec.image_size))
    name = episode.directory.name
    source = f'demo/{episode.directory.parent.name}/{name}'
    result = []
    for message in episode.transitions:
        where = f'{name} step {message.step_index}'
        action = np.asarray(message.action, np.float32)
        if action.shape != (spec.stored_action_dim,):
            raise DatasetError(f'{where}: action has {action.size} values, the learner '
                               f'expects {spec.stored_action_dim}')
        result.append(Transition(
            observation=_observation(message.observation, spec, images, f'{where} observation'),
            action=action, reward=float(message.reward),
            next_observation=_observation(message.next_observation, spec, images,
                                          f'{where} next_observation'),
            terminated=bool(message.terminated), truncated=bool(message.truncated),
            is_intervention=bool(message.is_intervention),
            gripper_penalty=float(message.gripper_penalty),
            episode_id=int(message.episode_id), step_index=int(message.step_index),
            source=source))
    if result and not (result[-1].terminated or result[-1].truncated):
        info = episode.info
        terminated = info.terminated and info.label != fmt.LABEL_INTERRUPTED
        result[-1].terminated, result[-1].truncated = terminated, not terminated
    return result


def _observation(message, spec: ObservationSpec, images: _Images, where: str) -> Observation:
    state = np.asarray(message.state, np.float32)
    if state.shape != (spec.state_dim,):
        raise DatasetError(f'{where}: state has {state.size} values, the learner expects '
                           f'{spec.state_dim}')
    recorded = dict(zip(message.camera_names, message.images))
    missing = [c for c in spec.camera_names if c not in recorded]
    if missing:
        raise DatasetError(f'{where}: cameras {missing} were not recorded (recorded: '
                           f'{list(recorded)})')
    privileged = np.asarray(message.privileged_state, np.float32)
    if spec.privileged_dim == 0:
        privileged = np.zeros(0, np.float32)
    elif privileged.shape != (spec.privileged_dim,):
        raise DatasetError(f'{where}: privileged state has {privileged.size} values, the '
                           f'learner expects {spec.privileged_dim}')
    return Observation(state, {c: images.get(recorded[c], c, where) for c in spec.camera_names},
                       privileged)


def load_transitions(path, spec: ObservationSpec, crop=None, labels=fmt.KEPT_LABELS,
                     include_interrupted: bool = False):
    """Yield the demonstrations under ``path`` as core ``Transition``s (module docstring).

    ``crop``: None (use the recorded images), a crop config YAML path or a ``CropConfig``
    (re-crops from the raw frames unless it equals the recorded crop). DatasetError on
    anything that does not fit ``spec``.
    """
    for _, transition in load_labelled_transitions(path, spec, crop, labels,
                                                   include_interrupted):
        yield transition


def load_labelled_transitions(path, spec: ObservationSpec, crop=None, labels=fmt.KEPT_LABELS,
                              include_interrupted: bool = False):
    """As ``load_transitions``, each transition with its episode's label: (label, transition);
    the label is None for a saved demo buffer (it keeps no labels).
    """
    if demo_buffer.is_demo_buffer(path):
        for transition in demo_buffer.iter_transitions(path, spec):
            yield None, transition
        return
    crop, content = load_crop(crop)
    labels = tuple(labels) + ((fmt.LABEL_INTERRUPTED,) if include_interrupted else ())
    for directory in find_episodes(path, labels):
        info = fmt.read_sidecar(directory)
        recrop = _crop_for(info, crop, content) is not None
        for transition in episode_transitions(read_episode(directory, raw_frames=recrop), spec,
                                              crop, content):
            yield info.label, transition


# --- labelled frames --------------------------------------------------------------------------
def load_labelled_frames(path, crop=None, success_tail_frames: int = 1,
                         labels=fmt.KEPT_LABELS, cameras=None) -> LabelledFrames:
    """Frames and success labels for the reward classifier (module docstring). ``path``: one
    path or a list of them; episodes are numbered across all of them.
    """
    if success_tail_frames < 0:
        raise ValueError(f'success_tail_frames must be >= 0, got {success_tail_frames}')
    crop, content = load_crop(crop)
    paths = [path] if isinstance(path, (str, pathlib.Path)) else list(path)
    images: dict[str, list] = {}
    success, episode_index, frame_index = [], [], []
    size = None
    directories = [d for p in paths for d in find_episodes(p, labels)]
    for number, directory in enumerate(directories):
        info = fmt.read_sidecar(directory)
        episode = read_episode(directory,
                               raw_frames=_crop_for(info, crop, content) is not None)
        if not episode.transitions:
            continue
        names = list(cameras or episode.transitions[0].observation.camera_names)
        if images and set(names) != set(images):
            raise DatasetError(f'{directory.name}: cameras {names} differ from the earlier '
                               f'episodes ({list(images)})')
        reader = _Images(episode, _crop_for(info, crop, content), size)
        observations = [t.observation for t in episode.transitions]
        observations.append(episode.transitions[-1].next_observation)
        count = len(observations)
        for index, observation in enumerate(observations):
            recorded = dict(zip(observation.camera_names, observation.images))
            for camera in names:
                if camera not in recorded:
                    raise DatasetError(f'{directory.name} frame {index}: no camera {camera}')
                frame = reader.get(recorded[camera], camera, f'{directory.name} frame {index}')
                if size is None:
                    size = reader.size = frame.shape[:2]
                images.setdefault(camera, []).append(frame)
        rewarded = [False] + [float(t.reward) > 0 for t in episode.transitions]
        tail = success_tail_frames if info.label == fmt.LABEL_SUCCESS else 0
        success += [rewarded[i] or i >= count - tail for i in range(count)]
        episode_index += [number] * count
        frame_index += list(range(count))
    if not success:
        raise DatasetError(f'no frames in the episodes under {path}')
    return LabelledFrames({c: np.stack(v) for c, v in images.items()}, np.array(success, bool),
                          np.array(episode_index, np.int64), np.array(frame_index, np.int64))
