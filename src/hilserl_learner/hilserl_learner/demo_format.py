"""The on-disk format of recorded demonstrations (ROS-free), shared by recorder and loader.

One rosbag2 directory per episode (MCAP storage, metadata version 9), so ``ros2 bag info`` /
``ros2 bag play`` on a full ROS 2 install and the ``rosbags`` / ``mcap`` libraries read it::

    <output_dir>/
      session.yaml                 index: every episode with its label (rebuilt after each one)
      episode_0000/
        metadata.yaml              rosbag2 metadata; custom_data holds hilserl.* (the sidecar)
        episode_0000.mcap          the messages, CDR, with their .msg definitions as schemas
        episode.yaml               sidecar: EpisodeInfo (task, fps, cameras, crop, label, ...)

``EpisodeInfo.label`` says what the episode is: ``success`` / ``failure`` (finished, labelled
by the actor's EpisodeStats), ``interrupted`` (finalized early: Ctrl-C, deactivate, full disk,
a write error, a lost EpisodeStats, or repaired after a crash) or ``recording`` (being written
now, or left by a killed recorder: the recorder repairs it at its next configure). A
re-recorded episode is deleted. The loader uses ``success`` and ``failure`` by default.
"""
import dataclasses
import datetime
import os
import pathlib
import re
import typing

import yaml

EPISODE_FORMAT = 'hilserl-demo-episode-v1'
SESSION_FORMAT = 'hilserl-demo-session-v1'
SIDECAR = 'episode.yaml'
SESSION_INDEX = 'session.yaml'
BAG_METADATA = 'metadata.yaml'
EPISODE_PREFIX = 'episode_'
EPISODE_DIR_PATTERN = re.compile(r'^episode_(\d{4,})$')
CUSTOM_DATA_PREFIX = 'hilserl.'

LABEL_SUCCESS = 'success'
LABEL_FAILURE = 'failure'
LABEL_INTERRUPTED = 'interrupted'
LABEL_RECORDING = 'recording'
LABELS = (LABEL_SUCCESS, LABEL_FAILURE, LABEL_INTERRUPTED, LABEL_RECORDING)
KEPT_LABELS = (LABEL_SUCCESS, LABEL_FAILURE)
"""Finished episodes: what the loader uses unless told otherwise."""

# --- topics (absolute names, docs/architecture.md) --------------------------------------------
TRANSITIONS = '/hilserl/transitions'
OBSERVATION = '/hilserl/observation'
EPISODE_STATS = '/hilserl/episode_stats'
EPISODE_EVENT = '/hilserl/episode_event'
INTERVENTION = '/hilserl/intervention'
EE_COMMAND = '/hilserl/ee_command'
HUMAN_EE_COMMAND = '/hilserl/human/ee_command'
JOINT_COMMAND = '/hilserl/joint_command'
HUMAN_JOINT_COMMAND = '/hilserl/human/joint_command'
SAFETY_EVENTS = '/hilserl/safety_events'
JOINT_STATES = '/joint_states'
GROUND_TRUTH = '/so101_driver/ground_truth'
RAW_IMAGE_TOPIC = '/cameras/{camera}/image_raw'
IMAGE_TYPE = 'sensor_msgs/msg/Image'

# QoS kinds (the node maps them to rclpy profiles, the bag writer to offered_qos_profiles):
# 'reliable' = reliable depth 10, 'keep_all' = reliable keep all, 'latched' = reliable transient
# local depth 1, 'sensor' = best effort (sensor data).
QOS_KINDS = ('reliable', 'keep_all', 'latched', 'sensor')


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    """A recorded topic: its name, message type and QoS kind."""

    name: str
    msgtype: str
    qos: str


