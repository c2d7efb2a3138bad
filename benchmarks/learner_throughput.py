"""Learner throughput, memory and weight-push figures, next to LeRobot 0.4.4's on this machine.

    source scripts/ros_env.sh
    python benchmarks/learner_throughput.py              # all figures (about 5 minutes)
    python benchmarks/learner_throughput.py --no-ros     # without the ROS service fetch
    python benchmarks/learner_throughput.py --only "state only" --threads 1   # some cases
    OMP_WAIT_POLICY=ACTIVE python benchmarks/learner_throughput.py --only "state only"

Prints, each on its own line:
- updates/s at batch 256 (one ``update()`` = utd_ratio critic steps + actor + temperature +
  Polyak) for state only, two 128x128 cameras with the default encoder, and two cameras with
  a frozen ResNet-10 (features cached per frame); also a LeRobot-like setting (utd_ratio 1,
  no gripper critic), which is what LeRobot's "update" does, with two bounds for it: its
  arithmetic at both cores' matmul peak plus its fixed cost split perfectly, and the larger of
  its two threads' shares, each measured alone on one thread;
- actor inference latency at batch 1 (``Policy.act``);
- bytes per stored transition with two 128x128 cameras, raw and LZ4-compressed (the default),
  on frames rendered by the sim (scripted pick episodes) and on the same frames with
  camera-like sensor noise added (real webcams compress far less);
- weight payload size and fetch latency over /hilserl/get_policy_weights between two
  processes (the installed learner_node and this process).
The ResNet-10 trunk uses random weights saved to a local checkpoint file: no pretrained file
is reachable offline, and the compute is the same. Camera cases train on rendered sim frames
(about 20 s to render them first), so decoding compressed frames costs what it costs in use.
"""
import argparse
import concurrent.futures
import contextlib
import dataclasses
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import torch

from hilserl_learner.learner import Learner
from hilserl_learner.observation import Observation, Transition
from hilserl_learner.params import LearnerParams
from hilserl_learner.policy import Policy
from hilserl_learner.rl.encoders import EncoderConfig, ResNet10Trunk
from hilserl_learner.rl.sac_rlpd import SACConfig
from hilserl_learner.runtime import configure_process

LEROBOT = {'state': 42.0, 'cameras': 0.27, 'resnet': 0.16, 'bytes': 393e3, 'push': 30.8e6}
CAMERAS = ('front', 'wrist')


def make_learner(run_dir, cameras=(), encoder=None, sac=None, gripper=True, online=3000,
                 demo=1000, frame_compression='lz4') -> Learner:
    params = LearnerParams(state_dim=6, action_dim=3, discrete_gripper=gripper,
                           camera_names=cameras, online_capacity=online, demo_capacity=demo,
                           frame_compression=frame_compression, run_dir=str(run_dir))
    return Learner(params, sac or SACConfig(), encoder or EncoderConfig())


def render_sim_frames(episodes: int = 8) -> dict[str, np.ndarray]:
    """camera -> (N, 128, 128, 3) uint8: scripted pick episodes rendered by the sim, in order."""
    from so101_driver.params import SimParams
    from so101_driver.sim.scripted import render_scripted_episode
    from so101_driver.sim.so101_sim import So101Sim

    with So101Sim(SimParams()) as sim:
        rendered = [render_scripted_episode(sim, seed, hold_steps=5, cameras=CAMERAS)
                    for seed in range(episodes)]
    return {c: np.concatenate([np.stack(e.images[c]) for e in rendered]) for c in CAMERAS}


def with_sensor_noise(frames: dict[str, np.ndarray], sigma: float = 2.0, seed: int = 0):
    """The frames plus Gaussian noise of ``sigma`` grey levels, as a webcam's sensor adds."""
    rng = np.random.default_rng(seed)
    return {c: np.clip(f + rng.normal(0.0, sigma, f.shape), 0, 255).round().astype(np.uint8)
            for c, f in frames.items()}


