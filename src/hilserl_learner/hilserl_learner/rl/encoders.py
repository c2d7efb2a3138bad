"""Observation encoders: proprio, per-camera image encoders, privileged state.

HIL-SERL (Luo et al. 2024, appendix) encodes each camera with a frozen ImageNet ResNet-10 trunk,
a trainable "spatial learned embedding" pooling, Dense 256, LayerNorm and tanh, and the proprio
state with Dense 64, LayerNorm and tanh. Here a camera encoder is ``trunk -> [1x1 projection]
-> SpatialLearnedEmbeddings -> Linear -> LayerNorm -> tanh`` with a choice of trunk:

- ``conv`` (default): a small patchify conv net trained by the critic (an 8x8 stride-8 stem,
  then 3x3 stride-2 convs). Cheap enough for CPU training at batch 256;
- ``resnet10``: ResNet-10 (torchvision layout, BatchNorm in eval mode) that loads a local
  checkpoint file and can be frozen. A frozen trunk's output can be cached per stored frame
  (``cache_trunk_features``), so the learner never runs it in an update.

Shapes are found by a probe forward pass, so any image size the trunk accepts works. The reward
classifier reuses ``ImageEncoder`` and ``build_trunk``.
"""
import dataclasses
import hashlib
import pathlib

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F  # noqa: N812

from hilserl_learner.errors import ConfigurationError
from hilserl_learner.observation import ObservationSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Observation encoder settings (the same for every camera)."""

    trunk: str = 'conv'
    """Image trunk: 'conv' (small patchify conv net, trained) or 'resnet10'."""
    trunk_checkpoint: str = ''
    """Local file with the trunk's state dict (torch.save); '' = random initialisation."""
    trunk_checkpoint_sha256: str = ''
    """sha256 of ``trunk_checkpoint`` (the learner fills it in; the actor verifies its copy)."""
    freeze_trunk: bool = False
    """Keep the trunk fixed (requires ``trunk_checkpoint``); it is then never sent to the actor."""
    cache_trunk_features: bool = True
    """With a frozen trunk: store its features per frame instead of running it every update
    (DrQ augmentation then does not apply to that camera's pixels)."""
    conv_channels: tuple[int, ...] = (32, 32)
    """'conv' trunk: channels of the patchify stem and of each following 3x3 stride-2 conv."""
    conv_patch_px: int = 8
    """'conv' trunk: kernel size and stride of the patchify stem."""
    projection_channels: int = 0
    """Channels of a trainable 1x1 projection after the trunk (0 = none); for 'resnet10' it cuts
    the trainable head (and the weight push) roughly by 512 / projection_channels."""
    spatial_features: int = 8
    """Learned spatial embeddings per channel (SERL's num_spatial_blocks)."""
    image_latent_dim: int = 256
    """Output width per camera (Dense 256 in HIL-SERL)."""
    proprio_latent_dim: int = 64
    """Output width of the proprio encoder (Dense 64 in HIL-SERL)."""
    privileged_latent_dim: int = 64
    """Output width of the privileged-state encoder of an asymmetric critic."""

    def __post_init__(self):
        object.__setattr__(self, 'conv_channels', tuple(int(c) for c in self.conv_channels))
        if self.trunk not in ('conv', 'resnet10'):
            raise ValueError(f"trunk must be 'conv' or 'resnet10', got {self.trunk!r}")
        if self.freeze_trunk and not self.trunk_checkpoint:
            raise ValueError('freeze_trunk needs trunk_checkpoint (a frozen random trunk could '
                             'not be rebuilt by the actor)')
        if not self.conv_channels or min(self.conv_channels) < 1:
            raise ValueError(f'conv_channels must be positive: {self.conv_channels}')
        for name in ('conv_patch_px', 'spatial_features', 'image_latent_dim',
                     'proprio_latent_dim', 'privileged_latent_dim'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        if self.projection_channels < 0:
            raise ValueError('projection_channels must be >= 0')

    @property
    def features_cached(self) -> bool:
        return self.freeze_trunk and self.cache_trunk_features


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def float_pixels(frames) -> torch.Tensor:
    """uint8 frames (..., H, W, 3) as a new float32 tensor, what the trunks take.

    The float32 copy is made by numpy, not by torch after ``from_numpy``: frames decoded from
    messages are read-only buffers, which torch would share and warn about.
    """
    return torch.from_numpy(np.array(frames, np.float32, order='C'))


class SmallConvTrunk(nn.Module):
    """Patchify stem (k = stride = patch) then 3x3 stride-2 convs, ReLU; input pixels 0-255."""

    def __init__(self, channels: tuple[int, ...], patch_px: int):
        super().__init__()
        self.patch_px = patch_px
        self.stem = nn.Conv2d(3, channels[0], patch_px, stride=patch_px)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1)
                                   for a, b in zip(channels[:-1], channels[1:]))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) float in [0, 255] -> (B, C, h, w)."""
        x = pixels.permute(0, 3, 1, 2).contiguous()  # no copy for BatchArrays' batches
        # Scaling the stem's weights instead of the input saves a pass over the pixels;
        # the -0.5 offset of the usual (x / 255 - 0.5) is absorbed by the learned bias.
        x = F.relu(F.conv2d(x, self.stem.weight * (1.0 / 255.0), self.stem.bias,
                            stride=self.patch_px))
        for conv in self.convs:
            x = F.relu(conv(x))
        return x


class BasicBlock(nn.Module):
    """ResNet basic block (torchvision names, so torchvision-layout checkpoints load)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + identity)


