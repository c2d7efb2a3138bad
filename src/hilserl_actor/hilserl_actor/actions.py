"""Where each step's action comes from, and its normalised form in the transition (ROS-free).

The actor asks an ``ActionSelector`` for one ``StepAction`` per control step. The selector
chooses between *action sources* by mode:

- ``demo``: the human's (or the oracle's) latest command when there is a fresh one, a zero
  action otherwise;
- ``train`` (a later issue): the human's command while an intervention is active, the policy's
  otherwise; ``eval``: the policy's.

A policy source only has to implement ``ActionSource.act`` (``PolicyActionSource`` comes with
the policy-driven modes). Every action is stored in the transition in normalised units: the xyz
displacement divided by ``action_scale_m`` and clipped to [-1, 1], then (discrete gripper) the
gripper command 0 close / 1 stay / 2 open. What is sent to the safety filter is exactly the
stored action: the clipped displacement in metres, or the leader arm's joint targets.

Leader-arm (joint-space) commands are turned into the same representation, as LeRobot does
for leader interventions: the xyz action is FK(commanded arm joints) - FK(measured arm joints)
over ``action_scale_m``, and the gripper target is thresholded into close / stay / open.
"""
import dataclasses
import enum
import math

import numpy as np

from hilserl_actor.teleop.types import Gripper
from hilserl_learner.observation import GRIPPER_CLOSE, GRIPPER_OPEN, GRIPPER_STAY, Observation

DISCRETE_GRIPPER = {Gripper.CLOSE: GRIPPER_CLOSE, Gripper.STAY: GRIPPER_STAY,
                    Gripper.OPEN: GRIPPER_OPEN}
"""Command (EndEffectorCommand.GRIPPER_*) -> the transition's discrete gripper value."""


class Source(enum.IntEnum):
    """Who produced a command (EndEffectorCommand.SOURCE_* / JointCommand.SOURCE_*)."""

    POLICY = 0
    HUMAN = 1
    SCRIPT = 2


@dataclasses.dataclass(frozen=True)
class HumanEeCommand:
    """The latest /hilserl/human/ee_command."""

    delta_m: np.ndarray
    gripper: Gripper
    received_s: float
    source: Source = Source.HUMAN


@dataclasses.dataclass(frozen=True)
class HumanJointCommand:
    """The latest /hilserl/human/joint_command (leader arm)."""

    names: tuple[str, ...]
    positions_rad: np.ndarray
    received_s: float


@dataclasses.dataclass(frozen=True)
class StepAction:
    """One step's action: what is stored in the transition and what is sent."""

    action: np.ndarray
    """Normalised: xyz in [-1, 1] (+ the discrete gripper value)."""
    gripper: Gripper
    source: Source
    is_intervention: bool
    origin: str
    """'human_ee', 'human_joint', 'zero' or 'policy'."""
    delta_m: np.ndarray | None = None
    """EE command to send: the clipped displacement, metres (None with joint_targets)."""
    joint_targets: tuple[tuple[str, ...], np.ndarray] | None = None
    """Joint command to send (names, rad): the leader arm's targets, unchanged."""


@dataclasses.dataclass(frozen=True)
class ActionSettings:
    action_scale_m: float = 0.025
    discrete_gripper: bool = True
    human_command_timeout_s: float = 0.3
    joint_gripper_close_below_rad: float = 0.3
    joint_gripper_open_above_rad: float = 0.9


def ee_step_action(delta_m, gripper: Gripper, settings: ActionSettings, source: Source,
                   is_intervention: bool, origin: str) -> StepAction:
    """A StepAction from a displacement (m): normalised, clipped, and the clipped delta."""
    delta = np.asarray(delta_m, dtype=float)
    if delta.shape != (3,) or not np.all(np.isfinite(delta)):
        raise ValueError(f'delta_m must be 3 finite numbers, got {delta}')
    xyz = np.clip(delta / settings.action_scale_m, -1.0, 1.0)
    action = xyz
    if settings.discrete_gripper:
        action = np.append(xyz, DISCRETE_GRIPPER[Gripper(gripper)])
    return StepAction(action.astype(np.float32), Gripper(gripper), source, is_intervention,
                      origin, delta_m=xyz * settings.action_scale_m)


def joint_step_action(command: HumanJointCommand, joint_names, measured_rad, kinematics,
                      settings: ActionSettings) -> StepAction:
    """A leader-arm joint command as a StepAction: EE-delta action from FK, gripper by
    thresholds; the joint targets themselves are sent unchanged.
    """
    measured = np.asarray(measured_rad, dtype=float)
    target = measured.copy()
    index = {name: i for i, name in enumerate(joint_names)}
    for name, value in zip(command.names, command.positions_rad):
        target[index[name]] = float(value)
    delta = kinematics.fk(target[:5]) - kinematics.fk(measured[:5])
    gripper = Gripper.STAY
    gripper_name = joint_names[-1]
    if gripper_name in command.names:
        value = float(command.positions_rad[list(command.names).index(gripper_name)])
        if value < settings.joint_gripper_close_below_rad:
            gripper = Gripper.CLOSE
        elif value > settings.joint_gripper_open_above_rad:
            gripper = Gripper.OPEN
    step = ee_step_action(delta, gripper, settings, Source.HUMAN, True, 'human_joint')
    return dataclasses.replace(step, delta_m=None, joint_targets=(
        tuple(command.names), np.asarray(command.positions_rad, dtype=float)))


