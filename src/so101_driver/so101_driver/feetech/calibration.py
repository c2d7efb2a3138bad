"""SO-101 calibration: LeRobot's JSON file format and the tick <-> radian mapping.

The file is LeRobot's, so existing LeRobot users keep their calibration::

    {"shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1470,
                      "range_min": 758, "range_max": 3292}, ...}

``homing_offset`` is written to the servo's Homing_Offset register (Present_Position = raw
encoder - Homing_Offset); ``range_min``/``range_max`` are Present_Position ticks, also written
to Min/Max_Position_Limit.

Mapping to the URDF (``so101_new_calib.urdf``, whose joint zero is the middle of each range):

* Arm joints: ``rad = s * (ticks - mid) * 2*pi / 4096`` with ``mid = (range_min + range_max) / 2``
  and ``s = -1`` when ``drive_mode`` is 1, else +1. LeRobot's degrees mode uses the same ``mid``
  but divides by 4095; the difference is 0.024 % of the angle (at most 0.04 deg at 180 deg).
  4096 ticks per turn is the encoder's true resolution, so we keep it.
* Gripper: LeRobot normalises it to 0..100 % of its calibrated range (0 = range_min = closed);
  we map that range linearly onto the URDF jaw range -0.1745..1.7453 rad (``drive_mode`` 1
  reverses it), so the simulated and the real jaw agree at both ends.

Velocities use the same scale (Present_Velocity counts ticks/s); loads stay in percent with the
joint's sign. The calibrated range in radians is what targets are clamped to.
"""
import dataclasses
import json
import math
import os
import pathlib

import numpy as np

from so101_driver.errors import ConfigurationError
from so101_driver.feetech import control_table as ct
from so101_driver.model_files import JOINT_NAMES

RAD_PER_TICK = 2 * math.pi / ct.TICKS_PER_TURN
URDF_JOINT_LIMITS_RAD: dict[str, tuple[float, float]] = {
    'shoulder_pan': (-1.91986, 1.91986),
    'shoulder_lift': (-1.74533, 1.74533),
    'elbow_flex': (-1.69, 1.69),
    'wrist_flex': (-1.65806, 1.65806),
    'wrist_roll': (-2.74385, 2.84121),
    'gripper': (-0.174533, 1.74533),
}
"""Limits of so101_new_calib.urdf (checked against the installed file by the tests)."""
RANGE_MAPPED_JOINTS = ('gripper',)
"""Joints whose calibrated range maps linearly onto their URDF range."""
FULL_TURN_JOINTS = ('wrist_roll',)
"""Joints LeRobot calibrates to the full 0..4095 turn instead of a recorded range."""
ROBOT_TYPE = 'so101_follower'
FIELDS = ('id', 'drive_mode', 'homing_offset', 'range_min', 'range_max')


@dataclasses.dataclass(frozen=True)
class MotorCalibration:
    """One motor's entry of LeRobot's calibration file."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    def __post_init__(self):
        for field in FIELDS:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f'{field} must be an integer, got {value!r}')
        if not 0 <= self.id <= 253:
            raise ValueError(f'id must be in 0..253, got {self.id}')
        if self.drive_mode not in (0, 1):
            raise ValueError(f'drive_mode must be 0 or 1, got {self.drive_mode}')
        if abs(self.homing_offset) > ct.HOMING_OFFSET_LIMIT:
            raise ValueError(f'homing_offset must be within +-{ct.HOMING_OFFSET_LIMIT}, '
                             f'got {self.homing_offset}')
        if not 0 <= self.range_min < self.range_max <= ct.MAX_TICK:
            raise ValueError(f'need 0 <= range_min < range_max <= {ct.MAX_TICK}, got '
                             f'range_min={self.range_min}, range_max={self.range_max}')

    @property
    def mid(self) -> float:
        return (self.range_min + self.range_max) / 2


def lerobot_calibration_dir() -> pathlib.Path:
    """LeRobot's calibration root (HF_LEROBOT_CALIBRATION, HF_LEROBOT_HOME, HF_HOME aware)."""
    if os.environ.get('HF_LEROBOT_CALIBRATION'):
        return pathlib.Path(os.environ['HF_LEROBOT_CALIBRATION']).expanduser()
    if os.environ.get('HF_LEROBOT_HOME'):
        return pathlib.Path(os.environ['HF_LEROBOT_HOME']).expanduser() / 'calibration'
    hf_home = os.environ.get('HF_HOME', '~/.cache/huggingface')
    return pathlib.Path(hf_home).expanduser() / 'lerobot' / 'calibration'


def default_calibration_path(robot_id: str = 'so101_follower') -> pathlib.Path:
    """``~/.cache/huggingface/lerobot/calibration/robots/so101_follower/<robot_id>.json``."""
    return lerobot_calibration_dir() / 'robots' / ROBOT_TYPE / f'{robot_id}.json'


