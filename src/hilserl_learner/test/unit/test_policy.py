"""Policy module: weights round trip, checksum, frozen trunks never shipped, any image size."""
import json

import numpy as np
import pytest
import torch

from hilserl_learner.errors import ConfigurationError, WeightsError
from hilserl_learner.learner import Learner
from hilserl_learner.observation import Observation
from hilserl_learner.params import LearnerParams
from hilserl_learner.policy import Policy, decode_weights, encode_weights
from hilserl_learner.rl.encoders import EncoderConfig, ImageEncoder, ResNet10Trunk
from hilserl_learner.rl.sac_rlpd import SACConfig
from hilserl_testing.arrays import only_writable_arrays_to_torch

torch.set_num_threads(1)
SAC = SACConfig(batch_size=8, hidden_dims=(16, 16))


def make_learner(tmp_path, encoder: EncoderConfig, size=(16, 16), gripper=True) -> Learner:
    params = LearnerParams(state_dim=3, action_dim=3, discrete_gripper=gripper,
                           camera_names=('front', 'wrist'), image_height_px=size[0],
                           image_width_px=size[1], online_capacity=50, demo_capacity=10,
                           run_dir=str(tmp_path / 'run'))
    return Learner(params, SAC, encoder)


def observation(size, seed=0) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(rng.standard_normal(3).astype(np.float32),
                       {c: rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                        for c in ('front', 'wrist')})


def agent_action(learner, obs):
    with torch.no_grad():
        state = torch.from_numpy(obs.state)[None]
        images = {c: torch.from_numpy(v)[None].float() for c, v in obs.images.items()}
        return learner.agent.policy.act(state, images)[0].numpy()


@pytest.fixture
def resnet_checkpoint(tmp_path):
    torch.manual_seed(7)
    path = tmp_path / 'resnet10.pt'
    state = ResNet10Trunk().state_dict()
    for key, value in state.items():  # pretrained-like BatchNorm statistics, not 0 and 1
        if key.endswith('running_mean'):
            value.normal_(0.0, 0.1)
        elif key.endswith('running_var'):
            value.uniform_(0.5, 2.0)
    state['fc.weight'] = torch.zeros(10, 512)  # a classifier head is ignored
    torch.save(state, path)
    return path


SMALL_CONV = EncoderConfig(conv_channels=(4, 8), conv_patch_px=4, image_latent_dim=8,
                           proprio_latent_dim=8)


def test_weights_round_trip_reproduces_the_learners_policy(tmp_path):
    learner = make_learner(tmp_path, SMALL_CONV)
    weights = learner.publish_weights()
    policy = Policy.from_config_json(weights.config_json)
    obs = observation((16, 16))
    assert not np.allclose(policy.act(obs), agent_action(learner, obs))  # fresh init differs
    policy.load_weights(weights.blob, weights.checksum, weights.version)
    action = policy.act(obs)
    np.testing.assert_allclose(action, agent_action(learner, obs), atol=1e-6)
    assert action.shape == (4,) and np.all(np.abs(action[:3]) <= 1)
    decoded = Observation(obs.state, {c: np.frombuffer(i.tobytes(), np.uint8).reshape(i.shape)
                                      for c, i in obs.images.items()})  # read-only buffers
    with only_writable_arrays_to_torch():
        np.testing.assert_allclose(policy.act(decoded), action, atol=1e-6)
    assert action[3] in (0.0, 1.0, 2.0)
    assert policy.version == weights.version
    stochastic = [policy.act(obs, deterministic=False)[:3] for _ in range(3)]
    assert not np.allclose(stochastic[0], stochastic[1])
    assert not policy.network.training
    assert all(not p.requires_grad for p in policy.network.parameters())


def test_payload_is_checked(tmp_path):
    learner = make_learner(tmp_path, SMALL_CONV)
    weights = learner.publish_weights()
    policy = Policy.from_config_json(weights.config_json)
    with pytest.raises(WeightsError, match='checksum'):
        policy.load_weights(weights.blob + b'x', weights.checksum)
    state = decode_weights(weights.blob, weights.checksum)
    state.pop('actor.mean.weight')
    blob, checksum = encode_weights(state)
    with pytest.raises(WeightsError, match='missing'):
        policy.load_weights(blob, checksum)
    with pytest.raises(ConfigurationError, match='format'):
        Policy({**json.loads(weights.config_json), 'format': 'other'})


