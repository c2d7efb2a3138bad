"""A demo buffer saved to disk: the learner's ``ReplayBuffer`` format, built by ``load_demos``.

``save(transitions, spec, directory)`` adds the transitions to a ``ReplayBuffer`` (every
camera frame stored once, uint8) and writes it with ``ReplayBuffer.save`` (``buffer.json``,
``transitions.npz``, ``frames_<camera>.npy``) plus ``demo_buffer.json`` (format and summary),
atomically (temporary directory + rename). The learner's ``demo_dataset`` parameter accepts
such a directory: ``iter_transitions`` yields its transitions back, and the learner adds them
to its own demo buffer (whatever its capacity or frame encoding).
"""
import json
import os
import pathlib
import shutil

import numpy as np

from hilserl_learner.errors import DatasetError
from hilserl_learner.observation import Observation, ObservationSpec, Transition
from hilserl_learner.rl.buffer import ReplayBuffer

FORMAT = 'hilserl-demo-buffer-v1'
MARKER = 'demo_buffer.json'


def is_demo_buffer(path) -> bool:
    return (pathlib.Path(path).expanduser() / MARKER).is_file()


def save(transitions, spec: ObservationSpec, directory, summary: dict | None = None) -> dict:
    """Write ``transitions`` as a demo buffer directory; returns the marker's contents."""
    transitions = list(transitions)
    if not transitions:
        raise DatasetError('no transitions to save')
    directory = pathlib.Path(directory).expanduser()
    count = len(transitions)
    buffer = ReplayBuffer(spec, count, frame_capacity=2 * count + 2)
    for transition in transitions:
        buffer.add(transition)
    staging = directory.with_name(f'.{directory.name}.tmp')
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        buffer.save(staging)
        marker = {'format': FORMAT, 'spec': spec.to_dict(), 'transitions': count,
                  'frames': buffer.frames_stored, 'bytes': buffer.bytes_used,
                  'summary': summary or {}}
        (staging / MARKER).write_text(json.dumps(marker, indent=1))
        if directory.exists():
            old = directory.with_name(f'.{directory.name}.old')
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(staging, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return marker


def _compatible(saved: ObservationSpec, spec: ObservationSpec) -> str:
    """'' if transitions saved for ``saved`` can feed a learner built for ``spec``."""
    for name in ('state_dim', 'action_dim', 'discrete_gripper', 'image_size'):
        if getattr(saved, name) != getattr(spec, name):
            return f'{name} {getattr(saved, name)} (learner: {getattr(spec, name)})'
    if not set(spec.camera_names) <= set(saved.camera_names):
        return f'cameras {list(saved.camera_names)} (learner: {list(spec.camera_names)})'
    if spec.privileged_dim not in (0, saved.privileged_dim):
        return f'privileged_dim {saved.privileged_dim} (learner: {spec.privileged_dim})'
    return ''


def iter_transitions(path, spec: ObservationSpec):
    """Yield the saved transitions as core ``Transition``s for a learner built for ``spec``."""
    path = pathlib.Path(path).expanduser()
    try:
        marker = json.loads((path / MARKER).read_text())
        counters = json.loads((path / 'buffer.json').read_text())
        meta = dict(np.load(path / 'transitions.npz'))
        frames = {c: np.load(path / f'frames_{c}.npy', mmap_mode='r') for c in spec.camera_names}
    except (OSError, ValueError, KeyError) as error:
        raise DatasetError(f'demo buffer {path}: {error}') from error
    if marker.get('format') != FORMAT:
        raise DatasetError(f'demo buffer {path}: unknown format {marker.get("format")!r}')
    saved = ObservationSpec.from_dict(marker['spec'])
    problem = _compatible(saved, spec)
    if problem:
        raise DatasetError(f'demo buffer {path} was built for {problem}: rebuild it with '
                           'load_demos for this learner configuration')
    first = counters['first_seq']
    keep_privileged = spec.privileged_dim > 0

    def observation(i: int, prefix: str, seq_name: str) -> Observation:
        seq = int(meta[seq_name][i]) - first
        return Observation(
            state=meta[f'{prefix}state'][i].copy(),
            images={c: np.array(frames[c][seq]) for c in spec.camera_names},
            privileged=(meta[f'{prefix}privileged'][i].copy() if keep_privileged
                        else np.zeros(0, np.float32)))

    for i in range(len(meta['obs_seq'])):
        yield Transition(
            observation=observation(i, '', 'obs_seq'), action=meta['action'][i].copy(),
            reward=float(meta['reward'][i]),
            next_observation=observation(i, 'next_', 'next_seq'),
            terminated=bool(meta['terminated'][i]), truncated=bool(meta['truncated'][i]),
            is_intervention=bool(meta['is_intervention'][i]),
            gripper_penalty=float(meta['gripper_penalty'][i]),
            episode_id=int(meta['episode_id'][i]), step_index=int(meta['step_index'][i]),
            source=f'demo_buffer/{path.name}')