def fill(learner, transitions: int, episode_length: int = 50, seed: int = 0,
         frames: dict[str, np.ndarray] | None = None) -> None:
    """Episodes of ``episode_length`` random states/actions; images walk through ``frames``
    (random pixels when None)."""
    rng = np.random.default_rng(seed)
    spec = learner.spec
    shown = [0]

    def images():
        if frames is None:
            return {c: rng.integers(0, 256, (*spec.image_size, 3), dtype=np.uint8)
                    for c in spec.camera_names}
        index = shown[0] % len(frames[spec.camera_names[0]])
        shown[0] += 1
        return {c: frames[c][index] for c in spec.camera_names}

    def observation():
        return Observation(rng.standard_normal(spec.state_dim).astype(np.float32), images())
    current = observation()
    for i in range(transitions):
        step = i % episode_length
        following = observation()
        action = rng.uniform(-1, 1, spec.stored_action_dim).astype(np.float32)
        if spec.discrete_gripper:
            action[-1] = rng.integers(0, 3)
        learner.add_transition(Transition(
            current, action, float(rng.random() < 0.05), following, terminated=False,
            truncated=step == episode_length - 1, is_intervention=i % 3 == 0,
            episode_id=i // episode_length, step_index=step, source='bench'))
        current = observation() if step == episode_length - 1 else following


@contextlib.contextmanager
def actor_step_inline(learner, executor=None):
    """The learner's updates with the actor's work on the calling thread, not its own (or on
    ``executor``)."""
    threaded, learner._actor_executor = learner._actor_executor, executor
    try:
        yield learner
    finally:
        learner._actor_executor = threaded


class TimedInlineExecutor(concurrent.futures.Executor):
    """Runs the actor's jobs at once on the calling thread and adds up their time."""

    def __init__(self):
        self.busy_s = 0.0

    def submit(self, fn, /, *args, **kwargs):
        start = time.perf_counter()
        future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        self.busy_s += time.perf_counter() - start
        return future


def thread_shares_ms(learner, seconds: float) -> tuple[float, float]:
    """(main thread's share, actor thread's share) of one update in ms, each measured alone
    on one thread: the real ``update()`` with the actor's jobs run inline and timed."""
    timed = TimedInlineExecutor()
    with actor_step_inline(learner, timed):
        learner.train_step()
        timed.busy_s = 0.0
        count, elapsed_s = timed_updates(learner, seconds)
    actor_ms = timed.busy_s / count * 1e3
    return elapsed_s / count * 1e3 - actor_ms, actor_ms


def gflop_per_update(learner) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    # The counter sees the calling thread only: run the actor step inline for it.
    with actor_step_inline(learner), FlopCounterMode(display=False) as counter:
        learner.train_step()
    return counter.get_total_flops() / 1e9


def matmul_gflops(seconds: float = 2.0, streams: int = 1) -> float:
    """256x256 float32 matmul GFLOP/s: on the calling thread (its torch threads), or summed
    over ``streams`` > 1 Python threads, each multiplying its own matrices on one torch thread
    (a new thread's MKL otherwise uses every core, whatever the caller set)."""
    counts, start = [0] * streams, time.perf_counter()

    def work(index: int) -> None:
        if streams > 1:
            torch.set_num_threads(1)
        a, b = torch.randn(256, 256), torch.randn(256, 256)
        while time.perf_counter() - start < seconds:
            a @ b
            counts[index] += 1
    if streams == 1:
        work(0)
    else:
        threads_before = torch.get_num_threads()  # set_num_threads is process-wide
        workers = [threading.Thread(target=work, args=(i,)) for i in range(streams)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        torch.set_num_threads(threads_before)
    return sum(counts) * 2 * 256 ** 3 / (time.perf_counter() - start) / 1e9


def fixed_cost_ms(run_dir, sac: SACConfig, gripper: bool, seconds: float = 3.0) -> float:
    """One update's cost apart from its arithmetic: the same update (actor step inline) at
    batch 8 with 16-wide hidden layers, where the matmuls are negligible: the per-op dispatch,
    autograd and optimiser bookkeeping that every update pays whatever its size."""
    tiny = dataclasses.replace(sac, batch_size=8, hidden_dims=(16, 16))
    learner = make_learner(run_dir, sac=tiny, gripper=gripper, online=600, demo=200)
    try:
        fill(learner, 600)
        with actor_step_inline(learner):
            return 1e3 / updates_per_s(learner, seconds)
    finally:
        learner.close()


def timed_updates(learner, seconds: float) -> tuple[int, float]:
    """(updates, seconds they took): at least 3 updates and ``seconds``."""
    count, start = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - start < seconds:
        learner.train_step()
        count += 1
    return count, time.perf_counter() - start


def updates_per_s(learner, seconds: float) -> float:
    learner.train_step()  # warm-up
    count, elapsed_s = timed_updates(learner, seconds)
    return count / elapsed_s


def act_latency_ms(learner) -> tuple[float, float]:
    weights = learner.publish_weights()
    policy = Policy.from_config_json(weights.config_json)
    policy.load_weights(weights.blob, weights.checksum, weights.version)
    rng = np.random.default_rng(0)
    obs = Observation(rng.standard_normal(6).astype(np.float32),
                      {c: rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
                       for c in learner.spec.camera_names})
    times = []
    for _ in range(200):
        start = time.perf_counter()
        policy.act(obs, deterministic=False)
        times.append((time.perf_counter() - start) * 1e3)
    times = sorted(times[20:])
    return statistics.median(times), times[int(0.99 * len(times)) - 1]


def ros_fetch(parameters: dict, calls: int = 10) -> tuple[int, float, float]:
    """Start learner_node, fetch the full payload ``calls`` times; (bytes, median ms, max ms)."""
    import rclpy

    from hilserl_msgs.srv import GetPolicyWeights
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'tests'))
    from hilserl_testing.domains import DomainLease
    from hilserl_testing.processes import executable_path, ros_arguments, write_params_file

    lease = DomainLease()
    env = dict(os.environ, ROS_DOMAIN_ID=str(lease.domain_id))
    with tempfile.TemporaryDirectory() as tmp:
        params_file = write_params_file(pathlib.Path(tmp) / 'learner.yaml',
                                        dict(parameters, autostart=True, run_dir=tmp))
        node = subprocess.Popen(
            [str(executable_path('hilserl_learner', 'learner_node')),
             *ros_arguments('learner', params_files=[params_file])],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=lease.domain_id)
        client_node = rclpy.create_node('benchmark_client', context=context)
        try:
            client = client_node.create_client(GetPolicyWeights, '/hilserl/get_policy_weights')
            executor = rclpy.executors.SingleThreadedExecutor(context=context)
            executor.add_node(client_node)
            if not client.wait_for_service(timeout_sec=60):
                raise RuntimeError('learner_node did not offer its weights service')
            times, size = [], 0
            for _ in range(calls + 1):
                start = time.perf_counter()
                future = client.call_async(GetPolicyWeights.Request(current_version=0))
                executor.spin_until_future_complete(future, timeout_sec=30)
                response = future.result()
                blob = bytes(response.weights)
                times.append((time.perf_counter() - start) * 1e3)
                size = len(blob)
            times = times[1:]  # the first call includes discovery
            return size, statistics.median(times), max(times)
        finally:
            client_node.destroy_node()
            context.try_shutdown()
            node.terminate()
            node.wait(timeout=30)
            lease.release()


def node_parameters(cameras, encoder_overrides: dict) -> dict:
    params = {'state_dim': 6, 'action_dim': 3, 'discrete_gripper': True,
              'camera_names': list(cameras), 'online_capacity': 1000, 'demo_capacity': 500,
              'checkpoint_every_updates': 0}
    params.update({f'encoder.{k}': v for k, v in encoder_overrides.items()})
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--seconds', type=float, default=20.0,
                        help='timing window per throughput figure')
    parser.add_argument('--no-ros', action='store_true', help='skip the ROS service fetch')
    parser.add_argument('--only', default='', metavar='TEXT',
                        help='time only the throughput cases whose name contains TEXT and '
                             'print nothing else')
    args = parser.parse_args()
    if args.threads > 1 and 'OMP_WAIT_POLICY' not in os.environ:
        # As the learner node does (hilserl_learner/nodes/__init__.py): passive OpenMP
        # waiting, which must be set before torch starts, so start again with it.
        os.execve(sys.executable, [sys.executable, *sys.argv],
                  dict(os.environ, OMP_WAIT_POLICY='PASSIVE'))
    configure_process(args.threads)
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, {args.threads} threads '
          f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}), "
          f'{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start', flush=True)
    print(f'256x256 float32 matmul on this machine now: {matmul_gflops():.0f} GFLOP/s',
          flush=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix='learner_bench_'))
    resnet_file = tmp / 'resnet10.pt'
    torch.save(ResNet10Trunk().state_dict(), resnet_file)
    resnet = EncoderConfig(trunk='resnet10', trunk_checkpoint=str(resnet_file),
                           freeze_trunk=True, projection_channels=32)

    cases = [
        ('state only', (), EncoderConfig(), SACConfig(), True, LEROBOT['state']),
        ('state only, LeRobot-like (utd_ratio 1, no gripper critic)', (), EncoderConfig(),
         SACConfig(utd_ratio=1), False, LEROBOT['state']),
        ('two 128x128 cameras, default conv encoder', CAMERAS, EncoderConfig(), SACConfig(),
         True, LEROBOT['cameras']),
        ('two 128x128 cameras, conv encoder, utd_ratio 1', CAMERAS, EncoderConfig(),
         SACConfig(utd_ratio=1), True, LEROBOT['cameras']),
        ('two 128x128 cameras, conv encoder, utd_ratio 1, raw frames (frame_compression none)',
         CAMERAS, EncoderConfig(), SACConfig(utd_ratio=1), True, LEROBOT['cameras']),
        ('two 128x128 cameras, frozen ResNet-10 (cached features)', CAMERAS, resnet,
         SACConfig(), True, LEROBOT['resnet']),
    ]
    cases = [case for case in cases if args.only in case[0]]
    frames = None
    if not args.only or any(case[1] for case in cases):
        frames = render_sim_frames()
        print(f'rendered {len(frames[CAMERAS[0]])} sim frames per camera', flush=True)
    learners = {}
    for name, cameras, encoder, sac, gripper, reference in cases:
        compression = 'none' if 'frame_compression none' in name else 'lz4'
        learner = make_learner(tmp / name.replace(' ', '_'), cameras, encoder, sac, gripper,
                               frame_compression=compression)
        fill(learner, 1200, frames=frames if cameras else None)
        gflop = gflop_per_update(learner)
        rate = updates_per_s(learner, args.seconds)
        threaded = ', actor step on its own thread' if learner.actor_step_threaded else ''
        print(f'updates/s at batch 256, {name}: {rate:.2f} ({rate * sac.utd_ratio:.2f} critic '
              f'steps/s; LeRobot {reference}/s -> {rate / reference:.1f}x; {gflop:.2f} GFLOP '
              f'per update, {gflop * rate:.0f} GFLOP/s{threaded})', flush=True)
        learners[name] = learner
        if 'LeRobot-like' in name:
            # What this update could reach here at best: its matmuls at both cores' matmul
            # peak, plus its fixed per-update cost split perfectly over the two cores.
            peak = matmul_gflops(streams=2)
            fixed = fixed_cost_ms(tmp / 'fixed_cost', sac, gripper)
            floor_ms = gflop / peak * 1e3 + fixed / 2
            print(f'ceiling for this update on this machine: its {gflop:.2f} GFLOP at two '
                  f"threads' matmul peak ({peak:.0f} GFLOP/s) take {gflop / peak * 1e3:.2f} ms, "
                  f'its fixed cost (the same update at batch 8, hidden 16, one thread) '
                  f'{fixed:.2f} ms; perfectly split over both cores: >= {floor_ms:.2f} ms, '
                  f'<= {1e3 / floor_ms:.0f} updates/s (4x LeRobot: {4 * reference:.0f})',
                  flush=True)
            if learner.actor_step_threaded:
                main_ms, actor_ms = thread_shares_ms(learner, args.seconds / 2)
                print(f"the two threads' shares of this update, each alone on one thread: "
                      f'main (sampling, critic loss and backward, Adam steps, Polyak) '
                      f'{main_ms:.2f} ms, actor (next actions, actor and temperature gradients) '
                      f'{actor_ms:.2f} ms; however well they overlap, an update takes >= '
                      f'{max(main_ms, actor_ms):.2f} ms: <= '
                      f'{1e3 / max(main_ms, actor_ms):.0f} updates/s', flush=True)

    if args.only:
        return
    for name in ('state only', 'two 128x128 cameras, default conv encoder',
                 'two 128x128 cameras, frozen ResNet-10 (cached features)'):
        median, p99 = act_latency_ms(learners[name])
        print(f'actor inference latency at batch 1, {name}: median {median:.2f} ms, '
              f'p99 {p99:.2f} ms', flush=True)

    noisy = with_sensor_noise(frames)
    for index, (name, encoder, compression, images) in enumerate((
            ('default conv encoder, lz4 (default), sim frames', EncoderConfig(), 'lz4', frames),
            ('default conv encoder, raw uint8, sim frames', EncoderConfig(), 'none', frames),
            ('default conv encoder, lz4, sim frames + sensor noise (sigma 2)', EncoderConfig(),
             'lz4', noisy),
            ('frozen ResNet-10, cached features', resnet, 'lz4', frames))):
        learner = make_learner(tmp / f'bytes_{index}', CAMERAS, encoder,
                               online=2000, demo=10, frame_compression=compression)
        fill(learner, 1000, frames=images)
        buffer = learner.mixer.online
        per = buffer.bytes_used / len(buffer)
        print(f'bytes per stored transition, two 128x128 cameras, 50-step episodes, {name}: '
              f'{per:,.0f} B ({per / 1e3:.1f} kB = {per / 1024:.1f} KiB; LeRobot '
              f'{LEROBOT["bytes"] / 1e3:.0f} kB -> {per / LEROBOT["bytes"]:.1%})', flush=True)

    for name in ('state only', 'two 128x128 cameras, default conv encoder',
                 'two 128x128 cameras, frozen ResNet-10 (cached features)'):
        size = len(learners[name].publish_weights().blob)
        print(f'weight payload, {name}: {size / 1e6:.2f} MB (LeRobot with ResNet-10 '
              f'{LEROBOT["push"] / 1e6:.1f} MB -> {size / LEROBOT["push"]:.1%})', flush=True)

    if args.no_ros:
        return
    for name, overrides in (('default conv encoder', {}),
                            ('frozen ResNet-10', {'trunk': 'resnet10',
                                                  'trunk_checkpoint': str(resnet_file),
                                                  'freeze_trunk': True,
                                                  'projection_channels': 32})):
        size, median, worst = ros_fetch(node_parameters(CAMERAS, overrides))
        print(f'weight fetch over /hilserl/get_policy_weights (two processes), two cameras, '
              f'{name}: {size / 1e6:.2f} MB, median {median:.1f} ms, max {worst:.1f} ms',
              flush=True)


if __name__ == '__main__':
    main()
