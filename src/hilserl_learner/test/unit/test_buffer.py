"""Replay buffer: frames stored once as uint8, correct next observations, FIFO eviction, DrQ."""
import concurrent.futures

import numpy as np
import pytest

from hilserl_learner.errors import CheckpointError
from hilserl_learner.observation import Observation, ObservationSpec, Transition
from hilserl_learner.rl.buffer import (
    BatchArrays,
    Lz4Frames,
    ReplayBuffer,
    random_shifts,
    shift_frames_into,
)

SPEC = ObservationSpec(state_dim=2, action_dim=1, camera_names=('front', 'wrist'),
                       image_size=(8, 8))


def frame_value(episode: int, step: int, camera: int) -> int:
    return (episode * 37 + step * 3 + camera) % 256


def observation(episode: int, step: int) -> Observation:
    images = {name: np.full((8, 8, 3), frame_value(episode, step, i), np.uint8)
              for i, name in enumerate(SPEC.camera_names)}
    return Observation(np.array([episode, step], np.float32), images)


def episode_transitions(episode: int, length: int, terminated=False, source='a'):
    for step in range(length):
        last = step == length - 1
        yield Transition(observation(episode, step), np.array([0.1], np.float32), float(step),
                         observation(episode, step + 1), terminated=terminated and last,
                         truncated=last and not terminated, episode_id=episode,
                         step_index=step, source=source)


def sample_all(buffer, count=64, seed=0, pad=0):
    arrays = BatchArrays(SPEC, count, dict.fromkeys(SPEC.camera_names, (8, 8, 3)))
    buffer.sample_into(arrays, 0, count, np.random.default_rng(seed), pad)
    return arrays


def assert_consistent(arrays):
    """Every sampled transition's frames and states belong to its (episode, step)."""
    for row in range(len(arrays.fields['reward'])):
        episode, step = arrays.fields['state'][row].astype(int)
        next_episode, next_step = arrays.fields['next_state'][row].astype(int)
        assert (next_episode, next_step) == (episode, step + 1)
        for i, camera in enumerate(SPEC.camera_names):
            assert np.all(arrays.images[camera][row] == frame_value(episode, step, i))
            assert np.all(arrays.next_images[camera][row] == frame_value(episode, step + 1, i))


@pytest.mark.parametrize('codec', ['none', 'lz4'])
def test_each_frame_is_stored_once_as_uint8(codec):
    buffer = ReplayBuffer(SPEC, capacity=100, frame_codec=codec)
    for transition in episode_transitions(0, 10):
        buffer.add(transition)
    assert len(buffer) == 10
    assert buffer.frames_stored == 11  # 10 observations + the final next observation
    assert all(store.dtype == np.uint8 for store in buffer.frames.values())
    obs_seq, next_seq = buffer.data['obs_seq'][:10], buffer.data['next_seq'][:10]
    np.testing.assert_array_equal(obs_seq[1:], next_seq[:-1])
    assert_consistent(sample_all(buffer))


@pytest.mark.parametrize('codec', ['none', 'lz4'])
def test_gaps_and_other_episodes_store_both_frames(codec):
    buffer = ReplayBuffer(SPEC, capacity=100, frame_codec=codec)
    transitions = list(episode_transitions(0, 6))
    for transition in transitions[:2] + transitions[3:]:  # step 2 lost in transport
        buffer.add(transition)
    assert buffer.frames_stored == 3 + 4  # a new chain starts after the gap
    for transition in episode_transitions(1, 3, source='b'):
        buffer.add(transition)
    assert buffer.frames_stored == 7 + 4
    assert_consistent(sample_all(buffer))


def test_different_pixels_are_not_shared_even_if_steps_continue():
    buffer = ReplayBuffer(SPEC, capacity=10)
    first, second = list(episode_transitions(0, 2))
    second.observation.images['front'] = second.observation.images['front'] + 1
    buffer.add(first)
    buffer.add(second)
    assert buffer.frames_stored == 4


