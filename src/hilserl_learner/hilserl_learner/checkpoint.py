"""Checkpoints of the whole learner: networks, optimisers, temperature, counters, RNG, buffers.

Layout: ``<run_dir>/checkpoints/ckpt-<updates>-<ms>/{agent.pt, online/, demo/}`` and
``<run_dir>/checkpoints/latest`` naming the newest one. A checkpoint is written into a
``.tmp-*`` directory and renamed into place, then ``latest`` is replaced (tmp + rename), so a
crash leaves either the old or the new checkpoint, never a half-written one. A fresh run
(``resume: false``) in a run directory that holds an earlier run's checkpoints or TensorBoard
logs first moves them to ``<run_dir>/earlier/<UTC time>/`` (``set_aside_earlier_run``): pruning
then only ever deletes this run's own older checkpoints, and ``latest`` names one of them.

``capture`` runs on the training thread between two updates and only copies tensors (a few MB);
``write`` runs on a background thread and saves the buffers while ingestion goes on
(``ReplayBuffer.save``), fsyncing everything before the rename.
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
TENSORBOARD = 'tensorboard'
EARLIER = 'earlier'
# SACConfig fields that shape the networks (or what they compute): a checkpoint resumes only
# with the same values. The others (learning rates, discount, utd_ratio, ...) may change.
STRUCTURAL_SAC_FIELDS = ('num_critics', 'hidden_dims', 'activation', 'asymmetric_critic')


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


INGESTION_COUNTERS = ('received', 'rejected', 'dropped')


def write(learner, snapshot: Snapshot) -> pathlib.Path:
    """Write both buffers and ``snapshot`` atomically and durably; prune old checkpoints.

    The ingestion counters, rejection reasons and drop tracking are taken with the buffers
    (not with the networks), so a resumed learner's counts match the transitions it holds.
    Every file is fsynced before the rename and ``latest`` names the new checkpoint only then:
    after a crash or a power cut, ``latest`` names a complete checkpoint.
    """
    root = checkpoint_root(learner)
    root.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{snapshot.counters.get('updates', 0):010d}-{time.time_ns() // 1_000_000}"
    tmp, final = root / f'.tmp-{name}', root / name
    tmp.mkdir()
    try:
        with learner.lock:
            ingestion = {'counters': {k: learner.counters[k] for k in INGESTION_COUNTERS},
                         'rejections': dict(learner.rejections),
                         'episode_steps': list(learner._episode_steps.items())}
        for label, buffer in (('online', learner.mixer.online), ('demo', learner.mixer.demo)):
            (tmp / label).mkdir()
            buffer.save(tmp / label, learner.lock)
        saved = {f.name: getattr(snapshot, f.name) for f in dataclasses.fields(snapshot)}
        saved['counters'] = dict(saved['counters'], **ingestion['counters'])
        saved['ingestion'] = ingestion
        torch.save(saved, tmp / 'agent.pt')
        _fsync_tree(tmp)
        os.rename(tmp, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = root / f'.{LATEST}.tmp'
    pointer.write_text(name)
    _fsync(pointer)
    os.replace(pointer, root / LATEST)
    _fsync(root)
    _prune(root, keep=learner.params.keep_checkpoints, newest=name)
    return final


def _fsync(path: pathlib.Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_tree(directory: pathlib.Path) -> None:
    """Flush every file and directory under ``directory`` (and itself) to the disk."""
    for parent, _, files in os.walk(directory):
        for file in files:
            _fsync(pathlib.Path(parent) / file)
        _fsync(pathlib.Path(parent))


def _prune(root: pathlib.Path, keep: int, newest: str) -> None:
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith('ckpt-'))
    for name in names[:-keep]:
        if name != newest:
            shutil.rmtree(root / name, ignore_errors=True)
    for stale in root.glob('.tmp-*'):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)


def set_aside_earlier_run(run_dir: str) -> pathlib.Path | None:
    """Move an earlier run's checkpoints and TensorBoard logs out of the way of a fresh run.

    Without this, a fresh run's checkpoints would be pruned against the earlier run's by update
    count (deleting the new ones while keeping the old) and its curves would overlay the old
    ones. Nothing is deleted. Returns where they went, or None when there was nothing to move.
    """
    run = pathlib.Path(run_dir)
    outputs = [run / name for name in (CHECKPOINTS, TENSORBOARD)
               if (run / name).is_dir() and any((run / name).iterdir())]
    if not outputs:
        return None
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    destination = run / EARLIER / stamp
    suffix = 1
    while destination.exists():
        destination, suffix = run / EARLIER / f'{stamp}-{suffix}', suffix + 1
    destination.mkdir(parents=True)
    for output in outputs:
        os.rename(output, destination / output.name)
    _fsync(run)
    return destination


def latest(run_dir: str) -> pathlib.Path:
    root = pathlib.Path(run_dir) / CHECKPOINTS
    try:
        name = (root / LATEST).read_text().strip()
    except OSError as error:
        message = f'no checkpoint to resume in {root}'
        earlier = sorted((pathlib.Path(run_dir) / EARLIER).glob(f'*/{CHECKPOINTS}/{LATEST}'))
        if earlier:  # a fresh run moved them aside: say where, and how to resume one
            message += (f'; the newest earlier run is in {earlier[-1].parent.parent} (move its '
                        f'{CHECKPOINTS}/ back into {run_dir} to resume it)')
        raise CheckpointError(message) from error
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
    changed = {name: (saved['sac'].get(name), current['sac'][name])
               for name in STRUCTURAL_SAC_FIELDS
               if saved['sac'].get(name) != current['sac'][name]}
    if changed:
        raise CheckpointError(f'{directory} was made with other networks: ' + ', '.join(
            f'sac.{name} {old!r} there, {new!r} now' for name, (old, new) in changed.items()))
    try:
        learner.agent.load_state_dict(data['agent'])
    except RuntimeError as error:  # a shape that no configuration field explains
        raise CheckpointError(f'{directory}: the networks do not match: {error}') from error
    learner.agent.load_optimizer_state(data['optimizers'])
    learner.counters.clear()
    learner.counters.update(data['counters'])
    ingestion = data.get('ingestion')  # absent in checkpoints before it was saved
    if ingestion is not None:
        learner.rejections.clear()
        learner.rejections.update(ingestion['rejections'])
        learner._episode_steps.clear()
        learner._episode_steps.update((tuple(k), v) for k, v in ingestion['episode_steps'])
    learner.set_rng_state(data['rng'])
    if data['weights'] is not None:
        version, blob, checksum = data['weights']
        learner._weights = PolicyWeights(version, blob, checksum, learner.config_json)
    with learner.lock:
        learner.mixer.online.load(directory / 'online')
        learner.mixer.demo.load(directory / 'demo')
    return directory
