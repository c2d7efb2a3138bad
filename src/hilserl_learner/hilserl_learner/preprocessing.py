"""The image preprocessing shared by the actor, the dataset loader and the reward classifier.

Every camera frame a policy, a critic or a classifier sees goes through ``crop_and_resize``
with the camera's ``CameraCrop`` from one crop config file, so online and offline images are
identical. A crop is a region of interest in source pixels (x, y, width, height; ``None`` =
the full frame), resized with OpenCV's ``INTER_AREA`` to the output size (128x128 by
default, as HIL-SERL). The config file (YAML; the ``roi_crop`` tool writes it)::

    format: hilserl_crop/1
    default_output: {width: 128, height: 128}   # cameras not listed: full frame at this size
    cameras:
      front:
        roi: {x: 120, y: 40, width: 400, height: 400}    # source pixels; omit = full frame
        output: {width: 128, height: 128}
      wrist:
        output: {width: 128, height: 128}

``load_crop_config('')`` is the default config (every camera: full frame, 128x128). ROS-free.
"""
import dataclasses
import os
import pathlib

import cv2
import numpy as np
import yaml

from hilserl_learner.errors import ConfigurationError

FORMAT = 'hilserl_crop/1'
DEFAULT_OUTPUT_SIZE = 128
DEFAULT_CROP_FILE = '~/.config/hilserl/crop.yaml'
"""Where the roi_crop tool writes by default; the nodes' crop_config_file must name it."""


class CropError(ConfigurationError, ValueError):
    """A crop config is unreadable or invalid, or a ROI does not fit a frame."""