@pytest.mark.parametrize('codec', ['none', 'lz4'])
def test_next_observation_at_truncation_and_termination_is_the_real_one(codec):
    buffer = ReplayBuffer(SPEC, capacity=100, frame_codec=codec)
    for transition in episode_transitions(0, 5):  # ends truncated
        buffer.add(transition)
    for transition in episode_transitions(1, 4, terminated=True):
        buffer.add(transition)
    last_of_first = 4
    assert buffer.data['truncated'][last_of_first] and not buffer.data['terminated'][4]
    assert buffer.data['terminated'][8] and not buffer.data['truncated'][8]
    # The truncated step's next observation is (episode 0, step 5), not episode 1's first.
    np.testing.assert_array_equal(buffer.data['next_state'][last_of_first], [0, 5])
    next_slot = buffer.data['next_seq'][last_of_first] % buffer.frame_capacity
    assert np.all(buffer.frames['front'][next_slot] == frame_value(0, 5, 0))
    arrays = sample_all(buffer, 256)
    assert_consistent(arrays)
    # What the update bootstraps on: only the terminal step (episode 1, step 3) stops it; the
    # truncated one (episode 0, step 4) is sampled as not terminated.
    episodes, steps = arrays.fields['state'].astype(int).T
    terminal = (episodes == 1) & (steps == 3)
    np.testing.assert_array_equal(arrays.fields['terminated'], terminal.astype(np.float32))
    assert terminal.any() and ((episodes == 0) & (steps == 4)).any()


@pytest.mark.parametrize('codec', ['none', 'lz4'])
def test_fifo_eviction_keeps_every_sampled_transition_consistent(codec):
    buffer = ReplayBuffer(SPEC, capacity=20, frame_capacity=22, frame_codec=codec)
    for episode in range(12):
        for transition in episode_transitions(episode, 1 + episode % 4):
            buffer.add(transition)
            assert buffer.next_frame_seq - buffer.data['obs_seq'][buffer.head] <= 22
    assert 0 < len(buffer) <= 20
    newest_state = buffer.data['state'][(buffer.head + len(buffer) - 1) % 20]
    np.testing.assert_array_equal(newest_state, [11, 3])
    assert_consistent(sample_all(buffer, 256))


def test_memory_accounting():
    buffer = ReplayBuffer(SPEC, capacity=1000)
    assert buffer.nbytes == ReplayBuffer.estimate_bytes(SPEC, 1000)
    for episode in range(10):
        for transition in episode_transitions(episode, 50):
            buffer.add(transition)
    frame_bytes = 2 * 8 * 8 * 3
    per_transition = buffer.bytes_used / len(buffer)
    assert frame_bytes * 51 / 50 < per_transition < frame_bytes * 51 / 50 + 120


def reference_shift(frame, dy, dx, pad):
    padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode='edge')
    h, w = frame.shape[:2]
    return padded[pad + dy:pad + dy + h, pad + dx:pad + dx + w]


def test_drq_shift_matches_pad_and_crop():
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    slots = np.array([0, 3, 4, 4, 1, 2] * 20)
    out = np.zeros((len(slots), 12, 10, 3), np.float32)
    shift_frames_into(frames, slots, out, 4, np.random.default_rng(9))
    shifts = np.random.default_rng(9).integers(-4, 5, size=(len(slots), 2))
    for i, (slot, (dy, dx)) in enumerate(zip(slots, shifts)):
        np.testing.assert_array_equal(out[i], reference_shift(frames[slot], dy, dx, 4))
    assert len({tuple(s) for s in shifts}) > 20


def test_lz4_frames_are_lossless_and_counted_at_their_compressed_size():
    rng = np.random.default_rng(0)
    store = Lz4Frames(4, (32, 32, 3))
    flat = np.full((32, 32, 3), 90, np.uint8)
    noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    store[0], store[1] = flat, noise
    np.testing.assert_array_equal(store[0], flat)
    np.testing.assert_array_equal(store[np.array([1, 0])], np.stack([noise, flat]))
    flat_bytes = store.bytes_of(np.array([0]))
    assert flat_bytes < flat.nbytes / 20  # a uniform frame shrinks to almost nothing
    assert store.bytes_of(np.array([1])) > noise.nbytes  # noise does not compress
    with pytest.raises(ValueError, match='shape'):
        store[2] = flat[:16]
    with pytest.raises(ValueError, match='uint8'):
        Lz4Frames(4, (32, 32, 3), np.float16)


