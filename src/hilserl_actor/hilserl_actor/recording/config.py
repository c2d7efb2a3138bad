"""RecorderParams -> RecorderSettings: paths resolved, crop config and calibration read."""
import hashlib
import pathlib

import yaml

from hilserl_actor.errors import RecorderError
from hilserl_actor.params import RecorderParams
from hilserl_actor.recording.types import RecorderSettings

REORDER_WINDOW_S = 0.3
"""Messages are processed in publication order after waiting this long (see
RecorderSettings.reorder_window_s): ample for messages of one host, negligible for recording."""


def read_crop_config(path: str) -> dict | None:
    """The crop config file's contents (a YAML mapping); None for ''."""
    if not path:
        return None
    file = pathlib.Path(path).expanduser()
    try:
        content = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise RecorderError(f'crop_config {file}: {error}') from error
    if not isinstance(content, dict):
        raise RecorderError(f'crop_config {file}: expected a YAML mapping, got '
                            f'{type(content).__name__}')
    return content


def calibration_id(path: str) -> str:
    """``<file name>@sha256:<first 12 hex digits>`` of a calibration file; '' for ''."""
    if not path:
        return ''
    file = pathlib.Path(path).expanduser()
    try:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as error:
        raise RecorderError(f'calibration_file {file}: {error}') from error
    return f'{file.name}@sha256:{digest[:12]}'


def settings_from_params(params: RecorderParams) -> RecorderSettings:
    """Resolve the output directory (absolute) and read the crop and calibration files."""
    return RecorderSettings(
        output_dir=pathlib.Path(params.output_dir).expanduser().resolve(),
        task=params.task, fps=params.control_rate_hz,
        raw_camera_names=params.camera_names if params.record_raw_images else (),
        crop_config=read_crop_config(params.crop_config),
        crop_config_file=(str(pathlib.Path(params.crop_config).expanduser().resolve())
                          if params.crop_config else ''),
        calibration_id=calibration_id(params.calibration_file),
        compression=params.compression, min_free_disk_mb=params.min_free_disk_mb,
        max_episodes=params.max_episodes, preroll_s=params.preroll_s,
        episode_stats_timeout_s=params.episode_stats_timeout_s,
        flush_period_s=params.flush_period_s,
        raw_frame_wait_s=max(1.0, 2.0 / params.control_rate_hz),
        reorder_window_s=REORDER_WINDOW_S)
