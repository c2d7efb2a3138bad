"""Frozen parameter dataclasses of the hilserl_actor nodes, validated in ``__post_init__``.

Each field has a type, a default and a docstring (the string right below it). ``param()``
attaches the ROS side: whether the parameter is read-only and its numeric range or choices.
The nodes declare their ROS parameters from these classes (``nodes/parameters.py``), so the
dataclass is the single source of names, defaults, ranges and descriptions.
"""
import dataclasses
import math
import typing


def param(default, *, min_value=None, max_value=None, choices=None, read_only=True):
    """A dataclass field with its ROS descriptor data (range, choices, read-only)."""
    return dataclasses.field(default=default, metadata={
        'min': min_value, 'max': max_value, 'choices': choices, 'read_only': read_only})


def validate_fields(instance) -> None:
    """Check each field's type, range and choices from its metadata; coerce int -> float.

    Raises ValueError naming the field.
    """
    hints = typing.get_type_hints(type(instance))
    for field in dataclasses.fields(instance):
        name, value, kind = field.name, getattr(instance, field.name), hints[field.name]
        if typing.get_origin(kind) is tuple:
            _validate_sequence(instance, field, value, typing.get_args(kind)[0])
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


def _validate_sequence(instance, field, value, element) -> None:
    """A tuple field: any sequence of ``element`` (ints accepted as floats), stored as a tuple;
    the metadata's min/max/choices apply to every element.
    """
    name = field.name
    if isinstance(value, (str, bytes)) or not hasattr(value, '__iter__'):
        raise ValueError(f'{name}: expected a list of {element.__name__}, got {value!r}')
    items = []
    for item in value:
        if element is float and isinstance(item, int) and not isinstance(item, bool):
            item = float(item)
        if element is int and isinstance(item, bool) or not isinstance(item, element):
            raise ValueError(f'{name}: expected a list of {element.__name__}, got {value!r}')
        if element is float and not math.isfinite(item):
            raise ValueError(f'{name}: values must be finite, got {value!r}')
        items.append(item)
    low, high = field.metadata.get('min'), field.metadata.get('max')
    choices = field.metadata.get('choices')
    for item in items:
        if low is not None and item < low or high is not None and item > high:
            raise ValueError(f'{name}: {item!r} is outside [{low}, {high}]')
        if choices is not None and item not in choices:
            raise ValueError(f'{name}: {item!r} is not one of {", ".join(map(str, choices))}')
    object.__setattr__(instance, name, tuple(items))


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


ACTOR_MODES = ('demo', 'train', 'eval')
GROUND_TRUTH_USES = ('auto', 'on', 'off')
PRIVILEGED_FIELDS = ('object_position', 'object_quaternion', 'object_velocity', 'tcp_position',
                     'object_to_tcp', 'object_height', 'object_grasped')
"""Privileged (simulation-only) observation parts; see observation_builder.PRIVILEGED_SIZES."""
DEFAULT_JOINT_NAMES = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex',
                       'wrist_roll', 'gripper')


