"""Reward classifier: metrics, episode split, balanced batches, every layer trains, the file
round trip, the training command, and >= 90 % validation accuracy on simulated frames.
"""
import numpy as np
import pytest
import torch

from hilserl_learner import reward_classifier as rc
from hilserl_learner.errors import ConfigurationError, DatasetError
from hilserl_learner.rl.encoders import EncoderConfig
from hilserl_testing.arrays import only_writable_arrays_to_torch

TINY = EncoderConfig(conv_channels=(4, 4), conv_patch_px=4, image_latent_dim=8,
                     spatial_features=2)


def toy_frames(episodes=8, length=10, size=16, seed=0):
    """Frames whose success is visible (a bright square in the second half of each episode)."""
    rng = np.random.default_rng(seed)
    count = episodes * length
    images = rng.integers(0, 60, (count, size, size, 3), dtype=np.uint8)
    success = np.tile(np.arange(length) >= length // 2, episodes)
    images[success, 4:12, 4:12] = 250
    episode = np.repeat(np.arange(episodes), length)
    return {'front': images, 'wrist': images[:, ::-1].copy()}, success, episode


def test_metrics_count_the_confusion_matrix():
    scores = rc.metrics(np.array([0.9, 0.8, 0.2, 0.6, 0.1]), np.array([1, 1, 1, 0, 0], bool))
    assert (scores['true_positives'], scores['false_negatives'], scores['false_positives'],
            scores['true_negatives']) == (2, 1, 1, 1)
    assert scores['accuracy'] == pytest.approx(3 / 5)
    assert scores['precision'] == pytest.approx(2 / 3)
    assert scores['recall'] == pytest.approx(2 / 3)
    assert scores['balanced_accuracy'] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_the_split_holds_out_whole_episodes_with_success_frames_on_both_sides():
    _, success, episode = toy_frames(episodes=10)
    train, val = rc.split_by_episode(episode, success, 0.2, np.random.default_rng(0))
    assert not set(episode[train]) & set(episode[val])
    assert len(set(episode[val])) == 2 and success[val].any() and success[train].any()
    assert sorted(np.concatenate([train, val])) == list(range(len(success)))


def test_the_split_refuses_data_without_success_frames_or_too_few_episodes():
    _, success, episode = toy_frames(episodes=4)
    with pytest.raises(DatasetError, match='no success frames'):
        rc.split_by_episode(episode, np.zeros_like(success), 0.2, np.random.default_rng(0))
    one = success & (episode == 0)
    with pytest.raises(DatasetError, match='at least 2'):
        rc.split_by_episode(episode, one, 0.2, np.random.default_rng(0))


def test_batches_are_half_success_and_shifted():
    images, success, episode = toy_frames()
    rng = np.random.default_rng(0)
    batches = rc.BalancedBatches(images, success, np.arange(len(success)), 32, 2, rng)
    batch, labels = batches.sample()
    assert labels.tolist() == [1.0] * 16 + [0.0] * 16
    assert batch['front'].shape == (32, 16, 16, 3) and batch['front'].dtype == torch.float32
    bright = (batch['front'][:, 6:10, 6:10] > 200).all(dim=(1, 2, 3))
    assert bright[:16].all() and not bright[16:].any()
    unshifted = rc.BalancedBatches(images, success, np.arange(len(success)), 32, 0,
                                   np.random.default_rng(0))
    assert not torch.equal(batches.sample()[0]['front'], unshifted.sample()[0]['front'])


def test_every_layer_trains_the_trunk_included():
    images, success, episode = toy_frames()
    config = rc.ClassifierConfig(encoder=TINY, epochs=1, steps_per_epoch=3, batch_size=8,
                                 hidden_dim=8)
    torch.manual_seed(config.seed)
    initial = rc.RewardClassifier(('front', 'wrist'), (16, 16), TINY, 8, config.dropout)
    result = rc.train(images, success, episode, config, log=lambda _: None)
    trained = result.model.state_dict()
    unchanged = [k for k, v in initial.state_dict().items() if torch.equal(v, trained[k])]
    assert unchanged == []
    assert any(k.startswith('encoders.front.trunk.') for k in trained)
    with pytest.raises(ValueError, match='freeze_trunk'):
        rc.ClassifierConfig(encoder=EncoderConfig(trunk='resnet10', trunk_checkpoint='x.pt',
                                                  freeze_trunk=True))


def test_training_learns_a_visible_success_and_the_file_round_trips(tmp_path):
    images, success, episode = toy_frames()
    config = rc.ClassifierConfig(encoder=TINY, epochs=4, steps_per_epoch=25, batch_size=16,
                                 hidden_dim=16, learning_rate=3e-3)
    lines = []
    result = rc.train(images, success, episode, config, log=lines.append, threshold=0.7)
    assert len(lines) == 4 and 'precision' in lines[0] and 'recall' in lines[0]
    assert result.best['accuracy'] == 1.0
    # the same validation frames judged at the saved threshold: recall cannot rise with it
    assert result.best['threshold'] == 0.7
    assert 0 <= result.best['recall_at_threshold'] <= result.best['recall']
    crop = {'front': {'roi': [0, 0, 16, 16], 'output': [16, 16]}}
    path = rc.save(tmp_path / 'models' / 'classifier.pt', result.model, config, crop,
                   result.best, threshold=0.7)
    loaded = rc.load(path)
    assert loaded.camera_names == ('front', 'wrist') and loaded.image_size == (16, 16)
    assert loaded.crop == crop and loaded.threshold == 0.7
    assert loaded.metrics['accuracy'] == 1.0
    frame = {camera: images[camera][7] for camera in images}
    expected = rc.predict(result.model, images, [7])[0]
    assert loaded.probability(frame) == pytest.approx(float(expected), abs=1e-6)
    decoded = {c: np.frombuffer(f.tobytes(), np.uint8).reshape(f.shape)  # read-only, as from
               for c, f in frame.items()}                                # a message buffer
    with only_writable_arrays_to_torch():
        assert loaded.probability(decoded) == pytest.approx(float(expected), abs=1e-6)
    assert loaded.probability(frame) > 0.5 > loaded.probability(
        {camera: images[camera][0] for camera in images})
    with pytest.raises(ValueError, match='wrist'):
        loaded.probability({'front': frame['front']})
    with pytest.raises(ValueError, match=r'\(16, 16, 3\)'):
        loaded.probability({'front': frame['front'][:8], 'wrist': frame['wrist']})
    assert list(tmp_path.joinpath('models').iterdir()) == [path]  # no temporary left


def test_load_names_what_is_wrong_with_a_file(tmp_path):
    with pytest.raises(ConfigurationError, match='does not exist'):
        rc.load(tmp_path / 'missing.pt')
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a torch file')
    with pytest.raises(ConfigurationError, match='not a reward classifier'):
        rc.load(garbage)
    other = tmp_path / 'other.pt'
    torch.save({'format': 'something-else'}, other)
    with pytest.raises(ConfigurationError, match='something-else'):
        rc.load(other)


def test_reaches_90_percent_validation_accuracy_on_simulated_frames():
    """Frames rendered by the MuJoCo scene (both cameras, 128x128) while the scripted grasp
    reaches, grasps, lifts and holds the cube; labels from the simulator's success predicate
    (cube lifted 5 cm). Whole episodes are held out for validation.
    """
    from so101_driver.params import SimParams
    from so101_driver.sim.scripted import render_scripted_episode
    from so101_driver.sim.so101_sim import So101Sim

    with So101Sim(SimParams()) as sim:
        episodes = [render_scripted_episode(sim, seed, hold_steps=10)
                    for seed in range(200, 232)]
    images = {camera: np.concatenate([e.images[camera] for e in episodes])
              for camera in ('front', 'wrist')}
    success = np.concatenate([e.success for e in episodes])
    episode = np.concatenate([[i] * len(e.success) for i, e in enumerate(episodes)])
    assert images['front'].shape[1:] == (128, 128, 3)
    assert 0.2 < success.mean() < 0.5  # both classes well represented, not balanced
    result = rc.train(images, success, episode,
                      rc.ClassifierConfig(epochs=8, val_fraction=0.25, seed=0),
                      log=lambda _: None)
    best = result.best
    assert result.val_frames >= 200
    assert best['accuracy'] >= 0.9, best
    assert best['balanced_accuracy'] >= 0.9 and best['recall'] >= 0.85, best