RECORDED_TOPICS = (
    TopicSpec(TRANSITIONS, 'hilserl_msgs/msg/Transition', 'keep_all'),
    TopicSpec(OBSERVATION, 'hilserl_msgs/msg/Observation', 'reliable'),
    TopicSpec(EPISODE_STATS, 'hilserl_msgs/msg/EpisodeStats', 'keep_all'),
    TopicSpec(EPISODE_EVENT, 'hilserl_msgs/msg/EpisodeEvent', 'keep_all'),
    TopicSpec(INTERVENTION, 'hilserl_msgs/msg/InterventionState', 'latched'),
    TopicSpec(EE_COMMAND, 'hilserl_msgs/msg/EndEffectorCommand', 'reliable'),
    TopicSpec(HUMAN_EE_COMMAND, 'hilserl_msgs/msg/EndEffectorCommand', 'reliable'),
    TopicSpec(JOINT_COMMAND, 'hilserl_msgs/msg/JointCommand', 'reliable'),
    TopicSpec(HUMAN_JOINT_COMMAND, 'hilserl_msgs/msg/JointCommand', 'reliable'),
    TopicSpec(SAFETY_EVENTS, 'hilserl_msgs/msg/SafetyEvent', 'keep_all'),
    TopicSpec(JOINT_STATES, 'sensor_msgs/msg/JointState', 'reliable'),
    TopicSpec(GROUND_TRUTH, 'hilserl_msgs/msg/SimGroundTruth', 'reliable'),
)
"""Every topic the recorder subscribes to, besides the raw camera images."""


def raw_image_topic(camera: str) -> TopicSpec:
    return TopicSpec(RAW_IMAGE_TOPIC.format(camera=camera), IMAGE_TYPE, 'sensor')


def camera_of_topic(topic: str) -> str | None:
    """The camera name of a raw image topic, None for other topics."""
    match = re.fullmatch(r'/cameras/([^/]+)/image_raw', topic)
    return match.group(1) if match else None


@dataclasses.dataclass
class EpisodeInfo:
    """The sidecar ``episode.yaml`` of one episode (also in metadata.yaml's custom_data)."""

    index: int
    """Position in the output directory (episode_<index>)."""
    label: str = LABEL_RECORDING
    """success | failure | interrupted | recording (see the module docstring)."""
    end_reason: str = ''
    """EpisodeStats.end_reason (success, failure, time_limit, safety_trip, operator) or why
    the recorder finalized it (sigint, deactivated, disk_full, write_error,
    missing_episode_stats, crash)."""
    task: str = ''
    fps: float = 0.0
    """Control rate of the actor, Hz (the recorder's control_rate_hz)."""
    camera_names: list[str] = dataclasses.field(default_factory=list)
    """Policy cameras, in the order of the transitions' images."""
    raw_camera_names: list[str] = dataclasses.field(default_factory=list)
    """Cameras whose raw frames are in the bag (empty: record_raw_images was off)."""
    crop_config: dict | None = None
    """Contents of the ROI crop config the actor used (None: not given to the recorder)."""
    crop_config_file: str = ''
    calibration_id: str = ''
    run_id: str = ''
    """The actor run id (Transition.header.frame_id)."""
    episode_id: int = -1
    """The actor's episode id."""
    length: int = 0
    """Transitions recorded."""
    intervention_steps: int = 0
    """Transitions with is_intervention (counted by the recorder)."""
    intervention_count: int = 0
    """Separate takeovers (from EpisodeStats; else counted from the transitions)."""
    policy_version: int = 0
    episode_return: float = 0.0
    success: bool = False
    terminated: bool = False
    truncated: bool = False
    started_at: str = ''
    """Wall-clock time of the first message, ISO 8601 (UTC)."""
    duration_s: float = 0.0
    message_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    raw_frames_missing: int = 0
    """Policy frames whose raw camera frame never reached the recorder."""
    error: str = ''
    """What went wrong, for interrupted episodes."""
    format: str = EPISODE_FORMAT

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'EpisodeInfo':
        if not isinstance(data, dict) or 'index' not in data:
            raise ValueError('not an episode sidecar (no index)')
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def custom_data(self) -> dict[str, str]:
        """rosbag2 custom_data (strings only): every field as ``hilserl.<field>``."""
        result = {}
        for key, value in self.to_dict().items():
            text = value if isinstance(value, str) else yaml.safe_dump(
                value, default_flow_style=True, sort_keys=False).strip()
            if text.endswith('\n...'):
                text = text[:-4]
            result[CUSTOM_DATA_PREFIX + key] = text
        return result

    @classmethod
    def from_custom_data(cls, custom: dict[str, str]) -> 'EpisodeInfo':
        hints = typing.get_type_hints(cls)
        data = {}
        for key, text in custom.items():
            if not key.startswith(CUSTOM_DATA_PREFIX):
                continue
            name = key[len(CUSTOM_DATA_PREFIX):]
            data[name] = text if hints.get(name) is str else yaml.safe_load(text)
        return cls.from_dict(data)


