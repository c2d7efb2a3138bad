"""Frozen parameter dataclasses of the hilserl_actor nodes, validated in ``__post_init__``.

Each field has a type, a default and a docstring (the string right below it). ``param()``
attaches the ROS side: whether the parameter is read-only and its numeric range or choices.
The nodes declare their ROS parameters from these classes (``nodes/parameters.py``), so the
dataclass is the single source of names, defaults, ranges and descriptions.
"""
import ast
import dataclasses
import functools
import inspect
import math
import typing


def param(default, *, min_value=None, max_value=None, choices=None, read_only=True):
    """A dataclass field with its ROS descriptor data (range, choices, read-only)."""
    return dataclasses.field(default=default, metadata={
        'min': min_value, 'max': max_value, 'choices': choices, 'read_only': read_only})


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """The docstring written below each field of dataclass ``cls`` (name -> text).

    Empty when the source is not available (then parameters are declared without descriptions).
    """
    try:
        tree = ast.parse(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body
    docs = {}
    for node, following in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[node.target.id] = ' '.join(following.value.value.split())
    return docs


def validate_fields(instance) -> None:
    """Check each field's type, range and choices from its metadata; coerce int -> float.

    Raises ValueError naming the field.
    """
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        name, value, kind = field.name, getattr(instance, field.name), hints[field.name]
        if typing.get_origin(kind) is tuple:  # tuple[str, ...]: a ROS array parameter
            element = typing.get_args(kind)[0]
            if not isinstance(value, (list, tuple)) or not all(
                    isinstance(v, element) and not isinstance(v, bool) for v in value):
                raise ValueError(f'{name}: expected a list of {element.__name__}, '
                                 f'got {value!r}')
            object.__setattr__(instance, name, tuple(value))
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            object.__setattr__(instance, name, value)
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f'{name}: expected {kind.__name__}, got {value!r}')
        if kind is float and not math.isfinite(value):
            raise ValueError(f'{name}: must be finite, got {value!r}')
        low, high = field.metadata.get('min'), field.metadata.get('max')
        if low is not None and value < low or high is not None and value > high:
            raise ValueError(f'{name}: {value!r} is outside [{low}, {high}]')
        choices = field.metadata.get('choices')
        if choices is not None and value not in choices:
            raise ValueError(f'{name}: {value!r} is not one of {", ".join(map(str, choices))}')


GAMEPAD_LAYOUTS = ('game_controller', 'xbox', 'ps')


@dataclasses.dataclass(frozen=True)
class TeleopParams:
    """Parameters of ``teleop_node`` (gamepad /joy -> human commands, interventions, events)."""

    gamepad_layout: str = param('game_controller', choices=GAMEPAD_LAYOUTS)
    """Built-in mapping: game_controller (SDL game-controller layout of joy's
    game_controller_node and of gamepad_node, any pad SDL knows), xbox or ps (joy's joy_node
    with an Xbox or PlayStation pad on the Linux kernel drivers). Ignored if mapping_file is
    set."""
    mapping_file: str = param('')
    """Path of a mapping YAML file that replaces the built-in layout ('' = use gamepad_layout)."""
    control_rate_hz: float = param(10.0, min_value=1.0, max_value=100.0)
    """Rate of the human end-effector commands; must equal the actor's control rate."""
    max_ee_speed_m_s: float = param(0.1, min_value=0.001, max_value=1.0)
    """End-effector speed at full stick deflection; the published delta per control step is
    at most max_ee_speed_m_s / control_rate_hz metres."""
    deadzone: float = param(0.1, min_value=0.0, max_value=0.9)
    """Stick deadzone on top of the Joy driver's own: |axis| below it reads 0, the rest is
    rescaled to reach 1 at full deflection."""
    trigger_threshold: float = param(0.5, min_value=0.05, max_value=0.95)
    """Fraction of travel (rest -> pressed) at which a trigger or axis-button counts as pressed."""
    always_active: bool = param(False)
    """Publish human commands (and report an active intervention) without holding the takeover
    button, e.g. for recording demonstrations."""
    joy_timeout_s: float = param(0.5, min_value=0.05, max_value=10.0)
    """Without a valid Joy message for this long the pad counts as gone: commands stop and the
    intervention ends (joy_node's autorepeat_rate must exceed 1 / joy_timeout_s)."""
    event_debounce_s: float = param(0.3, min_value=0.0, max_value=5.0)
    """Minimum time between two accepted presses of the same event button."""
    intervention_period_s: float = param(1.0, min_value=0.05, max_value=60.0)
    """Period of the intervention state republication (it is also published on every change)."""
    initial_speed_scale: float = param(1.0, min_value=0.01, max_value=1.0)
    """Starting fraction of max_ee_speed_m_s; the speed_up / speed_down controls change it."""
    speed_scale_step: float = param(0.25, min_value=0.01, max_value=1.0)
    """Change of the speed scale per speed_up / speed_down press; also its lower bound."""
    frame_id: str = param('base_link')
    """frame_id of the published end-effector commands (the robot base frame)."""
    autostart: bool = param(False)
    """Development only: configure and activate at start-up without a lifecycle manager."""

    def __post_init__(self):
        validate_fields(self)
        if self.initial_speed_scale < self.speed_scale_step:
            raise ValueError('initial_speed_scale: must be >= speed_scale_step '
                             f'({self.initial_speed_scale} < {self.speed_scale_step})')