def load_calibration(path: str | os.PathLike, joint_names: tuple[str, ...] = JOINT_NAMES
                     ) -> dict[str, MotorCalibration]:
    """Read a LeRobot calibration file; ConfigurationError says what is wrong and how to fix."""
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise ConfigurationError(
            f'no calibration file at {path}; calibrate the arm with '
            f'`ros2 run so101_driver calibrate --port PORT --calibration-file {path}` '
            '(or point calibration_file at your LeRobot calibration)')
    try:
        content = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigurationError(f'{path}: not a readable JSON file ({error})') from error
    if not isinstance(content, dict):
        raise ConfigurationError(f'{path}: expected an object keyed by motor name')
    missing = [name for name in joint_names if name not in content]
    if missing:
        raise ConfigurationError(f'{path}: no calibration for {missing} '
                                 f'(found {sorted(content)})')
    calibration = {}
    for name in joint_names:
        entry = content[name]
        try:
            calibration[name] = MotorCalibration(**{field: entry[field] for field in FIELDS})
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigurationError(f'{path}: bad entry for {name}: {error!r}') from error
    ids = [c.id for c in calibration.values()]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f'{path}: servo ids repeat: {ids}')
    return calibration


def save_calibration(path: str | os.PathLike, calibration: dict[str, MotorCalibration]) -> None:
    """Write LeRobot's format atomically (temporary file + rename), creating the folder."""
    path = pathlib.Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {name: dataclasses.asdict(entry) for name, entry in calibration.items()}
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(content, indent=4) + '\n')
    os.replace(tmp, path)


def synthetic_calibration(servo_ids: dict[str, int], homing_offsets: dict[str, int]
                          ) -> dict[str, MotorCalibration]:
    """A plausible calibration (URDF-sized ranges around the half-turn), for the virtual bus."""
    calibration = {}
    for name, servo_id in servo_ids.items():
        low, high = URDF_JOINT_LIMITS_RAD[name]
        mid = ct.HALF_TURN_TICK
        if name in FULL_TURN_JOINTS:
            range_min, range_max = 0, ct.MAX_TICK
        elif name in RANGE_MAPPED_JOINTS:
            range_min = mid + round(low / RAD_PER_TICK)
            range_max = mid + round(high / RAD_PER_TICK)
        else:
            half = round(min(-low, high) / RAD_PER_TICK)
            range_min, range_max = mid - half, mid + half
        calibration[name] = MotorCalibration(id=servo_id, drive_mode=0,
                                             homing_offset=homing_offsets.get(name, 0),
                                             range_min=range_min, range_max=range_max)
    return calibration


class JointMapping:
    """Affine tick <-> SI mapping of every joint, vectorised in the driver's joint order."""

    def __init__(self, calibration: dict[str, MotorCalibration],
                 joint_names: tuple[str, ...] = JOINT_NAMES):
        self.joint_names = tuple(joint_names)
        slope, zero, range_min, range_max = [], [], [], []
        for name in self.joint_names:
            cal = calibration[name]
            sign = -1.0 if cal.drive_mode else 1.0
            if name in RANGE_MAPPED_JOINTS:
                low, high = URDF_JOINT_LIMITS_RAD[name]
                scale = (high - low) / (cal.range_max - cal.range_min)
                # rad = low + (t - range_min) * scale  (drive_mode: from range_max downwards)
                start = cal.range_max if cal.drive_mode else cal.range_min
                slope.append(sign * scale)
                zero.append(start - sign * low / scale)
            else:
                slope.append(sign * RAD_PER_TICK)
                zero.append(cal.mid)
            range_min.append(cal.range_min)
            range_max.append(cal.range_max)
        self.rad_per_tick = np.array(slope)
        """Signed radians per tick of each joint."""
        self.zero_ticks = np.array(zero)
        """Tick value at 0 rad (the URDF zero)."""
        self.range_min_ticks = np.array(range_min)
        self.range_max_ticks = np.array(range_max)
        ends = np.stack([self.to_rad(self.range_min_ticks), self.to_rad(self.range_max_ticks)])
        self.lower_limits_rad = ends.min(axis=0)
        self.upper_limits_rad = ends.max(axis=0)

    def to_rad(self, ticks: np.ndarray) -> np.ndarray:
        return (np.asarray(ticks, dtype=float) - self.zero_ticks) * self.rad_per_tick

    def velocity_to_rad_s(self, ticks_per_s: np.ndarray) -> np.ndarray:
        return np.asarray(ticks_per_s, dtype=float) * self.rad_per_tick

    def load_to_percent(self, load: np.ndarray) -> np.ndarray:
        """Present_Load (0.1 % units) -> percent, signed like the joint angle."""
        return np.asarray(load, dtype=float) * np.sign(self.rad_per_tick) / 10.0

    def to_ticks(self, positions_rad: np.ndarray) -> np.ndarray:
        """Radians -> integer ticks, clamped to the calibrated range (NaN is rejected)."""
        positions = np.asarray(positions_rad, dtype=float)
        if positions.shape != self.zero_ticks.shape:
            raise ValueError(f'expected {len(self.joint_names)} positions, got {positions.shape}')
        if not np.all(np.isfinite(positions)):
            raise ValueError(f'non-finite joint position command: {positions.tolist()}')
        ticks = np.rint(positions / self.rad_per_tick + self.zero_ticks)
        return np.clip(ticks, self.range_min_ticks, self.range_max_ticks).astype(int)


def mismatches(file_entry: MotorCalibration, homing_offset: int, range_min: int,
               range_max: int) -> list[str]:
    """Differences between the file and what a servo stores, as readable phrases."""
    found = []
    for field, stored in (('homing_offset', homing_offset), ('range_min', range_min),
                          ('range_max', range_max)):
        expected = getattr(file_entry, field)
        if expected != stored:
            found.append(f'{field} file={expected} servo={stored}')
    return found