def utc_now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='milliseconds')


def write_yaml_atomic(path: pathlib.Path, data) -> None:
    """Write YAML to ``path`` via a temporary file and rename (never a half-written file)."""
    path = pathlib.Path(path)
    tmp = path.with_name(f'.{path.name}.tmp')
    with open(tmp, 'w', encoding='utf-8') as stream:
        yaml.safe_dump(data, stream, sort_keys=False)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)


def write_sidecar(directory: pathlib.Path, info: EpisodeInfo) -> None:
    write_yaml_atomic(pathlib.Path(directory) / SIDECAR, info.to_dict())


def read_sidecar_from_metadata(directory: pathlib.Path) -> EpisodeInfo:
    """The episode info in metadata.yaml's custom_data (ValueError / OSError if absent)."""
    meta = yaml.safe_load((pathlib.Path(directory) / BAG_METADATA).read_text())
    try:
        custom = meta['rosbag2_bagfile_information'].get('custom_data') or {}
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f'{directory}: not a rosbag2 metadata.yaml') from error
    return EpisodeInfo.from_custom_data(custom)


def read_sidecar(directory: pathlib.Path) -> EpisodeInfo | None:
    """The episode's sidecar, else metadata.yaml's custom_data; None if neither is readable."""
    directory = pathlib.Path(directory)
    try:
        return EpisodeInfo.from_dict(yaml.safe_load((directory / SIDECAR).read_text()))
    except (OSError, ValueError, TypeError, yaml.YAMLError):
        pass
    try:
        return read_sidecar_from_metadata(directory)
    except (OSError, ValueError, TypeError, yaml.YAMLError):
        return None


def episode_dir_name(index: int) -> str:
    return f'{EPISODE_PREFIX}{index:04d}'


def episode_dirs(output_dir: pathlib.Path) -> list[pathlib.Path]:
    """The episode directories of an output directory, by index."""
    output_dir = pathlib.Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir()
             if p.is_dir() and (m := EPISODE_DIR_PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def next_episode_index(output_dir: pathlib.Path) -> int:
    dirs = episode_dirs(output_dir)
    return int(EPISODE_DIR_PATTERN.match(dirs[-1].name).group(1)) + 1 if dirs else 0


def is_episode_dir(path: pathlib.Path) -> bool:
    path = pathlib.Path(path)
    return path.is_dir() and ((path / SIDECAR).is_file() or (path / BAG_METADATA).is_file())


def write_session_index(output_dir: pathlib.Path) -> dict:
    """Rebuild ``session.yaml`` from the episode sidecars; returns what was written."""
    output_dir = pathlib.Path(output_dir)
    episodes, counts = [], {}
    for directory in episode_dirs(output_dir):
        info = read_sidecar(directory)
        if info is None:
            continue
        counts[info.label] = counts.get(info.label, 0) + 1
        episodes.append({'directory': directory.name, 'label': info.label,
                         'end_reason': info.end_reason, 'length': info.length,
                         'intervention_steps': info.intervention_steps, 'task': info.task,
                         'started_at': info.started_at})
    index = {'format': SESSION_FORMAT, 'updated_at': utc_now_iso(), 'counts': counts,
             'episodes': episodes}
    write_yaml_atomic(output_dir / SESSION_INDEX, index)
    return index