class ResNet10Trunk(nn.Module):
    """ResNet-10 (one basic block per stage) without pooling; output stride 32, 512 channels.

    BatchNorm always uses its running statistics (``train()`` keeps it in eval mode): a
    pretrained trunk's statistics are kept whether or not the trunk is frozen.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64, 1))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2))
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0,
                             persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0,
                             persistent=False)
        self.train()  # BatchNorm in eval mode from the start, not only after a .train() call

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels.permute(0, 3, 1, 2).contiguous() - self.mean) / self.std
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


BATCH_NORM_STATISTICS = ('running_mean', 'running_var', 'num_batches_tracked')


def load_trunk_checkpoint(trunk: nn.Module, path: str) -> None:
    """Load a state dict file into ``trunk``; classifier heads (``fc.*``) are ignored."""
    if not pathlib.Path(path).is_file():
        raise ConfigurationError(f'trunk checkpoint {path!r} does not exist')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a configuration error
        raise ConfigurationError(f'cannot read trunk checkpoint {path!r}: {error}') from error
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    state = {k.removeprefix('module.'): v for k, v in state.items() if not k.startswith('fc.')}
    missing, unexpected = trunk.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigurationError(f'trunk checkpoint {path!r} does not fit the trunk: '
                                 f'missing {missing[:5]}, unexpected {unexpected[:5]}')


def build_trunk(config: EncoderConfig) -> nn.Module:
    """The configured trunk, loaded from its checkpoint and frozen as asked."""
    trunk = (SmallConvTrunk(config.conv_channels, config.conv_patch_px)
             if config.trunk == 'conv' else ResNet10Trunk())
    if config.trunk_checkpoint:
        load_trunk_checkpoint(trunk, config.trunk_checkpoint)
    if config.freeze_trunk:
        trunk.requires_grad_(False)
        trunk.eval()
    return trunk


class SpatialLearnedEmbeddings(nn.Module):
    """Per channel, ``num_features`` learned weightings of the spatial map (SERL), flattened."""

    def __init__(self, channels: int, height: int, width: int, num_features: int):
        super().__init__()
        self.kernel = nn.Parameter(torch.empty(channels, height * width, num_features))
        nn.init.normal_(self.kernel, std=(height * width) ** -0.5)
        self.output_dim = channels * num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C * num_features)."""
        b, c = features.shape[:2]
        # One (B, hw) @ (hw, F) product per channel as a single bmm over channels (einsum
        # picks a much slower path for this contraction on CPU).
        per_channel = features.reshape(b, c, -1).transpose(0, 1)  # (C, B, hw)
        out = torch.bmm(per_channel, self.kernel)  # (C, B, F)
        return out.transpose(0, 1).reshape(b, self.output_dim)


class ImageEncoder(nn.Module):
    """trunk -> [1x1 projection] -> spatial learned embeddings -> Linear -> LayerNorm -> tanh."""

    def __init__(self, config: EncoderConfig, image_size: tuple[int, int]):
        super().__init__()
        self.trunk = build_trunk(config)
        self.trunk_frozen = config.freeze_trunk
        with torch.no_grad():
            probe = self.trunk(torch.zeros(1, *image_size, 3))
        channels, height, width = probe.shape[1:]
        if height * width == 0:
            raise ConfigurationError(f'image size {image_size} is too small for the trunk')
        self.trunk_output_shape = (channels, height, width)
        self.projection = None
        if config.projection_channels:
            self.projection = nn.Conv2d(channels, config.projection_channels, 1)
            channels = config.projection_channels
        self.pooling = SpatialLearnedEmbeddings(channels, height, width, config.spatial_features)
        self.dense = nn.Linear(self.pooling.output_dim, config.image_latent_dim)
        self.norm = nn.LayerNorm(config.image_latent_dim)

    def trunk_features(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.trunk_frozen:
            with torch.no_grad():
                return self.trunk(pixels)
        return self.trunk(pixels)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        if self.projection is not None:
            features = self.projection(features)
        return torch.tanh(self.norm(self.dense(self.pooling(features))))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk_features(pixels))


def dense_ln_tanh(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.Tanh())


class ObservationEncoder(nn.Module):
    """Proprio and every camera, concatenated: (B, proprio_latent + cameras * image_latent)."""

    def __init__(self, spec: ObservationSpec, config: EncoderConfig):
        super().__init__()
        self.camera_names = spec.camera_names
        self.proprio = dense_ln_tanh(spec.state_dim, config.proprio_latent_dim)
        self.cameras = nn.ModuleDict({name: ImageEncoder(config, spec.image_size)
                                      for name in spec.camera_names})
        self.output_dim = (config.proprio_latent_dim
                           + len(spec.camera_names) * config.image_latent_dim)

    def forward(self, state: torch.Tensor, images: dict[str, torch.Tensor],
                from_features: bool = False) -> torch.Tensor:
        """``images``: pixels (B, H, W, 3) in [0, 255], or trunk features if ``from_features``."""
        parts = [self.proprio(state)]
        for name in self.camera_names:
            camera = self.cameras[name]
            parts.append(camera.head(images[name]) if from_features else camera(images[name]))
        return torch.cat(parts, dim=-1)

    def trainable_state_dict(self, prefix: str = '') -> dict[str, torch.Tensor]:
        """What a weight push carries: every tensor that training changes. Not a frozen
        trunk, nor a trained trunk's BatchNorm statistics (held in eval mode, so they stay
        those of the checkpoint file, which the actor loads itself).
        """
        return {prefix + k: v for k, v in self.state_dict().items()
                if not self._is_fixed_key(k)}

    def _is_fixed_key(self, key: str) -> bool:
        parts = key.split('.')
        in_trunk = len(parts) > 2 and parts[0] == 'cameras' and parts[2] == 'trunk'
        return in_trunk and (self.cameras[parts[1]].trunk_frozen
                             or parts[-1] in BATCH_NORM_STATISTICS)