@dataclasses.dataclass(frozen=True)
class ActorParams:
    """Parameters of ``actor_node`` (the HIL-SERL control loop, episodes and transitions)."""

    mode: str = param('demo', choices=ACTOR_MODES)
    """demo: record demonstrations (the human's or the oracle's commands drive; zero action
    without one). train / eval: the policy drives (come with the actor issue; rejected at
    configure for now)."""
    run_id: str = param('')
    """Actor run id, written to every Transition's and Observation's header.frame_id (the
    learner keys drop detection on it); '' = generated (actor-<UTC time>-<random hex>)."""
    control_rate_hz: float = param(10.0, min_value=1.0, max_value=100.0)
    """Control loop rate (node clock: simulated time with use_sim_time)."""
    joint_names: tuple[str, ...] = param(DEFAULT_JOINT_NAMES)
    """The driver's joints, gripper last (from the robot overlay); /joint_states is read by
    name."""
    camera_names: tuple[str, ...] = param(('front', 'wrist'))
    """Cameras in the observation (/cameras/<name>/image_raw, rgb8 or bgr8); [] = state
    only."""
    crop_config_file: str = param('')
    """Crop config (hilserl_learner.preprocessing, written by roi_crop) applied to every camera
    frame; '' = full frames resized to 128x128. The demo recorder reads the same file."""
    ground_truth: str = param('auto', choices=GROUND_TRUTH_USES)
    """Use the simulator's /so101_driver/ground_truth (privileged state, success): auto = if
    it is published (decided once, before the first episode), on = required, off = never."""
    privileged_fields: tuple[str, ...] = param(
        ('object_position', 'object_to_tcp', 'object_grasped'), choices=PRIVILEGED_FIELDS)
    """Privileged state for an asymmetric critic, from the ground truth (simulation only)."""
    action_scale_m: float = param(0.025, min_value=0.001, max_value=0.2)
    """Metres of TCP displacement per unit of the normalised xyz action ([-1, 1])."""
    discrete_gripper: bool = param(True)
    """Append the discrete gripper command (0 close, 1 stay, 2 open) to the action."""
    gripper_penalty: float = param(-0.02, min_value=-1.0, max_value=0.0)
    """Transition.gripper_penalty of a step whose gripper command changes the gripper state
    (close while open, open while closed)."""
    success_reward: float = param(1.0, min_value=-100.0, max_value=100.0)
    """Reward of the step that reaches success (ground truth or the operator's SUCCESS)."""
    failure_reward: float = param(0.0, min_value=-100.0, max_value=100.0)
    """Reward of the step ended by the operator's FAILURE (terminated)."""
    safety_penalty: float = param(-1.0, min_value=-100.0, max_value=0.0)
    """Reward of the step ended by a safety trip or e-stop (terminated)."""
    max_episode_steps: int = param(100, min_value=1, max_value=100000)
    """Time limit: the episode is truncated (not terminated) after this many steps."""
    success_hold_steps: int = param(0, min_value=0, max_value=10000)
    """Steps the episode goes on after success is first detected, each rewarded
    success_reward while success still holds, terminated after the last (LeRobot's
    terminate_on_success: false): many success frames per episode for the reward
    classifier. 0 = the episode ends at success (training)."""
    reward_classifier_path: str = param('')
    """Reward classifier file (train_reward_classifier) that decides success from the cropped
    images. '' = the simulator's success predicate when the ground truth is used, otherwise
    only the operator's SUCCESS event."""
    reward_classifier_threshold: float = param(0.85, min_value=0.01, max_value=0.99)
    """Success probability at which the reward classifier reports success. High, as in the
    HIL-SERL experiments (0.7-0.95): a false success rewards and ends an episode, a late one
    costs a step."""
    reward_classifier_consecutive_steps: int = param(1, min_value=1, max_value=100)
    """Steps in a row the classifier must report success before the episode counts as a
    success (1 = the paper's single frame; 2 filters single-frame false positives)."""
    num_episodes: int = param(0, min_value=0, max_value=1000000)
    """Stop after this many episodes (0 = until END_SESSION or deactivation)."""
    seed: int = param(-1, min_value=-1, max_value=2**62)
    """Reset seeds: episode k (0-based, of this activation) uses seed + k; -1 = fresh
    random seeds."""
    randomize_object: bool = param(True)
    """ResetEpisode.randomize_object (sim: random cube pose; false: the region's centre)."""
    wait_for_start_event: bool = param(False)
    """After each reset, wait for the operator's START_EPISODE event before the first step."""
    reset_delay_s: float = param(0.6, min_value=0.0, max_value=10.0)
    """Pause between an episode's end and the reset request (node clock). Keep it above the
    safety filter's command_timeout_s, so its watchdog hold happens before the reset and not
    after it."""
    reset_timeout_s: float = param(30.0, min_value=0.5, max_value=300.0)
    """Longest wait for /so101_driver/reset_episode (service and answer); then retried."""
    reset_sync_steps: int = param(4, min_value=0, max_value=50)
    """Control periods after a reset during which the reset joint positions are sent to the
    safety filter (a SOURCE_SCRIPT JointCommand), so its target follows the reset."""
    human_command_timeout_s: float = param(0.3, min_value=0.01, max_value=10.0)
    """A human command (EE or joint) older than this is not used (node clock)."""
    intervention_timeout_s: float = param(3.0, min_value=0.05, max_value=60.0)
    """An intervention state not republished for this long counts as inactive (teleop
    republishes every intervention_period_s, 1 s by default; a latched state can be stale)."""
    input_timeout_s: float = param(0.5, min_value=0.05, max_value=10.0)
    """Joint states, camera frames and (when used) ground truth older than this pause the
    episode: no step, no command (the safety filter's watchdog holds the arm)."""
    input_outage_s: float = param(5.0, min_value=0.1, max_value=600.0)
    """A pause longer than this ends the episode (truncated, end_reason 'operator')."""
    joint_gripper_close_below_rad: float = param(0.3, min_value=-1.0, max_value=2.0)
    """Leader-arm joint commands: a gripper target below this counts as 'close' in the
    transition's discrete action."""
    joint_gripper_open_above_rad: float = param(0.9, min_value=-1.0, max_value=2.0)
    """Leader-arm joint commands: a gripper target above this counts as 'open' (between the
    two: 'stay')."""
    frame_id: str = param('base_link')
    """frame_id of the commands sent to the safety filter."""
    autostart: bool = param(False)
    """Development only: configure and activate at start-up without a lifecycle manager."""

    def __post_init__(self):
        validate_fields(self)
        if len(self.joint_names) < 2 or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f'joint_names: need >= 2 unique names, got {self.joint_names}')
        if len(set(self.camera_names)) != len(self.camera_names) or '' in self.camera_names:
            raise ValueError(f'camera_names: must be unique and non-empty: {self.camera_names}')
        if len(set(self.privileged_fields)) != len(self.privileged_fields):
            raise ValueError(f'privileged_fields: repeated names {self.privileged_fields}')
        if self.joint_gripper_close_below_rad > self.joint_gripper_open_above_rad:
            raise ValueError('joint_gripper_close_below_rad: must be <= '
                             'joint_gripper_open_above_rad')


