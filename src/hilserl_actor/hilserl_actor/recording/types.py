"""Inputs and outputs of the recorder core: received messages, what the recorder needs to
know about them, and notices for the node to log.
"""
import dataclasses
import pathlib

from hilserl_learner.demo_format import TopicSpec


@dataclasses.dataclass(frozen=True)
class Incoming:
    """One received message: its topic, receive time and CDR bytes (what goes in the bag)."""

    topic: TopicSpec
    received_ns: int
    """Wall-clock receive time, ns since the epoch (the bag's log time, as ros2 bag record)."""
    data: bytes
    sent_ns: int = 0
    """Publication time (DDS source timestamp, same clock as received_ns; 0 = unknown):
    messages of different topics are processed in this order."""


@dataclasses.dataclass(frozen=True)
class FrameRef:
    """A camera frame, identified by its header (the actor copies it into policy images)."""

    frame_id: str
    stamp_ns: int


@dataclasses.dataclass(frozen=True)
class TransitionInfo:
    """What the recorder reads from a Transition."""

    run_id: str
    episode_id: int
    step_index: int
    is_intervention: bool
    camera_names: tuple[str, ...] = ()
    frames: tuple[FrameRef, ...] = ()
    """Raw frames of the observation and next observation."""
    ends_episode: bool = False
    """terminated or truncated: the episode's last step."""

    @property
    def key(self) -> tuple[str, int]:
        return (self.run_id, self.episode_id)


@dataclasses.dataclass(frozen=True)
class StatsInfo:
    """What the recorder reads from an EpisodeStats."""

    run_id: str
    """header.frame_id ('' matches any actor run)."""
    episode_id: int
    end_reason: str
    success: bool
    length: int = 0
    intervention_steps: int = 0
    intervention_count: int = 0
    policy_version: int = 0
    episode_return: float = 0.0
    terminated: bool = False
    truncated: bool = False
    duration_s: float = 0.0

    def matches(self, key: tuple[str, int]) -> bool:
        return self.episode_id == key[1] and self.run_id in ('', key[0])


@dataclasses.dataclass(frozen=True)
class Notice:
    """Something the node should log: level 'info', 'warn' or 'error'."""

    level: str
    text: str


@dataclasses.dataclass(frozen=True)
class RecorderSettings:
    """The recorder core's configuration (built by the node from RecorderParams)."""

    output_dir: pathlib.Path
    task: str = ''
    fps: float = 10.0
    raw_camera_names: tuple[str, ...] = ()
    """Cameras whose raw frames are recorded (empty: none)."""
    crop_config: dict | None = None
    crop_config_file: str = ''
    calibration_id: str = ''
    compression: str = 'zstd'
    min_free_disk_mb: float = 500.0
    max_episodes: int = 0
    preroll_s: float = 1.0
    episode_stats_timeout_s: float = 3.0
    flush_period_s: float = 1.0
    raw_frame_wait_s: float = 1.0
    """How long a policy image waits for its raw frame before it counts as missing."""
    raw_frame_buffer_s: float = 2.0
    """How long unreferenced raw frames are kept for a later policy image."""
    reorder_window_s: float = 0.0
    """Messages wait this long after arrival and are then processed in publication order, so
    that the episode boundary is the same for every topic (each topic has its own reader,
    and the executor interleaves them)."""
