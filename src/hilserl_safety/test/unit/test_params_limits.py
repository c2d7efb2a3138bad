"""Parameter validation, tighten-only rules, and limit loading / intersection."""
import dataclasses

import numpy as np
import pytest
import yaml

from hilserl_safety.errors import LimitsError, LimitsFileError
from hilserl_safety.limits import (
    FILE_FORMAT,
    JointLimits,
    LimitsFile,
    WorkspaceBox,
    effective_limits,
    load_limits_file,
    save_limits_file,
    urdf_joint_limits,
)
from hilserl_safety.params import LimitFinderParams, SafetyFilterParams, loosened_fields
from so101_driver.dataclass_docs import field_docs


def official_urdf():
    from so101_driver.model_files import official_model_files

    return official_model_files().urdf


@pytest.mark.parametrize('cls', [SafetyFilterParams, LimitFinderParams])
def test_every_field_has_a_docstring(cls):
    docs = field_docs(cls)
    missing = [f.name for f in dataclasses.fields(cls) if not docs.get(f.name)]
    assert missing == []


@pytest.mark.parametrize('field, value', [
    ('control_rate_hz', 0.0), ('control_rate_hz', float('nan')),
    ('workspace_min_m', (0.4, -0.2, 0.0)), ('workspace_max_m', (0.3, 0.2)),
    ('max_joint_speed_rad_s', (1.0,) * 5), ('max_joint_speed_rad_s', (1.0, 1.0, 1.0, 1.0, 1.0, 0)),
    ('max_effort_nm', (3.0,) * 7), ('effort_unit', 'amps'), ('estop_action', 'explode'),
    ('joint_names', ('a', 'a')), ('ee_max_step_m', 0.0), ('ee_max_step_m', float('inf')),
    ('effort_trip_samples', 0), ('command_timeout_s', -1.0), ('workspace_min_m', ('x', 1, 2)),
    ('stall_velocity_rad_s', 0.0), ('stall_velocity_rad_s', float('inf')),
])
def test_bad_values_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SafetyFilterParams(**{field: value})


def test_lists_become_tuples_and_effort_unit_selects_thresholds():
    params = SafetyFilterParams(workspace_min_m=[0.1, -0.1, 0.0], effort_unit='percent')
    assert params.workspace_min_m == (0.1, -0.1, 0.0)
    assert params.max_effort == params.max_effort_percent
    assert SafetyFilterParams().max_effort == SafetyFilterParams().max_effort_nm


def test_only_tightening_is_allowed_at_run_time():
    old = SafetyFilterParams()
    tighter = old.replace(workspace_min_m=(0.15, -0.2, 0.01), workspace_max_m=(0.3, 0.2, 0.2),
                          ee_max_step_m=0.02, joint_limit_margin_rad=0.1, trip_hold_s=2.0,
                          max_joint_speed_rad_s=(1.0,) * 6, command_timeout_s=0.2,
                          stall_velocity_rad_s=0.5, wall_zone_m=0.05,
                          ee_wall_max_step_m=0.005)
    assert loosened_fields(old, tighter) == []
    assert loosened_fields(old, old) == []
    for change in ({'workspace_min_m': (0.10, -0.2, 0.01)}, {'wall_zone_m': 0.02},
                   {'ee_wall_max_step_m': 0.02}, {'workspace_max_m': (0.4, 0.2, 0.25)},
                   {'ee_max_step_m': 0.05}, {'joint_limit_margin_rad': 0.0},
                   {'max_effort_nm': (3.0, 3.0, 3.0, 3.0, 3.5, 5.0)},
                   {'heartbeat_timeout_s': 2.0}, {'effort_trip_samples': 100},
                   {'stall_velocity_rad_s': 0.1}):
        [problem] = loosened_fields(old, old.replace(**change))
        assert next(iter(change)) in problem and 'restart' in problem
    [problem] = loosened_fields(old, old.replace(control_rate_hz=20.0))
    assert 'read-only' in problem


def test_finder_params_validate():
    assert LimitFinderParams(output='x.yaml').min_range_rad > 0
    with pytest.raises(ValueError, match='duration_s'):
        LimitFinderParams(duration_s=1.0, min_duration_s=5.0)
    with pytest.raises(ValueError, match='output'):
        LimitFinderParams(output='')
    with pytest.raises(ValueError, match='min_range_rad'):
        LimitFinderParams(min_range_rad=-1.0)


def test_urdf_limits_match_the_official_model():
    lower, upper = urdf_joint_limits(official_urdf(), SafetyFilterParams().joint_names)
    np.testing.assert_allclose(lower, [-1.91986, -1.74533, -1.69, -1.65806, -2.74385, -0.174533])
    np.testing.assert_allclose(upper, [1.91986, 1.74533, 1.69, 1.65806, 2.84121, 1.74533])
    with pytest.raises(LimitsError, match='no position limits'):
        urdf_joint_limits(official_urdf(), ('shoulder_pan', 'elbow'))