ORACLE_MODES = ('demo', 'intervene')


@dataclasses.dataclass(frozen=True)
class OracleParams:
    """Parameters of ``oracle_node`` (scripted stand-in for the human, simulation only)."""

    mode: str = param('demo', choices=ORACLE_MODES)
    """demo: drive every episode (always holds the arm). intervene: watch the policy and take
    over briefly when it drifts or stalls, less often as training goes on."""
    control_rate_hz: float = param(10.0, min_value=1.0, max_value=100.0)
    """Command rate (node clock); must equal the actor's control rate."""
    cube_size_m: float = param(0.025, min_value=0.01, max_value=0.05)
    """Edge of the simulated cube (the driver's cube_size_m)."""
    hover_height_m: float = param(0.05, min_value=0.01, max_value=0.2)
    """Grasp point above the cube centre before descending."""
    lift_height_m: float = param(0.085, min_value=0.03, max_value=0.25)
    """Grasp point height above the table to lift the cube to."""
    max_step_m: float = param(0.02, min_value=0.001, max_value=0.1)
    """Largest TCP displacement per step in free space (keep it below the safety filter's
    ee_max_step_m)."""
    careful_step_m: float = param(0.01, min_value=0.001, max_value=0.1)
    """Largest TCP displacement per step while descending and lifting."""
    noise_std_m: float = param(0.0, min_value=0.0, max_value=0.05)
    """Gaussian noise (per axis, m) added to every commanded displacement."""
    seed: int = param(0, min_value=0, max_value=2**62)
    """Seed of the noise and of the takeover draws."""
    ground_truth_timeout_s: float = param(0.5, min_value=0.05, max_value=10.0)
    """Ground truth or joint states older than this: no command, intervention released."""
    intervention_period_s: float = param(0.5, min_value=0.05, max_value=60.0)
    """Republication period of the intervention state (also published on every change)."""
    drift_window_steps: int = param(5, min_value=1, max_value=1000)
    """intervene: compare the task distance with the one this many steps ago."""
    drift_threshold_m: float = param(0.02, min_value=0.001, max_value=1.0)
    """intervene: the task distance grew by more than this over the window = drift."""
    heading_steps: int = param(4, min_value=1, max_value=1000)
    """intervene: this many consecutive policy commands pointing away from the oracle's
    direction (cosine below heading_cosine) = drift."""
    heading_cosine: float = param(-0.3, min_value=-1.0, max_value=1.0)
    """intervene: see heading_steps."""
    stall_steps: int = param(20, min_value=1, max_value=10000)
    """intervene: no new best task distance (by progress_epsilon_m) for this many steps =
    stall."""
    progress_epsilon_m: float = param(0.005, min_value=0.0, max_value=1.0)
    """intervene: smallest improvement that counts as progress."""
    takeover_steps: int = param(10, min_value=1, max_value=10000)
    """intervene: length of one takeover, steps."""
    cooldown_steps: int = param(10, min_value=0, max_value=10000)
    """intervene: steps after a takeover (or a declined trigger) before the next check."""
    takeover_probability_start: float = param(1.0, min_value=0.0, max_value=1.0)
    """intervene: probability of taking over when triggered, in the first episode."""
    takeover_probability_end: float = param(0.1, min_value=0.0, max_value=1.0)
    """intervene: the probability it decays to."""
    takeover_decay_episodes: float = param(50.0, min_value=0.001, max_value=1e6)
    """intervene: episodes for the probability to fall 63 % of the way to the end value
    (p = end + (start - end) * exp(-episode / decay))."""
    frame_id: str = param('base_link')
    """frame_id of the published commands."""
    autostart: bool = param(False)
    """Development only: configure and activate at start-up without a lifecycle manager."""

    def __post_init__(self):
        validate_fields(self)


