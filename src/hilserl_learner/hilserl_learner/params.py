"""Parameters of the learner node (frozen dataclasses, validated in ``__post_init__``).

The node declares one ROS parameter per field: ``LearnerParams`` fields by name, ``SACConfig``
fields as ``sac.<field>`` and ``EncoderConfig`` fields as ``encoder.<field>`` (nested YAML
sections ``sac:`` and ``encoder:`` in config/learner.yaml).
"""
import dataclasses
import os

from hilserl_learner.observation import ObservationSpec


@dataclasses.dataclass(frozen=True)
class LearnerParams:
    """Learner node settings: data shapes, buffers, training cadence, outputs."""

    # --- what the actor sends (structural: read-only) ---
    state_dim: int = 6
    """Length of Observation.state (proprio)."""
    action_dim: int = 3
    """Continuous action dimensions (end-effector xyz delta), in [-1, 1]."""
    discrete_gripper: bool = False
    """Whether the action carries a 4th entry: gripper command 0 close / 1 stay / 2 open."""
    camera_names: tuple[str, ...] = ()
    """Cameras in every observation (empty: state only)."""
    image_height_px: int = 128
    """Image height after the ROI crop."""
    image_width_px: int = 128
    """Image width after the ROI crop."""
    privileged_dim: int = 0
    """Length of Observation.privileged_state (0 = none; needed by sac.asymmetric_critic)."""

    # --- buffers ---
    online_capacity: int = 40_000
    """Online buffer capacity, transitions (every transition; 40 000 = 67 min at 10 Hz)."""
    demo_capacity: int = 15_000
    """Demo buffer capacity, transitions (demonstrations and intervention steps)."""
    max_buffer_memory_gb: float = 8.0
    """Configure fails if both buffers together could need more memory than this (frames
    counted uncompressed: an upper bound with frame_compression lz4)."""
    frame_compression: str = 'lz4'
    """Camera frames in the buffers: 'lz4' (lossless; rendered sim frames take ~1/4 of their
    size, camera frames with sensor noise less of a saving; ~20 us to decode each sampled
    128x128 frame) or 'none' (raw uint8). Not used when a frozen trunk's features are cached."""

    # --- training ---
    learning_starts: int = 100
    """Online transitions received before the first update."""
    bc_steps: int = 0
    """Behaviour-cloning gradient steps on the demo buffer before RL (0 = none)."""
    bc_success_only: bool = True
    """BC learns only from the demo_dataset's episodes labelled success (failure episodes,
    recorded for the reward classifier, still go to the demo buffer for RL). A saved demo
    buffer keeps no labels: all of it is used."""
    demo_dataset: str = ''
    """Recorded demonstrations to load at configure ('' = none): a folder of episode bags
    (success and failure episodes, recorded images) or a demo buffer saved by load_demos."""
    seed: int = 0
    """Seed of network initialisation, sampling and augmentation."""
    num_threads: int = 0
    """torch intra-op threads of the learner process; 0 = automatic: 1 without cameras (the
    state-only networks' small matmuls run faster on one thread: 55-60 vs 31 updates/s measured
    on 2 cores), all cores with cameras."""
    actor_step_thread: bool = True
    """When torch runs on one thread (state only by default), run the actor's work (next
    actions, actor and temperature gradients) on a second thread while the critic's is computed
    (same result; 78-96 instead of 55-60 LeRobot-like state-only updates/s measured on 2
    cores). Not used with more torch threads."""

    # --- outputs ---
    run_dir: str = 'runs/learner'
    """Directory of TensorBoard logs and checkpoints."""
    resume: bool = False
    """Restore networks, optimisers, counters, RNG and buffers from run_dir's newest checkpoint.
    false: a fresh run; an earlier run's checkpoints and TensorBoard logs in run_dir are moved
    to run_dir/earlier/<UTC time>/ first (nothing is deleted)."""
    checkpoint_every_updates: int = 2000
    """Write a checkpoint every this many critic updates (and on shutdown); 0 = only on
    shutdown."""
    checkpoint_period_s: float = 300.0
    """Also write a checkpoint when this long passed since the previous one and transitions
    or updates came since (before training starts too): what a crash can lose at most (robot
    time); 0 = off."""
    keep_checkpoints: int = 2
    """Checkpoints of this run kept in run_dir/checkpoints (its older ones are deleted)."""
    weights_period_s: float = 2.0
    """Minimum time between two policy weight versions."""
    stats_period_s: float = 1.0
    """Period of ~/stats, /diagnostics and the TensorBoard scalars."""
    max_nonfinite_steps_in_a_row: int = 100
    """A gradient step whose loss or gradient is NaN or inf is skipped (counted as
    nonfinite_steps in ~/stats); after this many in a row training stops with an error, the
    networks at their last finite values; transitions are still received (and kept in the
    final checkpoint); 0 = never stop."""
    stats_every_updates: int = 10
    """Read loss values (.item()) every this many updates."""
    autostart: bool = False
    """Development only: configure and activate at start without a lifecycle manager."""

    def __post_init__(self):
        object.__setattr__(self, 'camera_names', tuple(self.camera_names))
        positive = ('state_dim', 'action_dim', 'image_height_px', 'image_width_px',
                    'online_capacity', 'demo_capacity', 'stats_every_updates',
                    'keep_checkpoints')
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        non_negative = ('privileged_dim', 'learning_starts', 'bc_steps', 'seed', 'num_threads',
                        'checkpoint_every_updates', 'checkpoint_period_s',
                        'max_nonfinite_steps_in_a_row')
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        for name in ('max_buffer_memory_gb', 'weights_period_s', 'stats_period_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)}')
        if self.frame_compression not in ('lz4', 'none'):
            raise ValueError(f"frame_compression must be 'lz4' or 'none', got "
                             f'{self.frame_compression!r}')
        if not self.run_dir:
            raise ValueError('run_dir must not be empty')
        self.observation_spec()  # validates camera names and sizes

    def observation_spec(self) -> ObservationSpec:
        try:
            return ObservationSpec(
                state_dim=self.state_dim, action_dim=self.action_dim,
                camera_names=self.camera_names,
                image_size=(self.image_height_px, self.image_width_px),
                privileged_dim=self.privileged_dim, discrete_gripper=self.discrete_gripper)
        except ValueError as error:
            raise ValueError(f'camera_names / image size: {error}') from error

    def threads(self) -> int:
        if self.num_threads:
            return self.num_threads
        return (os.cpu_count() or 1) if self.camera_names else 1
