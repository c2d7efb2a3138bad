"""Params dataclasses: defaults, validation naming the field, docstrings for every field."""
import dataclasses

import pytest

from hilserl_actor.params import GamepadParams, KeyboardTeleopParams, TeleopParams
from so101_driver.dataclass_docs import field_docs

ALL = (TeleopParams, KeyboardTeleopParams, GamepadParams)


@pytest.mark.parametrize('cls', ALL)
def test_defaults_are_valid_and_every_field_is_documented(cls):
    cls()
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        assert len(docs.get(field.name, '')) > 20, f'{cls.__name__}.{field.name} has no docstring'


@pytest.mark.parametrize('cls, values, field', [
    (TeleopParams, {'control_rate_hz': 0.0}, 'control_rate_hz'),
    (TeleopParams, {'max_ee_speed_m_s': float('nan')}, 'max_ee_speed_m_s'),
    (TeleopParams, {'gamepad_layout': 'switch'}, 'gamepad_layout'),
    (TeleopParams, {'deadzone': 0.95}, 'deadzone'),
    (TeleopParams, {'always_active': 'yes'}, 'always_active'),
    (TeleopParams, {'initial_speed_scale': 0.1, 'speed_scale_step': 0.25},
     'initial_speed_scale'),
    (KeyboardTeleopParams, {'key_hold_s': 0.0}, 'key_hold_s'),
    (GamepadParams, {'device_id': -1}, 'device_id'),
    (GamepadParams, {'device_id': True}, 'device_id'),
    (GamepadParams, {'coalesce_interval_ms': 1.5}, 'coalesce_interval_ms'),
    (GamepadParams, {'layout': 'sdl'}, 'layout'),
])
def test_bad_values_raise_value_error_naming_the_field(cls, values, field):
    with pytest.raises(ValueError, match=f'^{field}:'):
        cls(**values)


def test_integers_are_accepted_for_float_fields():
    params = TeleopParams(control_rate_hz=20, max_ee_speed_m_s=1)
    assert isinstance(params.control_rate_hz, float) and params.control_rate_hz == 20.0
