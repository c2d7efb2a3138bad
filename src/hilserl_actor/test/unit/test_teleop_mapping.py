"""Gamepad mapping files and reading Joy states through them (ROS-free)."""
import copy
import math
import pathlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
import yaml

from hilserl_actor.errors import MalformedJoyError, MappingError
from hilserl_actor.teleop.gamepad import GamepadSettings, GamepadTeleop
from hilserl_actor.teleop.mapping import apply_deadzone, load_mapping, mapping_from_dict, read_pad
from hilserl_actor.teleop.session import SessionSettings, TeleopSession
from hilserl_actor.teleop.types import Gripper, InputDevice

CONFIG = pathlib.Path(__file__).resolve().parents[2] / 'config'
REST_GC = [0.0] * 6            # game_controller layout at rest: triggers read 0
REST_JOY = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]  # joy_node layouts: triggers rest at +1


def gc_mapping():
    return load_mapping(CONFIG / 'teleop_game_controller.yaml')


def raw(layout):
    return yaml.safe_load((CONFIG / f'teleop_{layout}.yaml').read_text())


@pytest.mark.parametrize('layout, axes, buttons, needed', [
    ('game_controller', (6,), (15, 21), (6, 13)),
    ('xbox', (8,), (11, 12), (8, 8)),
    ('ps', (8,), (13,), (8, 10)),
])
def test_builtin_mappings_load(layout, axes, buttons, needed):
    mapping = load_mapping(CONFIG / f'teleop_{layout}.yaml')
    assert mapping.name == layout
    assert (mapping.axes_counts, mapping.button_counts) == (axes, buttons)
    assert (mapping.min_axes, mapping.min_buttons) == needed
    assert set(mapping.controls) >= {'takeover', 'success', 'estop', 'speed_up'}


def test_builtin_layouts_agree_on_the_physical_buttons():
    """The same physical control does the same thing on every layout (labels in the files)."""
    gc, xbox, ps = (load_mapping(CONFIG / f'teleop_{n}.yaml') for n in ('game_controller',
                                                                       'xbox', 'ps'))
    # A / cross is index 0 everywhere; the north button (Y / triangle) re-records.
    assert gc.controls['success'][0].button == xbox.controls['success'][0].button == 0
    assert ps.controls['success'][0].button == 0
    assert gc.controls['rerecord'][0].button == 3  # SDL: Y = north
    assert xbox.controls['rerecord'][0].button == 3  # xpad: BTN_Y
    assert ps.controls['rerecord'][0].button == 2  # hid-playstation: BTN_NORTH (triangle)
    # Triggers: game controller rests at 0, joy_node layouts at +1; both read -1 pressed.
    assert (gc.controls['gripper_close'][0].rest, gc.controls['gripper_close'][0].pressed) == (
        0.0, -1.0)
    assert xbox.controls['gripper_close'][0].rest == ps.controls['gripper_close'][0].rest == 1.0


@pytest.mark.parametrize('edit, field', [
    (lambda d: d['controls'].pop('estop'), 'controls.estop: is required'),
    (lambda d: d['controls'].update(sucess={'button': 0}), "unknown key(s) ['sucess']"),
    (lambda d: d['motion'].update(x={'axis': -1}), 'motion.x.axis'),
    (lambda d: d['motion'].update(z={'axis': 3, 'scale': 2.0}), 'motion.z.scale'),
    (lambda d: d['controls'].update(success={'button': 0, 'axis': 1}), 'exactly one'),
    (lambda d: d['controls'].update(gripper_open={'axis': 4, 'rest': 0.0, 'pressed': 0.0}),
     'controls.gripper_open[0]: rest 0.0 and pressed 0.0'),
    (lambda d: d['controls'].update(takeover=[]), 'controls.takeover: needs at least one'),
    (lambda d: d.update(axes_counts=[4]), 'axes_counts: [4] < 6'),
    (lambda d: d['controls'].update(failure={'button': True}), 'controls.failure[0].button'),
])
def test_bad_mappings_name_the_field(edit, field):
    data = copy.deepcopy(raw('game_controller'))
    edit(data)
    with pytest.raises(MappingError, match=re.escape(field)):
        mapping_from_dict(data, 'test.yaml')


def test_unreadable_mapping_file_is_a_mapping_error(tmp_path):
    with pytest.raises(MappingError, match='cannot read'):
        load_mapping(tmp_path / 'missing.yaml')
    (tmp_path / 'bad.yaml').write_text('motion: [')
    with pytest.raises(MappingError, match='cannot read'):
        load_mapping(tmp_path / 'bad.yaml')
    (tmp_path / 'list.yaml').write_text('- 1\n')
    with pytest.raises(MappingError, match='YAML dict'):
        load_mapping(tmp_path / 'list.yaml')


