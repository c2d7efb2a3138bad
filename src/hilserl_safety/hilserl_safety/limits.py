"""Joint ranges and the TCP workspace box: loading (URDF, limit file), intersection, margins.

The limit file is what ``find_joint_limits`` writes and the safety filter loads::

    format: hilserl_joint_limits/1
    joint_limits_rad:            # per joint, the range seen while a person moved the arm
      shoulder_pan: {min: -1.2, max: 1.3}
      ...
    end_effector_bounds:         # TCP box in the base frame, m (LeRobot's min/max format)
      min: [0.05, -0.25, 0.0]
      max: [0.38, 0.25, 0.30]
    samples: 1234
    duration_s: 42.0
"""
import dataclasses
import pathlib
import xml.etree.ElementTree as ElementTree

import numpy as np
import yaml

from hilserl_safety.errors import LimitsError, LimitsFileError

FILE_FORMAT = 'hilserl_joint_limits/1'


@dataclasses.dataclass(frozen=True)
class JointLimits:
    """Per-joint position range, rad, in ``names`` order."""

    names: tuple[str, ...]
    lower_rad: np.ndarray
    upper_rad: np.ndarray

    def __post_init__(self):
        lower = np.asarray(self.lower_rad, dtype=float).copy()
        upper = np.asarray(self.upper_rad, dtype=float).copy()
        if lower.shape != (len(self.names),) or upper.shape != lower.shape:
            raise LimitsError(f'joint limits: expected {len(self.names)} values per side')
        bad = [n for n, lo, hi in zip(self.names, lower, upper) if not lo <= hi]
        if bad:
            raise LimitsError(f'joint limits: empty range for {bad} (lower {lower}, '
                              f'upper {upper})')
        lower.flags.writeable = False
        upper.flags.writeable = False
        object.__setattr__(self, 'lower_rad', lower)
        object.__setattr__(self, 'upper_rad', upper)

    def intersect(self, ranges: dict[str, tuple[float, float]], origin: str) -> 'JointLimits':
        """Narrow the joints named in ``ranges``; LimitsError names an empty intersection."""
        unknown = sorted(set(ranges) - set(self.names))
        if unknown:
            raise LimitsError(f'{origin}: unknown joints {unknown} (expected {self.names})')
        lower, upper = self.lower_rad.copy(), self.upper_rad.copy()
        for index, name in enumerate(self.names):
            if name in ranges:
                low, high = ranges[name]
                lower[index], upper[index] = max(lower[index], low), min(upper[index], high)
                if lower[index] > upper[index]:
                    raise LimitsError(f'{origin}: {name} range [{low}, {high}] does not overlap '
                                      f'[{self.lower_rad[index]}, {self.upper_rad[index]}]')
        return JointLimits(self.names, lower, upper)

    def shrink(self, margin_rad: float) -> 'JointLimits':
        """Keep ``margin_rad`` inside each range (a range narrower than twice the margin
        collapses to its middle).
        """
        middle = (self.lower_rad + self.upper_rad) / 2.0
        lower = np.minimum(self.lower_rad + margin_rad, middle)
        upper = np.maximum(self.upper_rad - margin_rad, middle)
        return JointLimits(self.names, lower, upper)

    def clip(self, positions: np.ndarray) -> np.ndarray:
        return np.clip(positions, self.lower_rad, self.upper_rad)

    def excess(self, positions: np.ndarray) -> np.ndarray:
        """How far each position lies outside its range (0 inside), rad."""
        return np.maximum(self.lower_rad - positions, 0.0) + np.maximum(
            positions - self.upper_rad, 0.0)


@dataclasses.dataclass(frozen=True)
class WorkspaceBox:
    """Axis-aligned TCP box in the base frame, m."""

    min_m: np.ndarray
    max_m: np.ndarray

    def __post_init__(self):
        low = np.asarray(self.min_m, dtype=float).copy()
        high = np.asarray(self.max_m, dtype=float).copy()
        if low.shape != (3,) or high.shape != (3,) or not np.all(np.isfinite([low, high])):
            raise LimitsError(f'workspace box: need 3 finite values per corner, got {low} {high}')
        if np.any(low >= high):
            raise LimitsError(f'workspace box is empty: min {low.tolist()} max {high.tolist()}')
        low.flags.writeable = False
        high.flags.writeable = False
        object.__setattr__(self, 'min_m', low)
        object.__setattr__(self, 'max_m', high)

    def clip(self, position: np.ndarray) -> np.ndarray:
        return np.clip(position, self.min_m, self.max_m)

    def distance(self, position: np.ndarray) -> float:
        """Euclidean distance from ``position`` to the box (0 inside)."""
        return float(np.linalg.norm(position - self.clip(position)))

    def contains(self, position: np.ndarray, tolerance_m: float = 0.0) -> bool:
        return self.distance(position) <= tolerance_m

    def margin(self, position: np.ndarray) -> float:
        """Distance from ``position`` to the nearest wall, m: positive inside, negative
        outside (the depth beyond the farthest-crossed wall).
        """
        position = np.asarray(position, dtype=float)
        return float(min(np.min(position - self.min_m), np.min(self.max_m - position)))

    def intersect(self, other: 'WorkspaceBox', origin: str) -> 'WorkspaceBox':
        low, high = np.maximum(self.min_m, other.min_m), np.minimum(self.max_m, other.max_m)
        if np.any(low >= high):
            raise LimitsError(f'{origin}: the workspace boxes do not overlap '
                              f'(min {low.tolist()}, max {high.tolist()})')
        return WorkspaceBox(low, high)