def test_frozen_resnet_trunk_is_never_sent_and_loaded_locally(tmp_path, resnet_checkpoint):
    encoder = EncoderConfig(trunk='resnet10', trunk_checkpoint=str(resnet_checkpoint),
                            freeze_trunk=True, projection_channels=16, image_latent_dim=8,
                            proprio_latent_dim=8)
    learner = make_learner(tmp_path, encoder, size=(64, 64))
    weights = learner.publish_weights()
    keys = decode_weights(weights.blob, weights.checksum).keys()
    assert not any(key.startswith('encoder.') and '.trunk.' in key for key in keys)
    assert any('.projection.' in key for key in keys)
    trunk_bytes = sum(v.numel() * 4 for v in ResNet10Trunk().state_dict().values())
    assert len(weights.blob) < trunk_bytes / 10

    config = json.loads(weights.config_json)
    assert config['encoder']['trunk_checkpoint_sha256']
    policy = Policy(config)
    policy.load_weights(weights.blob, weights.checksum, weights.version)
    obs = observation((64, 64))
    np.testing.assert_allclose(policy.act(obs), agent_action(learner, obs), atol=1e-5)

    # The actor refuses a different local trunk file.
    torch.save(ResNet10Trunk().state_dict(), resnet_checkpoint)
    with pytest.raises(ConfigurationError, match='sha256'):
        Policy(config)


def test_a_trained_resnet_trunk_is_sent_without_its_fixed_batch_norm_statistics(
        tmp_path, resnet_checkpoint):
    encoder = EncoderConfig(trunk='resnet10', trunk_checkpoint=str(resnet_checkpoint),
                            freeze_trunk=False, image_latent_dim=8, proprio_latent_dim=8)
    learner = make_learner(tmp_path, encoder, size=(32, 32))
    with torch.no_grad():  # as if training had moved the trunk
        for parameter in learner.agent.policy.encoder.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    weights = learner.publish_weights()
    keys = decode_weights(weights.blob, weights.checksum).keys()
    assert 'encoder.cameras.front.trunk.bn1.weight' in keys  # trained: sent
    assert not any(key.endswith(('running_mean', 'running_var', 'num_batches_tracked'))
                   for key in keys)  # held in eval mode: the actor has them from the file
    policy = Policy.from_config_json(weights.config_json)
    policy.load_weights(weights.blob, weights.checksum, weights.version)
    obs = observation((32, 32))
    np.testing.assert_allclose(policy.act(obs), agent_action(learner, obs), atol=1e-5)


def test_cached_trunk_features_match_the_pixel_path(tmp_path, resnet_checkpoint):
    encoder = EncoderConfig(trunk='resnet10', trunk_checkpoint=str(resnet_checkpoint),
                            freeze_trunk=True, image_latent_dim=8, proprio_latent_dim=8)
    learner = make_learner(tmp_path, encoder, size=(64, 64), gripper=False)
    buffer = learner.mixer.online
    assert buffer.frames['front'].dtype == np.float16
    assert buffer.frames['front'].shape[1:] == (512, 2, 2)
    obs = observation((64, 64))
    frame = obs.images['front']
    decoded = np.frombuffer(frame.tobytes(), np.uint8).reshape(1, *frame.shape)  # read-only
    with only_writable_arrays_to_torch():
        stored = buffer.frame_transform('front', decoded)
    features = torch.from_numpy(stored).float()
    camera = learner.agent.policy.encoder.cameras['front']
    with torch.no_grad():
        from_cache = camera.head(features)
        from_pixels = camera(torch.from_numpy(obs.images['front'])[None].float())
    torch.testing.assert_close(from_cache, from_pixels, atol=2e-2, rtol=0)


@pytest.mark.parametrize('trunk', ['conv', 'resnet10'])
def test_any_image_size_works(tmp_path, trunk):
    encoder = EncoderConfig(trunk=trunk, conv_channels=(4, 8), image_latent_dim=8,
                            proprio_latent_dim=8)
    image_encoder = ImageEncoder(encoder, (96, 160))
    assert image_encoder(torch.zeros(2, 96, 160, 3)).shape == (2, 8)
    learner = make_learner(tmp_path, encoder, size=(40, 72))
    weights = learner.publish_weights()
    policy = Policy.from_config_json(weights.config_json)
    policy.load_weights(weights.blob, weights.checksum)
    assert policy.act(observation((40, 72))).shape == (4,)


def test_a_missing_trunk_checkpoint_is_a_configuration_error(tmp_path):
    encoder = EncoderConfig(trunk='resnet10', trunk_checkpoint=str(tmp_path / 'missing.pt'),
                            freeze_trunk=True)
    with pytest.raises((ConfigurationError, OSError)):
        make_learner(tmp_path, encoder, size=(64, 64))