def test_deadzone_cuts_and_rescales():
    assert apply_deadzone(0.05, 0.1) == 0.0
    assert apply_deadzone(-0.1, 0.1) == 0.0
    assert apply_deadzone(1.0, 0.1) == 1.0
    assert apply_deadzone(-1.0, 0.1) == -1.0
    assert apply_deadzone(0.55, 0.1) == pytest.approx(0.5)
    assert apply_deadzone(0.3, 0.0) == 0.3


def test_read_pad_game_controller():
    mapping = gc_mapping()
    axes = list(REST_GC)
    axes[1] = 1.0      # left stick fully up
    axes[0] = 0.05     # left stick barely left: inside the deadzone
    axes[3] = -0.55    # right stick half down
    axes[5] = -0.8     # right trigger mostly pressed
    buttons = [0] * 21
    buttons[10] = 1    # RB
    state = read_pad(mapping, axes, buttons, deadzone=0.1, trigger_threshold=0.5)
    assert state.motion == pytest.approx((1.0, 0.0, -0.5))
    assert state.pressed == {'takeover', 'gripper_close'}


def test_read_pad_joy_node_triggers_and_dpad():
    mapping = load_mapping(CONFIG / 'teleop_xbox.yaml')
    axes = list(REST_JOY)
    buttons = [0] * 11
    assert read_pad(mapping, axes, buttons, 0.1, 0.5).pressed == frozenset()
    axes[2] = -1.0     # LT fully pressed
    axes[7] = -1.0     # D-pad down
    assert read_pad(mapping, axes, buttons, 0.1, 0.5).pressed == {'gripper_open', 'speed_down'}
    axes[2] = 0.2      # LT 40 % pressed: below the threshold
    assert 'gripper_open' not in read_pad(mapping, axes, buttons, 0.1, 0.5).pressed


@pytest.mark.parametrize('axes, buttons, problem', [
    ([0.0] * 5, [0] * 21, '5 axes'),
    ([0.0] * 8, [0] * 11, "8 axes (the 'game_controller' layout has 6)"),
    ([0.0] * 6, [0] * 12, '12 buttons'),
    ([0.0, math.nan, 0, 0, 0, 0], [0] * 21, 'axes [1] are NaN'),
    ([0.0, 0, 0, math.inf, 0, 0], [0] * 21, 'axes [3]'),
    ([0.0, 0, 1.5, 0, 0, 0], [0] * 21, 'outside [-1, 1]'),
    ([0.0] * 6, [0] * 20 + [2], 'buttons [20] are neither 0 nor 1'),
])
def test_malformed_joy_is_rejected(axes, buttons, problem):
    with pytest.raises(MalformedJoyError, match=re.escape(problem)):
        read_pad(gc_mapping(), axes, buttons, 0.1, 0.5)


def test_a_mapping_without_counts_accepts_any_size_with_its_indices():
    data = raw('game_controller')
    data.pop('axes_counts')
    data.pop('button_counts')
    mapping = mapping_from_dict(data)
    read_pad(mapping, [0.0] * 9, [0] * 30, 0.1, 0.5)
    with pytest.raises(MalformedJoyError, match='reads button 12'):
        read_pad(mapping, [0.0] * 6, [0] * 12, 0.1, 0.5)


# --- properties --------------------------------------------------------------------------------
def make_teleop(speed=0.2, rate=10.0):
    session = TeleopSession(SessionSettings(InputDevice.GAMEPAD, rate, speed, True, 0.3,
                                            1.0, 0.25))
    return GamepadTeleop(gc_mapping(), session, GamepadSettings(0.1, 0.5, 0.5))


finite_axis = st.floats(-1.0, 1.0, allow_nan=False, width=32)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(axes=st.lists(finite_axis, min_size=6, max_size=6),
       buttons=st.lists(st.integers(0, 1), min_size=21, max_size=21))
def test_commands_never_exceed_the_max_speed(axes, buttons):
    teleop = make_teleop(speed=0.2, rate=10.0)
    teleop.on_joy(axes, buttons, 0.0)
    command = teleop.tick(0.05).command
    assert command is not None  # always_active
    norm = math.sqrt(sum(v * v for v in command.delta_m))
    assert norm <= 0.2 / 10.0 + 1e-12
    assert command.gripper in (Gripper.STAY, Gripper.CLOSE, Gripper.OPEN)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(axes=st.lists(finite_axis, min_size=6, max_size=6),
       bad=st.sampled_from([math.nan, math.inf, -math.inf]), where=st.integers(0, 5))
def test_non_finite_axes_are_rejected_and_change_nothing(axes, bad, where):
    teleop = make_teleop()
    teleop.on_joy([0.0] * 6, [0] * 21, 0.0)
    axes[where] = bad
    with pytest.raises(MalformedJoyError):
        teleop.on_joy(axes, [1] * 21, 0.01)
    command = teleop.tick(0.05).command
    assert command.delta_m == (0.0, 0.0, 0.0) and command.gripper == Gripper.STAY
