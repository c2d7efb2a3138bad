"""The SAC + RLPD learner really learns: a sparse-reward point-mass reach, with demos.

The task: a point in [-1, 1]^2 moves by 0.15 * action per step; reward 1 and ``terminated``
when it is within 0.1 of a random goal, ``truncated`` after 40 steps. The observation is
(position, goal - position). 20 demonstrations of a noisy scripted controller fill the demo
buffer, so every batch is half demos, half online data (RLPD). The same ``Learner`` code the
node runs trains it, one update per environment step after ``learning_starts``.

Threshold: mean return (= success rate) of the deterministic policy >= 0.9 over 30 evaluation
episodes, within 5000 environment steps, from seed 0 (it typically gets there in ~2000 steps
and 30-40 s on one core). The untrained policy scores < 0.3.
"""
import numpy as np
import pytest
import torch

from hilserl_learner.learner import Learner
from hilserl_learner.observation import Observation, Transition
from hilserl_learner.params import LearnerParams
from hilserl_learner.rl.encoders import EncoderConfig
from hilserl_learner.rl.sac_rlpd import SACConfig

pytestmark = pytest.mark.slow

RETURN_THRESHOLD = 0.9
MAX_ENV_STEPS = 5000


class PointReach:
    """2-D point-mass reach with a sparse reward (written for this test, numpy only)."""

    step_size, radius, max_steps = 0.15, 0.1, 40

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def reset(self) -> Observation:
        self.position = self.rng.uniform(-1, 1, 2)
        self.goal = self.rng.uniform(-1, 1, 2)
        self.steps = 0
        return self.observation()

    def observation(self) -> Observation:
        return Observation(np.r_[self.position, self.goal - self.position].astype(np.float32))

    def step(self, action: np.ndarray):
        self.position = np.clip(self.position + self.step_size * np.clip(action, -1, 1), -1, 1)
        self.steps += 1
        success = bool(np.linalg.norm(self.goal - self.position) < self.radius)
        truncated = not success and self.steps >= self.max_steps
        return self.observation(), float(success), success, truncated

    def scripted_action(self, noise: float) -> np.ndarray:
        direction = (self.goal - self.position) / self.step_size
        return np.clip(direction + noise * self.rng.standard_normal(2), -1, 1)


def run_episode(env, choose, episode_id=0, sink=None) -> float:
    obs, total = env.reset(), 0.0
    for step in range(env.max_steps):
        action = choose(obs).astype(np.float32)
        next_obs, reward, terminated, truncated = env.step(action)
        if sink is not None:
            sink(Transition(obs, action, reward, next_obs, terminated, truncated,
                            episode_id=episode_id, step_index=step, source='test'))
        total += reward
        obs = next_obs
        if terminated or truncated:
            break
    return total


def policy_action(learner, deterministic):
    def choose(obs):
        with torch.no_grad():
            state = torch.from_numpy(obs.state)[None]
            return learner.agent.policy.act(state, {}, deterministic)[0].numpy()
    return choose


def evaluate(learner) -> float:
    env = PointReach(seed=1234)
    return float(np.mean([run_episode(env, policy_action(learner, True)) for _ in range(30)]))


def test_sac_rlpd_solves_point_reach_with_demos(tmp_path):
    torch.set_num_threads(1)
    params = LearnerParams(state_dim=4, action_dim=2, online_capacity=10_000,
                           demo_capacity=2_000, learning_starts=300, seed=0,
                           run_dir=str(tmp_path))
    sac = SACConfig(batch_size=128, hidden_dims=(64, 64))
    learner = Learner(params, sac, EncoderConfig())
    env = PointReach(seed=0)

    demos = []
    for episode in range(20):
        run_episode(env, lambda obs: env.scripted_action(noise=0.2), episode, demos.append)
    assert learner.add_demo_transitions(demos) == len(demos)
    initial = evaluate(learner)
    assert initial < 0.3

    steps, episode, returns = 0, 100, []
    while steps < MAX_ENV_STEPS:
        obs = env.reset()
        for step in range(env.max_steps):
            if learner.ready:
                action = policy_action(learner, False)(obs).astype(np.float32)
            else:
                action = env.rng.uniform(-1, 1, 2).astype(np.float32)
            next_obs, reward, terminated, truncated = env.step(action)
            assert learner.add_transition(Transition(
                obs, action, reward, next_obs, terminated, truncated, episode_id=episode,
                step_index=step, source='test'))
            obs, steps = next_obs, steps + 1
            if learner.ready:
                learner.train_step()
            if terminated or truncated:
                break
        episode += 1
        if episode % 25 == 0:
            returns.append(evaluate(learner))
            if returns[-1] >= RETURN_THRESHOLD:
                break
    assert learner.mixer.demo_count() == sac.batch_size // 2  # RLPD: half of every batch
    assert returns and returns[-1] >= RETURN_THRESHOLD, (
        f'eval returns {returns} after {steps} steps (initial {initial})')