@dataclasses.dataclass(frozen=True)
class LeaderArmParams:
    """Parameters of ``leader_arm_node`` (SO-101 leader arm -> human joint commands)."""

    port: str = param('/dev/ttyACM1')
    """Serial port of the leader arm's bus adapter (or a virtual bus pty / pyserial URL)."""
    baudrate: int = param(1000000, min_value=4800, max_value=1000000)
    """Bus baud rate (STS3215 default 1 000 000)."""
    calibration_file: str = param('')
    """LeRobot calibration JSON of the leader arm; '' = LeRobot's location
    (calibration/teleoperators/so101_leader/<leader_id>.json)."""
    leader_id: str = param('so101_leader')
    """LeRobot id of the leader arm (names the default calibration file)."""
    joint_names: tuple[str, ...] = param(DEFAULT_JOINT_NAMES)
    """Follower joints in command order (servo ids 1..6), gripper last."""
    control_rate_hz: float = param(10.0, min_value=1.0, max_value=200.0)
    """Read and publish rate (node clock)."""
    always_active: bool = param(False)
    """Report an active intervention (SOURCE_LEADER_ARM) whenever the arm is readable.
    false: the leader only streams joint commands; the gamepad's or keyboard's takeover says
    when they drive."""
    read_retries: int = param(2, min_value=0, max_value=10)
    """Retries of a bus transaction with a missing or corrupted reply."""
    bus_timeout_margin_s: float = param(0.05, min_value=0.001, max_value=1.0)
    """Added to each transaction's wire time to give its deadline (USB-serial latency)."""
    intervention_period_s: float = param(1.0, min_value=0.05, max_value=60.0)
    """Republication period of the intervention state (always_active only)."""
    diagnostics_period_s: float = param(1.0, min_value=0.05, max_value=60.0)
    """Period of /diagnostics (wall time)."""
    frame_id: str = param('base_link')
    """frame_id of the published joint commands."""
    autostart: bool = param(False)
    """Development only: configure and activate at start-up without a lifecycle manager."""

    def __post_init__(self):
        validate_fields(self)
        if len(self.joint_names) != 6 or len(set(self.joint_names)) != 6:
            raise ValueError(f'joint_names: need the 6 SO-101 joints, got {self.joint_names}')
        if self.baudrate not in (4800, 9600, 14400, 19200, 38400, 57600, 115200, 128000,
                                 250000, 500000, 1000000):
            raise ValueError(f'baudrate: {self.baudrate} is not an STS3215 baud rate')


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
    graph_manager: str = param('')
    """Lifecycle manager node (e.g. /lifecycle_manager) that the node asks, over its
    ManageGraph service, for an orderly SHUTDOWN of the graph once max_episodes are recorded
    and before it exits: the manager then takes the exit for the end of the session, not a
    node failure ('' = exit without asking)."""
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
