"""The core observation and transition types shared by the actor, the learner and the loaders.

ROS-free: ``nodes/conversions.py`` maps ``hilserl_msgs`` to and from these. The actor imports
this module (and ``policy.py``) to build observations and run the policy.

- ``Observation``: ``state`` float32 (S,), ``images`` camera -> uint8 (H, W, 3) RGB,
  ``privileged`` float32 (P,) (empty when not available, e.g. on the real robot).
- ``Transition``: one step (s, a, r, s') with ``terminated`` (no bootstrap) kept apart from
  ``truncated`` (bootstrap from ``next_observation``), ``is_intervention`` and the discrete
  gripper's change penalty.
- ``ObservationSpec``: what the networks were built for; ``validate_transition`` checks a
  transition against it and raises ``InvalidTransitionError`` with a reason tag.
"""
import dataclasses
import math

import numpy as np

from hilserl_learner.errors import InvalidTransitionError

# Gripper command values in action[-1] when the discrete gripper is used (Transition.msg).
GRIPPER_CLOSE = 0
GRIPPER_STAY = 1
GRIPPER_OPEN = 2
NUM_GRIPPER_ACTIONS = 3


@dataclasses.dataclass
class Observation:
    """One observation as the policy and the critic see it."""

    state: np.ndarray
    images: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    privileged: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros(0, np.float32))


@dataclasses.dataclass
class Transition:
    """One environment step as the learner stores it."""

    observation: Observation
    action: np.ndarray
    reward: float
    next_observation: Observation
    terminated: bool
    truncated: bool = False
    is_intervention: bool = False
    gripper_penalty: float = 0.0
    episode_id: int = 0
    step_index: int = 0
    source: str = ''
    """Who produced it (the actor run id from the header's frame_id); keys drop detection."""


@dataclasses.dataclass(frozen=True)
class ObservationSpec:
    """Shapes of observations and actions the networks are built for."""

    state_dim: int
    """Length of ``Observation.state``."""
    action_dim: int
    """Continuous action dimensions (end-effector xyz delta: 3), in [-1, 1]."""
    camera_names: tuple[str, ...] = ()
    """Camera names, in the order the encoder concatenates them."""
    image_size: tuple[int, int] = (128, 128)
    """Image height and width in pixels (after the ROI crop); any size the trunk accepts."""
    privileged_dim: int = 0
    """Length of ``Observation.privileged`` (asymmetric critic); 0 = none."""
    discrete_gripper: bool = False
    """Whether action[-1] is a discrete gripper command (close / stay / open)."""

    def __post_init__(self):
        object.__setattr__(self, 'camera_names', tuple(self.camera_names))
        object.__setattr__(self, 'image_size', tuple(int(v) for v in self.image_size))
        if self.state_dim < 1:
            raise ValueError(f'state_dim must be >= 1, got {self.state_dim}')
        if self.action_dim < 1:
            raise ValueError(f'action_dim must be >= 1, got {self.action_dim}')
        if self.privileged_dim < 0:
            raise ValueError(f'privileged_dim must be >= 0, got {self.privileged_dim}')
        if len(set(self.camera_names)) != len(self.camera_names) or '' in self.camera_names:
            raise ValueError(f'camera_names must be unique and non-empty: {self.camera_names}')
        if len(self.image_size) != 2 or min(self.image_size) < 8:
            raise ValueError(f'image_size must be (height, width) >= 8 px: {self.image_size}')

    @property
    def stored_action_dim(self) -> int:
        """Length of the action vector in a transition (continuous + the gripper command)."""
        return self.action_dim + int(self.discrete_gripper)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'ObservationSpec':
        return cls(**data)


def validate_observation(obs: Observation, spec: ObservationSpec, which: str) -> None:
    """Raise ``InvalidTransitionError`` unless ``obs`` matches ``spec`` with finite values."""
    state = np.asarray(obs.state)
    if state.shape != (spec.state_dim,):
        raise InvalidTransitionError(
            'state_shape', f'{which}.state has shape {state.shape}, expected ({spec.state_dim},)')
    if not np.all(np.isfinite(state)):
        raise InvalidTransitionError('non_finite', f'{which}.state has NaN or inf')
    if set(obs.images) != set(spec.camera_names):
        raise InvalidTransitionError(
            'camera_names', f'{which} has cameras {sorted(obs.images)}, '
            f'expected {sorted(spec.camera_names)}')
    expected = (*spec.image_size, 3)
    for name, image in obs.images.items():
        if image.dtype != np.uint8 or image.shape != expected:
            raise InvalidTransitionError(
                'image_shape', f'{which}.images[{name}] is {image.dtype} {image.shape}, '
                f'expected uint8 {expected}')
    privileged = np.asarray(obs.privileged)
    if privileged.shape != (spec.privileged_dim,):
        raise InvalidTransitionError(
            'privileged_shape', f'{which}.privileged has shape {privileged.shape}, '
            f'expected ({spec.privileged_dim},)')
    if not np.all(np.isfinite(privileged)):
        raise InvalidTransitionError('non_finite', f'{which}.privileged has NaN or inf')


def validate_transition(transition: Transition, spec: ObservationSpec) -> None:
    """Raise ``InvalidTransitionError`` (with a reason tag) unless ``transition`` is usable."""
    validate_observation(transition.observation, spec, 'observation')
    validate_observation(transition.next_observation, spec, 'next_observation')
    action = np.asarray(transition.action)
    if action.shape != (spec.stored_action_dim,):
        raise InvalidTransitionError(
            'action_shape', f'action has shape {action.shape}, '
            f'expected ({spec.stored_action_dim},)')
    if not np.all(np.isfinite(action)):
        raise InvalidTransitionError('non_finite', 'action has NaN or inf')
    continuous = action[:spec.action_dim]
    if np.any(np.abs(continuous) > 1.0 + 1e-5):
        raise InvalidTransitionError(
            'action_range', f'continuous action {continuous.tolist()} outside [-1, 1]')
    if spec.discrete_gripper and action[-1] not in (GRIPPER_CLOSE, GRIPPER_STAY, GRIPPER_OPEN):
        raise InvalidTransitionError(
            'gripper_command', f'gripper command {action[-1]} is not 0, 1 or 2')
    for name in ('reward', 'gripper_penalty'):
        if not math.isfinite(getattr(transition, name)):
            raise InvalidTransitionError('non_finite', f'{name} is NaN or inf')
    if transition.gripper_penalty > 0:
        raise InvalidTransitionError('gripper_penalty', 'gripper_penalty must be <= 0')
    if transition.terminated and transition.truncated:
        raise InvalidTransitionError('episode_end', 'terminated and truncated are both set')