@dataclasses.dataclass(frozen=True)
class KeyboardTeleopParams:
    """Parameters of ``keyboard_teleop`` (terminal keys -> the same outputs as teleop_node)."""

    control_rate_hz: float = param(10.0, min_value=1.0, max_value=100.0)
    """Rate of the human end-effector commands; must equal the actor's control rate."""
    max_ee_speed_m_s: float = param(0.1, min_value=0.001, max_value=1.0)
    """End-effector speed at speed scale 1; the delta per control step is at most
    max_ee_speed_m_s / control_rate_hz metres."""
    initial_speed_scale: float = param(0.5, min_value=0.01, max_value=1.0)
    """Starting fraction of max_ee_speed_m_s; the + and - keys change it."""
    speed_scale_step: float = param(0.1, min_value=0.01, max_value=1.0)
    """Change of the speed scale per + / - press; also its lower bound."""
    key_hold_s: float = param(0.5, min_value=0.05, max_value=5.0)
    """How long one motion or gripper key press keeps acting. Terminals report no key release:
    a held key repeats (after the terminal's repeat delay, typically 0.25-0.6 s) and each
    repeat extends the motion."""
    always_active: bool = param(False)
    """Publish human commands (and report an active intervention) without toggling takeover."""
    event_debounce_s: float = param(0.3, min_value=0.0, max_value=5.0)
    """An event key is accepted only after this long without that key (so a held, repeating
    key sends one event)."""
    intervention_period_s: float = param(1.0, min_value=0.05, max_value=60.0)
    """Period of the intervention state republication (it is also published on every change)."""
    frame_id: str = param('base_link')
    """frame_id of the published end-effector commands (the robot base frame)."""

    def __post_init__(self):
        validate_fields(self)
        if self.initial_speed_scale < self.speed_scale_step:
            raise ValueError('initial_speed_scale: must be >= speed_scale_step '
                             f'({self.initial_speed_scale} < {self.speed_scale_step})')


GAMEPAD_NODE_LAYOUTS = ('game_controller', 'joystick')


@dataclasses.dataclass(frozen=True)
class GamepadParams:
    """Parameters of ``gamepad_node`` (SDL2 gamepad -> /joy, names as joy's nodes)."""

    device_id: int = param(0, min_value=0, max_value=255)
    """SDL device index of the pad to open (as joy's device_id)."""
    device_name: str = param('')
    """Open the pad with exactly this SDL name instead of device_id ('' = use device_id)."""
    layout: str = param('game_controller', choices=GAMEPAD_NODE_LAYOUTS)
    """game_controller: SDL game-controller layout, 6 axes and 21 buttons, exactly as joy's
    game_controller_node. joystick: raw SDL joystick indices (axes, then 2 per hat), as joy's
    joy_node."""
    deadzone: float = param(0.05, min_value=0.0, max_value=0.99)
    """Axis deadzone as a fraction of full travel (joy's formula: rescaled to reach 1)."""
    autorepeat_rate: float = param(20.0, min_value=0.0, max_value=1000.0)
    """Hz at which an unchanged state is republished; 0 publishes only on changes."""
    coalesce_interval_ms: int = param(1, min_value=0, max_value=1000)
    """After an axis change, wait this long for more changes before publishing (0 = at once).
    Changes are seen at poll_rate_hz, so values below the poll period act like one poll."""
    poll_rate_hz: float = param(50.0, min_value=10.0, max_value=1000.0)
    """How often an open pad's state is read (SDL polling); bounds the /joy latency
    (1 / poll_rate_hz, 20 ms at the default: small against a 10 Hz control loop)."""
    scan_interval_s: float = param(1.0, min_value=0.1, max_value=60.0)
    """While no pad is open, look for one this often (hot-plug); nothing else runs then."""

    def __post_init__(self):
        validate_fields(self)


