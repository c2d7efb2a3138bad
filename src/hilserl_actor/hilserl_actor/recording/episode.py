"""One episode's bag while it is being written, and what is known about the episode."""
import pathlib

from hilserl_actor.recording.types import Incoming, RecorderSettings, StatsInfo, TransitionInfo
from hilserl_learner import demo_format as fmt
from hilserl_learner.bag_io import EpisodeBagWriter
from hilserl_learner.errors import DemoWriteError


class CreateError(Exception):
    """An episode directory could not be created (``error``: the OSError / DemoWriteError)."""

    def __init__(self, directory: pathlib.Path, error: Exception):
        super().__init__(f'{directory}: {error}')
        self.directory, self.error = directory, error


class OpenEpisode:
    """The writer of ``episode_<index>/`` plus the counters that end up in its sidecar.

    ``OSError`` (full disk) and ``DemoWriteError`` from the writer pass through: the recorder
    then calls ``discard``.
    """

    def __init__(self, writer: EpisodeBagWriter, info: fmt.EpisodeInfo, key: tuple[str, int],
                 opened_s: float):
        self.writer = writer
        self.info = info
        self.key = key
        self.opened_s = opened_s
        self.last_flush_s = opened_s
        self._first_ns: int | None = None
        self._last_ns = 0
        self._intervening = False
        self._cameras: list[str] = []
        self.ended = False
        """Its last transition (terminated / truncated) is in: only its EpisodeStats and the
        raw frames its images need still belong to it."""

    @classmethod
    def create(cls, settings: RecorderSettings, key: tuple[str, int], typestore,
               writer_factory=EpisodeBagWriter, now_s: float = 0.0) -> 'OpenEpisode':
        """Open ``episode_<next index>/`` with its sidecar (label recording); CreateError."""
        index = fmt.next_episode_index(settings.output_dir)
        directory = settings.output_dir / fmt.episode_dir_name(index)
        info = fmt.EpisodeInfo(
            index=index, task=settings.task, fps=settings.fps,
            raw_camera_names=list(settings.raw_camera_names),
            crop_config=settings.crop_config, crop_config_file=settings.crop_config_file,
            calibration_id=settings.calibration_id, run_id=key[0], episode_id=key[1],
            started_at=fmt.utc_now_iso())
        writer = writer_factory(directory, typestore, settings.compression)
        try:
            writer.open()
            fmt.write_sidecar(directory, info)
        except (OSError, DemoWriteError) as error:
            writer.abort(remove=True)
            raise CreateError(directory, error) from error
        return cls(writer, info, key, now_s)

    @property
    def directory(self) -> pathlib.Path:
        return self.writer.directory

    @property
    def name(self) -> str:
        return self.writer.directory.name

    def write(self, item: Incoming) -> None:
        self.writer.write(item.topic, item.received_ns, item.data)
        if self._first_ns is None:
            self._first_ns = item.received_ns
        self._last_ns = max(self._last_ns, item.received_ns)

    def note_transition(self, transition: TransitionInfo) -> None:
        info = self.info
        info.length += 1
        info.intervention_steps += int(transition.is_intervention)
        info.intervention_count += int(transition.is_intervention and not self._intervening)
        self._intervening = transition.is_intervention
        self.ended = transition.ends_episode
        for name in transition.camera_names:
            if name not in self._cameras:
                self._cameras.append(name)

    def flush(self, now: float) -> None:
        self.writer.flush()
        self.last_flush_s = now

    def finalize(self, label: str, end_reason: str, stats: StatsInfo | None = None,
                 error: str = '', raw_frames_missing: int = 0) -> fmt.EpisodeInfo:
        """Close the bag with its metadata and write the sidecar; returns the final info."""
        info = self.info
        info.label, info.end_reason, info.error = label, end_reason, error
        info.camera_names = list(self._cameras)
        info.raw_frames_missing += raw_frames_missing
        info.message_counts = dict(self.writer.counts)
        if self._first_ns is not None:
            info.duration_s = round((self._last_ns - self._first_ns) / 1e9, 3)
        if stats is not None:
            info.success = stats.success
            info.policy_version = stats.policy_version
            info.episode_return = float(stats.episode_return)
            info.terminated, info.truncated = stats.terminated, stats.truncated
            if stats.intervention_count:
                info.intervention_count = stats.intervention_count
            if stats.length != info.length:
                info.error = (f'EpisodeStats reports {stats.length} steps, '
                              f'{info.length} transitions were recorded')
        self.writer.close(info.custom_data())
        fmt.write_sidecar(self.directory, info)
        return info

    def discard(self) -> None:
        """Delete the episode (re-record, or after a write error)."""
        self.writer.abort(remove=True)
