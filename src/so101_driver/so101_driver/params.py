"""Frozen, validated configuration of the driver, the simulation and the camera node.

Every field has a default, a unit in its name where it has one, and a docstring; the nodes
declare their ROS parameters from these dataclasses (``nodes/parameters.py``) and a bad value
makes configure fail with the ValueError raised here, naming the field.
"""
import dataclasses
import math

from so101_driver.feetech.config import CALIBRATION_MISMATCH_POLICIES
from so101_driver.model_files import JOINT_NAMES

BACKENDS = ('sim', 'real')
SIM_CAMERAS = ('front', 'wrist')


def _check(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValueError(f'{field}: {message}')


def within(low: float, high: float, default):
    """A dataclass field whose value must lie in [low, high]; the bounds also become the
    ROS parameter's range (``nodes/parameters.py``).
    """
    return dataclasses.field(default=default, metadata={'range': (low, high)})


def _check_bounds(params) -> None:
    """Check every field declared with ``within``: finite and inside its range."""
    for field in dataclasses.fields(params):
        if 'range' not in field.metadata:
            continue
        low, high = field.metadata['range']
        value = getattr(params, field.name)
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), field.name,
               f'must be a number, got {value!r}')
        _check(math.isfinite(value) and low <= value <= high, field.name,
               f'must be in [{low:g}, {high:g}], got {value}')


def _check_range(values, field: str, count: int = 2) -> None:
    _check(len(values) == count and all(math.isfinite(v) for v in values), field,
           f'expected {count} finite numbers, got {list(values)}')
    if count == 2:
        _check(values[0] <= values[1], field, f'lower bound above upper bound: {list(values)}')


