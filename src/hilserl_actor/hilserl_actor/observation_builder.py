"""The actor's observation: proprio state, cropped camera images, privileged state (ROS-free).

One ``ObservationBuilder`` turns the latest inputs (joint positions, camera frames, simulator
ground truth) into a ``hilserl_learner.observation.Observation``:

- ``state`` (float32): the joint positions in the driver's order (rad, gripper last), then the
  TCP position relative to the episode-start TCP (HIL-SERL's relative frame; the base frame's
  axes, metres). Names (``state_names``): ``<joint>.position_rad`` ..., ``tcp.x_rel_m``,
  ``tcp.y_rel_m``, ``tcp.z_rel_m``.
- ``images``: each camera's latest frame cropped and resized with the shared crop config
  (``hilserl_learner.preprocessing``), uint8 (H, W, 3) RGB.
- ``privileged`` (float32, simulation only): the configured ground-truth fields, in the base
  frame (= the simulation's world frame), names ``<field>.<component>`` (see
  ``PRIVILEGED_COMPONENTS``).
"""
import dataclasses

import numpy as np

from hilserl_learner.observation import Observation, ObservationSpec
from hilserl_learner.preprocessing import CropConfig

PRIVILEGED_COMPONENTS = {
    'object_position': ('x_m', 'y_m', 'z_m'),
    'object_quaternion': ('w', 'x', 'y', 'z'),
    'object_velocity': ('x_m_s', 'y_m_s', 'z_m_s'),
    'tcp_position': ('x_m', 'y_m', 'z_m'),
    'object_to_tcp': ('x_m', 'y_m', 'z_m'),
    'object_height': ('m',),
    'object_grasped': ('flag',),
}
"""Components of each privileged field; ``object_to_tcp`` = cube centre - TCP."""
TCP_STATE_NAMES = ('tcp.x_rel_m', 'tcp.y_rel_m', 'tcp.z_rel_m')


@dataclasses.dataclass(frozen=True)
class JointReading:
    """The latest /joint_states, in the actor's joint order."""

    positions_rad: np.ndarray
    stamp_s: float
    received_s: float


@dataclasses.dataclass(frozen=True)
class Frame:
    """The latest raw frame of one camera."""

    image: np.ndarray
    """(H, W, 3) uint8 RGB, before the crop."""
    stamp_s: float
    received_s: float
    header: object = None
    """The raw message's header, copied into the published observation (opaque here)."""


@dataclasses.dataclass(frozen=True)
class GroundTruthReading:
    """The latest simulator ground truth (base frame = world frame)."""

    object_position_m: np.ndarray
    object_quaternion_wxyz: np.ndarray
    object_velocity_m_s: np.ndarray
    tcp_position_m: np.ndarray
    object_height_m: float
    object_grasped: bool
    success: bool
    episode_seed: int
    stamp_s: float
    received_s: float


@dataclasses.dataclass(frozen=True)
class BuiltObservation:
    """An observation and what it was built from."""

    observation: Observation
    stamp_s: float
    """Stamp of the newest input used."""
    tcp_m: np.ndarray
    """Absolute TCP position (base frame) at this observation."""
    joints_rad: np.ndarray
    frame_headers: dict
    """camera -> the raw frame's header (opaque), for the published images."""
    truth: GroundTruthReading | None = None


class ObservationBuilder:
    """Builds observations; one per actor (see the module docstring)."""

    def __init__(self, joint_names, camera_names, crop: CropConfig, privileged_fields,
                 kinematics):
        self.joint_names = tuple(joint_names)
        self.camera_names = tuple(camera_names)
        self.crop = crop
        self.kinematics = kinematics
        self._privileged_fields = tuple(privileged_fields)
        unknown = [f for f in self._privileged_fields if f not in PRIVILEGED_COMPONENTS]
        if unknown:
            raise ValueError(f'privileged_fields: unknown {unknown} '
                             f'(known: {", ".join(PRIVILEGED_COMPONENTS)})')
        self.use_privileged = False
        self._cache: dict[str, tuple[int, np.ndarray]] = {}

    # --- names and shapes ------------------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(f'{name}.position_rad' for name in self.joint_names) + TCP_STATE_NAMES

    @property
    def privileged_names(self) -> tuple[str, ...]:
        if not self.use_privileged:
            return ()
        return tuple(f'{field}.{part}' for field in self._privileged_fields
                     for part in PRIVILEGED_COMPONENTS[field])

    def spec(self, action_dim: int = 3, discrete_gripper: bool = True) -> ObservationSpec:
        sizes = {self.crop.camera(name).output_size for name in self.camera_names}
        if len(sizes) > 1:
            raise ValueError(f'every camera needs the same output size for one encoder, got '
                             f'{sorted(sizes)}')
        return ObservationSpec(
            state_dim=len(self.state_names), action_dim=action_dim,
            camera_names=self.camera_names,
            image_size=sizes.pop() if sizes else (128, 128),
            privileged_dim=len(self.privileged_names), discrete_gripper=discrete_gripper)

    # --- building --------------------------------------------------------------------------
    def tcp(self, joints_rad) -> np.ndarray:
        """TCP position (base frame) of the arm joints (FK; the gripper does not move it)."""
        return self.kinematics.fk(np.asarray(joints_rad, dtype=float)[:5])

    def build(self, joints: JointReading, frames: dict, truth: GroundTruthReading | None,
              start_tcp_m) -> BuiltObservation:
        """The observation of these inputs; ``start_tcp_m`` = the episode's first TCP."""
        positions = np.asarray(joints.positions_rad, dtype=float)
        tcp = self.tcp(positions)
        state = np.concatenate([positions, tcp - np.asarray(start_tcp_m, dtype=float)])
        images, headers, stamps = {}, {}, [joints.stamp_s]
        for name in self.camera_names:
            frame = frames[name]
            images[name] = self._cropped(name, frame)
            headers[name] = frame.header
            stamps.append(frame.stamp_s)
        privileged = np.zeros(0, np.float32)
        if self.use_privileged:
            if truth is None:
                raise ValueError('privileged state needs the ground truth')
            privileged = self.privileged_state(truth)
            stamps.append(truth.stamp_s)
        observation = Observation(state=state.astype(np.float32), images=images,
                                  privileged=privileged)
        return BuiltObservation(observation, max(stamps), tcp, positions, headers, truth)

    def privileged_state(self, truth: GroundTruthReading) -> np.ndarray:
        parts = {
            'object_position': truth.object_position_m,
            'object_quaternion': truth.object_quaternion_wxyz,
            'object_velocity': truth.object_velocity_m_s,
            'tcp_position': truth.tcp_position_m,
            'object_to_tcp': np.asarray(truth.object_position_m) - np.asarray(
                truth.tcp_position_m),
            'object_height': [truth.object_height_m],
            'object_grasped': [1.0 if truth.object_grasped else 0.0],
        }
        return np.concatenate([np.asarray(parts[f], dtype=np.float32).ravel()
                               for f in self._privileged_fields]).astype(np.float32)

    def _cropped(self, name: str, frame: Frame) -> np.ndarray:
        """The crop of ``frame`` (computed once per raw frame: cameras may be slower than the
        control loop).
        """
        cached = self._cache.get(name)
        if cached is not None and cached[0] is frame.image:
            return cached[1]
        image = self.crop.apply(name, frame.image)
        image.flags.writeable = False
        self._cache[name] = (frame.image, image)
        return image
