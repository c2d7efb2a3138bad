"""Replay buffer: a transition ring plus a frame ring, each camera frame stored once as uint8.

Layout (fixes LeRobot problems 1 and 2, see docs/sac_rlpd.md):
- every transition slot holds its state, next state, action, reward, end flags and two frame
  sequence numbers, ``obs_seq`` and ``next_seq``; frames live in a separate ring
  (``frame slot = seq % frame_capacity``), one array per camera, uint8 (or cached trunk
  features when a frozen trunk's output is cached);
- a transition that continues the previous one of the same episode (step_index + 1, identical
  pixels) reuses the previous transition's next frame as its observation frame, so a frame is
  stored once; a transition after a gap (another episode, a dropped message, an intervention
  buffer that only sees some steps) stores both frames, so ``next_observation`` is always the
  true next observation, also at truncations and episode ends;
- both rings are FIFO: when the frame ring wraps, the oldest transitions that still reference
  overwritten frames are evicted with it;
- a camera's ring is ``ArrayFrames`` (one preallocated array) or ``Lz4Frames`` (each frame
  LZ4-compressed, lossless: rendered 128x128 sim frames shrink ~4x and decode in ~20 us).

``sample_into`` writes a sample into preallocated arrays (``BatchArrays``), optionally with
DrQ's random shift applied while gathering the frames (pad with edge pixels, random crop).
"""
import contextlib
import json
import math
import pathlib
import sys
from typing import NamedTuple

import lz4.block
import numpy as np
import torch

from hilserl_learner.errors import CheckpointError
from hilserl_learner.observation import ObservationSpec, Transition


class ObsBatch(NamedTuple):
    """A batch of observations as torch tensors."""

    state: torch.Tensor
    """(B, S) float32."""
    images: dict[str, torch.Tensor]
    """camera -> (B, H, W, 3) float32 pixels in [0, 255], or (B, C, h, w) cached features."""
    privileged: torch.Tensor
    """(B, P) float32 (P may be 0)."""


class Batch(NamedTuple):
    """A batch of transitions (typed, SB3 style)."""

    observation: ObsBatch
    action: torch.Tensor
    """(B, A) float32; with the discrete gripper the last column is the command 0/1/2."""
    reward: torch.Tensor
    """(B,) float32."""
    next_observation: ObsBatch
    terminated: torch.Tensor
    """(B,) float32, 1 where the episode ended in a true terminal state (no bootstrap)."""
    gripper_penalty: torch.Tensor
    """(B,) float32, <= 0, added to the gripper critic's reward only."""
    is_intervention: torch.Tensor
    """(B,) float32."""


class BatchArrays:
    """Preallocated numpy arrays a sample is written into; ``as_batch`` wraps them zero-copy."""

    def __init__(self, spec: ObservationSpec, batch_size: int,
                 frame_shapes: dict[str, tuple[int, ...]]):
        n = batch_size
        self.fields = {
            'state': np.zeros((n, spec.state_dim), np.float32),
            'next_state': np.zeros((n, spec.state_dim), np.float32),
            'privileged': np.zeros((n, spec.privileged_dim), np.float32),
            'next_privileged': np.zeros((n, spec.privileged_dim), np.float32),
            'action': np.zeros((n, spec.stored_action_dim), np.float32),
            'reward': np.zeros(n, np.float32),
            'terminated': np.zeros(n, np.float32),
            'gripper_penalty': np.zeros(n, np.float32),
            'is_intervention': np.zeros(n, np.float32),
        }
        self.images = {c: self._allocate(n, s) for c, s in frame_shapes.items()}
        self.next_images = {c: self._allocate(n, s) for c, s in frame_shapes.items()}

    @staticmethod
    def _allocate(n: int, shape: tuple[int, ...]) -> np.ndarray:
        """Pixels (H, W, 3) are stored channel-first and exposed as an (n, H, W, 3) view, so
        the trunk's permute to (n, 3, H, W) is contiguous: no copy, and no channels-last
        tensors downstream (which make the spatial embedding's bmm ~20x slower on CPU).
        """
        if len(shape) == 3 and shape[-1] == 3:
            return np.zeros((n, 3, *shape[:2]), np.float32).transpose(0, 2, 3, 1)
        return np.zeros((n, *shape), np.float32)

    def as_batch(self) -> Batch:
        t = {k: torch.from_numpy(v) for k, v in self.fields.items()}
        images = {c: torch.from_numpy(v) for c, v in self.images.items()}
        next_images = {c: torch.from_numpy(v) for c, v in self.next_images.items()}
        return Batch(ObsBatch(t['state'], images, t['privileged']), t['action'], t['reward'],
                     ObsBatch(t['next_state'], next_images, t['next_privileged']),
                     t['terminated'], t['gripper_penalty'], t['is_intervention'])


