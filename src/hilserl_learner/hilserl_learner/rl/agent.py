"""The SAC + RLPD agent: every network, target network, the temperature and the optimisers.

Layout: ``policy`` (``PolicyNetwork``: encoder, actor, gripper critic; what the actor runs),
``privileged`` (the asymmetric critic's extra encoder), ``critic`` and its Polyak copy
``target_critic``, ``target_gripper``, ``log_alpha``. Optimisers: the critic's holds the
encoder, privileged encoder, critics and gripper critic; the actor's only the actor head.
"""
import copy
import math

import numpy as np
import torch
from torch import nn

from hilserl_learner.errors import ConfigurationError
from hilserl_learner.observation import ObservationSpec
from hilserl_learner.rl.buffer import ObsBatch, ReplayBuffer
from hilserl_learner.rl.encoders import EncoderConfig, dense_ln_tanh, float_pixels
from hilserl_learner.rl.networks import CriticEnsemble, PolicyNetwork
from hilserl_learner.rl.sac_rlpd import SACConfig


class SACAgent(nn.Module):
    """Networks and optimisers of one learner (see the module docstring)."""

    def __init__(self, spec: ObservationSpec, config: SACConfig, encoder_config: EncoderConfig):
        super().__init__()
        if config.asymmetric_critic and spec.privileged_dim == 0:
            raise ConfigurationError('asymmetric_critic needs privileged_dim > 0')
        self.spec, self.config, self.encoder_config = spec, config, encoder_config
        self.action_dim = spec.action_dim
        self.features_cached = encoder_config.features_cached
        self.policy = PolicyNetwork(spec, encoder_config, config.hidden_dims, config.activation,
                                    config.std_min, config.std_max)
        width = self.policy.encoder.output_dim
        self.privileged = None
        if config.asymmetric_critic:
            self.privileged = dense_ln_tanh(spec.privileged_dim,
                                            encoder_config.privileged_latent_dim)
            width += encoder_config.privileged_latent_dim
        self.critic = CriticEnsemble(width, spec.action_dim, config.hidden_dims,
                                     config.num_critics, config.activation)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_gripper = (copy.deepcopy(self.policy.gripper).requires_grad_(False)
                               if self.policy.gripper is not None else None)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.init_temperature)))
        self.target_entropy = -config.target_entropy_scale * spec.action_dim

        critic_modules = [self.policy.encoder, self.critic, self.privileged, self.policy.gripper]
        self.critic_params = [p for m in critic_modules if m is not None
                              for p in m.parameters() if p.requires_grad]
        self.actor_params = list(self.policy.actor.parameters())
        # fused Adam: one kernel per optimiser step instead of one per tensor (CPU too).
        self.critic_optimizer = torch.optim.Adam(self.critic_params, lr=config.critic_lr,
                                                 fused=True)
        self.actor_optimizer = torch.optim.Adam(self.actor_params, lr=config.actor_lr,
                                                fused=True)
        self.temperature_optimizer = torch.optim.Adam([self.log_alpha], lr=config.temperature_lr,
                                                      fused=True)
        # The noise of the update's policy samples (next actions, actor loss): they may run on
        # another thread than the critic's (see sac_rlpd.update), and torch's global generator
        # would then be drawn in a racy order.
        self.actor_generator = torch.Generator().manual_seed(torch.initial_seed() + 1)

    # --- forward helpers used by the losses -------------------------------------------------
    def encode(self, obs: ObsBatch) -> torch.Tensor:
        return self.policy.encoder(obs.state, obs.images, from_features=self.features_cached)

    def critic_input(self, features: torch.Tensor, privileged: torch.Tensor) -> torch.Tensor:
        if self.privileged is None:
            return features
        return torch.cat([features, self.privileged(privileged)], dim=-1)

    def target_pairs(self):
        yield self.target_critic, self.critic
        if self.target_gripper is not None:
            yield self.target_gripper, self.policy.gripper

    # --- storage of frames ------------------------------------------------------------------
    def frame_shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """What the replay buffer stores per camera frame: pixels, or cached trunk features."""
        if not self.features_cached:
            return {c: ((*self.spec.image_size, 3), np.dtype(np.uint8))
                    for c in self.spec.camera_names}
        return {c: (self.policy.encoder.cameras[c].trunk_output_shape, np.dtype(np.float16))
                for c in self.spec.camera_names}

    def frame_transform(self):
        """``(camera, uint8 frames) -> stored frames`` for ``ReplayBuffer`` (None: pixels)."""
        if not self.features_cached:
            return None

        @torch.no_grad()
        def trunk_features(camera: str, frames: np.ndarray) -> np.ndarray:
            pixels = float_pixels(frames)
            trunk = self.policy.encoder.cameras[camera].trunk
            return trunk(pixels).to(torch.float16).numpy()
        return trunk_features

    def make_buffer(self, capacity: int, frame_slack: float,
                    frame_compression: str = 'none') -> ReplayBuffer:
        """A buffer of ``capacity`` transitions and ``(1 + frame_slack) * capacity`` frames.

        Contiguous episodes need one frame per transition plus one per episode; transitions
        after gaps (isolated intervention steps) need two. When frames run out, the oldest
        transitions leave early (the buffer then holds fewer than ``capacity``). Pixels are
        stored with ``frame_compression``; cached trunk features always raw.
        """
        return ReplayBuffer(self.spec, capacity, self.frame_shapes(),
                            frame_capacity=int(capacity * (1 + frame_slack)) + 2,
                            frame_transform=self.frame_transform(),
                            frame_codec='none' if self.features_cached else frame_compression)

    def frame_bytes(self) -> int:
        return sum(int(np.prod(shape)) * dtype.itemsize
                   for shape, dtype in self.frame_shapes().values())

    # --- checkpoints ------------------------------------------------------------------------
    def optimizer_state(self) -> dict:
        return {'critic': self.critic_optimizer.state_dict(),
                'actor': self.actor_optimizer.state_dict(),
                'temperature': self.temperature_optimizer.state_dict()}

    def load_optimizer_state(self, state: dict) -> None:
        self.critic_optimizer.load_state_dict(state['critic'])
        self.actor_optimizer.load_state_dict(state['actor'])
        self.temperature_optimizer.load_state_dict(state['temperature'])
