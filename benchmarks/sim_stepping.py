"""Simulation stepping speed of the SO-101 scene with two rendered 128x128 cameras.

A control loop at 30 Hz steps the physics by 1/30 s and renders both cameras ('front',
'wrist') every step, while a scripted top-down picker moves the arm (so contacts happen).

  1. real time: paced to the wall clock for --seconds; reports the achieved rate, the
     compute time per step and the steps that missed their deadline;
  2. as fast as possible: no pacing; reports the maximum speed-up (simulated / wall time),
     with and without rendering.

Usage:  MUJOCO_GL=egl python benchmarks/sim_stepping.py [--cores 2] [--seconds 10]
Exit status 0 when the real-time run sustained --rate-hz: achieved rate >= 98 % of it and the
95th percentile of the compute time per step below one period.
"""
import argparse
import os
import time

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('PYOPENGL_PLATFORM', os.environ['MUJOCO_GL'])

import numpy as np  # noqa: E402

from so101_driver.params import SimParams  # noqa: E402
from so101_driver.sim.scripted import TopDownPicker  # noqa: E402
from so101_driver.sim.so101_sim import So101Sim  # noqa: E402


class Episodes:
    """Scripted pick-and-lift episodes, reset every ``steps_per_episode`` steps."""

    def __init__(self, sim, period_s, steps_per_episode=60):
        self.sim, self.period_s, self.steps_per_episode = sim, period_s, steps_per_episode
        self.picker = TopDownPicker(sim.params.cube_size_m)
        self.seed, self.step_in_episode = 0, 0
        self._reset()

    def _reset(self):
        start = self.sim.reset(seed=self.seed)
        self.picker.reset(start.joint_positions_rad)
        self.seed += 1
        self.step_in_episode = 0

    def step(self, render=True):
        if self.step_in_episode >= self.steps_per_episode:
            self._reset()
        position, quaternion = self.sim.object_pose()
        self.sim.step(self.picker.act(position, quaternion, self.period_s), self.period_s)
        self.step_in_episode += 1
        if render:
            for camera in self.sim.camera_names:
                self.sim.render(camera)


def real_time(episodes, rate_hz, seconds):
    period = 1.0 / rate_hz
    steps = int(seconds * rate_hz)
    compute, late = [], 0
    start = next_tick = time.perf_counter()
    for _ in range(steps):
        began = time.perf_counter()
        episodes.step()
        done = time.perf_counter()
        compute.append(done - began)
        next_tick += period
        if done > next_tick:
            late += 1
        else:
            time.sleep(next_tick - done)
    wall = time.perf_counter() - start
    return steps / wall, np.array(compute), late, steps


def as_fast_as_possible(episodes, steps, render):
    start = time.perf_counter()
    for _ in range(steps):
        episodes.step(render)
    wall = time.perf_counter() - start
    return steps * episodes.period_s / wall, steps / wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cores', type=int, default=2, help='CPU cores to run on')
    parser.add_argument('--seconds', type=float, default=10.0, help='real-time run length')
    parser.add_argument('--rate-hz', type=float, default=30.0, help='control loop rate')
    parser.add_argument('--fast-steps', type=int, default=600, help='steps of the fast runs')
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, available[:args.cores])
    cores = len(os.sched_getaffinity(0))

    params = SimParams(camera_names=('front', 'wrist'), image_width=128, image_height=128)
    started = time.perf_counter()
    sim = So101Sim(params)
    build_s = time.perf_counter() - started
    episodes = Episodes(sim, 1.0 / args.rate_hz)
    for _ in range(10):  # warm-up (renderer, caches)
        episodes.step()

    rate, compute, late, steps = real_time(episodes, args.rate_hz, args.seconds)
    speed_up, fast_rate = as_fast_as_possible(episodes, args.fast_steps, render=True)
    physics_speed_up, physics_rate = as_fast_as_possible(episodes, args.fast_steps, False)
    sim.close()

    print(f'SO-101 sim, 2 cameras {params.image_width}x{params.image_height}, physics '
          f'{params.timestep_s * 1e3:g} ms, control {args.rate_hz:g} Hz, {cores} core(s), '
          f'MUJOCO_GL={os.environ["MUJOCO_GL"]}; scene build {build_s:.2f} s')
    print(f'real time      : {rate:6.1f} Hz achieved over {steps} steps '
          f'({args.seconds:g} s); compute per step p50 {np.median(compute) * 1e3:.1f} ms, '
          f'p95 {np.percentile(compute, 95) * 1e3:.1f} ms, max {compute.max() * 1e3:.1f} ms; '
          f'{late} late step(s)')
    print(f'fast, cameras  : {fast_rate:6.1f} steps/s = {speed_up:.2f}x real time')
    print(f'fast, physics  : {physics_rate:6.1f} steps/s = {physics_speed_up:.2f}x real time '
          '(no rendering)')
    # Sustained: the loop kept the rate, and 95 % of the steps needed less than a period
    # (single late steps come from other processes on a shared machine; the next catch up).
    sustained = rate >= 0.98 * args.rate_hz and np.percentile(compute, 95) < 1.0 / args.rate_hz
    print(f'{"PASS" if sustained else "FAIL"}: {args.rate_hz:g} Hz in real time with both '
          'cameras rendered every step (achieved rate >= 98 %, p95 compute < one period)')
    raise SystemExit(0 if sustained else 1)


if __name__ == '__main__':
    main()
