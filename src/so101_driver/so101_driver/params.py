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
        _check(0.08 <= self.cube_x_range_m[0] and self.cube_x_range_m[1] <= 0.45,
               'cube_x_range_m', 'must lie within [0.08, 0.45] m (in front of the base, '
               'within reach)')
        _check(-0.35 <= self.cube_y_range_m[0] and self.cube_y_range_m[1] <= 0.35,
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
