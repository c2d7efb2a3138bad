"""The reward classifier (ROS-free): success or not, from the cropped camera images.

HIL-SERL replaces a hand-written reward on the real robot with a binary classifier trained on
frames of recorded episodes, success frames against the rest. Here:

- ``RewardClassifier``: per camera the learner's ``ImageEncoder`` (trunk -> spatial learned
  embeddings -> Dense -> LayerNorm -> tanh), the camera latents concatenated, then
  Dense + ReLU + dropout and one logit. **Every layer trains**, the trunk included (a ResNet-10
  trunk may start from a local pretrained checkpoint; it is fine-tuned, not frozen).
- ``train(frames, config)``: splits the frames by episode into training and validation sets
  (no episode in both: neighbouring frames of one episode are near duplicates), samples
  balanced batches (half success, half not), applies DrQ's random shift (the learner's
  augmentation) and keeps the weights with the best validation balanced accuracy, reporting
  accuracy, precision and recall at threshold 0.5 each epoch.
- ``save`` / ``load``: one file (torch, atomic write) with the weights, the architecture, the
  cameras, the image size and the crop config the frames were cut with, so the actor can
  refuse a classifier trained on differently cropped images.
- ``ClassifierModel.probability(images)``: inference for the actor (``hilserl_actor`` wraps it
  in a ``SuccessDetector`` with a threshold).
"""
import copy
import dataclasses
import io
import math
import os
import pathlib
import tempfile
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F  # noqa: N812

from hilserl_learner.errors import ConfigurationError, DatasetError
from hilserl_learner.rl.buffer import shift_frames_into
from hilserl_learner.rl.encoders import EncoderConfig, ImageEncoder, float_pixels

