"""Gamepad mappings: which Joy axes and buttons drive the arm, and reading a Joy state with one.

A mapping file (YAML) names the Joy layout it expects and binds
  * ``motion.x/y/z`` to stick axes (``axis`` index, ``scale`` in [-1, 1], negative inverts);
  * each control (takeover, gripper, events, e-stop, speed) to one or more *switches*: a
    button (``button: i``) or an axis range (``axis: i, rest: r, pressed: p``: a trigger that
    rests at r and reads p when fully pressed, or a D-pad axis). A control is pressed when any
    of its switches is.
See config/teleop_*.yaml and the README for the layouts of joy's nodes and gamepad_node.
"""
import dataclasses
import math
import pathlib

import yaml

from hilserl_actor.errors import MalformedJoyError, MappingError

MOTION_AXES = ('x', 'y', 'z')
REQUIRED_CONTROLS = ('takeover', 'gripper_close', 'gripper_open', 'success', 'failure',
                     'rerecord', 'end_session', 'estop')
OPTIONAL_CONTROLS = ('start_episode', 'speed_up', 'speed_down')
# Tolerance on |axis| <= 1 for float32 rounding in drivers.
AXIS_LIMIT = 1.0 + 1e-4


@dataclasses.dataclass(frozen=True)
class StickAxis:
    """A stick axis driving one end-effector direction."""

    axis: int
    scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class Switch:
    """A button, or an axis that travels from ``rest`` to ``pressed``."""

    button: int | None = None
    axis: int | None = None
    rest: float = 0.0
    pressed: float = 1.0

    def travel(self, axes, buttons) -> float:
        """How far the switch is pressed, 0 (rest) to 1 (fully pressed)."""
        if self.button is not None:
            return 1.0 if buttons[self.button] else 0.0
        fraction = (axes[self.axis] - self.rest) / (self.pressed - self.rest)
        return min(1.0, max(0.0, fraction))


@dataclasses.dataclass(frozen=True)
class GamepadMapping:
    """A validated mapping (see the module docstring)."""

    name: str
    motion: tuple[StickAxis, StickAxis, StickAxis]
    controls: dict[str, tuple[Switch, ...]]
    axes_counts: tuple[int, ...] = ()
    """Joy axes counts this layout produces; () accepts any count that has every index."""
    button_counts: tuple[int, ...] = ()

    @property
    def min_axes(self) -> int:
        indices = [s.axis for s in self.motion]
        indices += [w.axis for ws in self.controls.values() for w in ws if w.axis is not None]
        return max(indices) + 1

    @property
    def min_buttons(self) -> int:
        indices = [w.button for ws in self.controls.values() for w in ws if w.button is not None]
        return max(indices, default=-1) + 1


@dataclasses.dataclass(frozen=True)
class PadState:
    """One Joy state read through a mapping."""

    motion: tuple[float, float, float]
    """x, y, z requests in [-1, 1] after the deadzone and the axis scales."""
    pressed: frozenset[str]
    """The controls that are pressed."""


# --- loading ---------------------------------------------------------------------------------
def load_mapping(path: str | pathlib.Path) -> GamepadMapping:
    """Read and validate a mapping file; MappingError names the file and the bad field."""
    path = pathlib.Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise MappingError(f'cannot read gamepad mapping {path}: {error}') from error
    return mapping_from_dict(data, str(path))


def mapping_from_dict(data, origin: str = 'mapping') -> GamepadMapping:
    """Build a GamepadMapping from parsed YAML, checking every field."""
    _expect(isinstance(data, dict), origin, 'the file must hold a mapping (YAML dict)')
    _no_unknown(data, {'name', 'motion', 'controls', 'axes_counts', 'button_counts'}, origin)
    motion_data = data.get('motion')
    _expect(isinstance(motion_data, dict), f'{origin}: motion', 'must map x, y and z to axes')
    _no_unknown(motion_data, set(MOTION_AXES), f'{origin}: motion')
    motion = tuple(_stick(motion_data.get(name), f'{origin}: motion.{name}')
                   for name in MOTION_AXES)
    controls_data = data.get('controls')
    _expect(isinstance(controls_data, dict), f'{origin}: controls', 'must be a mapping')
    _no_unknown(controls_data, set(REQUIRED_CONTROLS + OPTIONAL_CONTROLS), f'{origin}: controls')
    controls = {}
    for name in REQUIRED_CONTROLS + OPTIONAL_CONTROLS:
        where = f'{origin}: controls.{name}'
        if name not in controls_data:
            _expect(name in OPTIONAL_CONTROLS, where, 'is required')
            continue
        entries = controls_data[name]
        entries = entries if isinstance(entries, list) else [entries]
        _expect(len(entries) > 0, where, 'needs at least one switch')
        controls[name] = tuple(_switch(e, f'{where}[{i}]') for i, e in enumerate(entries))
    counts = {key: _counts(data.get(key, []), f'{origin}: {key}')
              for key in ('axes_counts', 'button_counts')}
    mapping = GamepadMapping(str(data.get('name', origin)), motion, controls,
                             counts['axes_counts'], counts['button_counts'])
    for key, needed in (('axes_counts', mapping.min_axes),
                        ('button_counts', mapping.min_buttons)):
        small = [c for c in counts[key] if c < needed]
        _expect(not small, f'{origin}: {key}', f'{small} < {needed}, the indices the map uses')
    return mapping


