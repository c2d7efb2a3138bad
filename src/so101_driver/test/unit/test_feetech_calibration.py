"""LeRobot calibration files and the tick <-> radian mapping onto the URDF."""
import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from so101_driver.errors import ConfigurationError
from so101_driver.feetech import calibration as cal
from so101_driver.model_files import JOINT_NAMES, official_model_files

# The shape of a file written by `lerobot-calibrate --robot.type=so101_follower`.
LEROBOT_FILE = """{
    "shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1470,
                     "range_min": 758, "range_max": 3292},
    "shoulder_lift": {"id": 2, "drive_mode": 0, "homing_offset": 157,
                      "range_min": 812, "range_max": 3180},
    "elbow_flex": {"id": 3, "drive_mode": 0, "homing_offset": 1105,
                   "range_min": 877, "range_max": 3088},
    "wrist_flex": {"id": 4, "drive_mode": 0, "homing_offset": -1162,
                   "range_min": 934, "range_max": 3243},
    "wrist_roll": {"id": 5, "drive_mode": 0, "homing_offset": -1057,
                   "range_min": 0, "range_max": 4095},
    "gripper": {"id": 6, "drive_mode": 0, "homing_offset": 1297,
                "range_min": 1971, "range_max": 3263}
}
"""


@pytest.fixture
def lerobot_file(tmp_path):
    path = tmp_path / 'robots' / 'so101_follower' / 'my_follower.json'
    path.parent.mkdir(parents=True)
    path.write_text(LEROBOT_FILE)
    return path


def test_loads_a_lerobot_file_and_round_trips(lerobot_file, tmp_path):
    calibration = cal.load_calibration(lerobot_file)
    assert list(calibration) == list(JOINT_NAMES)
    assert calibration['shoulder_pan'] == cal.MotorCalibration(1, 0, -1470, 758, 3292)
    out = tmp_path / 'new' / 'copy.json'
    cal.save_calibration(out, calibration)
    assert json.loads(out.read_text()) == json.loads(LEROBOT_FILE)
    assert cal.load_calibration(out) == calibration
    assert not list(out.parent.glob('*.tmp'))


@pytest.mark.parametrize('mutate, message', [
    (lambda d: d.pop('gripper'), r"no calibration for \['gripper'\]"),
    (lambda d: d['elbow_flex'].pop('range_max'), 'bad entry for elbow_flex'),
    (lambda d: d['elbow_flex'].update(range_min=3100), 'range_min < range_max'),
    (lambda d: d['wrist_flex'].update(homing_offset=3000), 'homing_offset'),
    (lambda d: d['wrist_flex'].update(drive_mode=2), 'drive_mode'),
    (lambda d: d['gripper'].update(id=1), 'ids repeat'),
    (lambda d: d['gripper'].update(range_max=4095.5), 'integer'),
])
def test_bad_files_are_configuration_errors(tmp_path, mutate, message):
    content = json.loads(LEROBOT_FILE)
    mutate(content)
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigurationError, match=message):
        cal.load_calibration(path)


def test_missing_or_unreadable_file(tmp_path):
    with pytest.raises(ConfigurationError, match='no calibration file at .*calibrate'):
        cal.load_calibration(tmp_path / 'absent.json')
    (tmp_path / 'broken.json').write_text('{"shoulder_pan": ')
    with pytest.raises(ConfigurationError, match='not a readable JSON'):
        cal.load_calibration(tmp_path / 'broken.json')


