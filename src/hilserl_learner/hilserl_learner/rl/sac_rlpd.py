"""SAC + RLPD as in HIL-SERL, in the style of CleanRL's sac_continuous_action.py.

Read top to bottom: ``SACConfig``, the three losses (pure functions returning ``(loss, info)``
with shape asserts, as SERL's), then ``update``: ``utd_ratio`` critic steps on fresh batches,
the last of them joined by the actor and temperature step (as HIL-SERL's learner does), each
critic step followed by Polyak averaging of the targets. Paper references for every choice
are in docs/sac_rlpd.md.
"""
from collections.abc import Callable
import concurrent.futures
import dataclasses
import math

import torch
import torch.nn.functional as F  # noqa: N812

from hilserl_learner.rl.buffer import Batch


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC + RLPD hyperparameters (defaults: HIL-SERL / SERL)."""

    discount: float = 0.97
    """gamma; HIL-SERL uses 0.97 (0.98-0.985 for long tasks)."""
    tau: float = 0.005
    """Polyak coefficient of the target critics per critic gradient step."""
    batch_size: int = 256
    """Transitions per gradient step (half demo, half online: ``demo_fraction``)."""
    demo_fraction: float = 0.5
    """Share of each batch drawn from the demo buffer (RLPD's symmetric sampling)."""
    utd_ratio: int = 2
    """Critic gradient steps per actor step (SERL's cta_ratio, LeRobot's utd_ratio)."""
    num_critics: int = 2
    """Critic ensemble size (clipped double Q = 2; SERL/REDQ use 10 with a subset)."""
    critic_subsample: int = 0
    """Critics drawn at random for the target minimum (REDQ); 0 = all of them."""
    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden widths of the actor, critic and gripper critic MLPs."""
    activation: str = 'relu'
    """MLP activation: 'relu' (RLPD, CleanRL; 5-10x cheaper than tanh on CPU) or 'tanh'."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics, the encoder and the gripper critic."""
    temperature_lr: float = 3e-4
    """Adam learning rate of log(alpha)."""
    init_temperature: float = 1e-2
    """Initial entropy temperature alpha."""
    target_entropy_scale: float = 0.5
    """Target entropy = -scale * |A| (continuous dimensions); HIL-SERL: -|A| / 2."""
    grad_clip_norm: float = 10.0
    """Global gradient-norm clip per optimiser; 0 = off."""
    std_min: float = 1e-5
    """Lower bound of the actor's standard deviation."""
    std_max: float = 5.0
    """Upper bound of the actor's standard deviation."""
    drq_pad: int = 4
    """DrQ random shift: pad in pixels (0 = no augmentation)."""
    asymmetric_critic: bool = False
    """Feed the privileged state to the critics only (needs privileged_dim > 0)."""

    def __post_init__(self):
        object.__setattr__(self, 'hidden_dims', tuple(int(h) for h in self.hidden_dims))
        checks = {
            'discount': 0.0 <= self.discount < 1.0, 'tau': 0.0 < self.tau <= 1.0,
            'batch_size': self.batch_size >= 2, 'demo_fraction': 0 <= self.demo_fraction <= 1,
            'utd_ratio': self.utd_ratio >= 1, 'num_critics': self.num_critics >= 1,
            'critic_subsample': 0 <= self.critic_subsample <= self.num_critics,
            'hidden_dims': len(self.hidden_dims) >= 1 and min(self.hidden_dims) >= 1,
            'activation': self.activation in ('tanh', 'relu'),
            'actor_lr': self.actor_lr > 0, 'critic_lr': self.critic_lr > 0,
            'temperature_lr': self.temperature_lr > 0,
            'init_temperature': self.init_temperature > 0,
            'target_entropy_scale': math.isfinite(self.target_entropy_scale),
            'grad_clip_norm': self.grad_clip_norm >= 0,
            'std_min': 0 < self.std_min < self.std_max, 'drq_pad': self.drq_pad >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f'SACConfig.{name} is out of range: {getattr(self, name)!r}')


# --- losses ----------------------------------------------------------------------------------
@torch.no_grad()
def next_actions(agent, next_features: torch.Tensor) -> torch.Tensor:
    """Next actions a' ~ pi(.|s') for the TD target, from ``agent.actor_generator``."""
    return agent.policy.actor.sample(next_features, agent.actor_generator)[0]


def critic_loss(agent, batch: Batch, features: torch.Tensor, next_features: torch.Tensor,
                config: SACConfig, next_action: Callable[[], torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, dict]:
    """TD error of every critic against r + gamma (1 - terminated) min_i Q'_i(s', a' ~ pi).

    No entropy term in the backup (SERL's backup_entropy=False). ``truncated`` transitions
    bootstrap: only ``terminated`` zeroes the next value. ``next_action`` returns a' drawn
    elsewhere (``update`` draws it on the actor's thread during this forward pass); None: drawn
    here (``next_actions``).
    """
    batch_size, action_dim = batch.reward.shape[0], agent.action_dim
    q = agent.critic(agent.critic_input(features, batch.observation.privileged),
                     batch.action[:, :action_dim])
    with torch.no_grad():
        next_action = (next_action() if next_action is not None
                       else next_actions(agent, next_features))
        next_input = agent.critic_input(next_features, batch.next_observation.privileged)
        target_qs = agent.target_critic(next_input, next_action)
        if config.critic_subsample:
            subset = torch.randperm(config.num_critics)[:config.critic_subsample]
            target_qs = target_qs[subset]
        next_v = target_qs.min(dim=0).values
        target = batch.reward + config.discount * (1.0 - batch.terminated) * next_v
    assert next_action.shape == (batch_size, action_dim)
    assert q.shape == (config.num_critics, batch_size) and target.shape == (batch_size,)
    loss = ((q - target.unsqueeze(0)) ** 2).mean()
    return loss, {'critic_loss': loss.detach(), 'mean_q': q.detach().mean(),
                  'mean_target_q': target.mean()}


def gripper_critic_loss(agent, batch: Batch, features: torch.Tensor,
                        next_features: torch.Tensor, config: SACConfig
                        ) -> tuple[torch.Tensor, dict]:
    """Double DQN over close/stay/open; the gripper-change penalty enters this reward only."""
    batch_size = batch.reward.shape[0]
    with torch.no_grad():
        best = agent.policy.gripper(next_features).argmax(dim=-1, keepdim=True)
        next_q = agent.target_gripper(next_features).gather(-1, best).squeeze(-1)
        reward = batch.reward + batch.gripper_penalty
        target = reward + config.discount * (1.0 - batch.terminated) * next_q
    taken = batch.action[:, agent.action_dim].long().unsqueeze(-1)
    q = agent.policy.gripper(features).gather(-1, taken).squeeze(-1)
    assert q.shape == target.shape == (batch_size,)
    loss = F.mse_loss(q, target)
    return loss, {'gripper_critic_loss': loss.detach(), 'gripper_mean_q': q.detach().mean()}


def actor_loss(agent, features: torch.Tensor, privileged: torch.Tensor,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """E[alpha log pi(a|s) - mean_i Q_i(s, a)], a ~ pi (reparameterised); features detached."""
    action, log_prob = agent.policy.actor.sample(features, generator)
    qs = agent.critic(agent.critic_input(features, privileged), action)
    alpha = agent.log_alpha.exp().detach()
    assert log_prob.shape == (features.shape[0],) and qs.shape[1:] == log_prob.shape
    loss = (alpha * log_prob - qs.mean(dim=0)).mean()
    return loss, {'actor_loss': loss.detach(), 'entropy': -log_prob.detach().mean(),
                  'log_prob': log_prob.detach()}


def temperature_loss(agent, log_prob: torch.Tensor, target_entropy: float
                     ) -> tuple[torch.Tensor, dict]:
    """Alpha (H - H_target): alpha grows while the entropy H is below its target."""
    assert log_prob.dim() == 1 and not log_prob.requires_grad
    alpha = agent.log_alpha.exp()
    loss = (alpha * (-log_prob - target_entropy)).mean()
    return loss, {'temperature_loss': loss.detach(), 'temperature': alpha.detach()}


# --- one update ------------------------------------------------------------------------------
def _gradients(loss: torch.Tensor, params: list, clip: float) -> torch.Tensor:
    """Fresh gradients of ``loss`` w.r.t. ``params`` only, clipped; returns their norm before
    clipping (NaN or inf when a gradient is).
    """
    for p in params:
        p.grad = None
    loss.backward(inputs=params)
    if clip:
        return torch.nn.utils.clip_grad_norm_(params, clip)
    return torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])


def _all_finite(*values: torch.Tensor) -> bool:
    return all(math.isfinite(float(v)) for v in values)


def actor_and_temperature_gradients(agent, features: torch.Tensor, privileged: torch.Tensor,
                                    config: SACConfig) -> dict:
    """Gradients of the actor and temperature losses (no step); returns their stats.

    Only the actor's parameters and log(alpha) receive gradients (the critic is read, never
    written), so this may run on another thread while the critic's gradients are computed.
    Its noise comes from ``agent.actor_generator``: the same numbers on either thread.
    """
    loss_a, info = actor_loss(agent, features, privileged, agent.actor_generator)
    log_prob = info.pop('log_prob')
    loss_t, info_t = temperature_loss(agent, log_prob, agent.target_entropy)
    info.update(info_t)
    agent.log_alpha.grad = None
    loss_t.backward(inputs=[agent.log_alpha])
    info['grad_norm_actor'] = _gradients(loss_a, agent.actor_params, config.grad_clip_norm)
    return info


def _run(executor: concurrent.futures.Executor | None, function, *args
         ) -> concurrent.futures.Future:
    """``function(*args)`` on ``executor``, or right here when there is none."""
    if executor is not None:
        return executor.submit(function, *args)
    future = concurrent.futures.Future()
    future.set_result(function(*args))
    return future


def update(agent, sample: Callable[[], Batch], config: SACConfig,
           actor_executor: concurrent.futures.Executor | None = None) -> dict[str, torch.Tensor]:
    """``utd_ratio`` critic steps, each followed by Polyak averaging of the targets (SERL's
    critic update), the last one together with the actor and temperature step (all three
    from the same parameters, as HIL-SERL's learner).

    With ``actor_executor`` (one worker thread) the actor's work runs there: each step's next
    actions while this thread evaluates the critic, then the actor's gradients while this
    thread computes the critic's. The same result (the actor's noise has its own generator,
    drawn in the same order), sooner when torch runs single-threaded (state only on 2 cores:
    78-96 instead of 55-60 updates/s).

    A step whose loss or gradient norm is NaN or inf changes nothing (no optimiser step, no
    Polyak; the last step skips the actor's and temperature's steps too): one bad batch cannot
    poison the networks. ``info['nonfinite_steps']`` counts them, ``info['actor_stepped']``
    says whether the actor's step was taken. Returns detached stats.
    """
    info = {'nonfinite_steps': 0, 'actor_stepped': False}
    for step in range(config.utd_ratio):
        # 1. Critic (+ encoder, + gripper critic) on a fresh half-demo half-online batch.
        batch = sample()
        features = agent.encode(batch.observation)
        with torch.no_grad():
            next_features = agent.encode(batch.next_observation)
        next_action = _run(actor_executor, next_actions, agent, next_features)
        last = step == config.utd_ratio - 1
        if last:
            # 2. Actor + temperature on the same batch; features detached (the encoder learns
            # from the critic only, as DrQ-v2).
            actor_job = _run(actor_executor, actor_and_temperature_gradients, agent,
                             features.detach(), batch.observation.privileged, config)
        loss, info_c = critic_loss(agent, batch, features, next_features, config,
                                   next_action.result)
        info.update(info_c)
        if agent.policy.gripper is not None:
            loss_g, info_g = gripper_critic_loss(agent, batch, features, next_features, config)
            loss = loss + loss_g
            info.update(info_g)
        info['grad_norm_critic'] = _gradients(loss, agent.critic_params, config.grad_clip_norm)
        checked = [loss.detach(), info['grad_norm_critic']]
        if last:
            info.update(actor_job.result())  # before any step: the actor read the old critic
            checked += [info['actor_loss'], info['grad_norm_actor'], agent.log_alpha.grad]
        if not _all_finite(*checked):
            info['nonfinite_steps'] += 1
            continue
        if last:
            agent.actor_optimizer.step()
            agent.temperature_optimizer.step()
            info['actor_stepped'] = True
        agent.critic_optimizer.step()
        # 3. Polyak after every critic step: the next step's TD target already uses it.
        polyak(agent, config.tau)
    return info


@torch.no_grad()
def polyak(agent, weight: float) -> None:
    """Target <- (1 - weight) target + weight online, for every target network."""
    for target, online in agent.target_pairs():
        for t, o in zip(target.parameters(), online.parameters(), strict=True):
            t.lerp_(o, weight)


def bc_loss(agent, batch: Batch) -> tuple[torch.Tensor, dict]:
    """Behaviour cloning of the continuous action: MSE between tanh(mean) and the demo action.

    Trains the encoder too (the critic starts from demo-informed features). The mean squared
    error keeps the policy's standard deviation untouched, so SAC's entropy tuning starts from
    a sane exploration level (a log-likelihood loss would collapse it).
    """
    features = agent.encode(batch.observation)
    predicted = agent.policy.actor.mode(features)
    expert = batch.action[:, :agent.action_dim]
    assert predicted.shape == expert.shape
    loss = F.mse_loss(predicted, expert)
    return loss, {'bc_loss': loss.detach()}
