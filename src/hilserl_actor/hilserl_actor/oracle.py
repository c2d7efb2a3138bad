"""The scripted oracle (ROS-free): a top-down pick-and-lift from the simulator's ground truth,
and the decision when to take over from a policy, as the HIL-SERL article asks a person to.

The oracle acts only through what the actor accepts from a human: end-effector xyz deltas in
the base frame (metres per control step) and a discrete gripper command. The safety filter
turns them into joints with the approach pitch and wrist roll held, so the oracle never turns
the jaws: the parallel jaws square a yawed cube up while they close.

``PickController`` is reactive: each step it looks at the scene (cube pose, TCP pose, whether
the jaws hold the cube, the gripper angle) and picks the phase from it, so it can take over at
any moment of an episode, also after a policy left the arm somewhere odd:

- *retreat*: the jaws are closed on nothing (a missed grasp, or a policy closed them): open
  them and rise to the hover height;
- *hover*: go to the point ``hover_height_m`` above the cube (rising first when low and off to
  the side, so the jaws never sweep into the cube);
- *descend*: straight down onto the cube once above it. The fixed jaw passes the cube's top
  face only while it is clear of the cube (a yawed cube is wider along the jaw axis, by up to
  sqrt(2) at 45 degrees: the grasp point keeps that much more distance from the fixed pad);
  otherwise it holds its height and aligns first (a jaw pressing on the cube holds the servos
  at their torque limit until the safety filter's effort trip ends the episode);
- *close*: hold still and close for ``close_steps`` steps;
- *lift*: with the cube between the jaws, rise to ``lift_height_m``;
- *hold*: keep it there (the episode ends on success).

Geometry is reused from ``so101_driver.sim.scripted`` (the fingertip pads' place in the TCP
frame), so the grasp point is the point between the pads, as for the in-process picker.

``InterventionDecider`` watches a policy's progress and takes over for a few steps when it
drifts away from the goal or stalls, less often as training goes on (see its docstring).
"""
import dataclasses
import enum
import math

import numpy as np

from hilserl_actor.teleop.types import Gripper
from so101_driver.sim.scripted import FIXED_PAD_FACE_IN_TCP_M, PAD_CENTRE_ALONG_APPROACH_M


class Phase(enum.Enum):
    RETREAT = 'retreat'
    HOVER = 'hover'
    DESCEND = 'descend'
    CLOSE = 'close'
    LIFT = 'lift'
    HOLD = 'hold'


@dataclasses.dataclass(frozen=True)
class Scene:
    """What the oracle sees of one moment (simulator ground truth + the gripper joint)."""

    cube_position_m: np.ndarray
    """Cube centre, base frame (= the simulation's world frame)."""
    tcp_position_m: np.ndarray
    tcp_quaternion_wxyz: np.ndarray
    object_grasped: bool
    """Both jaws touch the cube."""
    gripper_rad: float
    """Measured gripper joint angle (from /joint_states)."""
    success: bool = False
    cube_quaternion_wxyz: np.ndarray | None = None
    """Cube orientation, base frame; None: taken as square to the jaws."""


@dataclasses.dataclass(frozen=True)
class PickConfig:
    """Tuning of ``PickController``; lengths in metres of the grasp point."""

    cube_size_m: float = 0.025
    hover_height_m: float = 0.05
    """Grasp point above the cube centre before descending."""
    lift_height_m: float = 0.085
    """Grasp point height above the table when lifted (success: cube bottom 5 cm up)."""
    clearance_m: float = 0.004
    """Gap between the fixed jaw's pad and the cube (its extent along the jaw axis) before
    closing."""
    jaw_clear_height_m: float = 0.009
    """Grasp point height above the cube's top face below which the descent goes on only
    while the fixed jaw is clear of the cube (the jaw tips reach about 5 mm below the grasp
    point)."""
    max_step_m: float = 0.02
    """Largest displacement per step in free space."""
    careful_step_m: float = 0.01
    """Largest displacement per step while descending and lifting."""
    align_tolerance_m: float = 0.008
    """Horizontal distance to the cube below which the descent starts."""
    grasp_tolerance_m: float = 0.006
    """Distance of the grasp point to the cube centre at which the jaws close."""
    close_steps: int = 5
    """Steps spent closing before lifting."""
    open_gripper_rad: float = 0.6
    """Measured gripper angle above which the jaws count as open."""
    descend_gripper_rad: float = 1.0
    """Measured gripper angle the jaws must have reached before a descent starts (they open
    while hovering; half-open jaws descending onto the cube push it instead of closing around
    it)."""
    noise_std_m: float = 0.0
    """Standard deviation of the Gaussian noise added to every xyz delta (per axis)."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f'{field.name}: must be finite and >= 0, got {value!r}')
        if self.max_step_m <= 0 or self.careful_step_m <= 0:
            raise ValueError('max_step_m and careful_step_m must be > 0')


@dataclasses.dataclass(frozen=True)
class OracleCommand:
    """One step's command: TCP displacement (m, base frame) and the gripper command."""

    delta_m: np.ndarray
    gripper: Gripper
    phase: Phase


