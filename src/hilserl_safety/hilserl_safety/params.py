"""Configuration of the safety filter and the joint-limit finder: frozen, validated dataclasses.

Field metadata used by the node layer:
- ``read_only``: structural, fixed after start (joint names, files, rates);
- ``tighten``: a safety limit that may change at run time only in the safer direction,
  ``'decrease'`` (a maximum) or ``'increase'`` (a minimum or a margin); checked by
  :func:`loosened_fields`;
- ``range``: (low, high) for a numeric scalar, published in the parameter descriptor.
"""
import dataclasses
import math

from so101_driver.model_files import JOINT_NAMES

EFFORT_UNITS = ('N.m', 'percent')
ESTOP_ACTIONS = ('hold', 'torque_off')


def _meta(read_only=False, tighten=None, value_range=None):
    return {'read_only': read_only, 'tighten': tighten, 'range': value_range}


@dataclasses.dataclass(frozen=True)
class SafetyFilterParams:
    """Every parameter of the safety_filter node (ROS parameters of the same names)."""

    joint_names: tuple[str, ...] = dataclasses.field(
        default=JOINT_NAMES, metadata=_meta(read_only=True))
    """The driver's joints in command order; the last one is the gripper."""
    control_rate_hz: float = dataclasses.field(
        default=10.0, metadata=_meta(read_only=True, value_range=(1.0, 1000.0)))
    """Rate of the watchdog / heartbeat / e-stop checks, and the step period the per-step limits
    refer to: a command arriving sooner than 1/control_rate_hz after the last output may move
    only the elapsed fraction of a step."""
    urdf_path: str = dataclasses.field(default='', metadata=_meta(read_only=True))
    """URDF with the calibrated joint limits and the TCP frame; '' = the official SO-101 model
    (the driver's)."""
    limits_file: str = dataclasses.field(default='', metadata=_meta(read_only=True))
    """YAML written by find_joint_limits; '' = none. Its joint ranges (and, with
    use_limits_file_workspace, its TCP box) are intersected with the other limits."""
    use_limits_file_workspace: bool = dataclasses.field(
        default=True, metadata=_meta(read_only=True))
    """Intersect the workspace box with the TCP box recorded in limits_file."""
    joint_limit_margin_rad: float = dataclasses.field(
        default=0.05, metadata=_meta(tighten='increase', value_range=(0.0, 0.5)))
    """Margin kept inside every joint range (URDF and limits file), rad."""
    workspace_min_m: tuple[float, ...] = dataclasses.field(
        default=(0.14, -0.20, 0.01), metadata=_meta(tighten='increase'))
    """Lower corner (x, y, z) of the TCP workspace box in the base frame, m (LeRobot's
    end_effector_bounds min). x 0.14: closer to the base the gripper hits the robot's own
    shoulder link (|y| < 0.06, with the approach of the home pose). z 0.01 keeps the
    fingertips (about 7 mm below the TCP when the gripper points down) off the table."""
    workspace_max_m: tuple[float, ...] = dataclasses.field(
        default=(0.35, 0.20, 0.25), metadata=_meta(tighten='decrease'))
    """Upper corner (x, y, z) of the TCP workspace box in the base frame, m."""
    workspace_tolerance_m: float = dataclasses.field(
        default=0.002, metadata=_meta(read_only=True, value_range=(0.0, 0.02)))
    """How far outside the box an output's FK may lie (IK and joint-step curvature), m."""
    ee_max_step_m: float = dataclasses.field(
        default=0.03, metadata=_meta(tighten='decrease', value_range=(0.0, 0.2)))
    """Largest TCP displacement per control period, m (0.03 at 10 Hz = 0.3 m/s)."""
    wall_zone_m: float = dataclasses.field(
        default=0.03, metadata=_meta(tighten='increase', value_range=(0.0, 0.5)))
    """Within this distance of a workspace wall (at the start or the end of a step) the TCP
    moves at most ee_wall_max_step_m per control period, m; 0 = no slow zone. The servos lag
    their targets by different amounts, so the path between two targets bulges; slow steps
    near the walls keep that bulge from carrying the TCP out of the box."""
    ee_wall_max_step_m: float = dataclasses.field(
        default=0.01, metadata=_meta(tighten='decrease', value_range=(0.0001, 0.2)))
    """Largest TCP displacement per control period within wall_zone_m of a wall, m (0.01 at
    10 Hz = 0.1 m/s); the smaller of this and ee_max_step_m applies."""
    max_joint_speed_rad_s: tuple[float, ...] = dataclasses.field(
        default=(2.0, 2.0, 2.0, 2.5, 3.0, 3.0), metadata=_meta(tighten='decrease'))
    """Per-joint speed limit, rad/s; the per-step change is this times the step period. The
    gripper entry also rate-limits gripper commands."""
    gripper_open_rad: float = dataclasses.field(default=1.2, metadata=_meta(read_only=True))
    """Gripper joint target of GRIPPER_OPEN, rad."""
    gripper_closed_rad: float = dataclasses.field(default=-0.1, metadata=_meta(read_only=True))
    """Gripper joint target of GRIPPER_CLOSE, rad (beyond any object, so the jaws squeeze)."""
    effort_unit: str = dataclasses.field(default='N.m', metadata=_meta(read_only=True))
    """Unit of /joint_states effort, the driver's convention: 'N.m' (sim backend) or
    'percent' (real backend: servo load, -100..100). Selects max_effort_nm or
    max_effort_percent."""
    max_effort_nm: tuple[float, ...] = dataclasses.field(
        default=(3.0, 3.0, 3.0, 3.0, 3.0, 5.0), metadata=_meta(tighten='decrease'))
    """Per-joint |effort| trip thresholds with effort_unit 'N.m'. The sim actuators saturate at
    3.35 N·m, so 3.0 catches a blocked joint; the gripper's 5.0 never trips because a grasp
    saturates it by design."""
    max_effort_percent: tuple[float, ...] = dataclasses.field(
        default=(80.0, 80.0, 80.0, 80.0, 80.0, 101.0), metadata=_meta(tighten='decrease'))
    """Per-joint |effort| trip thresholds with effort_unit 'percent' (real servo load); the
    gripper's 101 disables its trip (its own Overload_Torque protects it)."""
    effort_trip_samples: int = dataclasses.field(
        default=80, metadata=_meta(tighten='decrease', value_range=(1, 1000)))
    """Consecutive /joint_states samples of a stalled joint (above its threshold, slower than
    stall_velocity_rad_s) that trip: 0.8 s at the driver's 100 Hz. Ordinary moves of the
    SO-101 hold its weak servos at their torque limit while slow for up to ~0.5 s (measured
    over scripted grasps in simulation), so a shorter window trips during normal work."""
    stall_velocity_rad_s: float = dataclasses.field(
        default=0.2, metadata=_meta(tighten='increase', value_range=(0.001, 100.0)))
    """A sample counts towards an effort trip only while the joint turns slower than this
    (|velocity|): it pushes but does not move, i.e. it is blocked. A position servo's torque
    saturates while it accelerates towards each new target, which is no collision (in the
    simulation, every step of a 10 Hz command stream). Joint states without velocities count
    every sample; 100 counts every sample too."""
    require_effort: bool = dataclasses.field(default=True, metadata=_meta(read_only=True))
    """Treat /joint_states without efforts as invalid (the effort limit cannot work), so the
    filter holds. Disable only for a driver that cannot measure load."""
    trip_hold_s: float = dataclasses.field(
        default=1.0, metadata=_meta(tighten='increase', value_range=(0.0, 60.0)))
    """After an effort trip, commands are dropped for at least this long and until every
    effort is back under its threshold."""
    command_timeout_s: float = dataclasses.field(
        default=0.5, metadata=_meta(tighten='decrease', value_range=(0.01, 60.0)))
    """Watchdog: no command for this long -> hold."""
    heartbeat_timeout_s: float = dataclasses.field(
        default=0.5, metadata=_meta(tighten='decrease', value_range=(0.01, 60.0)))
    """Policy commands need an actor heartbeat newer than this; otherwise hold."""
    joint_state_timeout_s: float = dataclasses.field(
        default=0.5, metadata=_meta(tighten='decrease', value_range=(0.01, 60.0)))
    """No valid /joint_states for this long -> hold (the filter cannot check the arm)."""
    resync_threshold_rad: float = dataclasses.field(
        default=0.3, metadata=_meta(read_only=True, value_range=(0.01, 3.0)))
    """When an arm joint's measured position is farther than this from the target (reset,
    moved by hand, blocked), the next command starts from the measured positions."""
    estop_action: str = dataclasses.field(default='hold', metadata=_meta(read_only=True))
    """What a latched e-stop does: 'hold' (keep the last target, torque on) or 'torque_off'
    (also disable torque via /so101_driver/enable_torque; re-enabled on release)."""
    torque_service: str = dataclasses.field(
        default='/so101_driver/enable_torque', metadata=_meta(read_only=True))
    """The driver's std_srvs/SetBool torque service, used with estop_action 'torque_off'."""
    ik_max_iterations: int = dataclasses.field(
        default=4, metadata=_meta(read_only=True, value_range=(1, 200)))
    """IK iterations per command. A step of a few cm converges in 2-3; a target that cannot be
    reached with the orientation held does not improve with more (the arm holds), so more
    iterations only add latency."""
    ik_tolerance_m: float = dataclasses.field(
        default=1e-4, metadata=_meta(read_only=True, value_range=(1e-7, 0.01)))
    """IK position tolerance, m."""
    diagnostics_period_s: float = dataclasses.field(
        default=1.0, metadata=_meta(read_only=True, value_range=(0.05, 60.0)))
    """Period of /diagnostics and of the rviz2 markers, s."""
    autostart: bool = dataclasses.field(default=False, metadata=_meta(read_only=True))
    """Configure and activate at start (development only; bring-up uses the lifecycle
    manager)."""

    def __post_init__(self):
        for name in ('joint_names', 'workspace_min_m', 'workspace_max_m',
                     'max_joint_speed_rad_s', 'max_effort_nm', 'max_effort_percent'):
            value = getattr(self, name)
            kind = str if name == 'joint_names' else float
            try:
                object.__setattr__(self, name, tuple(kind(v) for v in value))
            except (TypeError, ValueError) as error:
                raise ValueError(f'{name}: expected a list of {kind.__name__}') from error
        _check_finite(self)
        count = len(self.joint_names)
        if count < 2 or len(set(self.joint_names)) != count:
            raise ValueError(f'joint_names: need >= 2 unique names, got {self.joint_names}')
        for name in ('max_joint_speed_rad_s', 'max_effort_nm', 'max_effort_percent'):
            values = getattr(self, name)
            if len(values) != count or min(values) <= 0.0:
                raise ValueError(f'{name}: need {count} positive values, got {values}')
        for name in ('workspace_min_m', 'workspace_max_m'):
            if len(getattr(self, name)) != 3:
                raise ValueError(f'{name}: need 3 values (x, y, z), got {getattr(self, name)}')
        for axis, low, high in zip('xyz', self.workspace_min_m, self.workspace_max_m):
            if low >= high:
                raise ValueError(f'workspace_min_m: {axis} min {low} >= workspace_max_m {high}')
        if self.effort_unit not in EFFORT_UNITS:
            raise ValueError(f'effort_unit: {self.effort_unit!r} is not one of {EFFORT_UNITS}')
        if self.estop_action not in ESTOP_ACTIONS:
            raise ValueError(
                f'estop_action: {self.estop_action!r} is not one of {ESTOP_ACTIONS}')
        for field in dataclasses.fields(self):
            low_high = field.metadata.get('range')
            value = getattr(self, field.name)
            if low_high and not low_high[0] <= value <= low_high[1]:
                raise ValueError(f'{field.name}: {value} outside [{low_high[0]}, {low_high[1]}]')
        if self.ee_max_step_m <= 0.0:
            raise ValueError('ee_max_step_m: must be > 0')
        if self.estop_action == 'torque_off' and not self.torque_service:
            raise ValueError('torque_service: required with estop_action torque_off')

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    @property
    def max_effort(self) -> tuple[float, ...]:
        """The thresholds in the driver's effort unit."""
        return self.max_effort_nm if self.effort_unit == 'N.m' else self.max_effort_percent

    def replace(self, **changes) -> 'SafetyFilterParams':
        """A validated copy with ``changes`` (ValueError on a bad value)."""
        return dataclasses.replace(self, **changes)