def _expect(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise MappingError(f'{where}: {problem}')


def _no_unknown(data: dict, allowed: set, where: str) -> None:
    unknown = sorted(str(k) for k in set(data) - allowed)
    _expect(not unknown, where, f'unknown key(s) {unknown}; allowed: {sorted(allowed)}')


def _index(value, where: str) -> int:
    _expect(isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 256,
            where, f'must be an index 0-255, got {value!r}')
    return value


def _number(value, where: str, low: float, high: float) -> float:
    _expect(isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and low <= value <= high,
            where, f'must be a number in [{low}, {high}], got {value!r}')
    return float(value)


def _stick(data, where: str) -> StickAxis:
    _expect(isinstance(data, dict), where, 'must be {axis: index, scale: factor}')
    _no_unknown(data, {'axis', 'scale'}, where)
    return StickAxis(_index(data.get('axis'), f'{where}.axis'),
                     _number(data.get('scale', 1.0), f'{where}.scale', -1.0, 1.0))


def _switch(data, where: str) -> Switch:
    _expect(isinstance(data, dict), where, 'must be {button: i} or {axis: i, rest: r, pressed: p}')
    _expect(('button' in data) != ('axis' in data), where, 'needs exactly one of button, axis')
    if 'button' in data:
        _no_unknown(data, {'button'}, where)
        return Switch(button=_index(data['button'], f'{where}.button'))
    _no_unknown(data, {'axis', 'rest', 'pressed'}, where)
    rest = _number(data.get('rest', 0.0), f'{where}.rest', -1.0, 1.0)
    pressed = _number(data.get('pressed', 1.0), f'{where}.pressed', -1.0, 1.0)
    _expect(abs(pressed - rest) >= 0.1, where, f'rest {rest} and pressed {pressed} are too close')
    return Switch(axis=_index(data['axis'], f'{where}.axis'), rest=rest, pressed=pressed)


def _counts(data, where: str) -> tuple[int, ...]:
    _expect(isinstance(data, list), where, 'must be a list of counts')
    return tuple(_index(c, f'{where}[{i}]') for i, c in enumerate(data))


# --- reading a Joy state ---------------------------------------------------------------------
def apply_deadzone(value: float, deadzone: float) -> float:
    """0 inside the deadzone; outside, rescaled so that full deflection still reads +-1."""
    magnitude = abs(value) - deadzone
    if magnitude <= 0.0:
        return 0.0
    return math.copysign(min(1.0, magnitude / (1.0 - deadzone)), value)


def check_joy(mapping: GamepadMapping, axes, buttons) -> None:
    """Raise MalformedJoyError unless the Joy state fits the mapping (sizes, finite, range)."""
    problems = []
    if mapping.axes_counts and len(axes) not in mapping.axes_counts:
        problems.append(f'{len(axes)} axes (the {mapping.name!r} layout has '
                        f'{_alts(mapping.axes_counts)})')
    elif len(axes) < mapping.min_axes:
        problems.append(f'{len(axes)} axes (the mapping reads axis {mapping.min_axes - 1})')
    if mapping.button_counts and len(buttons) not in mapping.button_counts:
        problems.append(f'{len(buttons)} buttons (the {mapping.name!r} layout has '
                        f'{_alts(mapping.button_counts)})')
    elif len(buttons) < mapping.min_buttons:
        problems.append(f'{len(buttons)} buttons (the mapping reads button '
                        f'{mapping.min_buttons - 1})')
    bad_axes = [i for i, v in enumerate(axes) if not (math.isfinite(v) and abs(v) <= AXIS_LIMIT)]
    if bad_axes:
        problems.append(f'axes {bad_axes} are NaN, infinite or outside [-1, 1]')
    bad_buttons = [i for i, b in enumerate(buttons) if b not in (0, 1)]
    if bad_buttons:
        problems.append(f'buttons {bad_buttons} are neither 0 nor 1')
    if problems:
        raise MalformedJoyError('rejected Joy message: ' + '; '.join(problems))


def _alts(counts) -> str:
    return ' or '.join(str(c) for c in counts)


def read_pad(mapping: GamepadMapping, axes, buttons, deadzone: float,
             trigger_threshold: float) -> PadState:
    """Read a Joy state (axes, buttons sequences) through ``mapping``.

    Raises MalformedJoyError (nothing is read from a message that fails ``check_joy``).
    """
    check_joy(mapping, axes, buttons)
    motion = tuple(apply_deadzone(float(axes[s.axis]), deadzone) * s.scale
                   for s in mapping.motion)
    pressed = frozenset(
        name for name, switches in mapping.controls.items()
        if any(w.travel(axes, buttons) >= trigger_threshold for w in switches))
    return PadState(motion, pressed)