@dataclasses.dataclass(frozen=True)
class Roi:
    """A rectangle in source pixels: top-left corner (x, y), width and height."""

    x: int
    y: int
    width: int
    height: int

    def __post_init__(self):
        for name in ('x', 'y', 'width', 'height'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise CropError(f'roi.{name}: expected an integer, got {value!r}')
            object.__setattr__(self, name, int(value))
        if self.x < 0 or self.y < 0:
            raise CropError(f'roi: x and y must be >= 0, got ({self.x}, {self.y})')
        if self.width < 1 or self.height < 1:
            raise CropError(f'roi: width and height must be >= 1, got '
                            f'{self.width}x{self.height}')

    @classmethod
    def parse(cls, text: str) -> 'Roi':
        """'x,y,w,h' (pixels) -> Roi."""
        parts = [p.strip() for p in str(text).split(',')]
        try:
            values = [int(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 4:
            raise CropError(f'ROI {text!r}: expected x,y,width,height (4 integers)')
        return cls(*values)


@dataclasses.dataclass(frozen=True)
class CameraCrop:
    """One camera's crop: region of interest (None = full frame) and output size (pixels)."""

    roi: Roi | None = None
    output_width: int = DEFAULT_OUTPUT_SIZE
    output_height: int = DEFAULT_OUTPUT_SIZE

    def __post_init__(self):
        for name in ('output_width', 'output_height'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
                    8 <= value <= 4096):
                raise CropError(f'{name}: expected an integer in [8, 4096], got {value!r}')
            object.__setattr__(self, name, int(value))

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width), as ObservationSpec.image_size."""
        return self.output_height, self.output_width

    def check_frame(self, width: int, height: int, camera: str = '') -> None:
        """CropError unless the ROI lies inside a ``width`` x ``height`` frame."""
        roi = self.roi
        if roi is not None and (roi.x + roi.width > width or roi.y + roi.height > height):
            raise CropError(
                f'camera {camera or "?"}: ROI x={roi.x} y={roi.y} {roi.width}x{roi.height} '
                f'does not fit the {width}x{height} frame; choose it again with roi_crop')


@dataclasses.dataclass(frozen=True)
class CropConfig:
    """Per-camera crops; cameras not listed get ``default`` (full frame, default size)."""

    cameras: dict[str, CameraCrop] = dataclasses.field(default_factory=dict)
    default: CameraCrop = CameraCrop()

    def camera(self, name: str) -> CameraCrop:
        return self.cameras.get(name, self.default)

    def with_camera(self, name: str, crop: CameraCrop) -> 'CropConfig':
        """A copy with ``name``'s crop replaced (the other cameras are kept)."""
        return CropConfig({**self.cameras, name: crop}, self.default)

    def apply(self, name: str, image: np.ndarray) -> np.ndarray:
        return crop_and_resize(image, self.camera(name), name)

    def to_dict(self) -> dict:
        cameras = {}
        for name, crop in sorted(self.cameras.items()):
            entry = {}
            if crop.roi is not None:
                entry['roi'] = dataclasses.asdict(crop.roi)
            entry['output'] = {'width': crop.output_width, 'height': crop.output_height}
            cameras[name] = entry
        return {'format': FORMAT,
                'default_output': {'width': self.default.output_width,
                                   'height': self.default.output_height},
                'cameras': cameras}

    @classmethod
    def from_dict(cls, data, origin: str = 'crop config') -> 'CropConfig':
        if not isinstance(data, dict):
            raise CropError(f'{origin}: expected a mapping with format: {FORMAT}')
        if data.get('format') != FORMAT:
            raise CropError(f'{origin}: format must be {FORMAT!r}, got {data.get("format")!r}')
        unknown = sorted(set(data) - {'format', 'default_output', 'cameras'})
        if unknown:
            raise CropError(f'{origin}: unknown keys {unknown}')
        default = CameraCrop(None, *_output(data.get('default_output'), f'{origin}: '
                                            'default_output'))
        cameras = {}
        entries = data.get('cameras') or {}
        if not isinstance(entries, dict):
            raise CropError(f'{origin}: cameras must map camera names to crops')
        for name, entry in entries.items():
            where = f'{origin}: cameras.{name}'
            if not isinstance(entry, dict) or set(entry) - {'roi', 'output'}:
                raise CropError(f'{where}: expected a mapping with roi and/or output')
            roi = entry.get('roi')
            if roi is not None:
                if not isinstance(roi, dict) or set(roi) != {'x', 'y', 'width', 'height'}:
                    raise CropError(f'{where}.roi: expected x, y, width, height')
                try:
                    roi = Roi(**roi)
                except CropError as error:
                    raise CropError(f'{where}.{error}') from error
            output = entry.get('output', {'width': default.output_width,
                                          'height': default.output_height})
            try:
                cameras[str(name)] = CameraCrop(roi, *_output(output, f'{where}.output'))
            except CropError as error:
                raise CropError(f'{where}: {error}') from error
        return cls(cameras, default)


def _output(value, where: str) -> tuple[int, int]:
    if value is None:
        return DEFAULT_OUTPUT_SIZE, DEFAULT_OUTPUT_SIZE
    if not isinstance(value, dict) or set(value) != {'width', 'height'}:
        raise CropError(f'{where}: expected {{width: W, height: H}}, got {value!r}')
    return value['width'], value['height']


def crop_and_resize(image: np.ndarray, camera: CameraCrop, name: str = '') -> np.ndarray:
    """The camera's ROI of ``image`` (H, W, 3 uint8) resized to its output size (INTER_AREA).

    Returns a new C-contiguous uint8 (output_height, output_width, 3) array. CropError when
    the image is not an RGB uint8 array or the ROI does not fit it.
    """
    frame = np.asarray(image)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise CropError(f'camera {name or "?"}: expected an (H, W, 3) uint8 image, got '
                        f'{frame.dtype} {frame.shape}')
    height, width = frame.shape[:2]
    camera.check_frame(width, height, name)
    roi = camera.roi
    if roi is not None:
        frame = frame[roi.y:roi.y + roi.height, roi.x:roi.x + roi.width]
    if frame.shape[:2] == camera.output_size:
        return np.ascontiguousarray(frame).copy()
    return cv2.resize(np.ascontiguousarray(frame), (camera.output_width, camera.output_height),
                      interpolation=cv2.INTER_AREA)


def load_crop_config(path: str | os.PathLike | None) -> CropConfig:
    """The crop config in ``path``; '' or None = the default (full frames, 128x128).

    A path that is set must exist: a missing file is an error, never a silent default.
    """
    if not path:
        return CropConfig()
    file = pathlib.Path(path).expanduser()
    if not file.is_file():
        raise CropError(f'no crop config at {file}; write one with roi_crop, or set the '
                        "crop_config_file parameter to '' for full frames")
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CropError(f'{file}: not a readable YAML file ({error})') from error
    return CropConfig.from_dict(data, str(file))


def save_crop_config(config: CropConfig, path: str | os.PathLike) -> pathlib.Path:
    """Write ``config`` atomically (temporary file + rename), creating the folder."""
    file = pathlib.Path(path).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + '.tmp')
    tmp.write_text('# Camera crops (hilserl_learner.preprocessing); written by roi_crop.\n'
                   + yaml.safe_dump(config.to_dict(), sort_keys=False))
    os.replace(tmp, file)
    return file
