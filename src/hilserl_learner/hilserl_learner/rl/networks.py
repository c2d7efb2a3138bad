"""Actor, critic ensemble and discrete gripper critic (heads on top of the encoders).

- ``Actor``: MLP -> tanh-squashed diagonal Gaussian, std clipped to [std_min, std_max]
  (SERL: 1e-5 and 5).
- ``CriticEnsemble``: N Q-functions evaluated as one batched matmul per layer (REDQ/SERL
  ensembles), each hidden layer Linear -> LayerNorm -> activation (Ball et al. 2023 show
  LayerNorm keeps RLPD's critics from over-extrapolating on out-of-distribution actions).
- ``GripperCritic``: Q-values of the three gripper commands (close / stay / open), trained by
  Double DQN as in HIL-SERL's hybrid agent.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F  # noqa: N812

from hilserl_learner.rl.encoders import ObservationEncoder

ACTIVATIONS = {'tanh': nn.Tanh, 'relu': nn.ReLU}


def activation_after_norm(name: str) -> nn.Module:
    """A hidden layer's activation after its LayerNorm: ReLU in place, as the backward pass
    needs nothing it overwrites (one activation-sized tensor less per layer: memory traffic,
    which dominates the small layers' cost on CPU).
    """
    return nn.ReLU(inplace=True) if name == 'relu' else ACTIVATIONS[name]()


def mlp(in_dim: int, hidden_dims: tuple[int, ...], activation: str,
        layer_norm: bool = True) -> nn.Sequential:
    """Linear -> [LayerNorm] -> activation, per hidden layer."""
    layers = []
    for width in hidden_dims:
        layers += [nn.Linear(in_dim, width)]
        if layer_norm:
            layers += [nn.LayerNorm(width), activation_after_norm(activation)]
        else:
            layers += [ACTIVATIONS[activation]()]
        in_dim = width
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy over the continuous action dimensions."""

    def __init__(self, in_dim: int, action_dim: int, hidden_dims: tuple[int, ...],
                 activation: str = 'tanh', std_min: float = 1e-5, std_max: float = 5.0):
        super().__init__()
        self.trunk = mlp(in_dim, hidden_dims, activation)
        self.mean = nn.Linear(hidden_dims[-1], action_dim)
        self.log_std = nn.Linear(hidden_dims[-1], action_dim)
        self.log_std_min, self.log_std_max = math.log(std_min), math.log(std_max)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(features)
        log_std = self.log_std(h).clamp(self.log_std_min, self.log_std_max)
        return self.mean(h), log_std

    def sample(self, features: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action in (-1, 1) and its log-probability (B,); the noise comes
        from ``generator`` (default: torch's global one).
        """
        mean, log_std = self(features)
        noise = torch.randn(mean.shape, dtype=mean.dtype, device=mean.device, generator=generator)
        pre_tanh = mean + log_std.exp() * noise
        action = torch.tanh(pre_tanh)
        # log N(u; mean, std) - sum log(1 - tanh(u)^2), the latter written stably as
        # 2 (log 2 - u - softplus(-2u)) (Haarnoja et al. 2018, appendix C). (u - mean) / std
        # is the noise itself, a constant for the gradients either way.
        gaussian = (-0.5 * noise ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        squash = (2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh))).sum(-1)
        return action, gaussian - squash

    def mode(self, features: torch.Tensor) -> torch.Tensor:
        """The deterministic action tanh(mean)."""
        return torch.tanh(self(features)[0])


class EnsembleLinear(nn.Module):
    """N independent linear layers applied to (N, B, in) at once."""

    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleHead(EnsembleLinear):
    """N linear layers to one output: (N, B, in) -> (N, B, 1), as a multiply and a sum.

    The same parameters and result as ``EnsembleLinear(members, in_dim, 1)``; a batched
    matrix-vector product (and its backward) is 3-4x slower on CPU than this elementwise form.
    """

    def __init__(self, members: int, in_dim: int):
        super().__init__(members, in_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight.transpose(1, 2)).sum(-1, keepdim=True) + self.bias


class EnsembleLayerNorm(nn.Module):
    """LayerNorm with a separate affine transform per ensemble member."""

    def __init__(self, members: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, 1, width))
        self.bias = nn.Parameter(torch.zeros(members, 1, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Member by member with the fused affine (forward and backward: fewer passes over the
        # activations than normalising all members and then scaling them).
        # (unbind, not indexing: the backward of x[i] zero-fills a gradient of x's full size.)
        width = x.shape[-1:]
        return torch.stack([F.layer_norm(member, width, weight.squeeze(0), bias.squeeze(0))
                            for member, weight, bias in zip(x.unbind(0), self.weight.unbind(0),
                                                            self.bias.unbind(0), strict=True)])


class CriticEnsemble(nn.Module):
    """N Q(s, a) networks; ``forward`` returns (N, B)."""

    def __init__(self, in_dim: int, action_dim: int, hidden_dims: tuple[int, ...],
                 num_critics: int = 2, activation: str = 'tanh'):
        super().__init__()
        self.num_critics = num_critics
        layers, width = [], in_dim + action_dim
        for hidden in hidden_dims:
            layers += [EnsembleLinear(num_critics, width, hidden),
                       EnsembleLayerNorm(num_critics, hidden), activation_after_norm(activation)]
            width = hidden
        layers.append(EnsembleHead(num_critics, width))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, action], dim=-1)
        x = x.unsqueeze(0).expand(self.num_critics, *x.shape)
        return self.net(x).squeeze(-1)


class GripperCritic(nn.Module):
    """Q-values of the discrete gripper commands: (B, 3)."""

    def __init__(self, in_dim: int, hidden_dims: tuple[int, ...], num_actions: int = 3,
                 activation: str = 'tanh'):
        super().__init__()
        self.net = nn.Sequential(mlp(in_dim, hidden_dims, activation),
                                 nn.Linear(hidden_dims[-1], num_actions))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class PolicyNetwork(nn.Module):
    """What the actor runs: observation encoder, actor and (optionally) the gripper critic.

    The learner trains the encoder through the critic loss (shared encoder, the actor sees it
    detached, as DrQ-v2) and ships ``trainable_state_dict()``: never a frozen trunk.
    """

    def __init__(self, spec, encoder_config, hidden_dims: tuple[int, ...],
                 activation: str = 'tanh', std_min: float = 1e-5, std_max: float = 5.0):
        super().__init__()
        self.encoder = ObservationEncoder(spec, encoder_config)
        self.actor = Actor(self.encoder.output_dim, spec.action_dim, hidden_dims, activation,
                           std_min, std_max)
        self.gripper = (GripperCritic(self.encoder.output_dim, hidden_dims, 3, activation)
                        if spec.discrete_gripper else None)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        state = self.encoder.trainable_state_dict('encoder.')
        state.update({'actor.' + k: v for k, v in self.actor.state_dict().items()})
        if self.gripper is not None:
            state.update({'gripper.' + k: v for k, v in self.gripper.state_dict().items()})
        return state

    def act(self, state: torch.Tensor, images: dict[str, torch.Tensor],
            deterministic: bool = True) -> torch.Tensor:
        """(B, action_dim [+ 1 gripper command]) from pixels; no augmentation."""
        features = self.encoder(state, images)
        if deterministic:
            action = self.actor.mode(features)
        else:
            action = self.actor.sample(features)[0]
        if self.gripper is not None:
            command = self.gripper(features).argmax(-1, keepdim=True).to(action.dtype)
            action = torch.cat([action, command], dim=-1)
        return action