def _check_finite(params) -> None:
    for field in dataclasses.fields(params):
        value = getattr(params, field.name)
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f'{field.name}: {value} is not finite')


def loosened_fields(old: SafetyFilterParams, new: SafetyFilterParams) -> list[str]:
    """Fields whose change would loosen a safety limit or alter a read-only value."""
    problems = []
    for field in dataclasses.fields(old):
        before, after = getattr(old, field.name), getattr(new, field.name)
        if before == after:
            continue
        direction = field.metadata.get('tighten')
        if direction is None:
            problems.append(f'{field.name} (read-only: restart to change it)')
            continue
        pairs = zip(before, after) if isinstance(before, tuple) else [(before, after)]
        if isinstance(before, tuple) and len(before) != len(after):
            problems.append(f'{field.name} (length changed)')
            continue
        for b, a in pairs:
            if (direction == 'decrease' and a > b) or (direction == 'increase' and a < b):
                problems.append(f'{field.name} (may only {direction} at run time: '
                                f'{before} -> {after}; restart to loosen)')
                break
    return problems


@dataclasses.dataclass(frozen=True)
class LimitFinderParams:
    """Options of find_joint_limits (command-line flags of the same names)."""

    output: str = 'joint_limits.yaml'
    """Where to write the limit file the safety filter loads (its limits_file)."""
    min_range_rad: float = 0.3
    """Every recorded joint must have moved over at least this range, rad."""
    min_duration_s: float = 5.0
    """Record for at least this long before a file may be written, s."""
    duration_s: float = 0.0
    """Stop and write this long after the first /joint_states sample, s; 0 = until Ctrl-C."""
    print_period_s: float = 0.5
    """How often the live ranges are printed, s."""
    allow_partial: bool = False
    """Write the joints that moved enough and leave the others out (the filter then uses the
    URDF range for them) instead of refusing."""
    urdf_path: str = ''
    """URDF for the TCP forward kinematics; '' = the official SO-101 model."""
    joint_names: tuple[str, ...] = JOINT_NAMES
    """The joints to record."""

    def __post_init__(self):
        object.__setattr__(self, 'joint_names', tuple(str(n) for n in self.joint_names))
        if not self.output:
            raise ValueError('output: a file path is required')
        for name in ('min_range_rad', 'min_duration_s', 'duration_s'):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise ValueError(f'{name}: must be a finite number >= 0, got {value}')
        if not math.isfinite(self.print_period_s) or self.print_period_s <= 0.0:
            raise ValueError(f'print_period_s: must be > 0, got {self.print_period_s}')
        if 0.0 < self.duration_s < self.min_duration_s:
            raise ValueError(f'duration_s: {self.duration_s} is below min_duration_s '
                             f'{self.min_duration_s}: no file could ever be written')
        if not self.joint_names or len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f'joint_names: need unique names, got {self.joint_names}')
