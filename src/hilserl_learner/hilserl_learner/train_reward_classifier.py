"""train_reward_classifier: train the success classifier on recorded demo bags.

    train_reward_classifier BAGS... --output FILE [--crop-config F] [--cameras C ...]
                            [--success-tail-frames N] [--epochs N] [--batch-size N]
                            [--trunk conv|resnet10] [--trunk-checkpoint F] [--threshold P]
                            [--val-fraction F] [--seed N] [--threads N] [--min-accuracy A]

Frames and labels come from ``hilserl_learner.dataset.load_labelled_frames``: a frame is a
success frame when the step that led to it was rewarded (record with the actor's
``success_hold_steps`` > 0 to get many of them per episode, LeRobot's
``terminate_on_success: false``) or when it is one of the last ``--success-tail-frames``
frames of an episode labelled success. The images are the recorded (already cropped) policy
images, or re-cropped from the raw frames with ``--crop-config``: the same images the actor
feeds the classifier. Training and the saved file: ``hilserl_learner.reward_classifier``.
Exit codes: 0 done, 1 the data does not load, 2 bad arguments, 3 the best validation
accuracy is below ``--min-accuracy``.
"""
import argparse
import dataclasses
import json
import sys
import time

import numpy as np
import torch

from hilserl_learner import dataset
from hilserl_learner import reward_classifier as rc
from hilserl_learner.errors import ConfigurationError, DatasetError


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog='train_reward_classifier', description=__doc__.splitlines()[0],
        epilog='Example: train_reward_classifier demos/ --output reward_classifier.pt; then '
               'the actor parameter reward_classifier_path:=reward_classifier.pt')
    parser.add_argument('bags', nargs='+', help='episode directories or folders of them')
    parser.add_argument('--output', required=True, metavar='FILE', help='model file to write')
    parser.add_argument('--crop-config', metavar='F',
                        help='ROI crop config; re-crops from the raw frames when it differs '
                             'from the recorded one')
    parser.add_argument('--cameras', nargs='+', metavar='C',
                        help='cameras to use (default: every recorded camera)')
    parser.add_argument('--success-tail-frames', type=int, default=1, metavar='N',
                        help='last frames of a success episode labelled success (default 1)')
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--steps-per-epoch', type=int, default=0,
                        help='gradient steps per epoch (0 = a pass over the training frames)')
    parser.add_argument('--learning-rate', type=float, default=3e-4)
    parser.add_argument('--trunk', choices=('conv', 'resnet10'), default='conv')
    parser.add_argument('--trunk-checkpoint', default='', metavar='F',
                        help='pretrained trunk weights to start from (fine-tuned)')
    parser.add_argument('--threshold', type=float, default=0.85,
                        help='decision threshold saved with the model, for reference (default '
                             '0.85; the actor uses its reward_classifier_threshold)')
    parser.add_argument('--val-fraction', type=float, default=0.2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0 = all cores)')
    parser.add_argument('--min-accuracy', type=float, default=0.0,
                        help='exit with 3 when the best validation accuracy is lower')
    options = parser.parse_args(argv)
    if not 0.0 < options.threshold < 1.0:
        parser.error('--threshold must be in (0, 1)')
    return options


def main(argv=None, out=sys.stdout) -> int:
    options = _parse(argv)
    if options.threads:
        torch.set_num_threads(options.threads)

    def log(text):
        out.write(text + '\n')
        out.flush()

    started = time.monotonic()
    try:
        config = rc.ClassifierConfig(
            encoder=dataclasses.replace(rc.DEFAULT_ENCODER, trunk=options.trunk,
                                        trunk_checkpoint=options.trunk_checkpoint),
            batch_size=options.batch_size, epochs=options.epochs,
            steps_per_epoch=options.steps_per_epoch, learning_rate=options.learning_rate,
            val_fraction=options.val_fraction, seed=options.seed)
        crop, content = dataset.load_crop(options.crop_config)
        frames = dataset.load_labelled_frames(options.bags, crop, options.success_tail_frames,
                                              cameras=options.cameras)
        positives = int(frames.success.sum())
        log(f'frames: {len(frames)} ({positives} success, {len(frames) - positives} not) '
            f'from {len(np.unique(frames.episode))} episodes; cameras '
            f'{", ".join(frames.images)}; images '
            f'{"x".join(map(str, next(iter(frames.images.values())).shape[1:3]))}')
        result = rc.train(frames.images, frames.success, frames.episode, config, log=log,
                          threshold=options.threshold)
        # The crop the frames were cut with: the given one, else the recorded one.
        crop_dict = content if content is not None else _recorded_crop(options.bags)
        best = {**result.best, 'train_frames': result.train_frames,
                'val_frames': result.val_frames}
        path = rc.save(options.output, result.model, config, crop_dict, best,
                       options.threshold)
    except (DatasetError, ConfigurationError, OSError, ValueError) as error:
        out.write(f'train_reward_classifier: error: {error}\n')
        return 1
    summary = {k: best[k] for k in ('epoch', 'accuracy', 'balanced_accuracy', 'precision',
                                    'recall', 'threshold', 'accuracy_at_threshold',
                                    'precision_at_threshold', 'recall_at_threshold',
                                    'train_frames', 'val_frames')}
    summary['seconds'] = round(time.monotonic() - started, 1)
    log('best (validation): ' + json.dumps(summary))
    log(f'saved reward classifier: {path.resolve()} (actor parameter reward_classifier_path)')
    if best['accuracy'] < options.min_accuracy:
        log(f'validation accuracy {best["accuracy"]:.3f} < --min-accuracy '
            f'{options.min_accuracy}')
        return 3
    return 0


def _recorded_crop(paths) -> dict | None:
    """The crop config recorded with the first episode (the actor's at recording time); an
    episode recorded without a crop file was cut with the default (full frames, 128x128).
    """
    from hilserl_learner import demo_format as fmt
    from hilserl_learner.preprocessing import CropConfig

    for path in paths:
        for directory in dataset.find_episodes(path):
            recorded = fmt.read_sidecar(directory).crop_config
            if recorded is None:
                return CropConfig().to_dict()
            return dataset.normalised_crop(recorded)
    return None


if __name__ == '__main__':
    raise SystemExit(main())

