"""Learner core: validation and counters, drops, BC, the training loop, checkpoint and resume."""
import contextlib
import dataclasses
import math
import pathlib
import threading
import time

import numpy as np
import pytest
import torch

from hilserl_learner import checkpoint
from hilserl_learner.errors import CheckpointError, DatasetError, TrainingDivergedError
from hilserl_learner.learner import Learner
from hilserl_learner.observation import Observation, Transition
from hilserl_learner.params import LearnerParams
from hilserl_learner.rl.encoders import EncoderConfig
from hilserl_learner.rl.sac_rlpd import SACConfig
from hilserl_testing.processes import wait_until

torch.set_num_threads(1)
SAC = SACConfig(batch_size=16, hidden_dims=(16, 16))
ENCODER = EncoderConfig(conv_channels=(4, 4), conv_patch_px=4, image_latent_dim=8,
                        proprio_latent_dim=8)


def make_learner(tmp_path, **overrides) -> Learner:
    values = {'state_dim': 3, 'action_dim': 3, 'discrete_gripper': True,
              'camera_names': ('front',), 'image_height_px': 16, 'image_width_px': 16,
              'online_capacity': 300, 'demo_capacity': 100, 'learning_starts': 20,
              'run_dir': str(tmp_path / 'run')}
    values.update(overrides)
    return Learner(LearnerParams(**values), SAC, ENCODER)


def obs(rng) -> Observation:
    return Observation(rng.standard_normal(3).astype(np.float32),
                       {'front': rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)})


