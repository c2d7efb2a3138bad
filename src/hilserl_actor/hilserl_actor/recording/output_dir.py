"""The recorder's output directory: preparing it, repairing leftovers, watching free space."""
import errno
import math
import os
import shutil

from hilserl_actor.errors import RecorderError
from hilserl_actor.recording.types import Notice
from hilserl_learner import demo_format as fmt
from hilserl_learner.bag_io import repair_episode
from hilserl_learner.errors import DatasetError, DemoWriteError


def disk_free_bytes(path) -> int:
    return shutil.disk_usage(path).free


def describe_error(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f'the disk is full ({error})'
    return f'{type(error).__name__}: {error}'


def prepare_output_dir(out) -> list[Notice]:
    """Create ``out``, repair the episodes a killed recorder left, rebuild session.yaml.

    RecorderError if the directory cannot be created or written.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RecorderError(f'output_dir {out}: {error}') from error
    if not os.access(out, os.W_OK | os.X_OK):
        raise RecorderError(f'output_dir {out} is not writable')
    for stale in out.glob('.episode_*.repair'):
        shutil.rmtree(stale, ignore_errors=True)
    notices = [n for d in fmt.episode_dirs(out) if (n := recover_episode(d)) is not None]
    try:
        fmt.write_session_index(out)
    except OSError as error:
        notices.append(Notice('warn', f'session.yaml not updated: {describe_error(error)}'))
    return notices


def recover_episode(directory) -> Notice | None:
    """Finish an episode a killed recorder left (label ``recording``); None if it is fine."""
    info = fmt.read_sidecar(directory)
    complete = (directory / fmt.BAG_METADATA).is_file()
    if info is not None and info.label != fmt.LABEL_RECORDING and complete:
        return None
    try:
        if complete:  # closed, but killed before the sidecar was final: custom_data is
            fmt.write_sidecar(directory, fmt.read_sidecar_from_metadata(directory))
            return None
        repaired = repair_episode(directory)
    except (OSError, DatasetError, DemoWriteError, ValueError) as error:
        return Notice('error', f'{directory.name}: left unfinished by a killed recorder and '
                               f'could not be repaired ({describe_error(error)}); left as is')
    if repaired is None:
        return Notice('warn', f'{directory.name}: left unfinished by a killed recorder with '
                              'nothing readable on disk; removed')
    return Notice('warn', f'{directory.name}: left unfinished by a killed recorder; repaired '
                          f'({repaired.length} steps kept, label interrupted)')


class DiskGuard:
    """Free space of the output directory against ``min_free_disk_mb``."""

    def __init__(self, path, free_bytes=disk_free_bytes):
        self.path, self._free_bytes = path, free_bytes
        self.free_mb = math.nan
        self.low = False
        self.problem = ''

    def check(self, min_free_mb: float) -> tuple[bool, str]:
        """(low, a message when the state changed, else '')."""
        try:
            self.free_mb = self._free_bytes(self.path) / 1e6
        except OSError as error:
            self.free_mb = 0.0
            self.problem = f'free space of {self.path}: {error}'
        low = self.free_mb < min_free_mb
        message = ''
        if low:
            self.problem = (f'only {self.free_mb:.0f} MB free on {self.path} '
                            f'(min_free_disk_mb {min_free_mb:g})')
            if not self.low:
                message = f'disk almost full: {self.problem}; recording paused'
        elif self.low:
            message = f'{self.free_mb:.0f} MB free again: recording resumes with the next episode'
        self.low = low
        return low, message