class ActionSource:
    """Something that proposes an action for an observation (human, oracle, policy)."""

    def act(self, now_s: float, observation: Observation, context: dict) -> StepAction | None:
        """The action for this step, or None when this source has none now."""
        raise NotImplementedError


class HumanActionSource(ActionSource):
    """The human's fresh command (within ``human_command_timeout_s``): the leader arm's joint
    targets while they stream, else the EE deltas (gamepad, keyboard, oracle).

    The leader arm takes precedence: with a leader and a gamepad, the pad's takeover button
    says *when* the human drives (and publishes idle-stick EE commands meanwhile), the leader
    says *how*; alternating between the two streams would jerk the arm.
    """

    def __init__(self, settings: ActionSettings, joint_names, kinematics):
        self.settings = settings
        self.joint_names = tuple(joint_names)
        self.kinematics = kinematics
        self.ee: HumanEeCommand | None = None
        self.joint: HumanJointCommand | None = None

    def set_ee(self, command: HumanEeCommand) -> None:
        delta = np.asarray(command.delta_m, dtype=float)
        if delta.shape != (3,) or not np.all(np.isfinite(delta)):
            raise ValueError(f'human EE command: delta_m must be 3 finite numbers, got {delta}')
        self.ee = command

    def set_joint(self, command: HumanJointCommand) -> None:
        names, positions = tuple(command.names), np.asarray(command.positions_rad, float)
        unknown = [n for n in names if n not in self.joint_names]
        if not names or positions.shape != (len(names),) or unknown or len(set(names)) != len(
                names):
            raise ValueError(f'human joint command: names {names} / {positions.size} positions '
                             f'(known joints: {self.joint_names})')
        if not np.all(np.isfinite(positions)):
            raise ValueError('human joint command: positions must be finite')
        self.joint = command

    def fresh(self, now_s: float):
        timeout = self.settings.human_command_timeout_s
        for command in (self.joint, self.ee):
            if command is not None and now_s - command.received_s <= timeout:
                return command
        return None

    def act(self, now_s, observation, context) -> StepAction | None:
        command = self.fresh(now_s)
        if command is None:
            return None
        if isinstance(command, HumanJointCommand):
            return joint_step_action(command, self.joint_names, context['joints_rad'],
                                     self.kinematics, self.settings)
        return ee_step_action(command.delta_m, command.gripper, self.settings, command.source,
                              True, 'human_ee')


class ZeroActionSource(ActionSource):
    """No motion, gripper stays (demo mode without a human command)."""

    def __init__(self, settings: ActionSettings):
        self.settings = settings

    def act(self, now_s, observation, context) -> StepAction:
        return ee_step_action(np.zeros(3), Gripper.STAY, self.settings, Source.SCRIPT, False,
                              'zero')


class ActionSelector:
    """Picks each step's action by mode (module docstring)."""

    def __init__(self, mode: str, human: HumanActionSource, fallback: ActionSource):
        if mode not in ('demo', 'train', 'eval'):
            raise ValueError(f'mode: unknown {mode!r}')
        self.mode = mode
        self.human = human
        self.fallback = fallback
        """The zero source in demo mode; the policy source in train / eval."""

    def select(self, now_s: float, observation: Observation, intervention_active: bool,
               context: dict) -> StepAction:
        if self.mode == 'demo' or self.mode == 'train' and intervention_active:
            action = self.human.act(now_s, observation, context)
            if action is not None:
                return action
        return self.fallback.act(now_s, observation, context)


class InterventionTracker:
    """Whether a human holds the arm: any intervention source active, and fresh.

    Several nodes publish /hilserl/intervention (gamepad, keyboard, leader arm, oracle), each
    with its own source id; a state not republished within ``timeout_s`` counts as inactive.
    """

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._states: dict[int, tuple[bool, float]] = {}

    def update(self, source: int, active: bool, received_s: float) -> None:
        self._states[int(source)] = (bool(active), received_s)

    def active(self, now_s: float) -> bool:
        return any(active and now_s - received <= self.timeout_s
                   for active, received in self._states.values())


class GripperPenalty:
    """Transition.gripper_penalty: ``penalty`` when a command changes the gripper state."""

    def __init__(self, penalty: float):
        if not math.isfinite(penalty) or penalty > 0:
            raise ValueError(f'gripper_penalty must be <= 0, got {penalty}')
        self.penalty = penalty
        self.reset()

    def reset(self) -> None:
        """A new episode: the reset leaves the jaws open."""
        self.closed = False

    def step(self, gripper: Gripper) -> float:
        if gripper == Gripper.CLOSE and not self.closed:
            self.closed = True
            return self.penalty
        if gripper == Gripper.OPEN and self.closed:
            self.closed = False
            return self.penalty
        return 0.0