def stream(count, seed=0, episode_length=10):
    rng = np.random.default_rng(seed)
    current = obs(rng)
    for i in range(count):
        step = i % episode_length
        following = obs(rng)
        yield Transition(current, np.r_[rng.uniform(-1, 1, 3), rng.integers(0, 3)]
                         .astype(np.float32), float(rng.random() < 0.1), following,
                         terminated=False, truncated=step == episode_length - 1,
                         is_intervention=i % 4 == 0, gripper_penalty=-0.02,
                         episode_id=i // episode_length, step_index=step, source='test')
        current = obs(rng) if step == episode_length - 1 else following


def bad_transitions():
    good = next(stream(1))
    bad = {}
    bad['non_finite'] = Transition(Observation(np.array([np.nan, 0, 0], np.float32),
                                               good.observation.images),
                                   good.action, 0.0, good.next_observation, False)
    bad['state_shape'] = Transition(Observation(np.zeros(4, np.float32), good.observation.images),
                                    good.action, 0.0, good.next_observation, False)
    bad['camera_names'] = Transition(Observation(good.observation.state,
                                                 {'side': good.observation.images['front']}),
                                     good.action, 0.0, good.next_observation, False)
    bad['image_shape'] = Transition(Observation(good.observation.state,
                                                {'front': np.zeros((8, 8, 3), np.uint8)}),
                                    good.action, 0.0, good.next_observation, False)
    bad['action_range'] = Transition(good.observation, np.array([1.5, 0, 0, 1], np.float32),
                                     0.0, good.next_observation, False)
    bad['action_shape'] = Transition(good.observation, np.zeros(3, np.float32), 0.0,
                                     good.next_observation, False)
    bad['gripper_command'] = Transition(good.observation, np.array([0, 0, 0, 1.5], np.float32),
                                        0.0, good.next_observation, False)
    bad['episode_end'] = Transition(good.observation, good.action, 0.0, good.next_observation,
                                    terminated=True, truncated=True)
    return bad


def test_bad_transitions_are_rejected_and_counted(tmp_path):
    learner = make_learner(tmp_path)
    bad = bad_transitions()
    for reason, transition in bad.items():
        assert learner.add_transition(transition) is False
        assert learner.last_rejection.startswith(reason)
    assert learner.rejections == dict.fromkeys(bad, 1)
    stats = learner.stats()
    assert stats['transitions_rejected'] == len(bad)
    assert stats['transitions_received'] == 0 and stats['online_buffer_size'] == 0


def test_gaps_in_step_index_are_counted_as_dropped(tmp_path):
    learner = make_learner(tmp_path)
    transitions = list(stream(30))
    del transitions[12:15]  # three steps of episode 1 lost
    for transition in transitions:
        assert learner.add_transition(transition)
    assert learner.stats()['transitions_dropped'] == 3
    assert learner.stats()['online_buffer_size'] == 27


def test_lost_first_steps_of_an_episode_are_counted_as_dropped(tmp_path):
    learner = make_learner(tmp_path)
    transitions = list(stream(30))
    del transitions[20:22]  # episode 2 arrives from step 2 on
    for transition in transitions[3:]:  # episode 0 from step 3: the learner started late
        assert learner.add_transition(transition)
    assert learner.stats()['transitions_dropped'] == 2


@contextlib.contextmanager
def training_loop_running(learner):
    """``learner.training_loop`` on its own thread (as the node runs it) for the block."""
    stop = threading.Event()
    thread = threading.Thread(target=learner.training_loop, args=(stop,))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_training_loop_crosses_learning_starts_and_publishes_weights(tmp_path):
    learner = make_learner(tmp_path, learning_starts=40, weights_period_s=0.05,
                           stats_every_updates=1)
    first = learner.publish_weights()
    with training_loop_running(learner):
        for transition in stream(39):
            learner.add_transition(transition)
        assert not learner.ready and learner.counters['updates'] == 0
        for transition in stream(20, seed=1):
            learner.add_transition(transition)
        wait_until(lambda: learner.counters['actor_updates'] >= 5, 30, 'five actor updates',
                   poll_s=0.01)
    assert learner.ready and learner.counters['actor_updates'] >= 5
    assert learner.counters['updates'] == 2 * learner.counters['actor_updates']
    weights, send = learner.weights_for(first.version)
    assert weights.version > first.version and send
    assert learner.weights_for(weights.version) == (weights, False)
    assert np.isfinite(learner.stats()['losses']['critic_loss'])


def test_bc_warm_start_moves_the_actor_towards_the_demos(tmp_path):
    learner = make_learner(tmp_path)
    demos = list(stream(50))
    for transition in demos:
        transition.action[:3] = 0.5
    assert learner.add_demo_transitions(demos) == 50
    assert len(learner.mixer.demo) == 50 and len(learner.mixer.online) == 0
    first = learner.bc_warm_start(1)['bc_loss']
    last = learner.bc_warm_start(150)['bc_loss']
    assert last < 0.1 * first
    with pytest.raises(DatasetError, match='rejected'):
        learner.add_demo_transitions(bad_transitions().values())


def test_demo_dataset_hook_reports_a_missing_dataset(tmp_path):
    learner = make_learner(tmp_path)
    with pytest.raises(DatasetError, match='/nonexistent does not exist'):
        learner.load_demo_dataset('/nonexistent')


def fill_and_train(learner, count=120, updates=3):
    for transition in stream(count):
        learner.add_transition(transition)
    for _ in range(updates):
        learner.train_step()
    learner.publish_weights()


@pytest.mark.parametrize('frame_compression', ['lz4', 'none'])
def test_checkpoint_then_resume_restores_everything_exactly(tmp_path, frame_compression):
    learner = make_learner(tmp_path, frame_compression=frame_compression)
    fill_and_train(learner)
    for transition in bad_transitions().values():
        learner.add_transition(transition)
    directory = learner.checkpoint_now()
    assert not list((tmp_path / 'run' / 'checkpoints').glob('.tmp-*'))

    resumed = make_learner(tmp_path, frame_compression=frame_compression)
    assert resumed.resume() == directory
    for (key, a), (_, b) in zip(learner.agent.state_dict().items(),
                                resumed.agent.state_dict().items(), strict=True):
        assert torch.equal(a, b), key
    for name in ('critic_optimizer', 'actor_optimizer', 'temperature_optimizer'):
        original = getattr(learner.agent, name).state_dict()
        restored = getattr(resumed.agent, name).state_dict()
        assert original['param_groups'] == restored['param_groups']
        for slot, state in original['state'].items():
            for key, value in state.items():
                assert torch.equal(value, restored['state'][slot][key]), (name, slot, key)
    for label in ('online', 'demo'):
        a, b = getattr(learner.mixer, label), getattr(resumed.mixer, label)
        assert (a.head, a.size, a.next_frame_seq) == (b.head, b.size, b.next_frame_seq)
        order = (a.head + np.arange(a.size)) % a.capacity
        for key in a.data:
            np.testing.assert_array_equal(a.data[key][order], b.data[key][order])
        live = np.arange(a.data['obs_seq'][a.head], a.next_frame_seq) % a.frame_capacity
        np.testing.assert_array_equal(a.frames['front'][live], b.frames['front'][live])
    assert resumed.counters == learner.counters
    assert resumed.rejections == learner.rejections and sum(resumed.rejections.values()) > 0
    assert resumed._episode_steps == learner._episode_steps
    assert resumed.weights_for(0)[0].version == learner.weights_for(0)[0].version
    assert resumed.mixer.rng.bit_generator.state == learner.mixer.rng.bit_generator.state

    # Same RNG, same buffers, same optimiser state: the next update is identical.
    rng = torch.get_rng_state()
    learner.train_step()
    torch.set_rng_state(rng)
    resumed.train_step()
    for (key, a), (_, b) in zip(learner.agent.state_dict().items(),
                                resumed.agent.state_dict().items()):
        assert torch.equal(a, b), key


def test_checkpoints_are_pruned_and_written_in_the_background(tmp_path):
    learner = make_learner(tmp_path, keep_checkpoints=2)
    fill_and_train(learner, updates=1)
    for _ in range(3):
        learner.train_step()
        assert learner.checkpoint_async()
        learner.wait_for_checkpoint(30)
    root = tmp_path / 'run' / 'checkpoints'
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert len(names) == 2
    assert (root / 'latest').read_text() == names[-1]
    assert checkpoint.latest(str(tmp_path / 'run')).name == names[-1]


def test_checkpoint_period_saves_what_arrived_before_training_starts(tmp_path):
    """A learner killed before learning_starts (or between update checkpoints) loses at most
    checkpoint_period_s of transitions; with nothing new, no checkpoint is written."""
    learner = make_learner(tmp_path, learning_starts=1000, checkpoint_every_updates=0,
                           checkpoint_period_s=0.2)
    latest = tmp_path / 'run' / 'checkpoints' / 'latest'
    with training_loop_running(learner):
        for transition in stream(30):
            learner.add_transition(transition)
        wait_until(latest.exists, 30, 'a checkpoint before learning_starts', poll_s=0.02)
        learner.wait_for_checkpoint(30)
        first = latest.read_text()
        time.sleep(0.6)  # three periods with nothing new
        assert latest.read_text() == first
        for transition in stream(5, seed=1):
            learner.add_transition(transition)
        wait_until(lambda: latest.read_text() != first, 30, 'a checkpoint of the new data',
                   poll_s=0.02)
    learner.wait_for_checkpoint(30)
    assert learner.counters['updates'] == 0 and not learner.ready
    resumed = make_learner(tmp_path, learning_starts=1000, resume=True, checkpoint_period_s=0.2)
    resumed.resume()
    assert len(resumed.mixer.online) == 35 and resumed.counters['received'] == 35
    time.sleep(0.3)
    assert not resumed._checkpoint_period_passed()  # what it restored is no news
    assert learner.counters['ckpt_skipped'] == 0


def test_a_fresh_run_sets_the_earlier_runs_outputs_aside_and_prunes_only_its_own(tmp_path):
    run_dir = str(tmp_path / 'run')
    assert checkpoint.set_aside_earlier_run(run_dir) is None  # nothing there yet
    earlier = make_learner(tmp_path, keep_checkpoints=2)
    fill_and_train(earlier, updates=5)
    earlier_checkpoint = earlier.checkpoint_now()
    (tmp_path / 'run' / 'tensorboard').mkdir()
    (tmp_path / 'run' / 'tensorboard' / 'events').write_text('curves')
    moved = checkpoint.set_aside_earlier_run(run_dir)
    assert moved.parent == tmp_path / 'run' / 'earlier'
    assert (moved / 'checkpoints' / pathlib.Path(earlier_checkpoint).name / 'agent.pt').is_file()
    assert (moved / 'tensorboard' / 'events').read_text() == 'curves'
    with pytest.raises(CheckpointError, match=f'no checkpoint.*earlier run is in {moved}'):
        checkpoint.latest(run_dir)
    # The fresh run (fewer updates than the earlier one) keeps its own newest checkpoints.
    fresh = make_learner(tmp_path, keep_checkpoints=2)
    fill_and_train(fresh, updates=1)
    written = [pathlib.Path(fresh.checkpoint_now()).name for _ in range(3)]
    root = tmp_path / 'run' / 'checkpoints'
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == written[1:]
    assert checkpoint.latest(run_dir).name == written[-1]
    # A second fresh run in the same second gets its own folder.
    again = checkpoint.set_aside_earlier_run(run_dir)
    assert again != moved and again.parent == moved.parent
    assert sorted(p.name for p in (again / 'checkpoints').iterdir() if p.is_dir()) == written[1:]


def test_resume_rejects_a_checkpoint_of_another_configuration(tmp_path):
    learner = make_learner(tmp_path)
    fill_and_train(learner, updates=1)
    learner.checkpoint_now()
    other = make_learner(tmp_path, state_dim=3, camera_names=('wrist',))
    with pytest.raises(CheckpointError, match='spec'):
        other.resume()
    with pytest.raises(CheckpointError, match='no checkpoint'):
        make_learner(tmp_path / 'empty').resume()
    params = learner.params
    for change, named in (({'num_critics': 3}, 'sac.num_critics'),
                          ({'hidden_dims': (16, 8)}, 'sac.hidden_dims')):
        other = Learner(params, dataclasses.replace(SAC, **change), ENCODER)
        with pytest.raises(CheckpointError, match=named):
            other.resume()
    # learning rates, utd_ratio, discount may change between runs
    Learner(params, dataclasses.replace(SAC, utd_ratio=4, critic_lr=1e-4), ENCODER).resume()


def test_a_failed_background_checkpoint_is_reported_and_the_final_one_still_written(
        tmp_path, monkeypatch):
    learner = make_learner(tmp_path)
    fill_and_train(learner, updates=1)
    write = checkpoint.write

    def disk_full(*args):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(checkpoint, 'write', disk_full)
    assert learner.checkpoint_async()
    with pytest.raises(OSError):
        learner.wait_for_checkpoint(30)
    stats = learner.stats()
    assert stats['checkpoints_failed'] == 1
    assert 'No space left on device' in stats['last_checkpoint_error']
    monkeypatch.setattr(checkpoint, 'write', write)
    directory = learner.checkpoint_now()  # the shutdown checkpoint is not stopped by it
    assert checkpoint.latest(str(tmp_path / 'run')) == pathlib.Path(directory)
    assert learner.checkpoint_async()  # a later background write works: no longer an error
    learner.wait_for_checkpoint(30)
    stats = learner.stats()
    assert stats['last_checkpoint_error'] == '' and stats['checkpoints_failed'] == 1


def test_steps_with_an_infinite_loss_are_skipped_then_training_stops(tmp_path):
    """Rewards of 1e30 pass validation (finite) but square to inf in the TD loss: the learner
    skips those steps, counts them, and after max_nonfinite_steps_in_a_row stops with an error;
    the networks keep their finite starting values."""
    learner = make_learner(tmp_path, max_nonfinite_steps_in_a_row=6)
    for transition in stream(40):
        assert learner.add_transition(dataclasses.replace(transition, reward=1e30))
    before = {k: v.clone() for k, v in learner.agent.state_dict().items()}
    learner.train_step()
    learner.train_step()  # utd_ratio 2: four skipped steps so far
    stats = learner.stats()
    assert stats['nonfinite_steps'] == 4 and stats['updates'] == stats['actor_updates'] == 0
    assert math.isinf(stats['losses']['critic_loss'])  # shown in ~/stats
    with pytest.raises(TrainingDivergedError, match='6 gradient steps in a row'):
        learner.train_step()
    for key, value in learner.agent.state_dict().items():
        assert torch.equal(value, before[key]), key
    learner.close()


def test_memory_limit_is_enforced(tmp_path):
    with pytest.raises(ValueError, match='max_buffer_memory_gb'):
        make_learner(tmp_path, online_capacity=10_000_000, max_buffer_memory_gb=1.0)


def test_params_validation_names_the_field():
    with pytest.raises(ValueError, match='online_capacity'):
        LearnerParams(online_capacity=0)
    with pytest.raises(ValueError, match='camera_names'):
        LearnerParams(camera_names=('front', 'front'))
    with pytest.raises(ValueError, match='freeze_trunk'):
        EncoderConfig(freeze_trunk=True)


def test_automatic_thread_count_is_one_without_cameras(monkeypatch):
    import os

    monkeypatch.setattr(os, 'cpu_count', lambda: 8)
    assert LearnerParams().threads() == 1
    assert LearnerParams(camera_names=('front',)).threads() == 8
    assert LearnerParams(num_threads=3).threads() == 3


def test_actor_step_thread_only_when_torch_runs_on_one_thread(tmp_path):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        multi = make_learner(tmp_path / 'multi')
        torch.set_num_threads(1)
        off = make_learner(tmp_path / 'off', actor_step_thread=False)
        single = make_learner(tmp_path / 'single')
    finally:
        torch.set_num_threads(threads)
    assert not multi.actor_step_threaded and not off.actor_step_threaded
    assert single.actor_step_threaded
    fill_and_train(single)
    assert single.counters['actor_updates'] == 3
    single.close()
    assert single._actor_executor._shutdown
