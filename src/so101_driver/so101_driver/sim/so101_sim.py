"""The simulated SO-101 pick-and-lift scene: reset, step, render, ground truth (no ROS).

``So101Sim`` is what the driver's sim backend runs, and what scripted oracles and RL tests can
use directly::

    sim = So101Sim(SimParams())
    start = sim.reset(seed=3)                 # arm home (+ noise), cube at a seeded pose
    sim.step(targets_rad, duration_s=0.1)     # servo targets, driver joint order
    frame = sim.render('wrist')               # (H, W, 3) uint8 RGB
    truth = sim.ground_truth()                # cube pose, TCP pose, grasped, success
    sim.close()

Frames: the world frame is the robot base frame (``base_link``): x forward, z up, the table
top at z = 0. Units are SI; quaternions are (w, x, y, z). Joint order is the driver's
(``model_files.JOINT_NAMES``). Rendering uses an OpenGL context that belongs to the thread that
rendered first: render from one thread only.
"""
import dataclasses

import numpy as np

from so101_driver.model_files import JOINT_NAMES
from so101_driver.params import SimParams
from so101_driver.sim import scene

MAX_SEED = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class ResetResult:
    """Start state of an episode."""

    seed: int
    object_position_m: np.ndarray
    object_quaternion_wxyz: np.ndarray
    joint_positions_rad: np.ndarray


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """Privileged state of the scene (never available on the real robot)."""

    time_s: float
    object_position_m: np.ndarray
    object_quaternion_wxyz: np.ndarray
    object_linear_velocity_m_s: np.ndarray
    """World frame, at the cube centre."""
    object_angular_velocity_rad_s: np.ndarray
    """World frame."""
    tcp_position_m: np.ndarray
    tcp_quaternion_wxyz: np.ndarray
    object_height_m: float
    """Height of the cube's lowest corner above the table top."""
    object_grasped: bool
    """Both jaws touch the cube."""
    success: bool
    """The cube's lowest corner is at least ``success_height_m`` above the table."""
    episode_seed: int