def test_default_path_follows_lerobot(monkeypatch, tmp_path):
    for var in ('HF_LEROBOT_CALIBRATION', 'HF_LEROBOT_HOME', 'HF_HOME'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('HOME', str(tmp_path))
    assert cal.default_calibration_path('arm7') == (
        tmp_path / '.cache/huggingface/lerobot/calibration/robots/so101_follower/arm7.json')
    monkeypatch.setenv('HF_LEROBOT_HOME', str(tmp_path / 'lr'))
    assert cal.default_calibration_path('a').parent == tmp_path / 'lr/calibration/robots' / (
        'so101_follower')
    monkeypatch.setenv('HF_LEROBOT_CALIBRATION', str(tmp_path / 'c'))
    assert cal.default_calibration_path('a') == tmp_path / 'c/robots/so101_follower/a.json'


def test_urdf_limits_constant_matches_the_official_urdf():
    root = ET.parse(official_model_files().urdf).getroot()
    for joint in root.iter('joint'):
        limit = joint.find('limit')
        if joint.get('name') in cal.URDF_JOINT_LIMITS_RAD and limit is not None:
            expected = (float(limit.get('lower')), float(limit.get('upper')))
            assert cal.URDF_JOINT_LIMITS_RAD[joint.get('name')] == expected


def test_mid_range_is_the_urdf_zero_and_ends_are_the_limits(lerobot_file):
    calibration = cal.load_calibration(lerobot_file)
    mapping = cal.JointMapping(calibration)
    mids = np.array([calibration[n].mid for n in JOINT_NAMES])
    zero = mapping.to_rad(mids)
    np.testing.assert_allclose(zero[:5], 0.0, atol=1e-12)
    lows = np.array([calibration[n].range_min for n in JOINT_NAMES])
    highs = np.array([calibration[n].range_max for n in JOINT_NAMES])
    np.testing.assert_allclose(mapping.to_rad(lows), mapping.lower_limits_rad)
    np.testing.assert_allclose(mapping.to_rad(highs), mapping.upper_limits_rad)
    # Arm joints: 4096 ticks per turn around the middle of the range.
    pan = calibration['shoulder_pan']
    assert mapping.upper_limits_rad[0] == pytest.approx((pan.range_max - pan.mid) * 2 * math.pi
                                                        / 4096)
    assert mapping.to_rad(mids + 1024)[1] == pytest.approx(math.pi / 2)
    # Gripper: the calibrated range is the URDF jaw range.
    assert mapping.lower_limits_rad[5] == pytest.approx(-0.174533)
    assert mapping.upper_limits_rad[5] == pytest.approx(1.74533)
    # Round trip and clamping.
    targets = np.array([0.3, -0.5, 1.0, -1.2, 2.0, 0.7])
    error = np.abs(mapping.to_rad(mapping.to_ticks(targets)) - targets)
    assert np.all(error <= np.abs(mapping.rad_per_tick) / 2 + 1e-12)
    clamped = mapping.to_ticks(np.full(6, 10.0))
    np.testing.assert_array_equal(clamped, highs)
    np.testing.assert_array_equal(mapping.to_ticks(np.full(6, -10.0)), lows)


def test_drive_mode_reverses_the_direction(lerobot_file):
    calibration = cal.load_calibration(lerobot_file)
    flipped = {n: cal.MotorCalibration(c.id, 1, c.homing_offset, c.range_min, c.range_max)
               for n, c in calibration.items()}
    plain, reversed_ = cal.JointMapping(calibration), cal.JointMapping(flipped)
    ticks = np.array([c.mid + 100 for c in calibration.values()])
    np.testing.assert_allclose(reversed_.to_rad(ticks)[:5], -plain.to_rad(ticks)[:5])
    # The reversed gripper is closed at range_max and open at range_min.
    assert reversed_.to_rad(np.array([3263] * 6))[5] == pytest.approx(-0.174533)
    assert reversed_.to_rad(np.array([1971] * 6))[5] == pytest.approx(1.74533)
    np.testing.assert_allclose(reversed_.lower_limits_rad, plain.lower_limits_rad)
    assert reversed_.load_to_percent(np.full(6, 250))[0] == -25.0
    assert reversed_.velocity_to_rad_s(np.full(6, 4096))[0] == pytest.approx(-2 * math.pi)


def test_commands_must_be_finite_and_complete(lerobot_file):
    mapping = cal.JointMapping(cal.load_calibration(lerobot_file))
    with pytest.raises(ValueError, match='non-finite'):
        mapping.to_ticks(np.array([0, 0, np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match='expected 6'):
        mapping.to_ticks(np.zeros(5))


def test_synthetic_calibration_is_centred_on_the_urdf_zero():
    ids = {name: i + 1 for i, name in enumerate(JOINT_NAMES)}
    calibration = cal.synthetic_calibration(ids, {'shoulder_pan': -217})
    mapping = cal.JointMapping(calibration)
    assert calibration['shoulder_pan'].homing_offset == -217
    assert calibration['wrist_roll'].range_max == 4095
    np.testing.assert_allclose(mapping.lower_limits_rad[:4],
                               [cal.URDF_JOINT_LIMITS_RAD[n][0] for n in JOINT_NAMES[:4]],
                               atol=2e-3)
    assert cal.mismatches(calibration['gripper'], 0, 1933, 3000) == ['range_max file=3185 '
                                                                     'servo=3000']
