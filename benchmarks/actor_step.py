"""Actor step cost: observation (FK + the shared ROI crop of each camera) + the Observation and
Transition messages, per control step, at camera resolutions of the real robot.

At 10 Hz the actor has 100 ms per step; this measures how much of it one step's work takes on
this machine (single thread, the same code path as actor_node: ObservationBuilder.build,
ActorLoop bookkeeping, conversions.observation_message / transition_message).

    python benchmarks/actor_step.py [--steps 300] [--width 640 --height 480] [--cameras 2]
"""
import argparse
import time

import numpy as np

from hilserl_actor.actions import (
    ActionSelector,
    ActionSettings,
    HumanActionSource,
    ZeroActionSource,
)
from hilserl_actor.episode import ActorInputs, ActorLoop, Phase, ResetOutcome
from hilserl_actor.nodes import conversions
from hilserl_actor.observation_builder import Frame, JointReading, ObservationBuilder
from hilserl_actor.params import DEFAULT_JOINT_NAMES, ActorParams
from hilserl_learner.preprocessing import CameraCrop, CropConfig, Roi
from so101_driver.kinematics import So101Kinematics

HOME = np.array([0.0, -0.6, 0.5, 1.42, 1.5708, 0.7])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--cameras', type=int, default=2)
    args = parser.parse_args()
    cameras = tuple(f'cam{i}' for i in range(args.cameras))
    side = min(args.width, args.height)
    crop = CropConfig({name: CameraCrop(Roi(0, 0, side, side)) for name in cameras})
    params = ActorParams(camera_names=cameras, ground_truth='off',
                         max_episode_steps=args.steps + 10)
    kinematics = So101Kinematics()
    settings = ActionSettings()
    loop = ActorLoop(params, ObservationBuilder(DEFAULT_JOINT_NAMES, cameras, crop, (),
                                                kinematics),
                     ActionSelector('demo', HumanActionSource(settings, DEFAULT_JOINT_NAMES,
                                                              kinematics),
                                    ZeroActionSource(settings)), 'bench')
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (args.height, args.width, 3), np.uint8) for _ in range(4)]
    inputs, now = ActorInputs(), 0.0
    loop.activate(now)
    durations, transitions = [], 0
    for step in range(args.steps + 10):
        now += 0.1
        inputs.joints = JointReading(HOME + rng.normal(0, 0.01, 6), now, now)
        for index, name in enumerate(cameras):
            inputs.frames[name] = Frame(images[(step + index) % 4], now, now, None)
        start = time.perf_counter()
        out = loop.tick(now, inputs)
        if out.reset is not None:
            loop.on_reset_result(out.reset.token, ResetOutcome(True, seed=0,
                                 joint_positions_rad=HOME), now)
        if out.observation is not None:
            builder = loop.builder
            message = conversions.observation_message(out.observation, builder.state_names, (),
                                                      'bench')
            if out.transition is not None:
                conversions.transition_message(out.transition, message, message,
                                               conversions.time_message(now))
                transitions += 1
        if loop.phase is Phase.RUNNING and step >= 10:
            durations.append(time.perf_counter() - start)
    ms = np.asarray(durations) * 1e3
    print(f'actor step, {args.cameras} camera(s) {args.width}x{args.height} -> 128x128: '
          f'p50 {np.percentile(ms, 50):.2f} ms  p99 {np.percentile(ms, 99):.2f} ms  '
          f'mean {ms.mean():.2f} ms over {len(ms)} steps ({transitions} transitions; budget '
          'at 10 Hz: 100 ms)')


if __name__ == '__main__':
    main()
