"""SAC + RLPD losses and update on tiny networks: shapes, signs, bootstrapping, UTD, Polyak."""
import concurrent.futures
import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from hilserl_learner.observation import ObservationSpec
from hilserl_learner.rl.agent import SACAgent
from hilserl_learner.rl.buffer import Batch, ObsBatch
from hilserl_learner.rl.encoders import EncoderConfig
from hilserl_learner.rl.networks import Actor, CriticEnsemble
from hilserl_learner.rl.sac_rlpd import (
    SACConfig,
    actor_loss,
    critic_loss,
    gripper_critic_loss,
    next_actions,
    polyak,
    temperature_loss,
    update,
)

torch.set_num_threads(1)
B = 8


def make_agent(cameras=(), gripper=False, privileged=0, **overrides):
    spec = ObservationSpec(state_dim=3, action_dim=2, camera_names=cameras, image_size=(16, 16),
                           privileged_dim=privileged, discrete_gripper=gripper)
    config = SACConfig(batch_size=B, hidden_dims=(16, 16), num_critics=overrides.pop('n', 2),
                       asymmetric_critic=privileged > 0, **overrides)
    encoder = EncoderConfig(conv_channels=(4, 4), conv_patch_px=4, image_latent_dim=8,
                            proprio_latent_dim=8, privileged_latent_dim=4)
    torch.manual_seed(0)
    return SACAgent(spec, config, encoder), config