class So101Sim:
    """MuJoCo simulation of the SO-101 with a table, a cube and two cameras."""

    def __init__(self, params: SimParams | None = None):
        import mujoco

        self._mujoco = mujoco
        self.params = params or SimParams()
        self.model = scene.build_model(self.params)
        self.data = mujoco.MjData(self.model)
        model = self.model
        self.joint_names = JOINT_NAMES
        joints = [model.joint(name) for name in JOINT_NAMES]
        self._qpos_index = np.array([joint.qposadr[0] for joint in joints])
        self._qvel_index = np.array([joint.dofadr[0] for joint in joints])
        self._actuator_index = np.array([model.actuator(name).id for name in JOINT_NAMES])
        # The servo setpoints (activations) of actuators with a lag (servo_time_constant_s).
        act = model.actuator_actadr[self._actuator_index]
        self._setpoint_index = act[act >= 0]
        self._setpoint_joints = np.flatnonzero(act >= 0)
        self.lower_limits_rad = model.actuator_ctrlrange[self._actuator_index, 0].copy()
        self.upper_limits_rad = model.actuator_ctrlrange[self._actuator_index, 1].copy()
        cube_joint = model.joint(scene.CUBE_BODY)
        self._cube_qpos = cube_joint.qposadr[0]
        self._cube_body = model.body(scene.CUBE_BODY).id
        self._cube_geom = model.geom(scene.CUBE_GEOM).id
        self._tcp_site = model.site(scene.TCP_SITE).id
        self._fixed_jaw_body = model.body(scene.FIXED_JAW_BODY).id
        self._moving_jaw_body = model.body(scene.MOVING_JAW_BODY).id
        self._cameras = {name: model.camera(name).id for name in self.params.camera_names}
        self._renderer = None
        self._torque_enabled = True
        self.episode_seed = 0
        self.reset(seed=0)

    # --- properties ----------------------------------------------------------------------
    @property
    def timestep_s(self) -> float:
        return float(self.model.opt.timestep)

    @property
    def time_s(self) -> float:
        """Simulated time since construction (a reset does not rewind it)."""
        return float(self.data.time)

    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(self._cameras)

    @property
    def torque_enabled(self) -> bool:
        return self._torque_enabled

    # --- episode -------------------------------------------------------------------------
    def reset(self, seed: int | None = None, randomize_object: bool = True,
              randomize_arm: bool = True) -> ResetResult:
        """Start an episode: arm at home (plus uniform noise), cube at a seeded random pose.

        The same seed gives the same start state. ``seed=None`` draws a fresh seed (returned).
        ``randomize_object=False`` puts the cube at the centre of its region, yaw 0.
        """
        if seed is None:
            seed = int(np.random.SeedSequence().entropy) % MAX_SEED
        if not 0 <= int(seed) <= MAX_SEED:
            raise ValueError(f'seed must be in [0, 2**63 - 1], got {seed}')
        seed = int(seed)
        arm_rng, object_rng = (np.random.default_rng(s)
                               for s in np.random.SeedSequence(seed).spawn(2))
        params = self.params
        mujoco = self._mujoco
        elapsed_s = self.data.time
        mujoco.mj_resetData(self.model, self.data)
        self.data.time = elapsed_s  # simulated time never runs backwards (it drives /clock)
        home = np.array(params.home_joint_positions_rad, dtype=float)
        noise = arm_rng.uniform(-1.0, 1.0, len(home)) * params.home_randomization_rad
        noise[-1] = 0.0
        joints = home + noise if randomize_arm else home
        joints = np.clip(joints, self.lower_limits_rad, self.upper_limits_rad)
        self.data.qpos[self._qpos_index] = joints
        self.data.ctrl[self._actuator_index] = joints
        self._settle_setpoints()

        draws = object_rng.uniform(0.0, 1.0, 3) if randomize_object else np.full(3, 0.5)
        low = np.array([params.cube_x_range_m[0], params.cube_y_range_m[0],
                        params.cube_yaw_range_rad[0]])
        high = np.array([params.cube_x_range_m[1], params.cube_y_range_m[1],
                         params.cube_yaw_range_rad[1]])
        x, y, yaw = low + draws * (high - low)
        position = np.array([x, y, params.cube_size_m / 2])
        quaternion = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
        self.data.qpos[self._cube_qpos:self._cube_qpos + 3] = position
        self.data.qpos[self._cube_qpos + 3:self._cube_qpos + 7] = quaternion
        mujoco.mj_forward(self.model, self.data)
        self.episode_seed = seed
        return ResetResult(seed, position, quaternion, joints.copy())

    # --- control -------------------------------------------------------------------------
    def set_targets(self, targets_rad) -> np.ndarray:
        """Set the six servo targets (clamped to the joint ranges); return what was applied."""
        targets = np.asarray(targets_rad, dtype=float)
        if targets.shape != (len(JOINT_NAMES),) or not np.all(np.isfinite(targets)):
            raise ValueError(f'expected {len(JOINT_NAMES)} finite joint targets, got {targets}')
        targets = np.clip(targets, self.lower_limits_rad, self.upper_limits_rad)
        self.data.ctrl[self._actuator_index] = targets
        return targets

    def targets(self) -> np.ndarray:
        return self.data.ctrl[self._actuator_index].copy()

    def step(self, targets_rad=None, duration_s: float | None = None) -> None:
        """Advance the physics by ``duration_s`` (default one time step), rounded to steps.

        ``targets_rad`` (optional) sets the servo targets first; they then hold.
        """
        if targets_rad is not None:
            self.set_targets(targets_rad)
        steps = 1 if duration_s is None else max(1, int(round(duration_s / self.timestep_s)))
        self._mujoco.mj_step(self.model, self.data, nstep=steps)

    def set_torque(self, enabled: bool) -> None:
        """Torque off: the servos produce no force (the arm falls, as on the real robot).

        Torque on: the servos hold where the arm is (targets and setpoints = the present
        positions), as the real backend writes Goal_Position = present before enabling.
        """
        flag = self._mujoco.mjtDisableBit.mjDSBL_ACTUATION
        if enabled:
            if not self._torque_enabled:
                self.data.ctrl[self._actuator_index] = np.clip(
                    self.joint_positions(), self.lower_limits_rad, self.upper_limits_rad)
                self._settle_setpoints()
            self.model.opt.disableflags &= ~int(flag)
        else:
            self.model.opt.disableflags |= int(flag)
        self._torque_enabled = bool(enabled)

    def _settle_setpoints(self) -> None:
        """Servo setpoints = the current targets (no lag left to play out)."""
        self.data.act[self._setpoint_index] = \
            self.data.ctrl[self._actuator_index[self._setpoint_joints]]

    # --- state ---------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos_index].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel_index].copy()

    def joint_efforts(self) -> np.ndarray:
        """Servo torques (N·m); zero while the torque is off."""
        return self.data.actuator_force[self._actuator_index].copy()

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """TCP (``gripper_frame_link``) position and quaternion (w, x, y, z)."""
        quaternion = np.zeros(4)
        self._mujoco.mju_mat2Quat(quaternion, self.data.site_xmat[self._tcp_site])
        return self.data.site_xpos[self._tcp_site].copy(), quaternion

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        start = self._cube_qpos
        return self.data.qpos[start:start + 3].copy(), self.data.qpos[start + 3:start + 7].copy()

    def object_grasped(self) -> bool:
        """True when the cube touches both the fixed and the moving jaw."""
        data, geom_body = self.data, self.model.geom_bodyid
        touching = set()
        for contact in data.contact[:data.ncon]:
            pair = (contact.geom1, contact.geom2)
            if self._cube_geom in pair:
                other = pair[1] if pair[0] == self._cube_geom else pair[0]
                touching.add(int(geom_body[other]))
        return {self._fixed_jaw_body, self._moving_jaw_body} <= touching

    def ground_truth(self) -> GroundTruth:
        mujoco = self._mujoco
        position, quaternion = self.object_pose()
        velocity = np.zeros(6)
        mujoco.mj_objectVelocity(self.model, self.data, mujoco.mjtObj.mjOBJ_BODY,
                                 self._cube_body, velocity, 0)
        rotation = self.data.xmat[self._cube_body].reshape(3, 3)
        half = self.params.cube_size_m / 2
        height = float(position[2] - half * np.abs(rotation[2]).sum())
        tcp_position, tcp_quaternion = self.tcp_pose()
        return GroundTruth(
            time_s=self.time_s, object_position_m=position, object_quaternion_wxyz=quaternion,
            object_linear_velocity_m_s=velocity[3:], object_angular_velocity_rad_s=velocity[:3],
            tcp_position_m=tcp_position, tcp_quaternion_wxyz=tcp_quaternion,
            object_height_m=height, object_grasped=self.object_grasped(),
            success=height >= self.params.success_height_m, episode_seed=self.episode_seed)

    # --- cameras -------------------------------------------------------------------------
    def camera_intrinsics(self, camera: str) -> np.ndarray:
        """Pinhole matrix K (3, 3) of a rendered camera (pixels)."""
        width, height = self.params.image_width, self.params.image_height
        fovy = np.deg2rad(self.model.cam_fovy[self._camera_id(camera)])
        focal = height / 2 / np.tan(fovy / 2)
        return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])

    def render(self, camera: str) -> np.ndarray:
        """RGB image (height, width, 3) uint8 from ``camera`` ('front' or 'wrist')."""
        camera_id = self._camera_id(camera)
        if self._renderer is None:
            self._renderer = self._make_renderer()
        self._renderer.update_scene(self.data, camera_id)
        return self._renderer.render().copy()

    def _camera_id(self, camera: str) -> int:
        if camera not in self._cameras:
            raise ValueError(f'unknown camera {camera!r}; this simulation renders '
                             f'{sorted(self._cameras)}')
        return self._cameras[camera]

    def _make_renderer(self):
        mujoco = self._mujoco
        renderer = mujoco.Renderer(self.model, self.params.image_height, self.params.image_width)
        flags = renderer.scene.flags
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX):
            flags[flag] = False
        return renderer

    def close(self) -> None:
        """Free the renderer (its OpenGL context). Idempotent."""
        if self._renderer is not None:
            renderer, self._renderer = self._renderer, None
            renderer.close()

    def __enter__(self) -> 'So101Sim':
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