def test_joint_limits_intersect_and_shrink():
    limits = JointLimits(('a', 'b'), [-1.0, -2.0], [1.0, 2.0])
    narrowed = limits.intersect({'a': (-0.5, 3.0)}, 'file')
    np.testing.assert_allclose(narrowed.lower_rad, [-0.5, -2.0])
    np.testing.assert_allclose(narrowed.upper_rad, [1.0, 2.0])
    np.testing.assert_allclose(narrowed.shrink(0.1).lower_rad, [-0.4, -1.9])
    np.testing.assert_allclose(JointLimits(('a',), [0.0], [0.1]).shrink(0.2).upper_rad, [0.05])
    np.testing.assert_allclose(limits.excess(np.array([1.5, -2.5])), [0.5, 0.5])
    with pytest.raises(LimitsError, match='does not overlap'):
        limits.intersect({'a': (2.0, 3.0)}, 'file')
    with pytest.raises(LimitsError, match='unknown joints'):
        limits.intersect({'c': (0.0, 1.0)}, 'file')


def test_workspace_box():
    box = WorkspaceBox(np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0]))
    assert box.contains(np.array([0.5, 0.5, 0.5]))
    assert box.distance(np.array([1.3, 0.5, -0.4])) == pytest.approx(0.5)
    assert box.contains(np.array([1.001, 0.5, 0.5]), tolerance_m=0.002)
    assert box.margin(np.array([0.5, 0.9, 0.2])) == pytest.approx(0.1)  # nearest wall: y max
    assert box.margin(np.array([0.5, 0.5, -0.3])) == pytest.approx(-0.3)  # below the floor
    with pytest.raises(LimitsError, match='empty'):
        WorkspaceBox(np.array([0.0, 0.0, 1.0]), np.array([1.0, 1.0, 1.0]))
    with pytest.raises(LimitsError, match='do not overlap'):
        box.intersect(WorkspaceBox(np.array([2.0, 0, 0]), np.array([3.0, 1, 1])), 'file')


def test_limits_file_round_trip_and_effective_limits(tmp_path):
    path = tmp_path / 'limits.yaml'
    recorded = LimitsFile({'shoulder_pan': (-0.8, 0.9), 'gripper': (0.0, 1.5)},
                          WorkspaceBox(np.array([0.15, -0.1, 0.0]), np.array([0.3, 0.1, 0.2])),
                          samples=500, duration_s=12.5)
    save_limits_file(path, recorded, comment='test file\nsecond line')
    assert path.read_text().startswith('# test file\n# second line\n')
    loaded = load_limits_file(path)
    assert loaded.joint_ranges_rad == recorded.joint_ranges_rad
    np.testing.assert_allclose(loaded.tcp_box.min_m, [0.15, -0.1, 0.0])
    assert (loaded.samples, loaded.duration_s) == (500, 12.5)

    params = SafetyFilterParams(limits_file=str(path), joint_limit_margin_rad=0.05)
    limits = effective_limits(params, *urdf_joint_limits(official_urdf(), params.joint_names),
                              loaded)
    np.testing.assert_allclose(limits.joints.lower_rad[[0, 5]], [-0.75, 0.05])
    np.testing.assert_allclose(limits.joints.upper_rad[[0, 5]], [0.85, 1.45])
    np.testing.assert_allclose(limits.joints.upper_rad[1], 1.74533 - 0.05)
    np.testing.assert_allclose(limits.box.min_m, [0.15, -0.1, 0.01])  # box ∩ file box
    np.testing.assert_allclose(limits.box.max_m, [0.3, 0.1, 0.2])
    no_box = effective_limits(params.replace(use_limits_file_workspace=False),
                              *urdf_joint_limits(official_urdf(), params.joint_names), loaded)
    np.testing.assert_allclose(no_box.box.max_m, params.workspace_max_m)


@pytest.mark.parametrize('content, message', [
    ('not: [valid', 'not valid YAML'),
    ('{}', 'not a limit file'),
    (yaml.safe_dump({'format': FILE_FORMAT}), 'neither'),
    (yaml.safe_dump({'format': FILE_FORMAT, 'joint_limits_rad': {'gripper': {'min': 1}}}),
     'numeric min and max'),
    (yaml.safe_dump({'format': FILE_FORMAT,
                     'joint_limits_rad': {'gripper': {'min': 1, 'max': 0}}}),
     'invalid range'),
    (yaml.safe_dump({'format': FILE_FORMAT, 'end_effector_bounds': {'min': [0, 0]}}),
     'end_effector_bounds'),
])
def test_bad_limit_files_are_explained(tmp_path, content, message):
    path = tmp_path / 'bad.yaml'
    path.write_text(content)
    with pytest.raises(LimitsFileError, match=message):
        load_limits_file(path)
    with pytest.raises(LimitsFileError, match='cannot read'):
        load_limits_file(tmp_path / 'missing.yaml')