def make_batch(agent, terminated=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    spec = agent.spec

    def obs():
        return ObsBatch(torch.randn(B, spec.state_dim, generator=g),
                        {c: torch.randint(0, 256, (B, 16, 16, 3), generator=g).float()
                         for c in spec.camera_names},
                        torch.randn(B, spec.privileged_dim, generator=g))
    action = torch.rand(B, spec.action_dim, generator=g) * 2 - 1
    if spec.discrete_gripper:
        action = torch.cat([action, torch.randint(0, 3, (B, 1), generator=g).float()], -1)
    return Batch(obs(), action, torch.rand(B, generator=g), obs(),
                 torch.full((B,), terminated), torch.full((B,), -0.02), torch.zeros(B))


def features(agent, batch):
    f = agent.encode(batch.observation)
    with torch.no_grad():
        nf = agent.encode(batch.next_observation)
    return f, nf


@pytest.mark.parametrize('cameras,gripper,privileged', [((), False, 0), (('front',), True, 2)])
def test_loss_shapes_and_signs(cameras, gripper, privileged):
    agent, config = make_agent(cameras, gripper, privileged)
    batch = make_batch(agent)
    f, nf = features(agent, batch)
    loss, info = critic_loss(agent, batch, f, nf, config)
    assert loss.shape == () and loss.item() >= 0 and loss.requires_grad
    assert set(info) == {'critic_loss', 'mean_q', 'mean_target_q'}
    loss_a, info_a = actor_loss(agent, f.detach(), batch.observation.privileged)
    assert loss_a.shape == () and info_a['log_prob'].shape == (B,)
    loss_t, info_t = temperature_loss(agent, info_a['log_prob'], agent.target_entropy)
    assert loss_t.shape == () and math.isclose(info_t['temperature'].item(), 0.01, rel_tol=1e-6)
    if gripper:
        loss_g, _ = gripper_critic_loss(agent, batch, f, nf, config)
        assert loss_g.shape == () and loss_g.item() >= 0


def test_terminated_does_not_bootstrap_and_truncated_does():
    agent, config = make_agent()
    with torch.no_grad():  # make every target Q exactly 5
        agent.target_critic.net[-1].weight.zero_()
        agent.target_critic.net[-1].bias.fill_(5.0)
    terminal, truncated = make_batch(agent, terminated=1.0), make_batch(agent, terminated=0.0)
    for batch, expected in ((terminal, terminal.reward),
                            (truncated, truncated.reward + config.discount * 5.0)):
        f, nf = features(agent, batch)
        _, info = critic_loss(agent, batch, f, nf, config)
        assert torch.isclose(info['mean_target_q'], expected.mean(), atol=1e-5)


def test_no_entropy_in_the_backup_and_critic_subset():
    agent, config = make_agent(n=5, critic_subsample=2)
    batch = make_batch(agent)
    f, nf = features(agent, batch)
    with torch.no_grad():
        agent.target_critic.net[-1].weight.zero_()
        for i in range(5):
            agent.target_critic.net[-1].bias[i].fill_(float(i))
    targets = set()
    for _ in range(30):
        _, info = critic_loss(agent, batch, f, nf, config)
        targets.add(round((info['mean_target_q'] - batch.reward.mean()).item()
                          / config.discount, 4))
    # min over a random pair of the constant heads 0..3 (4 is never a minimum of a pair)
    assert targets <= {0.0, 1.0, 2.0, 3.0} and len(targets) >= 2


def test_gripper_target_uses_double_dqn_and_the_penalty():
    agent, config = make_agent(gripper=True)
    # Online heads [1, 3, 2] pick 'stay' (index 1), target heads [10, 20, 40]: Double DQN
    # bootstraps from the target's value of the online argmax (20), neither from the target's
    # own maximum (40) nor from the online value (3).
    with torch.no_grad():
        agent.policy.gripper.net[-1].weight.zero_()
        agent.policy.gripper.net[-1].bias.copy_(torch.tensor([1.0, 3.0, 2.0]))
        agent.target_gripper.net[-1].weight.zero_()
        agent.target_gripper.net[-1].bias.copy_(torch.tensor([10.0, 20.0, 40.0]))
    online = torch.tensor([1.0, 3.0, 2.0])
    for terminated, next_q in ((0.0, 20.0), (1.0, 0.0)):  # argmax online = 1 -> target 20
        batch = make_batch(agent, terminated=terminated)
        f, nf = features(agent, batch)
        loss, info = gripper_critic_loss(agent, batch, f, nf, config)
        q = online[batch.action[:, 2].long()]
        target = batch.reward + batch.gripper_penalty + config.discount * next_q
        assert torch.isclose(loss, ((q - target) ** 2).mean(), atol=1e-4), terminated
        assert torch.isclose(info['gripper_mean_q'], q.mean())
    # the penalty reaches this critic's reward only, not the SAC critic's target
    agent.target_critic.net[-1].weight.data.zero_()
    agent.target_critic.net[-1].bias.data.fill_(0.0)
    batch = make_batch(agent, terminated=1.0)
    f, nf = features(agent, batch)
    _, info = critic_loss(agent, batch, f, nf, config)
    assert torch.isclose(info['mean_target_q'], batch.reward.mean())


def test_temperature_rises_when_entropy_is_below_target():
    agent, _ = make_agent()
    low_entropy_log_prob = torch.full((B,), 10.0)  # entropy -10 < target -1
    loss, _ = temperature_loss(agent, low_entropy_log_prob, agent.target_entropy)
    loss.backward()
    assert agent.log_alpha.grad.item() < 0  # gradient descent increases log(alpha)
    assert agent.target_entropy == -1.0  # -|A| / 2 with |A| = 2


def test_update_reads_utd_batches_steps_actor_once_and_polyaks():
    agent, config = make_agent(('front',), gripper=True, utd_ratio=3)
    calls = []

    def sample():
        calls.append(1)
        return make_batch(agent, seed=len(calls))
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    online_after_each_step, targets_seen = [], []
    critic_step, critic_forward = agent.critic_optimizer.step, agent.target_critic.forward

    def recording_step():
        critic_step()
        online_after_each_step.append(agent.critic.net[0].weight.detach().clone())

    def recording_target(*args):
        targets_seen.append(agent.target_critic.net[0].weight.detach().clone())
        return critic_forward(*args)
    agent.critic_optimizer.step = recording_step
    agent.target_critic.forward = recording_target
    info = update(agent, sample, config)
    assert len(calls) == 3
    assert agent.actor_optimizer.state[agent.actor_params[0]]['step'].item() == 1
    assert agent.critic_optimizer.state[agent.critic_params[0]]['step'].item() == 3
    assert all(np.isfinite(float(v)) for v in info.values())
    moved = agent.state_dict()
    # After every critic step: target = lerp(target, online, tau), and the next step's TD
    # target reads the moved target (SERL).
    expected = before['target_critic.net.0.weight']
    assert len(online_after_each_step) == len(targets_seen) == 3
    for seen, online in zip(targets_seen, online_after_each_step, strict=True):
        assert torch.equal(seen, expected)
        expected = expected.lerp(online, config.tau)
    assert torch.allclose(moved['target_critic.net.0.weight'], expected, atol=1e-7)
    assert not torch.equal(expected, before['target_critic.net.0.weight'])
    assert not torch.equal(before['policy.actor.mean.weight'], moved['policy.actor.mean.weight'])
    assert not torch.equal(before['log_alpha'], moved['log_alpha'])


def test_actor_and_temperature_step_read_the_critic_before_its_step():
    """HIL-SERL's final joint update: all three losses from the same parameters."""
    agent, config = make_agent(utd_ratio=2)
    before = copy.deepcopy(agent)
    batches = [make_batch(agent, seed=1), make_batch(agent, seed=2)]
    torch.manual_seed(3)
    info = update(agent, lambda: batches.pop(0), config)
    # Replay on the copy: one critic step, then the actor loss on the second batch.
    torch.manual_seed(3)
    second = make_batch(agent, seed=2)
    update_critic_only = dataclasses.replace(config, utd_ratio=1)
    first = make_batch(agent, seed=1)
    f = before.encode(first.observation)
    with torch.no_grad():
        nf = before.encode(first.next_observation)
    # The actor's generator draws each step's next actions, then the actor loss's noise.
    loss, _ = critic_loss(before, first, f, nf, update_critic_only,
                          lambda: next_actions(before, nf))
    before.critic_optimizer.zero_grad()
    loss.backward(inputs=before.critic_params)
    torch.nn.utils.clip_grad_norm_(before.critic_params, config.grad_clip_norm)
    before.critic_optimizer.step()
    with torch.no_grad():
        next_actions(before, before.encode(second.next_observation))
        expected, _ = actor_loss(before, before.encode(second.observation),
                                 second.observation.privileged, before.actor_generator)
    assert torch.allclose(info['actor_loss'], expected, atol=1e-6)


def test_actor_step_on_a_worker_thread_gives_identical_parameters():
    results = []
    for executor in (None, concurrent.futures.ThreadPoolExecutor(1)):
        agent, config = make_agent(('front',), gripper=True, utd_ratio=2)
        torch.manual_seed(7)
        seeds = iter(range(100))

        def sample(agent=agent, seeds=seeds):
            return make_batch(agent, seed=next(seeds))
        for _ in range(3):
            update(agent, sample, config, executor)
        results.append(agent.state_dict())
        if executor is not None:
            executor.shutdown()
    for key, value in results[0].items():
        assert torch.equal(value, results[1][key]), key


def test_tanh_gaussian_log_prob_and_its_gradients_match_torch_distributions():
    actor = Actor(5, 3, (16,), 'relu')
    features = torch.randn(64, 5)
    action, log_prob = actor.sample(features, torch.Generator().manual_seed(4))
    mean, log_std = actor(features)
    noise = torch.randn(mean.shape, generator=torch.Generator().manual_seed(4))
    base = torch.distributions.Normal(mean, log_std.exp())
    squashed = torch.distributions.TransformedDistribution(
        base, [torch.distributions.TanhTransform(cache_size=1)])
    expected_action = torch.tanh(mean + log_std.exp() * noise)
    expected = squashed.log_prob(expected_action).sum(-1)
    assert torch.allclose(action, expected_action, atol=1e-6)
    assert torch.allclose(log_prob, expected, atol=1e-4)
    grads = torch.autograd.grad(log_prob.sum(), list(actor.parameters()))
    expected_grads = torch.autograd.grad(expected.sum(), list(actor.parameters()))
    for got, want in zip(grads, expected_grads, strict=True):
        assert torch.allclose(got, want, atol=1e-3, rtol=1e-3)


def test_critic_ensemble_is_n_independent_layer_normed_mlps():
    """Each member equals a plain Linear -> LayerNorm -> ReLU MLP with that member's weights,
    in value and in every gradient (the batched, in-place and multiply-sum forms are exact)."""
    torch.manual_seed(3)
    critic = CriticEnsemble(5, 2, (16, 8), num_critics=3, activation='relu')
    with torch.no_grad():  # non-trivial LayerNorm affines
        for p in critic.parameters():
            p.add_(0.1 * torch.randn_like(p))
    features = torch.randn(32, 5, requires_grad=True)
    action = torch.randn(32, 2)
    q = critic(features, action)
    assert q.shape == (3, 32)
    q.sum().backward()

    reference_grad = torch.zeros_like(features)
    for member in range(3):
        x = torch.cat([features, action], -1)
        params = []
        for layer in critic.net:
            name = type(layer).__name__
            if name in ('EnsembleLinear', 'EnsembleHead'):
                w = layer.weight[member].detach().clone().requires_grad_()
                b = layer.bias[member, 0].detach().clone().requires_grad_()
                x, params = x @ w + b, params + [(layer, w, b)]
            elif name == 'EnsembleLayerNorm':
                w = layer.weight[member, 0].detach().clone().requires_grad_()
                b = layer.bias[member, 0].detach().clone().requires_grad_()
                x = torch.nn.functional.layer_norm(x, x.shape[-1:], w, b)
                params.append((layer, w, b))
            else:
                x = torch.relu(x)
        expected = x.squeeze(-1)
        assert torch.allclose(q[member], expected, atol=1e-5)
        inputs = [t for _, w, b in params for t in (w, b)] + [features]
        grads = torch.autograd.grad(expected.sum(), inputs)
        reference_grad += grads[-1]
        for (layer, _, _), gw, gb in zip(params, grads[0:-1:2], grads[1:-1:2], strict=True):
            assert torch.allclose(layer.weight.grad[member].reshape(gw.shape), gw, atol=1e-5)
            assert torch.allclose(layer.bias.grad[member].reshape(gb.shape), gb, atol=1e-5)
    assert torch.allclose(features.grad, reference_grad, atol=1e-5)


def test_actor_loss_does_not_train_the_critic_or_encoder():
    agent, _ = make_agent()
    batch = make_batch(agent)
    f, _ = features(agent, batch)
    loss, _ = actor_loss(agent, f.detach(), batch.observation.privileged)
    loss.backward(inputs=agent.actor_params)
    assert all(p.grad is None for p in agent.critic.parameters())
    assert all(p.grad is not None for p in agent.actor_params)


def test_gradients_are_clipped():
    agent, config = make_agent(grad_clip_norm=1e-3)
    info = update(agent, lambda: make_batch(agent), config)
    assert info['grad_norm_critic'] > 1e-3  # the norm before clipping is reported
    grads = torch.stack([p.grad.norm() for p in agent.critic_params if p.grad is not None])
    assert torch.linalg.vector_norm(grads) <= 1e-3 * 1.01


def with_nan_reward(batch: Batch) -> Batch:
    reward = batch.reward.clone()
    reward[0] = math.nan
    return batch._replace(reward=reward)


@pytest.mark.parametrize('clip', [10.0, 0.0])
def test_a_step_with_a_nan_loss_changes_nothing(clip):
    agent, config = make_agent(gripper=True, utd_ratio=1, grad_clip_norm=clip)
    before = copy.deepcopy(agent.state_dict())
    info = update(agent, lambda: with_nan_reward(make_batch(agent)), config)
    assert info['nonfinite_steps'] == 1 and math.isnan(info['critic_loss'])
    for key, value in agent.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert all(not state for state in agent.critic_optimizer.state.values())  # no Adam step


def test_only_the_nan_step_of_an_update_is_skipped():
    """utd_ratio 2, the second batch poisoned: the first critic step and its Polyak stand, the
    second and the actor's and temperature's steps (taken with it) do not."""
    agent, config = make_agent(utd_ratio=2)
    reference, _ = make_agent(utd_ratio=1)
    batches = [make_batch(agent, seed=1), with_nan_reward(make_batch(agent, seed=2))]
    torch.manual_seed(5)
    info = update(agent, lambda: batches.pop(0), config)
    assert info['nonfinite_steps'] == 1
    critic_only = dataclasses.replace(config, utd_ratio=1)
    torch.manual_seed(5)
    # One clean critic step on the same batch, then the reference's actor step is undone.
    actor_before = copy.deepcopy(reference.policy.actor.state_dict())
    update(reference, lambda: make_batch(reference, seed=1), critic_only)
    reference.policy.actor.load_state_dict(actor_before)
    for module in ('critic', 'target_critic'):
        for key, value in getattr(agent, module).state_dict().items():
            assert torch.equal(value, getattr(reference, module).state_dict()[key]), key
    for key, value in agent.policy.actor.state_dict().items():
        assert torch.equal(value, actor_before[key]), key
    assert agent.log_alpha.item() == pytest.approx(math.log(config.init_temperature))


def test_polyak_identity_and_copy():
    agent, _ = make_agent()
    with torch.no_grad():
        agent.critic.net[0].weight.add_(1.0)
    polyak(agent, 0.0)
    assert not torch.equal(agent.target_critic.net[0].weight, agent.critic.net[0].weight)
    polyak(agent, 1.0)
    assert torch.equal(agent.target_critic.net[0].weight, agent.critic.net[0].weight)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match='discount'):
        SACConfig(discount=1.0)
    with pytest.raises(ValueError, match='critic_subsample'):
        SACConfig(num_critics=2, critic_subsample=3)