@dataclasses.dataclass(frozen=True)
class LimitsFile:
    """The content of a find_joint_limits file."""

    joint_ranges_rad: dict[str, tuple[float, float]]
    tcp_box: WorkspaceBox | None
    samples: int = 0
    duration_s: float = 0.0


def load_limits_file(path: str | pathlib.Path) -> LimitsFile:
    """Read a limit file; LimitsFileError explains what is wrong with it."""
    path = pathlib.Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except OSError as error:
        raise LimitsFileError(f'{path}: cannot read the limit file ({error})') from error
    except yaml.YAMLError as error:
        raise LimitsFileError(f'{path}: not valid YAML ({error})') from error
    if not isinstance(content, dict) or content.get('format') != FILE_FORMAT:
        raise LimitsFileError(f'{path}: not a limit file (need format: {FILE_FORMAT}; '
                              'write one with find_joint_limits)')
    ranges = {}
    for name, entry in (content.get('joint_limits_rad') or {}).items():
        try:
            low, high = float(entry['min']), float(entry['max'])
        except (TypeError, KeyError, ValueError) as error:
            raise LimitsFileError(f'{path}: joint {name} needs numeric min and max') from error
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise LimitsFileError(f'{path}: joint {name} has an invalid range [{low}, {high}]')
        ranges[str(name)] = (low, high)
    box = None
    bounds = content.get('end_effector_bounds')
    if bounds is not None:
        try:
            box = WorkspaceBox(np.array(bounds['min'], dtype=float),
                               np.array(bounds['max'], dtype=float))
        except (TypeError, KeyError, ValueError, LimitsError) as error:
            raise LimitsFileError(f'{path}: end_effector_bounds needs min and max of 3 numbers '
                                  f'with min < max ({error})') from error
    if not ranges and box is None:
        raise LimitsFileError(f'{path}: holds neither joint_limits_rad nor end_effector_bounds')
    return LimitsFile(ranges, box, int(content.get('samples', 0)),
                      float(content.get('duration_s', 0.0)))


def save_limits_file(path: str | pathlib.Path, limits: LimitsFile, comment: str = '') -> None:
    """Write ``limits`` atomically (a temporary file renamed into place)."""
    path = pathlib.Path(path)
    content = {
        'format': FILE_FORMAT,
        'joint_limits_rad': {name: {'min': float(low), 'max': float(high)}
                             for name, (low, high) in limits.joint_ranges_rad.items()},
        'samples': int(limits.samples),
        'duration_s': float(limits.duration_s),
    }
    if limits.tcp_box is not None:
        content['end_effector_bounds'] = {'min': limits.tcp_box.min_m.tolist(),
                                          'max': limits.tcp_box.max_m.tolist()}
    header = ''.join(f'# {line}\n' for line in comment.splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f'.{path.name}.tmp')
    temporary.write_text(header + yaml.safe_dump(content, sort_keys=False))
    temporary.replace(path)


@dataclasses.dataclass(frozen=True)
class EffectiveLimits:
    """The limits the filter enforces: every source intersected, margins applied."""

    joints: JointLimits
    box: WorkspaceBox


def effective_limits(params, urdf_lower_rad, urdf_upper_rad,
                     limits_file: LimitsFile | None = None) -> EffectiveLimits:
    """Intersect the URDF ranges, the limit file and the configured box; apply the margin.

    ``urdf_lower_rad``/``urdf_upper_rad`` hold one value per joint of ``params.joint_names``.
    """
    joints = JointLimits(params.joint_names, urdf_lower_rad, urdf_upper_rad)
    box = WorkspaceBox(np.array(params.workspace_min_m), np.array(params.workspace_max_m))
    if limits_file is not None:
        origin = f'limits_file {params.limits_file}'
        joints = joints.intersect(limits_file.joint_ranges_rad, origin)
        if params.use_limits_file_workspace and limits_file.tcp_box is not None:
            box = box.intersect(limits_file.tcp_box, origin)
    return EffectiveLimits(joints.shrink(params.joint_limit_margin_rad), box)


def urdf_joint_limits(path: str | pathlib.Path, names) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper position limits of the joints ``names`` from a URDF, rad."""
    try:
        root = ElementTree.parse(str(path)).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise LimitsError(f'{path}: cannot read the URDF ({error})') from error
    found = {}
    for joint in root.iter('joint'):
        limit = joint.find('limit')
        if limit is not None and 'lower' in limit.attrib and 'upper' in limit.attrib:
            found[joint.get('name')] = (float(limit.get('lower')), float(limit.get('upper')))
    missing = [name for name in names if name not in found]
    if missing:
        raise LimitsError(f'{path}: no position limits for joints {missing}')
    lower, upper = zip(*(found[name] for name in names))
    return np.array(lower), np.array(upper)