FORMAT = 'hilserl-reward-classifier-v1'
DEFAULT_ENCODER = EncoderConfig(conv_patch_px=4, conv_channels=(32, 32, 32))
"""A finer conv trunk than the learner's default (4x4 patches, three stages): success often
hinges on a few pixels (the cube a centimetre higher), and the classifier runs on one frame per
control step, not on batches of 256 per update."""


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Architecture and training settings of the reward classifier."""

    encoder: EncoderConfig = DEFAULT_ENCODER
    """Per-camera image encoder (the learner's ``ImageEncoder``); ``freeze_trunk`` is not
    allowed."""
    hidden_dim: int = 256
    """Width of the Dense + ReLU layer after the concatenated camera latents."""
    dropout: float = 0.1
    """Dropout before the output logit (training only)."""
    learning_rate: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 64
    epochs: int = 20
    steps_per_epoch: int = 0
    """Gradient steps per epoch; 0 = one pass worth of the training frames (at least 20)."""
    shift_pad_px: int = 4
    """DrQ random shift of the training frames, pixels (0 = no augmentation)."""
    val_fraction: float = 0.2
    """Share of the episodes held out for validation."""
    seed: int = 0

    def __post_init__(self):
        if self.encoder.freeze_trunk:
            raise ValueError('the reward classifier trains all its layers: freeze_trunk must '
                             'be false (a trunk checkpoint is fine-tuned)')
        for name in ('hidden_dim', 'batch_size', 'epochs'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        if self.batch_size < 2:
            raise ValueError('batch_size must be >= 2 (half success, half not)')
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {self.dropout}')
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f'val_fraction must be in (0, 1), got {self.val_fraction}')
        if self.steps_per_epoch < 0 or self.shift_pad_px < 0:
            raise ValueError('steps_per_epoch and shift_pad_px must be >= 0')
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError('learning_rate must be > 0 and weight_decay >= 0')


class RewardClassifier(nn.Module):
    """Images of every camera -> one success logit."""

    def __init__(self, camera_names, image_size, encoder: EncoderConfig, hidden_dim: int,
                 dropout: float):
        super().__init__()
        self.camera_names = tuple(camera_names)
        self.image_size = tuple(int(v) for v in image_size)
        if not self.camera_names:
            raise ConfigurationError('the reward classifier needs at least one camera')
        bad = [c for c in self.camera_names if not c.isidentifier()]
        if bad:
            raise ConfigurationError(f'camera names must be identifiers: {bad}')
        self.encoders = nn.ModuleDict(
            {camera: ImageEncoder(encoder, self.image_size) for camera in self.camera_names})
        width = encoder.image_latent_dim * len(self.camera_names)
        self.head = nn.Sequential(nn.Linear(width, hidden_dim), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden_dim, 1))

    def forward(self, images: dict[str, torch.Tensor]) -> torch.Tensor:
        """Images (camera -> (B, H, W, 3) float pixels in [0, 255]) -> (B,) logits."""
        latents = [self.encoders[camera](images[camera]) for camera in self.camera_names]
        return self.head(torch.cat(latents, dim=-1)).squeeze(-1)


# --- metrics ----------------------------------------------------------------------------------
def metrics(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, precision, recall and the confusion counts."""
    predicted = np.asarray(probabilities) >= threshold
    labels = np.asarray(labels, bool)
    tp = int(np.sum(predicted & labels))
    fp = int(np.sum(predicted & ~labels))
    tn = int(np.sum(~predicted & ~labels))
    fn = int(np.sum(~predicted & labels))
    total = max(tp + fp + tn + fn, 1)
    recall = tp / (tp + fn) if tp + fn else float('nan')
    specificity = tn / (tn + fp) if tn + fp else float('nan')
    return {'accuracy': (tp + tn) / total,
            'balanced_accuracy': float(np.nanmean([recall, specificity]))
            if not (math.isnan(recall) and math.isnan(specificity)) else float('nan'),
            'precision': tp / (tp + fp) if tp + fp else float('nan'),
            'recall': recall, 'true_positives': tp, 'false_positives': fp,
            'true_negatives': tn, 'false_negatives': fn}


# --- data split and batches -------------------------------------------------------------------
def split_by_episode(episode: np.ndarray, success: np.ndarray, val_fraction: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices (train, val): whole episodes held out, both sets with success frames.

    Episodes with a success frame and episodes without one are split separately, so each side
    gets its share of both kinds. Fails when there are too few episodes to hold any out.
    """
    episodes = np.unique(episode)
    positive = np.array([success[episode == e].any() for e in episodes])
    val_episodes = []
    for group in (episodes[positive], episodes[~positive]):
        group = rng.permutation(group)
        count = int(round(len(group) * val_fraction))
        if len(group) >= 2:
            count = min(max(count, 1), len(group) - 1)
        else:
            count = 0
        val_episodes += list(group[:count])
    if not positive.any():
        raise DatasetError('no success frames: record successful episodes (or label the '
                           'success frames) before training the reward classifier')
    if positive.sum() < 2:
        raise DatasetError(f'{int(positive.sum())} episode(s) with success frames: need at '
                           'least 2 (one to train on, one to validate)')
    in_val = np.isin(episode, val_episodes)
    train_index, val_index = np.flatnonzero(~in_val), np.flatnonzero(in_val)
    if not (~success[train_index]).any():
        raise DatasetError('every training frame is a success frame: need failure frames too')
    return train_index, val_index


class BalancedBatches:
    """Batches of frames, half success and half not, DrQ-shifted, as float tensors."""

    def __init__(self, images: dict[str, np.ndarray], success: np.ndarray, indices: np.ndarray,
                 batch_size: int, shift_pad_px: int, rng: np.random.Generator):
        self.images = images
        self.positives = indices[success[indices]]
        self.negatives = indices[~success[indices]]
        self.batch_size = batch_size
        self.pad = shift_pad_px
        self.rng = rng
        self.labels = torch.cat([torch.ones(batch_size // 2),
                                 torch.zeros(batch_size - batch_size // 2)])
        self._out = {camera: np.empty((batch_size,) + frames.shape[1:], np.uint8)
                     for camera, frames in images.items()}

    def sample(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        half = self.batch_size // 2
        slots = np.concatenate([self.rng.choice(self.positives, half),
                                self.rng.choice(self.negatives, self.batch_size - half)])
        batch = {}
        for camera, frames in self.images.items():
            out = self._out[camera]
            if self.pad:
                shift_frames_into(frames, slots, out, self.pad, self.rng)
            else:
                np.take(frames, slots, axis=0, out=out)
            batch[camera] = torch.from_numpy(out).float()
        return batch, self.labels


def predict(model: RewardClassifier, images: dict[str, np.ndarray], indices=None,
            batch_size: int = 256) -> np.ndarray:
    """Success probabilities of the frames at ``indices`` (all by default), eval mode."""
    count = len(next(iter(images.values())))
    indices = np.arange(count) if indices is None else np.asarray(indices)
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            batch = {c: torch.from_numpy(images[c][chunk]).float() for c in model.camera_names}
            out.append(torch.sigmoid(model(batch)).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


# --- training ---------------------------------------------------------------------------------
@dataclasses.dataclass
class TrainResult:
    model: RewardClassifier
    """The best model (by validation balanced accuracy), in eval mode."""
    best: dict
    """Validation metrics of the best epoch at probability 0.5 (plus 'epoch'), and the same at
    ``threshold`` ('threshold', 'accuracy_at_threshold', ...)."""
    history: list[dict]
    """Per epoch: train loss, validation loss and metrics, seconds."""
    train_frames: int
    val_frames: int


def train(images: dict[str, np.ndarray], success: np.ndarray, episode: np.ndarray,
          config: ClassifierConfig, camera_names=None, log=print,
          threshold: float = 0.5) -> TrainResult:
    """Train a reward classifier on labelled frames (module docstring)."""
    camera_names = tuple(camera_names or images)
    missing = [c for c in camera_names if c not in images]
    if missing:
        raise DatasetError(f'no frames of camera(s) {missing}; the data has {list(images)}')
    success = np.asarray(success, bool)
    episode = np.asarray(episode)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    train_index, val_index = split_by_episode(episode, success, config.val_fraction, rng)
    image_size = images[camera_names[0]].shape[1:3]
    model = RewardClassifier(camera_names, image_size, config.encoder, config.hidden_dim,
                             config.dropout)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    batches = BalancedBatches({c: images[c] for c in camera_names}, success, train_index,
                              config.batch_size, config.shift_pad_px, rng)
    steps = config.steps_per_epoch or max(len(train_index) // config.batch_size, 20)
    val_labels = success[val_index]
    best, best_state, history = None, None, []
    for epoch in range(1, config.epochs + 1):
        started = time.monotonic()
        model.train()
        losses = []
        for _ in range(steps):
            batch, labels = batches.sample()
            loss = F.binary_cross_entropy_with_logits(model(batch), labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        probabilities = predict(model, images, val_index)
        scores = metrics(probabilities, val_labels)
        clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
        scores['val_loss'] = float(-np.mean(np.where(val_labels, np.log(clipped),
                                                     np.log(1 - clipped))))
        scores.update(epoch=epoch, train_loss=float(np.mean(losses)),
                      seconds=time.monotonic() - started)
        history.append(scores)
        log(f'epoch {epoch:3d}: train loss {scores["train_loss"]:.4f}  val loss '
            f'{scores["val_loss"]:.4f}  accuracy {scores["accuracy"]:.3f}  balanced '
            f'{scores["balanced_accuracy"]:.3f}  precision {scores["precision"]:.3f}  '
            f'recall {scores["recall"]:.3f}  ({scores["seconds"]:.1f} s)')
        key = (scores['balanced_accuracy'], scores['accuracy'], -scores['val_loss'])
        if best is None or key > (best['balanced_accuracy'], best['accuracy'],
                                  -best['val_loss']):
            best, best_state = scores, copy.deepcopy(model.state_dict())
            best_probabilities = probabilities
    # also at the threshold the model is saved (and used) with
    at_threshold = metrics(best_probabilities, val_labels, threshold)
    best.update({f'{k}_at_threshold': at_threshold[k]
                 for k in ('accuracy', 'balanced_accuracy', 'precision', 'recall')},
                threshold=threshold)
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, best, history, len(train_index), len(val_index))


# --- files ------------------------------------------------------------------------------------
def save(path, model: RewardClassifier, config: ClassifierConfig, crop: dict | None,
         metrics_: dict | None = None, threshold: float = 0.5) -> pathlib.Path:
    """Write the classifier to ``path`` atomically (temporary file + rename)."""
    path = pathlib.Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    encoder = dataclasses.asdict(config.encoder)
    # The trunk weights are in the state dict: the checkpoint file is not needed to load it.
    encoder.update(trunk_checkpoint='', trunk_checkpoint_sha256='')
    content = {'format': FORMAT, 'camera_names': list(model.camera_names),
               'image_size': list(model.image_size), 'encoder': encoder,
               'hidden_dim': config.hidden_dim, 'dropout': config.dropout, 'crop': crop,
               'threshold': float(threshold), 'metrics': metrics_ or {},
               'state_dict': model.state_dict()}
    buffer = io.BytesIO()
    torch.save(content, buffer)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(buffer.getvalue())
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    return path


class ClassifierModel:
    """A saved reward classifier, loaded for inference (CPU, eval mode)."""

    def __init__(self, model: RewardClassifier, crop: dict | None, threshold: float,
                 metrics_: dict, path: str = ''):
        self.model = model.eval()
        self.crop = crop
        """The crop config (``CropConfig.to_dict()``) of the training frames; None = full frames
        resized."""
        self.threshold = threshold
        """The threshold it was saved with (the actor's parameter overrides it)."""
        self.metrics = metrics_
        self.path = path

    @property
    def camera_names(self) -> tuple[str, ...]:
        return self.model.camera_names

    @property
    def image_size(self) -> tuple[int, int]:
        return self.model.image_size

    def probability(self, images: dict[str, np.ndarray]) -> float:
        """Success probability of one observation: camera -> (H, W, 3) uint8."""
        batch = {}
        for camera in self.camera_names:
            if camera not in images:
                raise ValueError(f'reward classifier: no image of camera {camera!r} (has '
                                 f'{sorted(images)})')
            image = np.asarray(images[camera])
            if image.shape != (*self.image_size, 3):
                raise ValueError(f'reward classifier: camera {camera!r} image is '
                                 f'{image.shape}, the classifier takes '
                                 f'{(*self.image_size, 3)}')
            batch[camera] = float_pixels(image)[None]
        with torch.no_grad():
            return float(torch.sigmoid(self.model(batch))[0])


def load(path) -> ClassifierModel:
    """Read a classifier written by ``save``; ConfigurationError with the reason otherwise."""
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise ConfigurationError(f'reward classifier file {path} does not exist')
    try:
        content = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise ConfigurationError(f'{path} is not a reward classifier file: {error}') from error
    if not isinstance(content, dict) or content.get('format') != FORMAT:
        raise ConfigurationError(f'{path} is not a reward classifier file (format '
                                 f'{content.get("format") if isinstance(content, dict) else "?"}'
                                 f', expected {FORMAT})')
    encoder = EncoderConfig(**{**content['encoder'],
                               'conv_channels': tuple(content['encoder']['conv_channels'])})
    model = RewardClassifier(content['camera_names'], content['image_size'], encoder,
                             int(content['hidden_dim']), float(content['dropout']))
    model.load_state_dict(content['state_dict'])
    return ClassifierModel(model, content['crop'], float(content['threshold']),
                           dict(content['metrics']), str(path))
