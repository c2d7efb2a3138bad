"""The policy as the actor runs it: built from ``config_json``, loaded from a weights blob.

Only this module (and ``observation.py``) crosses to the actor, as in LeRobot's split:

    policy = Policy.from_config_json(response.config_json)
    policy.load_weights(bytes(response.weights), response.checksum, response.version)
    action = policy.act(observation, deterministic=False)   # numpy (action_dim [+ 1],)

The blob holds only the parameters the actor needs and that change (encoder heads, proprio
encoder, actor, gripper critic): never a frozen trunk. A frozen trunk is loaded by the actor
from the local checkpoint file that the config names, after checking its sha256.
"""
import dataclasses
import hashlib
import io
import json

import numpy as np
import torch

from hilserl_learner.errors import ConfigurationError, WeightsError
from hilserl_learner.observation import Observation, ObservationSpec
from hilserl_learner.rl.encoders import EncoderConfig, file_sha256, float_pixels
from hilserl_learner.rl.networks import PolicyNetwork

WEIGHTS_FORMAT = 'hilserl-actor-torch-v1'


def policy_config(spec: ObservationSpec, encoder: EncoderConfig, hidden_dims, activation: str,
                  std_min: float, std_max: float) -> dict:
    """Everything needed to build the actor's network (``config_json`` of the service)."""
    return {'format': WEIGHTS_FORMAT, 'spec': spec.to_dict(),
            'encoder': dataclasses.asdict(encoder),
            'actor': {'hidden_dims': list(hidden_dims), 'activation': activation,
                      'std_min': std_min, 'std_max': std_max}}


def encode_weights(state: dict[str, torch.Tensor]) -> tuple[bytes, str]:
    """Serialise a state dict; returns (blob, sha256 hex)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, buffer)
    blob = buffer.getvalue()
    return blob, hashlib.sha256(blob).hexdigest()


def decode_weights(blob: bytes, checksum: str) -> dict[str, torch.Tensor]:
    """Verify the checksum, then deserialise (tensors only: ``weights_only``)."""
    if hashlib.sha256(blob).hexdigest() != checksum:
        raise WeightsError('policy weights do not match their sha256 checksum')
    try:
        return torch.load(io.BytesIO(blob), map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad payload
        raise WeightsError(f'cannot read policy weights: {error}') from error


class Policy:
    """Batch-1 inference of the actor network (eval mode, no gradients)."""

    def __init__(self, config: dict):
        if config.get('format') != WEIGHTS_FORMAT:
            raise ConfigurationError(f"unsupported policy format {config.get('format')!r}")
        self.config = config
        self.spec = ObservationSpec.from_dict(config['spec'])
        self.encoder_config = EncoderConfig(**config['encoder'])
        checkpoint = self.encoder_config.trunk_checkpoint
        expected = self.encoder_config.trunk_checkpoint_sha256
        if checkpoint and expected and file_sha256(checkpoint) != expected:
            raise ConfigurationError(f'trunk checkpoint {checkpoint} differs from the '
                                     "learner's (sha256 mismatch)")
        actor = config['actor']
        self.network = PolicyNetwork(self.spec, self.encoder_config,
                                     tuple(actor['hidden_dims']), actor['activation'],
                                     actor['std_min'], actor['std_max'])
        self.network.eval().requires_grad_(False)
        self._expected_keys = set(self.network.trainable_state_dict())
        self.version = 0

    @classmethod
    def from_config_json(cls, config_json: str) -> 'Policy':
        return cls(json.loads(config_json))

    def load_weights(self, blob: bytes, checksum: str, version: int = 0) -> None:
        """Load a weights payload (checksum verified; every trainable tensor must be there)."""
        state = decode_weights(blob, checksum)
        if set(state) != self._expected_keys:
            missing = sorted(self._expected_keys - set(state))[:5]
            extra = sorted(set(state) - self._expected_keys)[:5]
            raise WeightsError(f'weights do not fit the policy: missing {missing}, '
                               f'unexpected {extra}')
        self.load_state(state)
        self.version = version

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        self.network.load_state_dict(state, strict=False)

    @torch.no_grad()
    def act(self, observation: Observation, deterministic: bool = True) -> np.ndarray:
        """Action for one observation: continuous in [-1, 1], then the gripper command."""
        state = torch.as_tensor(np.asarray(observation.state, np.float32)).unsqueeze(0)
        images = {name: float_pixels(observation.images[name]).unsqueeze(0)
                  for name in self.spec.camera_names}
        return self.network.act(state, images, deterministic)[0].numpy()
