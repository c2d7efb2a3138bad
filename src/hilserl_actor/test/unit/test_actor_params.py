"""Params of the actor, oracle and leader arm: defaults, validation naming the field, lists."""
import dataclasses

import pytest

from hilserl_actor.params import ActorParams, LeaderArmParams, OracleParams
from so101_driver.dataclass_docs import field_docs

ALL = (ActorParams, OracleParams, LeaderArmParams)


@pytest.mark.parametrize('cls', ALL)
def test_defaults_are_valid_and_every_field_is_documented(cls):
    cls()
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        assert len(docs.get(field.name, '')) > 20, f'{cls.__name__}.{field.name} has no docstring'


@pytest.mark.parametrize('cls, values, field', [
    (ActorParams, {'mode': 'play'}, 'mode'),
    (ActorParams, {'control_rate_hz': 0.5}, 'control_rate_hz'),
    (ActorParams, {'camera_names': ['front', 'front']}, 'camera_names'),
    (ActorParams, {'camera_names': 'front'}, 'camera_names'),
    (ActorParams, {'camera_names': ['front', 3]}, 'camera_names'),
    (ActorParams, {'privileged_fields': ['cube_colour']}, 'privileged_fields'),
    (ActorParams, {'gripper_penalty': 0.1}, 'gripper_penalty'),
    (ActorParams, {'safety_penalty': 1.0}, 'safety_penalty'),
    (ActorParams, {'ground_truth': 'maybe'}, 'ground_truth'),
    (ActorParams, {'joint_names': ['a']}, 'joint_names'),
    (ActorParams, {'joint_gripper_close_below_rad': 1.0, 'joint_gripper_open_above_rad': 0.5},
     'joint_gripper_close_below_rad'),
    (ActorParams, {'action_scale_m': float('inf')}, 'action_scale_m'),
    (OracleParams, {'mode': 'train'}, 'mode'),
    (OracleParams, {'takeover_probability_end': 1.5}, 'takeover_probability_end'),
    (LeaderArmParams, {'baudrate': 115201}, 'baudrate'),
    (LeaderArmParams, {'joint_names': ['a', 'b']}, 'joint_names'),
])
def test_bad_values_raise_value_error_naming_the_field(cls, values, field):
    with pytest.raises(ValueError, match=f'^{field}:'):
        cls(**values)


def test_lists_become_tuples_and_ints_floats():
    params = ActorParams(camera_names=['wrist'], privileged_fields=[], control_rate_hz=20)
    assert params.camera_names == ('wrist',) and params.privileged_fields == ()
    assert isinstance(params.control_rate_hz, float)


@pytest.mark.parametrize('cls, name', [(ActorParams, 'actor'), (OracleParams, 'oracle'),
                                       (LeaderArmParams, 'leader_arm')])
def test_package_parameter_files_list_every_parameter_with_its_default(cls, name):
    import pathlib

    import yaml

    path = pathlib.Path(__file__).resolve().parents[2] / 'config' / f'{name}.yaml'
    values = yaml.safe_load(path.read_text())[name]['ros__parameters']
    fields = {f.name: f.default for f in dataclasses.fields(cls) if f.name != 'autostart'}
    assert set(values) == set(fields)
    params = cls(**values)
    assert params == cls(), 'the file differs from the defaults'
