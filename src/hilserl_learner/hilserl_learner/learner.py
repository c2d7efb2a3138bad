"""The learner core (ROS-free): ingest -> update -> weights, stats and checkpoints.

``Learner`` owns the agent and both buffers. Threads (the node's or a test's):
- ingestion calls ``add_transition`` (validates, counts rejections and drops, stores);
- one training thread calls ``training_loop`` (updates as fast as the machine allows once
  ``learning_starts`` online transitions arrived, a new weights version every
  ``weights_period_s``, a checkpoint every ``checkpoint_every_updates`` and, while new
  transitions or updates come, at least every ``checkpoint_period_s``, before training starts
  too);
- the weights service calls ``weights_for``; a stats timer calls ``stats``.
A lock guards the buffers (held while adding one transition or drawing one batch); weights are
published as immutable snapshots. Checkpoints are captured between updates and written by a
background thread (``checkpoint.py``), so the training thread never waits on the disk.
"""
import collections
import concurrent.futures
import dataclasses
import json
import threading
import time

import numpy as np
import torch

from hilserl_learner import checkpoint as ckpt
from hilserl_learner.errors import DatasetError, InvalidTransitionError, TrainingDivergedError
from hilserl_learner.observation import Transition, validate_transition
from hilserl_learner.params import LearnerParams
from hilserl_learner.policy import encode_weights, policy_config
from hilserl_learner.rl.agent import SACAgent
from hilserl_learner.rl.buffer import ReplayBuffer
from hilserl_learner.rl.encoders import EncoderConfig, file_sha256
from hilserl_learner.rl.mixer import RLPDMixer
from hilserl_learner.rl.sac_rlpd import SACConfig, bc_loss, update

_EPISODES_TRACKED = 256
# Extra frame slots per transition slot: the online buffer holds whole episodes (one extra
# frame per episode); the demo buffer holds intervention segments, some only a step long.
ONLINE_FRAME_SLACK = 1 / 16
DEMO_FRAME_SLACK = 1 / 4


@dataclasses.dataclass(frozen=True)
class PolicyWeights:
    """One immutable version of the actor's parameters."""

    version: int
    blob: bytes
    checksum: str
    config_json: str


