"""RLPD sampling: every transition goes online, interventions also go to the demo buffer.

Ball et al. 2023 (RLPD) sample each batch half from the online buffer and half from the
offline (demonstration) buffer; HIL-SERL (Luo et al. 2024, section 3) adds every human
intervention step to the offline buffer as well, so the demo half grows with corrections.
"""
import concurrent.futures

import numpy as np

from hilserl_learner.observation import ObservationSpec, Transition
from hilserl_learner.rl.buffer import Batch, BatchArrays, ReplayBuffer


class RLPDMixer:
    """Routes transitions to the online and demo buffers and draws symmetric batches."""

    def __init__(self, online: ReplayBuffer, demo: ReplayBuffer, batch_size: int,
                 demo_fraction: float = 0.5, shift_pad: int = 0, seed: int = 0,
                 gather_threads: int = 0):
        """``gather_threads`` > 1: copy the camera frames of a batch on that many threads."""
        if not 0.0 <= demo_fraction <= 1.0:
            raise ValueError(f'demo_fraction must be in [0, 1], got {demo_fraction}')
        self.online, self.demo = online, demo
        self.batch_size = batch_size
        self.demo_fraction = demo_fraction
        self.shift_pad = shift_pad
        self.rng = np.random.default_rng(seed)
        shapes = {cam: shape for cam, (shape, _) in online.frame_shapes.items()}
        self._arrays = BatchArrays(online.spec, batch_size, shapes)
        self._gather = (concurrent.futures.ThreadPoolExecutor(gather_threads, 'frame_gather')
                        if gather_threads > 1 and shapes else None)

    def close(self) -> None:
        if self._gather is not None:
            self._gather.shutdown(wait=True)

    @property
    def spec(self) -> ObservationSpec:
        return self.online.spec

    def add(self, transition: Transition) -> None:
        """Every transition to the online buffer; an intervention also to the demo buffer."""
        self.online.add(transition)
        if transition.is_intervention:
            self.demo.add(transition)

    def add_demos(self, transitions) -> int:
        """Add demonstration transitions (e.g. from recorded episodes) to the demo buffer only."""
        count = 0
        for transition in transitions:
            self.demo.add(transition)
            count += 1
        return count

    def demo_count(self) -> int:
        """Rows of a batch drawn from the demo buffer (all online while it is empty)."""
        if len(self.demo) == 0:
            return 0
        if len(self.online) == 0:
            return self.batch_size
        return int(round(self.batch_size * self.demo_fraction))

    def sample(self) -> Batch:
        """A batch: the first ``demo_count()`` rows from the demo buffer, the rest online.

        The returned tensors share memory with arrays reused by the next call.
        """
        n_demo = self.demo_count()
        if n_demo:
            self.demo.sample_into(self._arrays, 0, n_demo, self.rng, self.shift_pad,
                                  self._gather)
        if n_demo < self.batch_size:
            self.online.sample_into(self._arrays, n_demo, self.batch_size - n_demo, self.rng,
                                    self.shift_pad, self._gather)
        return self._arrays.as_batch()

    def sample_demos(self, slots: np.ndarray | None = None) -> Batch:
        """A batch drawn from the demo buffer only (BC warm start), among ``slots`` if given."""
        self.demo.sample_into(self._arrays, 0, self.batch_size, self.rng, self.shift_pad,
                              self._gather, slots)
        return self._arrays.as_batch()
