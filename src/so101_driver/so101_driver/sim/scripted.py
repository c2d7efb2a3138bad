"""A scripted top-down pick-and-lift for the simulated SO-101 (no ROS).

It serves as an oracle, a source of demonstrations and the physical check that grasping works
in the simulation. The policy uses ``So101Kinematics.ik``, which holds the approach pitch and
wrist_roll: the gripper points down (tilted 0.25 rad forward, because wrist_flex stops at 95
degrees and a strictly vertical gripper cannot rise above about 6 cm at the far end of the
workspace), and wrist_roll turns the jaws onto a pair of cube faces. Moves go in straight lines
of the *grasp point* (the point between the fingertip pads where the cube centre should end
up) at a bounded speed.

    sim = So101Sim()
    result = run_scripted_episode(sim, seed=4)   # EpisodeResult(success=True, ...)
"""
import dataclasses
import enum
import math

import numpy as np

from so101_driver.kinematics import So101Kinematics

GRASP_APPROACH_PITCH_RAD = math.pi / 2 - 0.25
"""Approach pitch of the scripted grasp (pi/2 = straight down)."""
FIXED_PAD_FACE_IN_TCP_M = 0.0064
"""Inner face of the fixed jaw's pad, along the jaw axis from the TCP (official model)."""
PAD_CENTRE_ALONG_APPROACH_M = -0.0009
"""Pad centre along the approach axis from the TCP (slightly behind it)."""
GRIPPER_OPEN_RAD = 0.7
GRIPPER_CLOSED_RAD = -0.1
"""Closing target below the cube's width: the servo then squeezes with its torque limit."""


class Phase(enum.Enum):
    HOVER = 'hover'
    DESCEND = 'descend'
    CLOSE = 'close'
    LIFT = 'lift'
    HOLD = 'hold'


@dataclasses.dataclass(frozen=True)
class PickerConfig:
    """Tuning of ``TopDownPicker``."""

    hover_height_m: float = 0.05
    """Grasp point height above the cube centre before descending."""
    lift_height_m: float = 0.075
    """Grasp point height above the cube's start centre after lifting."""
    clearance_m: float = 0.004
    """Gap between the fixed jaw's pad and the cube face before closing."""
    max_speed_m_s: float = 0.25
    """Speed limit of the grasp point in free space."""
    careful_speed_m_s: float = 0.08
    """Speed limit while descending onto and lifting the cube."""
    close_duration_s: float = 0.5
    tolerance_m: float = 0.004
    """Distance to a phase's target at which the next phase starts."""
    phase_timeout_s: float = 4.0
    """Longest time spent in one moving phase (a stuck move does not stall an episode)."""


class TopDownPicker:
    """Joint-space targets for a top-down pick-and-lift of a cube, one control step at a time.

    Call ``reset(joint_positions)`` at the start of an episode and ``act(cube_position,
    cube_quaternion, dt)`` every control step; it returns six joint targets (driver order).
    """

    def __init__(self, cube_size_m: float, kinematics: So101Kinematics | None = None,
                 config: PickerConfig | None = None):
        self.kinematics = kinematics or So101Kinematics()
        self.config = config or PickerConfig()
        self.cube_size_m = cube_size_m
        self._grasp_offset = np.array(
            [-(FIXED_PAD_FACE_IN_TCP_M + cube_size_m / 2 + self.config.clearance_m), 0.0,
             PAD_CENTRE_ALONG_APPROACH_M])
        self.phase = Phase.HOVER
        self._arm = np.zeros(5)
        self._gripper = GRIPPER_OPEN_RAD
        self._phase_time_s = 0.0
        self._start_centre = None

    @property
    def done(self) -> bool:
        return self.phase is Phase.HOLD

    def reset(self, joint_positions) -> None:
        joints = np.asarray(joint_positions, dtype=float)
        self._arm = joints[:5].copy()
        self._gripper = GRIPPER_OPEN_RAD
        self.phase = Phase.HOVER
        self._phase_time_s = 0.0
        self._start_centre = None

    def grasp_point(self, arm_positions) -> np.ndarray:
        """Where the cube centre sits when grasped, for the given arm angles."""
        position, rotation = self.kinematics.fk_pose(arm_positions)
        return position + rotation @ self._grasp_offset

    def aligned_roll(self, arm_positions, cube_yaw_rad: float) -> float:
        """wrist_roll that puts the jaw axis on a cube face normal, nearest to the current roll.

        The jaw axis turns one-for-one with wrist_roll about the approach axis, so the roll
        changes by the (quarter-turn wrapped) angle between the jaw axis and the nearest face
        normal.
        """
        _, rotation = self.kinematics.fk_pose(arm_positions)
        jaw = -rotation[:, 0]
        approach = rotation[:, 2]
        normal = np.array([math.cos(cube_yaw_rad), math.sin(cube_yaw_rad), 0.0])
        # Signed angle from the jaw axis to the face normal about the approach axis.
        angle = math.atan2(float(np.cross(jaw, normal) @ approach), float(jaw @ normal))
        delta = (angle + math.pi / 4) % (math.pi / 2) - math.pi / 4
        lower, upper = self.kinematics.lower_limits_rad[4], self.kinematics.upper_limits_rad[4]
        candidates = [arm_positions[4] + delta + k * math.pi / 2 for k in (0, 1, -1, 2, -2)]
        return next(c for c in candidates if lower <= c <= upper)

    def act(self, cube_position, cube_quaternion_wxyz, dt_s: float) -> np.ndarray:
        """Joint targets for the next control step (``dt_s`` long)."""
        cube = np.asarray(cube_position, dtype=float)
        config = self.config
        if self._start_centre is None:
            self._start_centre = cube.copy()
            w, _, _, z = cube_quaternion_wxyz
            self._arm[4] = self.aligned_roll(self._arm, 2 * math.atan2(z, w))
        self._phase_time_s += dt_s
        if self.phase is Phase.CLOSE:
            self._gripper = GRIPPER_CLOSED_RAD
            if self._phase_time_s >= config.close_duration_s:
                self._next_phase()
        elif self.phase in (Phase.HOVER, Phase.DESCEND, Phase.LIFT):
            target = self._phase_target(cube)
            current = self.grasp_point(self._arm)
            error = target - current
            distance = float(np.linalg.norm(error))
            if distance < config.tolerance_m or self._phase_time_s > config.phase_timeout_s:
                self._next_phase()
            else:
                speed = config.max_speed_m_s if self.phase is Phase.HOVER \
                    else config.careful_speed_m_s
                step = min(distance, speed * dt_s)
                self._move_grasp_point(current + error / distance * step)
        return np.r_[self._arm, self._gripper]

    def _phase_target(self, cube: np.ndarray) -> np.ndarray:
        if self.phase is Phase.HOVER:
            return cube + np.array([0.0, 0.0, self.config.hover_height_m])
        if self.phase is Phase.DESCEND:
            return cube
        return self._start_centre + np.array([0.0, 0.0, self.config.lift_height_m])

    def _move_grasp_point(self, target: np.ndarray) -> None:
        arm = self._arm
        for _ in range(2):  # the offset turns with the pan angle: solve, re-aim, solve
            _, rotation = self.kinematics.fk_pose(arm)
            result = self.kinematics.ik(target - rotation @ self._grasp_offset, arm,
                                        approach_pitch=GRASP_APPROACH_PITCH_RAD)
            arm = result.joint_positions
        self._arm = arm

    def _next_phase(self) -> None:
        order = list(Phase)
        self.phase = order[min(order.index(self.phase) + 1, len(order) - 1)]
        self._phase_time_s = 0.0