def random_shifts(count: int, pad: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 2) DrQ shifts (dy, dx), each uniform in [-pad, pad]."""
    return rng.integers(-pad, pad + 1, size=(count, 2))


def shift_frame_into(src: np.ndarray, dst: np.ndarray, dy: int, dx: int) -> None:
    """dst[y, x] = src[clip(y + dy), clip(x + dx)]: edge padding then a crop, in one pass."""
    height, width = src.shape[:2]
    y0, y1 = max(0, -dy), height - max(0, dy)
    x0, x1 = max(0, -dx), width - max(0, dx)
    dst[y0:y1, x0:x1] = src[y0 + dy:y1 + dy, x0 + dx:x1 + dx]
    if y0:
        dst[:y0, x0:x1] = dst[y0, x0:x1]
    if y1 < height:
        dst[y1:, x0:x1] = dst[y1 - 1, x0:x1]
    if x0:
        dst[:, :x0] = dst[:, x0:x0 + 1]
    if x1 < width:
        dst[:, x1:] = dst[:, x1 - 1:x1]


def shift_frames_into(frames: np.ndarray, slots: np.ndarray, out: np.ndarray, pad: int,
                      rng: np.random.Generator) -> None:
    """DrQ random shift: out[i] = frames[slots[i]] padded by ``pad`` edge pixels, cropped back.

    Equivalent to replicate-padding then a random crop of the original size (Yarats et al.
    2021), with an independent shift per frame, done in one pass per frame (converting to
    ``out``'s dtype) without materialising the padded image.
    """
    shifted_frames_into(frames, slots, out, random_shifts(len(slots), pad, rng))


def shifted_frames_into(frames, slots: np.ndarray, out: np.ndarray, shifts: np.ndarray) -> None:
    """out[i] = frames[slots[i]] shifted by shifts[i]; ``frames``: an array or a frame store."""
    for i, (slot, (dy, dx)) in enumerate(zip(slots, shifts)):
        shift_frame_into(frames[slot], out[i], dy, dx)


class Gather(NamedTuple):
    """One camera's frames of a sample: ``store[slots]`` into ``out``, shifted by ``shifts``
    ((n, 2) DrQ shifts, or None). The shifts are drawn beforehand, so gathers may run on any
    thread in any order and the sample stays the same.
    """

    store: 'ArrayFrames | Lz4Frames'
    slots: np.ndarray
    out: np.ndarray
    shifts: np.ndarray | None

    def run(self) -> None:
        self.store.gather_into(self.slots, self.out, self.shifts)


class ArrayFrames:
    """One camera's frame ring as a preallocated array: uint8 pixels or cached features."""

    codec = 'none'

    def __init__(self, capacity: int, frame_shape: tuple[int, ...], dtype):
        self.array = np.zeros((capacity, *frame_shape), dtype)  # pages commit as it fills
        self.shape, self.dtype = self.array.shape, self.array.dtype

    def __setitem__(self, slot: int, frame: np.ndarray) -> None:
        self.array[slot] = frame

    def __getitem__(self, slots) -> np.ndarray:
        return self.array[slots]

    @property
    def nbytes(self) -> int:
        return self.array.nbytes

    def bytes_of(self, slots: np.ndarray) -> int:
        return len(slots) * self.array[0].nbytes

    def gather_into(self, slots: np.ndarray, out: np.ndarray, shifts: np.ndarray | None
                    ) -> None:
        if shifts is None:
            np.copyto(out, self.array[slots])
        else:
            shifted_frames_into(self.array, slots, out, shifts)

    def save(self, directory: pathlib.Path, camera: str, slots: np.ndarray) -> None:
        out = np.lib.format.open_memmap(directory / f'frames_{camera}.npy', mode='w+',
                                        dtype=self.dtype, shape=(len(slots), *self.shape[1:]))
        for start in range(0, len(slots), 1024):
            out[start:start + 1024] = self.array[slots[start:start + 1024]]
        out.flush()
        del out

    def load(self, directory: pathlib.Path, camera: str, slots: np.ndarray,
             rows: np.ndarray) -> None:
        saved = np.load(directory / f'frames_{camera}.npy', mmap_mode='r')
        for slot, row in zip(slots, rows):
            self.array[slot] = saved[row]


class Lz4Frames:
    """One camera's frame ring of LZ4-compressed uint8 frames (lossless).

    Memory follows the content: rendered sim frames take ~1/4 of their raw size, noisy camera
    frames less of a saving. Sampling decodes each drawn frame (~20 us for 128x128x3).
    """

    codec = 'lz4'
    overhead_per_frame = 8 + 8 + sys.getsizeof(b'')  # reference, size entry, bytes header

    def __init__(self, capacity: int, frame_shape: tuple[int, ...], dtype=np.uint8):
        if np.dtype(dtype) != np.uint8:
            raise ValueError(f'Lz4Frames stores uint8 pixels, not {np.dtype(dtype)}')
        self.frame_shape = tuple(frame_shape)
        self.shape, self.dtype = (capacity, *self.frame_shape), np.dtype(np.uint8)
        self.raw_bytes = math.prod(self.frame_shape)
        self.blobs = np.full(capacity, b'', dtype=object)
        self.sizes = np.zeros(capacity, np.int64)

    def __setitem__(self, slot: int, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame, np.uint8)
        if frame.shape != self.frame_shape:
            raise ValueError(f'frame shape {frame.shape}, expected {self.frame_shape}')
        blob = lz4.block.compress(frame, store_size=False)
        self.blobs[slot], self.sizes[slot] = blob, len(blob)

    def decode(self, slot: int) -> np.ndarray:
        raw = lz4.block.decompress(self.blobs[slot], uncompressed_size=self.raw_bytes)
        return np.frombuffer(raw, np.uint8).reshape(self.frame_shape)

    def __getitem__(self, slots) -> np.ndarray:
        if np.ndim(slots) == 0:
            return self.decode(int(slots))
        return np.stack([self.decode(int(slot)) for slot in slots])

    @property
    def nbytes(self) -> int:
        """Bytes held now: compressed frames plus the ring's per-frame overhead."""
        return self.bytes_of(np.arange(len(self.sizes)))

    def bytes_of(self, slots: np.ndarray) -> int:
        return int(self.sizes[slots].sum()) + len(slots) * self.overhead_per_frame

    def gather_into(self, slots: np.ndarray, out: np.ndarray, shifts: np.ndarray | None
                    ) -> None:
        if shifts is None:
            for i, slot in enumerate(slots):
                out[i] = self.decode(slot)
        else:
            shifted_frames_into(self, slots, out, shifts)

    def save(self, directory: pathlib.Path, camera: str, slots: np.ndarray) -> None:
        blobs = list(self.blobs[slots])  # references: the ring may move on meanwhile
        np.save(directory / f'frames_{camera}_lz4_sizes.npy',
                np.array([len(b) for b in blobs], np.int64))
        with open(directory / f'frames_{camera}.lz4', 'wb') as file:
            for blob in blobs:
                file.write(blob)

    def load(self, directory: pathlib.Path, camera: str, slots: np.ndarray,
             rows: np.ndarray) -> None:
        sizes = np.load(directory / f'frames_{camera}_lz4_sizes.npy')
        data = (directory / f'frames_{camera}.lz4').read_bytes()
        if len(data) != int(sizes.sum()):
            raise CheckpointError(f'frames_{camera}.lz4 in {directory} is truncated')
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for slot, row in zip(slots, rows):
            self.blobs[slot] = data[offsets[row]:offsets[row + 1]]
            self.sizes[slot] = sizes[row]


FRAME_STORES = {'none': ArrayFrames, 'lz4': Lz4Frames}


_PER_TRANSITION = ('obs_seq', 'next_seq', 'state', 'next_state', 'privileged', 'next_privileged',
                   'action', 'reward', 'terminated', 'truncated', 'is_intervention',
                   'gripper_penalty', 'episode_id', 'step_index')


class ReplayBuffer:
    """FIFO transition ring with a shared-frame ring per camera (see the module docstring)."""

    def __init__(self, spec: ObservationSpec, capacity: int,
                 frame_shapes: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None,
                 frame_capacity: int | None = None, frame_transform=None,
                 frame_codec: str = 'none'):
        """``frame_shapes``: camera -> (shape, dtype) of a stored frame (default: uint8 image).

        ``frame_transform(camera, frames uint8 (N, H, W, 3)) -> array (N, *shape)`` maps
        frames before storage (e.g. a frozen trunk's features); None stores the pixels.
        ``frame_codec``: 'none' (arrays) or 'lz4' (each uint8 frame compressed, lossless).
        """
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self.spec = spec
        self.capacity = int(capacity)
        self.frame_capacity = int(frame_capacity or (capacity + capacity // 4 + 2))
        if self.frame_capacity < 2:
            raise ValueError('frame_capacity must be >= 2')
        if frame_shapes is None:
            frame_shapes = dict.fromkeys(spec.camera_names, ((*spec.image_size, 3), np.uint8))
        self.frame_shapes = {c: (tuple(s), np.dtype(d)) for c, (s, d) in frame_shapes.items()}
        self.frame_transform = frame_transform
        if frame_codec not in FRAME_STORES:
            raise ValueError(f'frame_codec must be one of {sorted(FRAME_STORES)}, '
                             f'got {frame_codec!r}')
        if frame_codec != 'none' and frame_transform is not None:
            raise ValueError('frame_codec applies to stored pixels, not transformed frames')
        self.frame_codec = frame_codec
        c, s, p, a = self.capacity, spec.state_dim, spec.privileged_dim, spec.stored_action_dim
        # np.zeros maps pages lazily: memory is committed as the buffer fills.
        self.data = {
            'obs_seq': np.zeros(c, np.int64), 'next_seq': np.zeros(c, np.int64),
            'state': np.zeros((c, s), np.float32), 'next_state': np.zeros((c, s), np.float32),
            'privileged': np.zeros((c, p), np.float32),
            'next_privileged': np.zeros((c, p), np.float32),
            'action': np.zeros((c, a), np.float32), 'reward': np.zeros(c, np.float32),
            'terminated': np.zeros(c, bool), 'truncated': np.zeros(c, bool),
            'is_intervention': np.zeros(c, bool), 'gripper_penalty': np.zeros(c, np.float32),
            'episode_id': np.zeros(c, np.int64), 'step_index': np.zeros(c, np.int64),
        }
        store = FRAME_STORES[frame_codec]
        self.frames = {cam: store(self.frame_capacity, shape, dtype)
                       for cam, (shape, dtype) in self.frame_shapes.items()}
        self.head = 0  # slot of the oldest transition
        self.size = 0
        self.next_frame_seq = 0
        self.frames_stored = 0  # frames written so far (for the bytes-per-transition figure)
        self.added = 0
        self._last = None  # (source, episode_id, step_index, next_seq, next images)

    def __len__(self) -> int:
        return self.size

    # --- memory accounting -------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        """Bytes the buffer's arrays take once full (the allocation; compressed frames: now)."""
        return (sum(v.nbytes for v in self.data.values())
                + sum(v.nbytes for v in self.frames.values()))

    @property
    def bytes_used(self) -> int:
        """Bytes holding live data: live transitions plus the frames they reference."""
        if self.size == 0:
            return 0
        per_slot = sum(v.nbytes for v in self.data.values()) // self.capacity
        oldest = int(self.data['obs_seq'][self.head]) if self.frames else self.next_frame_seq
        live_slots = np.arange(oldest, self.next_frame_seq) % self.frame_capacity
        return self.size * per_slot + sum(store.bytes_of(live_slots)
                                          for store in self.frames.values())

    @staticmethod
    def estimate_bytes(spec: ObservationSpec, capacity: int, frame_bytes: int | None = None,
                       frame_capacity: int | None = None) -> int:
        """Allocation of a buffer of ``capacity`` transitions (before it is built)."""
        if frame_bytes is None:
            frame_bytes = len(spec.camera_names) * spec.image_size[0] * spec.image_size[1] * 3
        frame_capacity = frame_capacity or (capacity + capacity // 4 + 2)
        per_slot = 8 * 4 + 4 * (2 * spec.state_dim + 2 * spec.privileged_dim
                                + spec.stored_action_dim + 2) + 3
        return capacity * per_slot + frame_capacity * frame_bytes

    # --- adding ------------------------------------------------------------------------------
    def add(self, transition: Transition) -> None:
        """Append one (validated) transition, evicting the oldest when full."""
        images = transition.observation.images
        last = self._last
        continues = (last is not None and last[0] == transition.source
                     and last[1] == transition.episode_id
                     and last[2] + 1 == transition.step_index
                     and last[3] > self.next_frame_seq - self.frame_capacity
                     and all(np.array_equal(last[4][c], images[c]) for c in self.frame_shapes))
        if self.size == self.capacity:
            self._evict_oldest()
        obs_seq = last[3] if continues else self._add_frame(images)
        next_seq = self._add_frame(transition.next_observation.images)
        slot = (self.head + self.size) % self.capacity
        d = self.data
        d['obs_seq'][slot], d['next_seq'][slot] = obs_seq, next_seq
        d['state'][slot] = transition.observation.state
        d['next_state'][slot] = transition.next_observation.state
        d['privileged'][slot] = transition.observation.privileged
        d['next_privileged'][slot] = transition.next_observation.privileged
        d['action'][slot] = transition.action
        d['reward'][slot] = transition.reward
        d['terminated'][slot] = transition.terminated
        d['truncated'][slot] = transition.truncated
        d['is_intervention'][slot] = transition.is_intervention
        d['gripper_penalty'][slot] = transition.gripper_penalty
        d['episode_id'][slot] = transition.episode_id
        d['step_index'][slot] = transition.step_index
        self.size += 1
        self.added += 1
        ended = transition.terminated or transition.truncated
        self._last = None if ended else (
            transition.source, transition.episode_id, transition.step_index, next_seq,
            {c: transition.next_observation.images[c] for c in self.frame_shapes})

    def _add_frame(self, images: dict[str, np.ndarray]) -> int:
        seq = self.next_frame_seq
        if not self.frame_shapes:
            return seq
        overwritten = seq - self.frame_capacity
        while self.size and self.data['obs_seq'][self.head] <= overwritten:
            self._evict_oldest()
        slot = seq % self.frame_capacity
        for cam, store in self.frames.items():
            frame = images[cam]
            if self.frame_transform is not None:
                frame = self.frame_transform(cam, frame[None])[0]
            store[slot] = frame
        self.next_frame_seq += 1
        self.frames_stored += 1
        return seq

    def _evict_oldest(self) -> None:
        self.head = (self.head + 1) % self.capacity
        self.size -= 1

    # --- sampling ----------------------------------------------------------------------------
    def live_slots(self, newest: int) -> np.ndarray:
        """Slots of the ``newest`` most recently added transitions still held, oldest first
        (the ring is FIFO: the live transitions are the last ``size`` added, in order).
        """
        newest = min(newest, self.size)
        return (self.head + self.size - newest + np.arange(newest)) % self.capacity

    def sample_into(self, out: BatchArrays, start: int, count: int, rng: np.random.Generator,
                    shift_pad: int = 0, gather_executor=None,
                    slots: np.ndarray | None = None) -> None:
        """Write ``count`` uniformly drawn transitions into ``out`` rows [start, start+count).

        Frames are copied (decoded, shifted) per camera and observation side: on
        ``gather_executor``'s threads when given (numpy copies and LZ4 release the GIL).
        ``slots``: draw only among these live slots (``live_slots``), e.g. BC's success demos.
        """
        if self.size == 0 or (slots is not None and len(slots) == 0):
            raise ValueError('cannot sample from an empty buffer')
        if slots is None:
            idx = (self.head + rng.integers(0, self.size, size=count)) % self.capacity
        else:
            idx = slots[rng.integers(0, len(slots), size=count)]
        rows = slice(start, start + count)
        d, f = self.data, out.fields
        for name in ('state', 'next_state', 'privileged', 'next_privileged', 'action',
                     'reward', 'gripper_penalty'):
            f[name][rows] = d[name][idx]
        f['terminated'][rows] = d['terminated'][idx]
        f['is_intervention'][rows] = d['is_intervention'][idx]
        gathers = []
        for seq_name, target in (('obs_seq', out.images), ('next_seq', out.next_images)):
            frame_slots = d[seq_name][idx] % self.frame_capacity
            for cam, store in self.frames.items():
                shift = shift_pad and store.dtype == np.uint8
                gathers.append(Gather(store, frame_slots, target[cam][rows],
                                      random_shifts(count, shift_pad, rng) if shift else None))
        if gather_executor is None or len(gathers) < 2:
            for gather in gathers:
                gather.run()
        else:
            for job in [gather_executor.submit(gather.run) for gather in gathers]:
                job.result()

    # --- checkpoints -------------------------------------------------------------------------
    def save(self, directory: pathlib.Path, lock=None) -> None:
        """Write the live contents to ``directory`` (which must exist).

        Ingestion may go on while this runs: ``lock`` is held only to copy the small
        per-transition arrays; frames are written from the live ring, and transitions whose
        frames were overwritten meanwhile are left out of the saved metadata.
        """
        lock = lock or contextlib.nullcontext()
        directory = pathlib.Path(directory)
        with lock:
            order = (self.head + np.arange(self.size)) % self.capacity
            meta = {name: self.data[name][order].copy() for name in _PER_TRANSITION}
            first_seq = int(meta['obs_seq'][0]) if self.size else self.next_frame_seq
            end_seq = self.next_frame_seq
            counters = {'head': self.head, 'added': self.added,
                        'frames_stored': self.frames_stored, 'next_frame_seq': end_seq}
        for cam, store in self.frames.items():
            store.save(directory, cam, np.arange(first_seq, end_seq) % self.frame_capacity)
        with lock:
            valid_from = self.next_frame_seq - self.frame_capacity
        keep = meta['obs_seq'] >= valid_from if self.frames else np.ones(len(order), bool)
        dropped = int(len(keep) - keep.sum())
        meta = {k: v[keep] for k, v in meta.items()}
        counters['head'] = (counters['head'] + dropped) % self.capacity
        counters.update(first_seq=first_seq, capacity=self.capacity,
                        frame_capacity=self.frame_capacity, cameras=list(self.frames),
                        frame_codec=self.frame_codec,
                        spec=self.spec.to_dict())
        np.savez(directory / 'transitions.npz', **meta)
        (directory / 'buffer.json').write_text(json.dumps(counters))

    def load(self, directory: pathlib.Path) -> None:
        """Restore what ``save`` wrote, into the same slots (the buffer must match its config)."""
        directory = pathlib.Path(directory)
        try:
            counters = json.loads((directory / 'buffer.json').read_text())
            meta = dict(np.load(directory / 'transitions.npz'))
        except (OSError, ValueError) as error:
            raise CheckpointError(f'cannot read buffer in {directory}: {error}') from error
        if (counters['capacity'] != self.capacity
                or counters['frame_capacity'] != self.frame_capacity
                or counters['cameras'] != list(self.frames)
                or counters.get('frame_codec', 'none') != self.frame_codec
                or ObservationSpec.from_dict(counters['spec']) != self.spec):
            raise CheckpointError(f'buffer in {directory} was saved with another configuration')
        self.head, self.size = counters['head'], len(meta['obs_seq'])
        order = (self.head + np.arange(self.size)) % self.capacity
        for name in _PER_TRANSITION:
            self.data[name][order] = meta[name]
        first_seq = counters['first_seq']
        lowest = int(meta['obs_seq'].min()) if self.size else counters['next_frame_seq']
        seqs = np.arange(lowest, counters['next_frame_seq'])
        for cam, store in self.frames.items():
            try:
                store.load(directory, cam, seqs % self.frame_capacity, seqs - first_seq)
            except (OSError, ValueError) as error:
                raise CheckpointError(f'cannot read {cam} frames in {directory}: {error}'
                                      ) from error
        self.next_frame_seq = counters['next_frame_seq']
        self.added, self.frames_stored = counters['added'], counters['frames_stored']
        self._last = None