RECORDER_COMPRESSIONS = ('zstd', 'none')


@dataclasses.dataclass(frozen=True)
class RecorderParams:
    """Parameters of ``demo_recorder_node`` (one rosbag2 MCAP directory per episode)."""

    output_dir: str = param('demos')
    """Directory of the episode bags (episode_<NNNN>/) and session.yaml; created if missing.
    Relative paths are taken from the node's working directory, ~ is expanded. Existing
    episodes are kept: numbering continues after the highest."""
    task: str = param('pick_lift_cube')
    """Task name stored with every episode (free text, e.g. pick_lift_cube)."""
    control_rate_hz: float = param(10.0, min_value=1.0, max_value=100.0)
    """The actor's control rate; stored as the episodes' fps."""
    camera_names: tuple[str, ...] = param(('front', 'wrist'))
    """Cameras whose raw frames (/cameras/<name>/image_raw) are recorded."""
    record_raw_images: bool = param(True)
    """Record the raw camera frame behind every policy image (matched by header stamp and
    frame_id, so at most one per control period and camera), so that a different ROI crop
    can be applied after recording."""
    crop_config: str = param('')
    """ROI crop config file the actor uses (YAML, hilserl_learner.preprocessing); its contents
    are stored with every episode so the loader knows which crop the images have ('' =
    unknown)."""
    calibration_file: str = param('')
    """Calibration file of the arm; its name and sha256 identify the calibration of every
    episode ('' = none, e.g. in simulation)."""
    compression: str = param('zstd', choices=RECORDER_COMPRESSIONS)
    """MCAP chunk compression: zstd (readable by ros2 bag, rosbags and mcap) or none."""
    min_free_disk_mb: float = param(500.0, min_value=0.0, max_value=1e9, read_only=False)
    """Free space to keep on the output disk: no episode starts below it, and a recording
    episode is finalized (label interrupted, end_reason disk_full) when the disk falls below
    it. Can be changed at runtime."""
    max_episodes: int = param(0, min_value=0, max_value=1_000_000)
    """End the session after this many finished (success or failure) episodes: the node then
    exits with code 0, which stops the record_demos graph (0 = until stopped)."""
    preroll_s: float = param(1.0, min_value=0.0, max_value=30.0)
    """Messages received up to this long before an episode's first transition (the end of
    the reset: start event, observations, joint states) go into its bag; older ones
    between episodes are not recorded."""
    episode_stats_timeout_s: float = param(3.0, min_value=0.1, max_value=60.0)
    """When the next episode's transitions arrive but the previous episode's EpisodeStats
    does not within this time, the previous episode is finalized as interrupted
    (end_reason missing_episode_stats)."""
    flush_period_s: float = param(1.0, min_value=0.1, max_value=60.0)
    """Write the pending MCAP chunk to disk at least this often (a killed recorder loses at
    most this much; the free disk space is checked at the same period)."""
    autostart: bool = param(False)
    """Development only: configure and activate at start-up without a lifecycle manager."""

    def __post_init__(self):
        validate_fields(self)
        if not self.output_dir.strip():
            raise ValueError('output_dir: must not be empty')
        names = self.camera_names
        if len(set(names)) != len(names) or not all(
                name and name.replace('_', '').isalnum() for name in names):
            raise ValueError(f'camera_names: must be unique names of letters, digits and _, '
                             f'got {list(names)}')