def test_lz4_drq_shift_matches_the_raw_store():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (6, 12, 10, 3), dtype=np.uint8)
    store = Lz4Frames(6, (12, 10, 3))
    for slot, frame in enumerate(frames):
        store[slot] = frame
    slots = np.array([5, 0, 3, 3, 1] * 10)
    expected = np.zeros((len(slots), 12, 10, 3), np.float32)
    shift_frames_into(frames, slots, expected, 4, np.random.default_rng(7))
    out = np.zeros_like(expected)
    store.gather_into(slots, out, random_shifts(len(slots), 4, np.random.default_rng(7)))
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize('codec', ['none', 'lz4'])
def test_frames_gathered_on_threads_give_the_same_sample(codec):
    buffer = ReplayBuffer(SPEC, capacity=200, frame_codec=codec)
    for episode in range(8):
        for transition in episode_transitions(episode, 20):
            buffer.add(transition)
    rng = np.random.default_rng(1)
    for camera in SPEC.camera_names:  # textured frames, so that a different shift shows
        for slot in range(buffer.next_frame_seq):
            buffer.frames[camera][slot] = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        samples = []
        for gather_executor in (None, executor):
            arrays = BatchArrays(SPEC, 64, dict.fromkeys(SPEC.camera_names, (8, 8, 3)))
            buffer.sample_into(arrays, 0, 64, np.random.default_rng(5), 2, gather_executor)
            samples.append(arrays)
    for a, b in ((samples[0].images, samples[1].images),
                 (samples[0].next_images, samples[1].next_images)):
        for camera in SPEC.camera_names:
            np.testing.assert_array_equal(a[camera], b[camera])
    np.testing.assert_array_equal(samples[0].fields['state'], samples[1].fields['state'])


def test_lz4_buffer_takes_less_memory_for_compressible_frames():
    raw, packed = ReplayBuffer(SPEC, 1000), ReplayBuffer(SPEC, 1000, frame_codec='lz4')
    for episode in range(10):
        for transition in episode_transitions(episode, 50):
            raw.add(transition)
            packed.add(transition)
    assert packed.bytes_used < raw.bytes_used / 2  # uniform test frames: far less
    with pytest.raises(ValueError, match='frame_codec'):
        ReplayBuffer(SPEC, 10, frame_codec='png')


@pytest.mark.parametrize('codec', ['none', 'lz4'])
def test_save_load_round_trip_and_codec_mismatch(tmp_path, codec):
    buffer = ReplayBuffer(SPEC, capacity=30, frame_capacity=34, frame_codec=codec)
    for episode in range(8):  # wraps both rings
        for transition in episode_transitions(episode, 5):
            buffer.add(transition)
    buffer.save(tmp_path)
    restored = ReplayBuffer(SPEC, capacity=30, frame_capacity=34, frame_codec=codec)
    restored.load(tmp_path)
    assert (restored.head, restored.size, restored.next_frame_seq) == (
        buffer.head, buffer.size, buffer.next_frame_seq)
    live = np.arange(buffer.data['obs_seq'][buffer.head], buffer.next_frame_seq) % 34
    for camera in SPEC.camera_names:
        np.testing.assert_array_equal(restored.frames[camera][live], buffer.frames[camera][live])
    assert restored.bytes_used == buffer.bytes_used
    assert_consistent(sample_all(restored, 128))
    other = 'none' if codec == 'lz4' else 'lz4'
    with pytest.raises(CheckpointError, match='another configuration'):
        ReplayBuffer(SPEC, capacity=30, frame_capacity=34, frame_codec=other).load(tmp_path)


def test_sampling_an_empty_buffer_fails_clearly():
    with pytest.raises(ValueError, match='empty'):
        sample_all(ReplayBuffer(SPEC, capacity=4))


def test_live_slots_name_the_newest_transitions_and_restrict_sampling():
    buffer = ReplayBuffer(SPEC, capacity=8, frame_capacity=40)
    for episode in range(3):
        for transition in episode_transitions(episode, 5):  # 15 added, the ring holds 8
            buffer.add(transition)
    newest = buffer.live_slots(4)  # episode 2, steps 1-4
    np.testing.assert_array_equal(buffer.data['state'][newest],
                                  [[2, step] for step in range(1, 5)])
    assert len(buffer.live_slots(100)) == 8  # no more than the buffer holds
    arrays = BatchArrays(SPEC, 64, dict.fromkeys(SPEC.camera_names, (8, 8, 3)))
    buffer.sample_into(arrays, 0, 64, np.random.default_rng(0), slots=newest[2:])
    assert {tuple(s) for s in arrays.fields['state'].astype(int)} == {(2, 3), (2, 4)}
    assert_consistent(arrays)
    with pytest.raises(ValueError, match='empty'):
        buffer.sample_into(arrays, 0, 4, np.random.default_rng(0), slots=newest[:0])