class Learner:
    """SAC + RLPD learner core (see the module docstring)."""

    def __init__(self, params: LearnerParams, sac: SACConfig, encoder: EncoderConfig):
        self.params = params
        self.spec = params.observation_spec()
        if encoder.trunk_checkpoint and not encoder.trunk_checkpoint_sha256:
            encoder = dataclasses.replace(
                encoder, trunk_checkpoint_sha256=file_sha256(encoder.trunk_checkpoint))
        self.sac, self.encoder_config = sac, encoder
        torch.manual_seed(params.seed)
        self.agent = SACAgent(self.spec, sac, encoder)
        frame_bytes = self.agent.frame_bytes()
        needed = sum(ReplayBuffer.estimate_bytes(self.spec, c, frame_bytes,
                                                 int(c * (1 + slack)) + 2)
                     for c, slack in ((params.online_capacity, ONLINE_FRAME_SLACK),
                                      (params.demo_capacity, DEMO_FRAME_SLACK)))
        if needed > params.max_buffer_memory_gb * 1e9:
            raise ValueError(f'max_buffer_memory_gb: the buffers need {needed / 1e9:.1f} GB; '
                             'lower online_capacity / demo_capacity or raise the limit')
        self.buffer_bytes_allocated = needed
        self.mixer = RLPDMixer(
            self.agent.make_buffer(params.online_capacity, ONLINE_FRAME_SLACK,
                                   params.frame_compression),
            self.agent.make_buffer(params.demo_capacity, DEMO_FRAME_SLACK,
                                   params.frame_compression), sac.batch_size,
            sac.demo_fraction, sac.drq_pad, seed=params.seed,
            gather_threads=torch.get_num_threads())
        self.config_json = json.dumps(policy_config(
            self.spec, encoder, sac.hidden_dims, sac.activation, sac.std_min, sac.std_max))
        self.lock = threading.Lock()  # guards the buffers and the ingestion counters
        self.counters = collections.Counter()
        self.rejections = collections.Counter()
        self.last_rejection = ''
        self._episode_steps = collections.OrderedDict()
        self.last_info: dict[str, float] = {}
        self._weights: PolicyWeights | None = None
        self._weights_time = 0.0
        self._weights_updates = -1  # counters['updates'] of the newest version
        self._writer = concurrent.futures.ThreadPoolExecutor(1, 'checkpoint_writer')
        # Decided at construction, as the frame gathering above: the node sets torch's thread
        # count (num_threads) before building us.
        self._actor_executor = (
            concurrent.futures.ThreadPoolExecutor(1, 'actor_step')
            if params.actor_step_thread and torch.get_num_threads() == 1 else None)
        self._pending_checkpoint: concurrent.futures.Future | None = None
        self._checkpointed_at = (time.monotonic(), self._progress())
        self._bc_slots: np.ndarray | None = None  # demo slots BC learns from (None: all)
        self.last_checkpoint_error = ''
        self._nonfinite_in_a_row = 0

    # --- ingestion ---------------------------------------------------------------------------
    def add_transition(self, transition: Transition) -> bool:
        """Validate and store one transition; False (and counted) if it was rejected."""
        try:
            validate_transition(transition, self.spec)
        except InvalidTransitionError as error:
            with self.lock:
                self.counters['rejected'] += 1
                self.rejections[error.reason] += 1
                self.last_rejection = str(error)
            return False
        with self.lock:
            self.counters['received'] += 1
            self.counters['dropped'] += self._gap(transition)
            self.mixer.add(transition)
        return True

    def _gap(self, transition: Transition) -> int:
        """Steps missing before this one in its episode (messages lost in transport).

        A gap inside an episode, and the lost first steps of an episode from a source heard
        before (an episode that starts at step k > 0); not the first episode seen from a
        source (the learner may start after the actor) nor the lost last steps of an episode
        (nothing says how long it was).
        """
        key = (transition.source, transition.episode_id)
        last = self._episode_steps.pop(key, None)
        if last is None:
            heard_before = any(source == transition.source for source, _ in self._episode_steps)
            missing = transition.step_index if heard_before else 0
        else:
            missing = max(transition.step_index - last - 1, 0)
        self._episode_steps[key] = transition.step_index
        if len(self._episode_steps) > _EPISODES_TRACKED:
            self._episode_steps.popitem(last=False)
        return missing

    def add_demo_transitions(self, transitions) -> int:
        """Bulk-add demonstrations to the demo buffer (validated); returns how many were kept."""
        kept = 0
        for transition in transitions:
            try:
                validate_transition(transition, self.spec)
            except InvalidTransitionError as error:
                raise DatasetError(f'demonstration transition rejected: {error}') from error
            with self.lock:
                self.mixer.demo.add(transition)
            kept += 1
        return kept

    def load_demo_dataset(self, path: str) -> int:
        """Load recorded demonstrations (``hilserl_learner.dataset``) into the demo buffer; the
        BC warm start then learns from those of success-labelled episodes only, unless
        ``bc_success_only`` is false (a saved demo buffer has no labels: all of it).
        """
        from hilserl_learner import dataset
        from hilserl_learner import demo_format as fmt

        for_bc = []

        def transitions():
            for label, transition in dataset.load_labelled_transitions(path, self.spec):
                for_bc.append(not self.params.bc_success_only
                              or label in (None, fmt.LABEL_SUCCESS))
                yield transition
        kept = self.add_demo_transitions(transitions())
        live = self.mixer.demo.live_slots(kept)
        self._bc_slots = live[np.asarray(for_bc[len(for_bc) - len(live):], bool)]
        return kept

    # --- training ----------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return len(self.mixer.online) >= max(1, self.params.learning_starts)

    def _sample(self):
        with self.lock:
            return self.mixer.sample()

    def bc_warm_start(self, steps: int) -> dict[str, float]:
        """``steps`` behaviour-cloning steps of the actor and encoder on the demo buffer (on
        the success episodes of the last ``load_demo_dataset``, when it selected some).
        """
        if steps == 0 or len(self.mixer.demo) == 0:
            return {}
        slots = self._bc_slots
        if slots is not None and len(slots) == 0:
            raise DatasetError('the BC warm start has no demonstrations to learn from: the '
                               'demo dataset holds no episode labelled success (set '
                               'bc_success_only false to clone all of them)')
        params = self.agent.actor_params + [
            p for p in self.agent.policy.encoder.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.sac.actor_lr)
        info = {}
        for _ in range(steps):
            with self.lock:
                batch = self.mixer.sample_demos(slots)
            loss, info = bc_loss(self.agent, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=params)
            optimizer.step()
        self.counters['bc_steps'] += steps
        bc_transitions = len(self.mixer.demo) if slots is None else len(slots)
        return {**{k: float(v) for k, v in info.items()}, 'bc_transitions': bc_transitions}

    def train_step(self) -> dict[str, torch.Tensor]:
        """One ``update()``: utd_ratio critic steps, one actor and temperature step, Polyak.

        Steps with a NaN or inf loss or gradient were skipped by ``update`` (counted in
        ``counters['nonfinite_steps']``); after ``max_nonfinite_steps_in_a_row`` of them in a
        row this raises ``TrainingDivergedError``, the networks at their last finite values.
        """
        info = update(self.agent, self._sample, self.sac, self._actor_executor)
        skipped = info.pop('nonfinite_steps')
        self.counters['updates'] += self.sac.utd_ratio - skipped
        self.counters['actor_updates'] += info.pop('actor_stepped')
        self.counters['nonfinite_steps'] += skipped
        if skipped or self.counters['actor_updates'] % self.params.stats_every_updates == 0:
            self.last_info = {k: float(v) for k, v in info.items()}
        if skipped < self.sac.utd_ratio:
            self._nonfinite_in_a_row = 0
        self._nonfinite_in_a_row += skipped
        limit = self.params.max_nonfinite_steps_in_a_row
        if limit and self._nonfinite_in_a_row >= limit:
            raise TrainingDivergedError(
                f'{self._nonfinite_in_a_row} gradient steps in a row had a NaN or inf loss or '
                f'gradient (last: {_describe(info)}) and were skipped; the networks keep their '
                'last finite values. Check the rewards and observations the actor sends, and '
                'the learning rates.')
        return info

    def training_loop(self, stop: threading.Event) -> None:
        """Train until ``stop`` is set (the node's training thread)."""
        next_checkpoint = self._next_checkpoint_at()
        while not stop.is_set():
            if self._checkpoint_period_passed():
                self.checkpoint_async()
                next_checkpoint = self._next_checkpoint_at()
            if not self.ready:
                stop.wait(0.05)
                continue
            self.train_step()
            if (time.monotonic() - self._weights_time >= self.params.weights_period_s
                    and self.counters['updates'] != self._weights_updates):
                self.publish_weights()
            if next_checkpoint and self.counters['updates'] >= next_checkpoint:
                self.checkpoint_async()
                next_checkpoint = self._next_checkpoint_at()

    def _next_checkpoint_at(self) -> int:
        every = self.params.checkpoint_every_updates
        return (self.counters['updates'] // every + 1) * every if every else 0

    def _progress(self) -> tuple[int, int]:
        return self.counters['received'], self.counters['updates']

    def _checkpoint_period_passed(self) -> bool:
        """``checkpoint_period_s`` since the last checkpoint, something new since, no write
        going: a crash loses at most that long of robot time, also before training starts.
        """
        period = self.params.checkpoint_period_s
        since, progress = self._checkpointed_at
        return (period > 0 and time.monotonic() - since >= period and self._progress() != progress
                and not self._checkpoint_writing)

    @property
    def _checkpoint_writing(self) -> bool:
        """Whether a background checkpoint write is still going."""
        return self._pending_checkpoint is not None and not self._pending_checkpoint.done()

    # --- weights -----------------------------------------------------------------------------
    def publish_weights(self) -> PolicyWeights:
        """Snapshot the actor's trainable parameters as a new version (the training loop
        publishes one every ``weights_period_s`` while gradient steps change them).
        """
        blob, checksum = encode_weights(self.agent.policy.trainable_state_dict())
        version = (self._weights.version if self._weights else 0) + 1
        self._weights = PolicyWeights(version, blob, checksum, self.config_json)
        self._weights_time = time.monotonic()
        self._weights_updates = self.counters['updates']
        return self._weights

    def weights_for(self, current_version: int) -> tuple[PolicyWeights | None, bool]:
        """(newest weights or None, whether the caller needs the payload)."""
        weights = self._weights
        return weights, weights is not None and current_version != weights.version

    # --- stats -------------------------------------------------------------------------------
    def stats(self) -> dict:
        with self.lock:
            stats = {
                'online_buffer_size': len(self.mixer.online),
                'demo_buffer_size': len(self.mixer.demo),
                'buffer_bytes': self.mixer.online.bytes_used + self.mixer.demo.bytes_used,
                'transitions_received': self.counters['received'],
                'transitions_rejected': self.counters['rejected'],
                'transitions_dropped': self.counters['dropped'],
            }
        stats.update(updates=self.counters['updates'],
                     actor_updates=self.counters['actor_updates'],
                     policy_version=self._weights.version if self._weights else 0,
                     training=self.ready, checkpoints_skipped=self.counters['ckpt_skipped'],
                     checkpoints_failed=self.counters['ckpt_failed'],
                     nonfinite_steps=self.counters['nonfinite_steps'],
                     last_checkpoint_error=self.last_checkpoint_error,
                     losses=dict(self.last_info))
        return stats

    # --- checkpoints -------------------------------------------------------------------------
    def capture(self) -> ckpt.Snapshot:
        """Copy the networks, optimisers, counters and RNG (call between updates)."""
        return ckpt.capture(self)

    def checkpoint_async(self) -> bool:
        """Capture now, write in the background; False if the previous write is still going.

        A write that fails is counted (``counters['ckpt_failed']``) and its error kept in
        ``last_checkpoint_error`` (until a later write works) for the node to report; training
        goes on.
        """
        if self._checkpoint_writing:
            self.counters['ckpt_skipped'] += 1
            return False
        snapshot = self.capture()
        self._pending_checkpoint = self._writer.submit(self._write_checkpoint, snapshot)
        self._checkpointed_at = (time.monotonic(), self._progress())
        return True

    def _write_checkpoint(self, snapshot: ckpt.Snapshot):
        """The background write; its outcome is recorded before its future completes."""
        try:
            directory = ckpt.write(self, snapshot)
        except Exception as error:
            self.counters['ckpt_failed'] += 1
            self.last_checkpoint_error = f'{type(error).__name__}: {error}'
            raise
        self.last_checkpoint_error = ''  # the newest write worked: no longer an error
        return directory

    def checkpoint_now(self) -> str:
        """Capture and write synchronously (shutdown); returns the checkpoint directory.

        Waits for a background write still going first; its failure, if any, was recorded
        already and does not stop this one.
        """
        if self._pending_checkpoint is not None:
            concurrent.futures.wait([self._pending_checkpoint])
        return str(ckpt.write(self, self.capture()))

    def wait_for_checkpoint(self, timeout_s: float | None = None) -> None:
        """Wait for the background write; raises its error if it failed."""
        if self._pending_checkpoint is not None:
            self._pending_checkpoint.result(timeout=timeout_s)

    def resume(self) -> str:
        """Restore the newest checkpoint of ``run_dir``; returns its directory."""
        directory = ckpt.restore(self)
        self._checkpointed_at = (time.monotonic(), self._progress())  # nothing new yet
        return str(directory)

    @property
    def actor_step_threaded(self) -> bool:
        """Whether the actor's gradients are computed on their own thread."""
        return self._actor_executor is not None

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self.mixer.close()
        if self._actor_executor is not None:
            self._actor_executor.shutdown(wait=True)

    def rng_state(self) -> dict:
        return {'torch': torch.get_rng_state(), 'mixer': self.mixer.rng.bit_generator.state,
                'actor': self.agent.actor_generator.get_state()}

    def set_rng_state(self, state: dict) -> None:
        torch.set_rng_state(state['torch'])
        if 'actor' in state:  # checkpoints before the actor step had its own generator
            self.agent.actor_generator.set_state(state['actor'])
        self.mixer.rng = np.random.default_rng()
        self.mixer.rng.bit_generator.state = state['mixer']


def _describe(info: dict) -> str:
    return ', '.join(f'{name} {float(value):.4g}' for name, value in info.items())
