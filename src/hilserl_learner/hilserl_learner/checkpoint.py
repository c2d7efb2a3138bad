"""Checkpoints of the whole learner: networks, optimisers, temperature, counters, RNG, buffers.

Layout: ``<run_dir>/checkpoints/ckpt-<updates>-<ms>/{agent.pt, online/, demo/}`` and
``<run_dir>/checkpoints/latest`` naming the newest one. A checkpoint is written into a
``.tmp-*`` directory and renamed into place, then ``latest`` is replaced (tmp + rename), so a
crash leaves either the old or the new checkpoint, never a half-written one.

``capture`` runs on the training thread between two updates and only copies tensors (a few MB);
``write`` runs on a background thread and saves the buffers while ingestion goes on
(``ReplayBuffer.save``).
"""
import copy
import dataclasses
import os
import pathlib
import shutil
import time

import torch

from hilserl_learner.errors import CheckpointError

CHECKPOINTS = 'checkpoints'
LATEST = 'latest'


@dataclasses.dataclass
class Snapshot:
    """Everything but the buffers, copied between two updates."""

    agent: dict
    optimizers: dict
    counters: dict
    rng: dict
    weights: tuple | None  # (version, blob, checksum) of the newest published weights
    configs: dict


def _configs(learner) -> dict:
    return {'spec': learner.spec.to_dict(), 'encoder': dataclasses.asdict(learner.encoder_config),
            'sac': dataclasses.asdict(learner.sac)}


def capture(learner) -> Snapshot:
    weights = learner._weights
    return Snapshot(
        agent={k: v.detach().clone() for k, v in learner.agent.state_dict().items()},
        optimizers=copy.deepcopy(learner.agent.optimizer_state()),
        counters=dict(learner.counters),
        rng=copy.deepcopy(learner.rng_state()),
        weights=(weights.version, weights.blob, weights.checksum) if weights else None,
        configs=_configs(learner))


def checkpoint_root(learner) -> pathlib.Path:
    return pathlib.Path(learner.params.run_dir) / CHECKPOINTS


def write(learner, snapshot: Snapshot) -> pathlib.Path:
    """Write ``snapshot`` and both buffers atomically; prune old checkpoints."""
    root = checkpoint_root(learner)
    root.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{snapshot.counters.get('updates', 0):010d}-{time.time_ns() // 1_000_000}"
    tmp, final = root / f'.tmp-{name}', root / name
    tmp.mkdir()
    try:
        torch.save({f.name: getattr(snapshot, f.name) for f in dataclasses.fields(snapshot)},
                   tmp / 'agent.pt')
        for label, buffer in (('online', learner.mixer.online), ('demo', learner.mixer.demo)):
            (tmp / label).mkdir()
            buffer.save(tmp / label, learner.lock)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = root / f'.{LATEST}.tmp'
    pointer.write_text(name)
    os.replace(pointer, root / LATEST)
    _prune(root, keep=learner.params.keep_checkpoints, newest=name)
    return final


def _prune(root: pathlib.Path, keep: int, newest: str) -> None:
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith('ckpt-'))
    for name in names[:-keep]:
        if name != newest:
            shutil.rmtree(root / name, ignore_errors=True)
    for stale in root.glob('.tmp-*'):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)


def latest(run_dir: str) -> pathlib.Path:
    root = pathlib.Path(run_dir) / CHECKPOINTS
    try:
        name = (root / LATEST).read_text().strip()
    except OSError as error:
        raise CheckpointError(f'no checkpoint to resume in {root}') from error
    if not (root / name / 'agent.pt').is_file():
        raise CheckpointError(f'checkpoint {root / name} is incomplete')
    return root / name


def restore(learner) -> pathlib.Path:
    """Load the newest checkpoint of ``learner.params.run_dir`` into ``learner``."""
    from hilserl_learner.learner import PolicyWeights

    directory = latest(learner.params.run_dir)
    try:
        data = torch.load(directory / 'agent.pt', map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad checkpoint
        raise CheckpointError(f'cannot read {directory / "agent.pt"}: {error}') from error
    saved, current = data['configs'], _configs(learner)
    for key in ('spec', 'encoder'):
        if saved[key] != current[key]:
            raise CheckpointError(f'{directory} was made with another {key} configuration: '
                                  f'{saved[key]} != {current[key]}')
    learner.agent.load_state_dict(data['agent'])
    learner.agent.load_optimizer_state(data['optimizers'])
    learner.counters.clear()
    learner.counters.update(data['counters'])
    learner.set_rng_state(data['rng'])
    if data['weights'] is not None:
        version, blob, checksum = data['weights']
        learner._weights = PolicyWeights(version, blob, checksum, learner.config_json)
    with learner.lock:
        learner.mixer.online.load(directory / 'online')
        learner.mixer.demo.load(directory / 'demo')
    return directory