@dataclasses.dataclass(frozen=True)
class SimParams:
    """The simulated SO-101 scene: physics, cube, randomisation, cameras."""

    timestep_s: float = within(0.0001, 0.01, 0.002)
    """MuJoCo integration time step."""
    actuator_kp: float = within(1.0, 1e5, 998.22)
    """Position gain of every joint's servo model (N·m/rad; official SO-101 MJCF value)."""
    actuator_kv: float = within(0.0, 1e3, 2.731)
    """Velocity damping of every joint's servo model (N·m·s/rad; official MJCF value)."""
    actuator_force_limit_nm: float = within(0.01, 100.0, 3.35)
    """Torque limit of every joint's servo model (N·m; official MJCF value)."""
    servo_time_constant_s: float = within(0.0, 1.0, 0.05)
    """Time constant of the first-order lag between a joint target and the servo model's
    setpoint (s; 0: the setpoint jumps to each target). The STS3215 firmware ramps toward a
    new Goal_Position instead of jumping; without the lag the stiff, torque-limited position
    loop (kp 998 N·m/rad, 3.35 N·m) answers every 10 Hz target step with saturated torque and
    about 35 % overshoot."""
    jaw_pads: bool = True
    """Enable the 5-7 mm fingertip collision pads of the official model (box geoms on both jaw
    tips). MuJoCo collides meshes as convex hulls, which touch a cube at one point per jaw;
    the pads give each jaw a flat face. Off: the jaw meshes alone (the scripted grasp still
    lifts the cube in 98 of 100 episodes, on point contacts)."""
    grip_friction: float = within(0.05, 5.0, 1.2)
    """Sliding friction coefficient of the jaw pads and the cube."""
    cube_size_m: float = within(0.01, 0.05, 0.025)
    """Edge length of the cube."""
    cube_mass_kg: float = within(0.001, 1.0, 0.05)
    """Mass of the cube."""
    cube_x_range_m: tuple[float, float] = (0.17, 0.28)
    """Range of the cube centre's start x (base frame; x points forward from the base). Nearer
    than 0.17 m, at the sides, a top-down grasp needs the TCP in front of the safety filter's
    default box (x >= 0.14 m): the jaws then press on the cube instead of around it."""
    cube_y_range_m: tuple[float, float] = (-0.10, 0.10)
    """Range of the cube centre's start y (base frame)."""
    cube_yaw_range_rad: tuple[float, float] = (-0.785398, 0.785398)
    """Range of the cube's start yaw (the cube looks the same every quarter turn)."""
    home_joint_positions_rad: tuple[float, ...] = (0.0, -0.6, 0.5, 1.42, 1.5708, 0.7)
    """Arm pose after a reset, driver joint order: gripper above the workspace pointing down,
    jaws open."""
    home_randomization_rad: float = within(0.0, 0.5, 0.05)
    """Each arm joint's home angle is drawn uniformly within +- this (0: exact home); the
    gripper is not randomised."""
    success_height_m: float = within(0.005, 0.3, 0.05)
    """The task succeeds when the cube's bottom is at least this high above the table."""
    image_width: int = within(16, 2048, 128)
    """Width of the rendered camera images (pixels)."""
    image_height: int = within(16, 2048, 128)
    """Height of the rendered camera images (pixels)."""
    camera_names: tuple[str, ...] = SIM_CAMERAS
    """Cameras to render: 'front' (fixed scene camera) and/or 'wrist' (on the gripper)."""
    render_mesh_voxel_m: float = within(0.0, 0.01, 0.0015)
    """Grid size on which the robot's render meshes are coarsened (vertex clustering; 0: keep
    the full meshes). Collision always uses the full meshes."""
    render_mesh_reduction: float = within(0.0, 0.99, 0.5)
    """Fraction of the remaining render triangles removed by quadric decimation (0: none)."""

    def __post_init__(self):
        _check_bounds(self)
        _check_range(self.cube_x_range_m, 'cube_x_range_m')
        _check_range(self.cube_y_range_m, 'cube_y_range_m')
        _check_range(self.cube_yaw_range_rad, 'cube_yaw_range_rad')
        _check(self.cube_x_range_m[0] >= 0.08 and self.cube_x_range_m[1] <= 0.45,
               'cube_x_range_m', 'must lie within [0.08, 0.45] m (in front of the base, '
               'within reach)')
        _check(self.cube_y_range_m[0] >= -0.35 and self.cube_y_range_m[1] <= 0.35,
               'cube_y_range_m', 'must lie within [-0.35, 0.35] m (on the table)')
        _check_range(self.home_joint_positions_rad, 'home_joint_positions_rad', len(JOINT_NAMES))
        unknown = sorted(set(self.camera_names) - set(SIM_CAMERAS))
        _check(not unknown, 'camera_names', f'unknown cameras {unknown}; known: {SIM_CAMERAS}')
        _check(len(set(self.camera_names)) == len(self.camera_names), 'camera_names',
               'duplicate names')