def rotation_from_quaternion(quaternion_wxyz) -> np.ndarray:
    """3x3 rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = np.asarray(quaternion_wxyz, dtype=float) / np.linalg.norm(quaternion_wxyz)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


class PickController:
    """Reactive top-down pick-and-lift through end-effector deltas (module docstring)."""

    def __init__(self, config: PickConfig | None = None, seed: int | None = None):
        self.config = config or PickConfig()
        self._rng = np.random.default_rng(seed)
        self.reset()

    def reset(self) -> None:
        """Forget the current grasp attempt (a new episode)."""
        self._closing = 0
        self.phase = Phase.HOVER

    def cube_extent_along_jaws(self, scene: Scene) -> float:
        """Half the cube's width along the jaw axis (its support function: s/2 when square to
        the jaws, s/sqrt(2) at 45 degrees of yaw).
        """
        half = self.config.cube_size_m / 2
        if scene.cube_quaternion_wxyz is None:
            return half
        axes = rotation_from_quaternion(scene.cube_quaternion_wxyz)
        return half * float(np.abs(np.r_[jaw_axis(scene), 0.0] @ axes).sum())

    def grasp_point(self, scene: Scene) -> np.ndarray:
        """Where the cube centre sits when the jaws start closing, for the TCP pose of
        ``scene``: ``clearance_m`` from the fixed pad plus the cube's extent along the jaws.
        """
        offset = np.array([-(FIXED_PAD_FACE_IN_TCP_M + self.cube_extent_along_jaws(scene)
                             + self.config.clearance_m), 0.0, PAD_CENTRE_ALONG_APPROACH_M])
        rotation = rotation_from_quaternion(scene.tcp_quaternion_wxyz)
        return np.asarray(scene.tcp_position_m, dtype=float) + rotation @ offset

    def goal(self, scene: Scene) -> np.ndarray:
        """The point the grasp point should finally reach (cube lifted), for progress checks."""
        cube = np.asarray(scene.cube_position_m, dtype=float)
        return np.array([cube[0], cube[1], self.config.lift_height_m])

    def act(self, scene: Scene, pending_delta_m=None) -> OracleCommand:
        """The next command. ``pending_delta_m``: a displacement already sent but not yet
        visible in ``scene`` (the actor's command of this step); the oracle plans from where it
        will take the arm (a Smith predictor), so a one-step delay does not make it overshoot.
        """
        config = self.config
        cube = np.asarray(scene.cube_position_m, dtype=float)
        point = self.grasp_point(scene)
        if pending_delta_m is not None:
            point = point + np.asarray(pending_delta_m, dtype=float)
        open_jaws = scene.gripper_rad > config.open_gripper_rad
        horizontal = float(np.linalg.norm(cube[:2] - point[:2]))
        hover_z = cube[2] + config.hover_height_m
        if 0 < self._closing < config.close_steps:
            self._closing += 1
            return self._command(Phase.CLOSE, np.zeros(3), Gripper.CLOSE)
        if scene.object_grasped and (self._closing or not open_jaws):
            self._closing = config.close_steps
            target = np.array([point[0], point[1], config.lift_height_m])
            done = point[2] >= config.lift_height_m - config.grasp_tolerance_m
            return self._move(Phase.HOLD if done else Phase.LIFT, point, target,
                              config.careful_step_m, Gripper.CLOSE)
        self._closing = 0  # closed on nothing (a missed grasp): open and start over from above
        if not open_jaws:
            target = np.array([point[0], point[1], max(point[2], hover_z)])
            return self._move(Phase.RETREAT, point, target, config.max_step_m, Gripper.OPEN)
        align = config.align_tolerance_m * (2.0 if self.phase is Phase.DESCEND else 1.0)
        if horizontal < align:  # above the cube (hysteresis: noise does not undo a descent)
            if self.phase is not Phase.DESCEND and scene.gripper_rad < config.descend_gripper_rad:
                return self._command(Phase.HOVER, np.zeros(3), Gripper.OPEN)  # open up first
            if float(np.linalg.norm(cube - point)) < config.grasp_tolerance_m:
                self._closing = 1
                return self._command(Phase.CLOSE, np.zeros(3), Gripper.CLOSE)
            target = cube.copy()
            if self._fixed_jaw_over_cube(scene, point, cube):
                # Align at the height where the jaw tips clear the cube's top face.
                clear_z = cube[2] + config.cube_size_m / 2 + config.jaw_clear_height_m
                target[2] = min(point[2], clear_z)
            return self._move(Phase.DESCEND, point, target, config.careful_step_m, Gripper.OPEN)
        target = np.array([cube[0], cube[1], hover_z])
        if point[2] < hover_z - config.align_tolerance_m and horizontal > 2 * config.max_step_m:
            target = np.array([point[0], point[1], hover_z])  # rise first, then go over
        return self._move(Phase.HOVER, point, target, config.max_step_m, Gripper.OPEN)

    def _fixed_jaw_over_cube(self, scene: Scene, point, cube) -> bool:
        """Whether the fixed jaw has less than half ``clearance_m`` to the cube along the jaw
        axis (the cube is off the grasp point towards it).
        """
        toward_fixed_jaw = float((point - cube) @ np.r_[jaw_axis(scene), 0.0])
        return toward_fixed_jaw > self.config.clearance_m / 2

    def _move(self, phase, point, target, max_step, gripper) -> OracleCommand:
        error = target - point
        distance = float(np.linalg.norm(error))
        delta = error if distance <= max_step else error * (max_step / distance)
        return self._command(phase, delta, gripper)

    def _command(self, phase, delta, gripper) -> OracleCommand:
        self.phase = phase
        if self.config.noise_std_m > 0:
            delta = delta + self._rng.normal(0.0, self.config.noise_std_m, 3)
        return OracleCommand(np.asarray(delta, dtype=float), gripper, phase)


def jaw_axis(scene: Scene) -> np.ndarray:
    """Horizontal unit vector from the fixed jaw towards the grasp point, base frame."""
    jaw = -rotation_from_quaternion(scene.tcp_quaternion_wxyz)[:2, 0]
    norm = float(np.linalg.norm(jaw))
    return jaw / norm if norm > 1e-6 else np.array([1.0, 0.0])


def task_distance(controller: PickController, scene: Scene) -> float:
    """How far the task is from done, in metres of grasp-point travel (falls as it goes).

    Before the grasp: the grasp point's distance to the cube plus the lift still to do; with
    the cube held: the lift still to do.
    """
    cube = np.asarray(scene.cube_position_m, dtype=float)
    lift = max(controller.config.lift_height_m - cube[2], 0.0)
    if scene.object_grasped:
        return lift
    return float(np.linalg.norm(controller.grasp_point(scene) - cube)) + lift


@dataclasses.dataclass(frozen=True)
class TakeoverConfig:
    """When ``InterventionDecider`` takes over (see ``OracleParams`` for each field)."""

    drift_window_steps: int = 5
    drift_threshold_m: float = 0.02
    heading_steps: int = 4
    heading_cosine: float = -0.3
    stall_steps: int = 20
    progress_epsilon_m: float = 0.005
    takeover_steps: int = 10
    cooldown_steps: int = 10
    probability_start: float = 1.0
    probability_end: float = 0.1
    decay_episodes: float = 50.0

    def __post_init__(self):
        for name in ('drift_window_steps', 'heading_steps', 'stall_steps', 'takeover_steps'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name}: must be >= 1')
        if self.cooldown_steps < 0 or self.decay_episodes <= 0:
            raise ValueError('cooldown_steps must be >= 0 and decay_episodes > 0')
        for name in ('probability_start', 'probability_end'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'{name}: must be in [0, 1]')


@dataclasses.dataclass(frozen=True)
class Decision:
    """The decider's answer for one step."""

    intervene: bool
    started: bool = False
    """A takeover starts at this step."""
    reason: str = ''
    """drift, heading, stall (when triggered), or why a trigger was declined."""


class InterventionDecider:
    """When to take over from the policy, as the HIL-SERL article asks of a person.

    Every step it gets the task distance (``task_distance``), the policy's last commanded
    displacement (or None) and the direction the oracle would move. A trigger is:

    - *drift*: the distance grew by more than ``drift_threshold_m`` over
      ``drift_window_steps`` steps (the TCP moves away from the cube, or drops it);
    - *heading*: ``heading_steps`` policy commands in a row point away from the oracle's
      direction (cosine below ``heading_cosine``), before the distance shows it;
    - *stall*: no new best distance (by ``progress_epsilon_m``) for ``stall_steps`` steps.

    On a trigger it takes over with probability p(episode) = end + (start - end) *
    exp(-episode / decay_episodes), for ``takeover_steps`` steps (brief), then watches again
    after ``cooldown_steps``; a declined trigger also waits ``cooldown_steps``, so the chance
    per stuck stretch, not per step, is p. Histories restart after each takeover, cooldown
    and episode.
    """

    def __init__(self, config: TakeoverConfig | None = None, seed: int | None = None):
        self.config = config or TakeoverConfig()
        self._rng = np.random.default_rng(seed)
        self.episode = 0
        self.takeovers = 0
        self._restart()
        self._remaining = 0
        self._cooldown = 0

    def probability(self, episode: int | None = None) -> float:
        config = self.config
        episode = self.episode if episode is None else episode
        return config.probability_end + (config.probability_start - config.probability_end) \
            * math.exp(-episode / config.decay_episodes)

    @property
    def intervening(self) -> bool:
        return self._remaining > 0

    def new_episode(self) -> None:
        """The episode ended: count it, release any takeover, start over."""
        self.episode += 1
        self._remaining = 0
        self._cooldown = 0
        self._restart()

    def _restart(self) -> None:
        self._distances: list[float] = []
        self._best = math.inf
        self._since_best = 0
        self._away = 0

    def step(self, distance: float, policy_delta=None, oracle_delta=None) -> Decision:
        config = self.config
        if self._remaining > 0:
            self._remaining -= 1
            if self._remaining == 0:
                self._cooldown = config.cooldown_steps
                self._restart()
            return Decision(True)
        if self._cooldown > 0:
            self._cooldown -= 1
            return Decision(False)
        reason = self._trigger(distance, policy_delta, oracle_delta)
        if not reason:
            return Decision(False)
        self._restart()
        if self._rng.random() >= self.probability():
            self._cooldown = config.cooldown_steps
            return Decision(False, reason=f'{reason} (declined, p={self.probability():.2f})')
        self.takeovers += 1
        self._remaining = config.takeover_steps - 1
        if self._remaining == 0:
            self._cooldown = config.cooldown_steps
        return Decision(True, started=True, reason=reason)

    def _trigger(self, distance, policy_delta, oracle_delta) -> str:
        config = self.config
        self._distances.append(float(distance))
        if distance < self._best - config.progress_epsilon_m:
            self._best, self._since_best = float(distance), 0
        else:
            self._since_best += 1
        window = config.drift_window_steps
        if len(self._distances) > window and (
                distance - self._distances[-1 - window] > config.drift_threshold_m):
            return 'drift'
        if policy_delta is not None and oracle_delta is not None:
            policy, oracle = np.asarray(policy_delta, float), np.asarray(oracle_delta, float)
            norms = np.linalg.norm(policy) * np.linalg.norm(oracle)
            if norms > 1e-12 and float(policy @ oracle) / norms < config.heading_cosine:
                self._away += 1
            else:
                self._away = 0
            if self._away >= config.heading_steps:
                return 'heading'
        if self._since_best >= config.stall_steps:
            return 'stall'
        return ''
