"""Frozen, validated configuration of the driver, the simulation and the camera node.

Every field has a default, a unit in its name where it has one, and a docstring; the nodes
declare their ROS parameters from these dataclasses (``nodes/parameters.py``) and a bad value
makes configure fail with the ValueError raised here, naming the field.
"""
import dataclasses
import math

from so101_driver.model_files import JOINT_NAMES

BACKENDS = ('sim', 'real')
SIM_CAMERAS = ('front', 'wrist')


def _check(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValueError(f'{field}: {message}')


def _check_range(values, field: str, count: int = 2) -> None:
    _check(len(values) == count and all(math.isfinite(v) for v in values), field,
           f'expected {count} finite numbers, got {list(values)}')
    if count == 2:
        _check(values[0] <= values[1], field, f'lower bound above upper bound: {list(values)}')


@dataclasses.dataclass(frozen=True)
class SimParams:
    """The simulated SO-101 scene: physics, cube, randomisation, cameras."""

    timestep_s: float = 0.002
    """MuJoCo integration time step."""
    actuator_kp: float = 998.22
    """Position gain of every joint's servo model (N·m/rad; official SO-101 MJCF value)."""
    actuator_kv: float = 2.731
    """Velocity damping of every joint's servo model (N·m·s/rad; official MJCF value)."""
    actuator_force_limit_nm: float = 3.35
    """Torque limit of every joint's servo model (N·m; official MJCF value)."""
    jaw_pads: bool = True
    """Enable the 5-7 mm fingertip collision pads of the official model (box geoms on both jaw
    tips). MuJoCo collides meshes as convex hulls, which touch a cube at one point per jaw;
    the pads give each jaw a flat face. Off: the jaw meshes alone (grasps are unreliable)."""
    grip_friction: float = 1.2
    """Sliding friction coefficient of the jaw pads and the cube."""
    cube_size_m: float = 0.025
    """Edge length of the cube."""
    cube_mass_kg: float = 0.05
    """Mass of the cube."""
    cube_x_range_m: tuple[float, float] = (0.15, 0.28)
    """Range of the cube centre's start x (base frame; x points forward from the base)."""
    cube_y_range_m: tuple[float, float] = (-0.10, 0.10)
    """Range of the cube centre's start y (base frame)."""
    cube_yaw_range_rad: tuple[float, float] = (-0.785398, 0.785398)
    """Range of the cube's start yaw (the cube looks the same every quarter turn)."""
    home_joint_positions_rad: tuple[float, ...] = (0.0, -0.6, 0.5, 1.42, 1.5708, 0.7)
    """Arm pose after a reset, driver joint order: gripper above the workspace pointing down,
    jaws open."""
    home_randomization_rad: float = 0.05
    """Each arm joint's home angle is drawn uniformly within +- this (0: exact home); the
    gripper is not randomised."""
    success_height_m: float = 0.05
    """The task succeeds when the cube's bottom is at least this high above the table."""
    image_width: int = 128
    """Width of the rendered camera images (pixels)."""
    image_height: int = 128
    """Height of the rendered camera images (pixels)."""
    camera_names: tuple[str, ...] = SIM_CAMERAS
    """Cameras to render: 'front' (fixed scene camera) and/or 'wrist' (on the gripper)."""
    render_mesh_voxel_m: float = 0.0015
    """Grid size on which the robot's render meshes are coarsened (vertex clustering; 0: keep
    the full meshes). Collision always uses the full meshes."""
    render_mesh_reduction: float = 0.5
    """Fraction of the remaining render triangles removed by quadric decimation (0: none)."""

    def __post_init__(self):
        _check(0.0001 <= self.timestep_s <= 0.01, 'timestep_s', 'must be in [0.0001, 0.01] s')
        for name in ('actuator_kp', 'actuator_force_limit_nm', 'cube_size_m', 'cube_mass_kg',
                     'grip_friction'):
            value = getattr(self, name)
            _check(math.isfinite(value) and value > 0.0, name, f'must be > 0, got {value}')
        _check(math.isfinite(self.actuator_kv) and self.actuator_kv >= 0.0, 'actuator_kv',
               'must be >= 0')
        _check(self.cube_size_m <= 0.05, 'cube_size_m', 'must be <= 0.05 m (the jaws open '
               'about 7 cm)')
        _check_range(self.cube_x_range_m, 'cube_x_range_m')
        _check_range(self.cube_y_range_m, 'cube_y_range_m')
        _check_range(self.cube_yaw_range_rad, 'cube_yaw_range_rad')
        _check(self.cube_x_range_m[0] >= 0.08 and self.cube_x_range_m[1] <= 0.45,
               'cube_x_range_m', 'must lie within [0.08, 0.45] m (in front of the base, '
               'within reach)')
        _check(self.cube_y_range_m[0] >= -0.35 and self.cube_y_range_m[1] <= 0.35,
               'cube_y_range_m', 'must lie within [-0.35, 0.35] m (on the table)')
        _check_range(self.home_joint_positions_rad, 'home_joint_positions_rad', len(JOINT_NAMES))
        _check(0.0 <= self.home_randomization_rad <= 0.5, 'home_randomization_rad',
               'must be in [0, 0.5] rad')
        _check(0.0 < self.success_height_m <= 0.3, 'success_height_m', 'must be in (0, 0.3] m')
        for name in ('image_width', 'image_height'):
            value = getattr(self, name)
            _check(16 <= value <= 2048, name, f'must be in [16, 2048] pixels, got {value}')
        unknown = sorted(set(self.camera_names) - set(SIM_CAMERAS))
        _check(not unknown, 'camera_names', f'unknown cameras {unknown}; known: {SIM_CAMERAS}')
        _check(len(set(self.camera_names)) == len(self.camera_names), 'camera_names',
               'duplicate names')
        _check(0.0 <= self.render_mesh_reduction < 1.0, 'render_mesh_reduction',
               'must be in [0, 1)')
        _check(0.0 <= self.render_mesh_voxel_m <= 0.01, 'render_mesh_voxel_m',
               'must be in [0, 0.01] m')


@dataclasses.dataclass(frozen=True)
class DriverParams:
    """The driver node: backend choice, control loop, safety timeouts, real-robot port."""

    backend: str = 'sim'
    """'sim' (MuJoCo simulation) or 'real' (Feetech STS3215 bus)."""
    control_rate_hz: float = 100.0
    """Rate of the read -> publish -> write loop and of /joint_states (simulated time for
    the sim backend)."""
    command_timeout_s: float = 0.5
    """When no position command arrived for this long, the arm holds its current position."""
    trajectory_start_tolerance_rad: float = 0.1
    """A trajectory whose first point is at time 0 must start this close to the current
    target (that point is then the start); otherwise it is rejected."""
    diagnostics_period_s: float = 1.0
    """Period of /diagnostics and of the backend health check (wall time)."""
    real_time_factor: float = 1.0
    """Sim only: simulated seconds per wall second (2 = twice as fast; 0 = as fast as
    possible)."""
    camera_rate_hz: float = 15.0
    """Sim only: rate of the rendered camera images (simulated time; 0 = no images)."""
    publish_ground_truth: bool = True
    """Sim only: publish /so101_driver/ground_truth every control step."""
    reset_duration_s: float = 3.0
    """Real only: duration of the interpolated move home done by reset_episode."""
    home_joint_positions_rad: tuple[float, ...] = (0.0, -0.6, 0.5, 1.42, 1.5708, 0.7)
    """Pose of reset_episode, driver joint order. One ROS parameter serves both this and
    ``SimParams.home_joint_positions_rad`` (the sim adds home_randomization_rad)."""
    disable_torque_on_cleanup: bool = False
    """Disable the torque at cleanup/shutdown (the arm then falls if unsupported)."""
    port: str = '/dev/ttyACM0'
    """Real only: serial port of the Feetech bus adapter."""
    baudrate: int = 1_000_000
    """Real only: bus baud rate."""
    calibration_file: str = ''
    """Real only: LeRobot-format calibration JSON of the arm."""
    autostart: bool = False
    """Development only: configure and activate the node at start-up."""

    def __post_init__(self):
        _check(self.backend in BACKENDS, 'backend', f'must be one of {BACKENDS}, got '
               f'{self.backend!r}')
        _check(math.isfinite(self.control_rate_hz) and 1.0 <= self.control_rate_hz <= 1000.0,
               'control_rate_hz', 'must be in [1, 1000] Hz')
        _check(math.isfinite(self.command_timeout_s) and 0.01 <= self.command_timeout_s <= 60.0,
               'command_timeout_s', 'must be in [0.01, 60] s')
        _check(0.0 <= self.trajectory_start_tolerance_rad <= 1.0,
               'trajectory_start_tolerance_rad', 'must be in [0, 1] rad')
        _check(math.isfinite(self.diagnostics_period_s) and
               0.05 <= self.diagnostics_period_s <= 60.0, 'diagnostics_period_s',
               'must be in [0.05, 60] s')
        _check(math.isfinite(self.real_time_factor) and 0.0 <= self.real_time_factor <= 1000.0,
               'real_time_factor', 'must be in [0, 1000] (0: as fast as possible)')
        _check(math.isfinite(self.camera_rate_hz) and 0.0 <= self.camera_rate_hz <= 120.0,
               'camera_rate_hz', 'must be in [0, 120] Hz')
        _check(math.isfinite(self.reset_duration_s) and 0.5 <= self.reset_duration_s <= 30.0,
               'reset_duration_s', 'must be in [0.5, 30] s')
        _check_range(self.home_joint_positions_rad, 'home_joint_positions_rad', len(JOINT_NAMES))
        _check(self.baudrate > 0, 'baudrate', 'must be > 0')
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
    width: int = 640
    """Image width in pixels requested from the camera; frames of another size are resized."""
    height: int = 480
    """Image height in pixels (as width)."""
    fps: float = 30.0
    """Frame rate requested from the camera, and the most frames published per second."""
    frame_id: str = ''
    """header.frame_id of the images (default '<camera_name>_camera')."""
    reconnect_interval_s: float = 1.0
    """Time between attempts to reopen a camera that disappeared."""
    read_timeout_s: float = 2.0
    """A camera that delivers no frame for this long counts as disconnected."""
    autostart: bool = False
    """Development only: configure and activate the node at start-up."""

    def __post_init__(self):
        _check(bool(self.camera_name) and self.camera_name.replace('_', '').isalnum()
               and not self.camera_name[0].isdigit(), 'camera_name',
               f'must be letters, digits and underscores, not starting with a digit; got '
               f'{self.camera_name!r}')
        _check(bool(self.device.strip()), 'device', 'must name a camera index, device or file')
        for name in ('width', 'height'):
            value = getattr(self, name)
            _check(16 <= value <= 8192, name, f'must be in [16, 8192] pixels, got {value}')
        _check(math.isfinite(self.fps) and 0.5 <= self.fps <= 240.0, 'fps',
               'must be in [0.5, 240]')
        _check(math.isfinite(self.reconnect_interval_s) and
               0.05 <= self.reconnect_interval_s <= 60.0, 'reconnect_interval_s',
               'must be in [0.05, 60] s')
        _check(math.isfinite(self.read_timeout_s) and 0.1 <= self.read_timeout_s <= 60.0,
               'read_timeout_s', 'must be in [0.1, 60] s')

    @property
    def resolved_frame_id(self) -> str:
        return self.frame_id or f'{self.camera_name}_camera'