@dataclasses.dataclass(frozen=True)
class EpisodeResult:
    seed: int
    success: bool
    steps: int
    final_object_height_m: float


def run_scripted_episode(sim, seed: int, control_period_s: float = 0.1, max_steps: int = 80,
                         picker: TopDownPicker | None = None,
                         hold_steps: int = 5) -> EpisodeResult:
    """Reset ``sim`` (a ``So101Sim``) with ``seed`` and run the picker until it has held the
    cube up for ``hold_steps`` steps or ``max_steps`` pass; report success.
    """
    picker = picker or TopDownPicker(sim.params.cube_size_m)
    start = sim.reset(seed=seed)
    picker.reset(start.joint_positions_rad)
    held = steps = 0
    while steps < max_steps and held < hold_steps:
        position, quaternion = sim.object_pose()
        sim.step(picker.act(position, quaternion, control_period_s), control_period_s)
        steps += 1
        held = held + 1 if picker.done else 0
    truth = sim.ground_truth()
    return EpisodeResult(seed, bool(truth.success), steps, truth.object_height_m)


@dataclasses.dataclass
class RenderedEpisode:
    """Camera frames of one scripted episode, with the ground truth's success per frame."""

    seed: int
    images: dict
    """camera -> (T, H, W, 3) uint8, one frame per control step (the first before any move)."""
    success: np.ndarray
    """(T,) bool: the success predicate (cube lifted) when the frame was taken."""
    object_height_m: np.ndarray
    """(T,) float: the cube's bottom above the table top when the frame was taken."""


def render_scripted_episode(sim, seed: int, control_period_s: float = 0.1,
                            max_steps: int = 80, hold_steps: int = 10,
                            picker: TopDownPicker | None = None,
                            cameras=None) -> RenderedEpisode:
    """Like ``run_scripted_episode``, rendering ``cameras`` (default: all) at every control
    step: frames of reaching, grasping, lifting and then ``hold_steps`` of holding the cube up
    (reward-classifier data without ROS).
    """
    cameras = tuple(cameras or sim.camera_names)
    picker = picker or TopDownPicker(sim.params.cube_size_m)
    start = sim.reset(seed=seed)
    picker.reset(start.joint_positions_rad)
    images = {camera: [] for camera in cameras}
    success, heights = [], []
    held = 0
    for _ in range(max_steps + 1):
        for camera in cameras:
            images[camera].append(sim.render(camera))
        truth = sim.ground_truth()
        success.append(bool(truth.success))
        heights.append(float(truth.object_height_m))
        held = held + 1 if success[-1] else 0
        if held > hold_steps:
            break
        position, quaternion = sim.object_pose()
        sim.step(picker.act(position, quaternion, control_period_s), control_period_s)
    return RenderedEpisode(seed, {c: np.stack(v) for c, v in images.items()},
                           np.array(success, bool), np.array(heights))
