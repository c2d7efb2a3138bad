"""load_demos: check recorded demonstrations and turn them into a demo buffer for the learner.

    load_demos BAGS... [--crop-config F] [--learner-params F] [--output DIR]
                       [--include-interrupted] [--failures/--no-failures]

Reads every episode under BAGS (episode directories, recording sessions or folders of
sessions), converts them with ``hilserl_learner.dataset`` for the learner's observation spec,
prints a summary (episodes by label, transitions, success rate, intervention share, sizes) and,
with ``--output``, saves them as a demo buffer directory that the learner loads with its
``demo_dataset`` parameter. The spec comes from the learner's parameter file
(``--learner-params``, e.g. src/hilserl_bringup/config/learner.yaml) or, without one, from the
recorded data (state size, cameras, image size; a 4th action entry in {0, 1, 2} is read as the
discrete gripper command). Exit codes: 0 done, 1 the data does not load, 2 bad arguments.
"""
import argparse
import collections
import pathlib
import sys
import time

import numpy as np
import yaml

from hilserl_learner import dataset, demo_buffer
from hilserl_learner import demo_format as fmt
from hilserl_learner.errors import DatasetError
from hilserl_learner.observation import ObservationSpec


def spec_from_learner_params(path) -> ObservationSpec:
    """The observation spec of a learner parameter file (``learner: ros__parameters`` or
    ``/**: ros__parameters``).
    """
    from hilserl_learner.params import LearnerParams

    content = yaml.safe_load(pathlib.Path(path).read_text()) or {}
    values = {}
    for section in content.values():
        if isinstance(section, dict):
            values.update(section.get('ros__parameters') or {})
    names = ('state_dim', 'action_dim', 'discrete_gripper', 'camera_names', 'image_height_px',
             'image_width_px', 'privileged_dim')
    return LearnerParams(**{k: values[k] for k in names if k in values}).observation_spec()


def spec_from_data(directories, crop) -> ObservationSpec:
    """A spec that fits the first recorded transition (see the module docstring)."""
    episode = next((dataset.read_episode(d, raw_frames=crop is not None) for d in directories),
                   None)
    if episode is None or not episode.transitions:
        raise DatasetError('no transitions to infer the observation spec from')
    first = episode.transitions[0]
    actions = np.stack([np.asarray(t.action, np.float32) for t in episode.transitions])
    gripper = actions.shape[1] == 4 and bool(np.all(np.isin(actions[:, -1], (0, 1, 2))))
    cameras = tuple(first.observation.camera_names)
    if cameras and crop is None:
        image = dataset.image_array(first.observation.images[0], episode.directory.name)
        size = image.shape[:2]
    elif cameras:
        raw = episode.raw_frames.get(dataset._frame_key(first.observation.images[0]))
        if raw is None:
            raise DatasetError(f'{episode.directory.name}: no raw frame to re-crop')
        size = crop.apply(cameras[0], dataset.image_array(raw, 'raw')).shape[:2]
    else:
        size = (128, 128)
    return ObservationSpec(
        state_dim=len(first.observation.state), action_dim=actions.shape[1] - int(gripper),
        camera_names=cameras, image_size=size,
        privileged_dim=len(first.observation.privileged_state), discrete_gripper=gripper)


def summarize(directories, transitions) -> dict:
    labels = collections.Counter(fmt.read_sidecar(d).label for d in directories)
    kept = labels[fmt.LABEL_SUCCESS] + labels[fmt.LABEL_FAILURE]
    steps = len(transitions)
    bag_bytes = sum(f.stat().st_size for d in directories for f in d.glob('*.mcap'))
    return {
        'episodes': len(directories), 'labels': dict(labels), 'transitions': steps,
        'success_rate': round(labels[fmt.LABEL_SUCCESS] / kept, 3) if kept else 0.0,
        'intervention_share': round(sum(t.is_intervention for t in transitions) / steps, 3)
        if steps else 0.0,
        'terminated': sum(t.terminated for t in transitions),
        'truncated': sum(t.truncated for t in transitions),
        'mean_length': round(steps / len(directories), 1) if directories else 0.0,
        'bag_bytes': bag_bytes,
    }


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog='load_demos', description=__doc__.splitlines()[0],
        epilog='Example: load_demos demos/ --output demo_buffer && ros2 param: learner '
               'demo_dataset:=demo_buffer')
    parser.add_argument('bags', nargs='+', help='episode directories or folders of them')
    parser.add_argument('--crop-config', metavar='F',
                        help='ROI crop config; re-crops from the raw frames when it differs '
                             'from the recorded one')
    parser.add_argument('--learner-params', metavar='F',
                        help='learner parameter file giving the observation spec')
    parser.add_argument('--output', metavar='DIR', help='save the demo buffer here')
    parser.add_argument('--include-interrupted', action='store_true',
                        help='also use episodes labelled interrupted')
    parser.add_argument('--no-failures', action='store_true',
                        help='use only episodes labelled success')
    return parser.parse_args(argv)


def main(argv=None, out=sys.stdout) -> int:
    options = _parse(argv)
    labels = (fmt.LABEL_SUCCESS,) if options.no_failures else fmt.KEPT_LABELS
    if options.include_interrupted:
        labels += (fmt.LABEL_INTERRUPTED,)
    started = time.monotonic()
    try:
        crop, content = dataset.load_crop(options.crop_config)
        directories = [d for path in options.bags for d in dataset.find_episodes(path, labels)]
        if not directories:
            raise DatasetError(f'no episodes labelled {"/".join(labels)} under '
                               f'{" ".join(options.bags)}')
        spec = (spec_from_learner_params(options.learner_params) if options.learner_params
                else spec_from_data(directories, crop))
        transitions = []
        for directory in directories:
            episode = dataset.read_episode(directory, raw_frames=crop is not None)
            transitions += dataset.episode_transitions(episode, spec, crop, content)
        summary = summarize(directories, transitions)
        if options.output:
            marker = demo_buffer.save(transitions, spec, options.output, summary)
            summary['buffer_bytes'] = marker['bytes']
    except (DatasetError, OSError, ValueError) as error:
        out.write(f'load_demos: error: {error}\n')
        return 1
    summary['seconds'] = round(time.monotonic() - started, 2)
    summary['spec'] = spec.to_dict()
    out.write(yaml.safe_dump(summary, sort_keys=False, default_flow_style=None))
    if options.output:
        out.write(f'saved demo buffer: {pathlib.Path(options.output).resolve()} (learner '
                  f'parameter demo_dataset)\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