@dataclasses.dataclass(frozen=True)
class DriverParams:
    """The driver node: backend choice, control loop, safety timeouts, real-robot port."""

    backend: str = 'sim'
    """'sim' (MuJoCo simulation) or 'real' (Feetech STS3215 bus)."""
    control_rate_hz: float = within(1.0, 1000.0, 100.0)
    """Rate of the read -> publish -> write loop and of /joint_states (simulated time for
    the sim backend)."""
    command_timeout_s: float = within(0.01, 60.0, 0.5)
    """When no position command arrived for this long, the arm holds its current position."""
    trajectory_start_tolerance_rad: float = within(0.0, 1.0, 0.1)
    """A trajectory whose first point is at time 0 must start this close to the current
    target (that point is then the start); otherwise it is rejected."""
    diagnostics_period_s: float = within(0.05, 60.0, 1.0)
    """Period of /diagnostics and of the backend health check (wall time)."""
    real_time_factor: float = within(0.0, 1000.0, 1.0)
    """Sim only: simulated seconds per wall second (2 = twice as fast; 0 = as fast as
    possible)."""
    camera_rate_hz: float = within(0.0, 120.0, 15.0)
    """Sim only: rate of the rendered camera images (simulated time; 0 = no images)."""
    publish_ground_truth: bool = True
    """Sim only: publish /so101_driver/ground_truth every control step."""
    reset_duration_s: float = within(0.5, 30.0, 3.0)
    """Real only: duration of the interpolated move home done by reset_episode."""
    home_joint_positions_rad: tuple[float, ...] = (0.0, -0.6, 0.5, 1.42, 1.5708, 0.7)
    """Pose of reset_episode, driver joint order. One ROS parameter serves both this and
    ``SimParams.home_joint_positions_rad`` (the sim adds home_randomization_rad)."""
    disable_torque_on_cleanup: bool = False
    """Disable the torque at cleanup/shutdown (the arm then falls if unsupported). Off: the
    real servos keep holding their last goal after the driver stops."""
    port: str = '/dev/ttyACM0'
    """Real only: serial port of the Feetech bus adapter (or the virtual bus's link, e.g.
    /tmp/so101_virtual_bus)."""
    baudrate: int = within(4_800, 1_000_000, 1_000_000)
    """Real only: bus baud rate (the STS3215 default is 1000000; the backend accepts the rates
    an STS3215 can be set to)."""
    calibration_file: str = ''
    """Real only: LeRobot-format calibration JSON of the arm ('' = LeRobot's default,
    ~/.cache/huggingface/lerobot/calibration/robots/so101_follower/so101_follower.json)."""
    on_calibration_mismatch: str = 'error'
    """Real only: when the servos' Homing_Offset/position limits differ from the calibration
    file: 'error' (configure fails, naming the joints) or 'write' (store the file in the
    servos)."""
    read_retries: int = within(0, 10, 2)
    """Real only: retries of a bus transaction whose reply is missing or corrupted (LeRobot
    uses 2); a reading that still fails holds the arm."""
    bus_timeout_margin_s: float = within(0.001, 1.0, 0.05)
    """Real only: added to each bus transaction's wire time to give its deadline (USB-serial
    latency); a silent servo costs (1 + read_retries) times this per reading."""
    autostart: bool = False
    """Development only: configure and activate the node at start-up."""

    def __post_init__(self):
        _check(self.backend in BACKENDS, 'backend', f'must be one of {BACKENDS}, got '
               f'{self.backend!r}')
        _check_bounds(self)
        _check_range(self.home_joint_positions_rad, 'home_joint_positions_rad', len(JOINT_NAMES))
        _check(self.on_calibration_mismatch in CALIBRATION_MISMATCH_POLICIES,
               'on_calibration_mismatch', f'must be one of {CALIBRATION_MISMATCH_POLICIES}, '
               f'got {self.on_calibration_mismatch!r}')
        if self.backend == 'real':
            _check(bool(self.port), 'port', 'must name the serial port for backend real')


@dataclasses.dataclass(frozen=True)
class CameraParams:
    """One OpenCV camera published as /cameras/<camera_name>/image_raw."""

    camera_name: str = 'front'
    """Name in the topic /cameras/<camera_name>/image_raw (letters, digits, underscores)."""
    device: str = '0'
    """A camera index ('0'), a device path ('/dev/video0'), or a video file / stream URL.
    Video files play in a loop, at ``fps``."""
    width: int = within(16, 8192, 640)
    """Image width in pixels requested from the camera; frames of another size are resized."""
    height: int = within(16, 8192, 480)
    """Image height in pixels (as width)."""
    fps: float = within(0.5, 240.0, 30.0)
    """Frame rate requested from the camera, and the most frames published per second."""
    frame_id: str = ''
    """header.frame_id of the images (default '<camera_name>_camera')."""
    reconnect_interval_s: float = within(0.05, 60.0, 1.0)
    """Time between attempts to reopen a camera that disappeared."""
    read_timeout_s: float = within(0.1, 60.0, 2.0)
    """A camera that delivers no frame for this long counts as disconnected."""
    autostart: bool = False
    """Development only: configure and activate the node at start-up."""

    def __post_init__(self):
        _check(bool(self.camera_name) and self.camera_name.replace('_', '').isalnum()
               and not self.camera_name[0].isdigit(), 'camera_name',
               f'must be letters, digits and underscores, not starting with a digit; got '
               f'{self.camera_name!r}')
        _check(bool(self.device.strip()), 'device', 'must name a camera index, device or file')
        _check_bounds(self)

    @property
    def resolved_frame_id(self) -> str:
        return self.frame_id or f'{self.camera_name}_camera'
