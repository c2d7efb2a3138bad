"""Demo recording with the simulated SO-101: recorder CPU, bag size, raw frames, latency.

    python benchmarks/demo_recording.py [--episodes 3] [--steps 50] [--idle-s 10]

Starts the installed sim driver (both 128x128 cameras, autostart) and demo_recorder_node
(autostart, a temporary output directory) as processes in a leased DDS domain, then plays the
actor in this process at 10 Hz: every step it center-crops the newest frame of each camera to
96x96 (copying the frame's header, as the actor does), publishes the Observation and the
Transition, and after the last step the EpisodeStats. Prints the recorder's CPU (% of one
core) while idle and while recording, MB per step on disk, raw frames recorded and missing,
the time from EpisodeStats to the episode being saved, and checks every episode with the
loader (re-cropping the raw frames gives the recorded crops). Run it with the workspace
sourced (source scripts/ros_env.sh).
"""
import argparse
import array
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
CAMERAS = ('front', 'wrist')
CROP = 96


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def start(package: str, executable: str, env: dict, *parameters: str) -> subprocess.Popen:
    from ament_index_python.packages import get_package_prefix

    path = pathlib.Path(get_package_prefix(package)) / 'lib' / package / executable
    args = [str(path), '--ros-args', '-p', 'autostart:=true']
    for parameter in parameters:
        args += ['-p', parameter]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class MiniActor:
    """Crops the driver's frames and publishes the actor's side of the contract."""

    def __init__(self):
        import rclpy
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState

        from hilserl_msgs.msg import EpisodeStats, Observation, Transition

        self.rclpy, self.types = rclpy, (Image, Observation, Transition, EpisodeStats)
        rclpy.init()
        self.node = rclpy.create_node('benchmark_actor')
        self.latest, self.joints = {}, None
        for camera in CAMERAS:
            self.node.create_subscription(
                Image, f'/cameras/{camera}/image_raw',
                lambda m, c=camera: self.latest.__setitem__(c, m), qos_profile_sensor_data)
        self.node.create_subscription(JointState, '/joint_states',
                                      lambda m: setattr(self, 'joints', m), 10)
        keep_all = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                              reliability=ReliabilityPolicy.RELIABLE)
        self.transitions = self.node.create_publisher(Transition, '/hilserl/transitions',
                                                      keep_all)
        self.observations = self.node.create_publisher(Observation, '/hilserl/observation', 10)
        self.stats = self.node.create_publisher(EpisodeStats, '/hilserl/episode_stats',
                                                keep_all)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.005)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        end = time.monotonic() + timeout_s
        while len(self.latest) < len(CAMERAS) or self.transitions.get_subscription_count() == 0:
            if time.monotonic() > end:
                raise TimeoutError('no camera frames or no recorder subscription')
            self.spin_for(0.1)

    def observe(self):
        image_type, observation_type = self.types[0], self.types[1]
        observation = observation_type()
        observation.header.stamp = self.latest[CAMERAS[0]].header.stamp
        observation.state = [float(v) for v in self.joints.position] if self.joints else [0.0]
        observation.camera_names = list(CAMERAS)
        for camera in CAMERAS:
            raw = self.latest[camera]
            pixels = np.frombuffer(raw.data, np.uint8).reshape(raw.height, raw.width, 3)
            top, left = (raw.height - CROP) // 2, (raw.width - CROP) // 2
            crop = np.ascontiguousarray(pixels[top:top + CROP, left:left + CROP])
            image = image_type(header=raw.header, height=CROP, width=CROP, encoding='rgb8',
                               step=CROP * 3)
            image.data = array.array('B', crop.tobytes())
            observation.images.append(image)
        return observation

    def episode(self, episode_id: int, steps: int) -> float:
        """Publish one episode at 10 Hz; returns the time its EpisodeStats was published."""
        transition_type, stats_type = self.types[2], self.types[3]
        observation = self.observe()
        self.observations.publish(observation)
        for step in range(steps):
            self.spin_for(0.1)
            following = self.observe()
            if step < steps - 1:
                self.observations.publish(following)
            transition = transition_type(
                episode_id=episode_id, step_index=step, observation=observation,
                next_observation=following, action=[0.1, 0.0, -0.1], reward=float(
                    step == steps - 1), terminated=step == steps - 1, is_intervention=True)
            transition.header.frame_id = 'benchmark'
            self.transitions.publish(transition)
            observation = following
        stats = stats_type(episode_id=episode_id, success=True, length=steps,
                           end_reason='success', terminated=True)
        stats.header.frame_id = 'benchmark'
        self.stats.publish(stats)
        return time.monotonic()

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def saved_count(output: pathlib.Path) -> int:
    import yaml

    path = output / 'session.yaml'
    return len(yaml.safe_load(path.read_text())['episodes']) if path.exists() else 0


def check(output: pathlib.Path, steps: int, episodes: int) -> dict:
    from hilserl_learner import dataset
    from hilserl_learner import demo_format as fmt
    from hilserl_learner.observation import ObservationSpec

    class CenterCrop:
        def crop_and_resize(self, image, camera):
            top, left = (image.shape[0] - CROP) // 2, (image.shape[1] - CROP) // 2
            return image[top:top + CROP, left:left + CROP]

    infos = [fmt.read_sidecar(d) for d in fmt.episode_dirs(output)]
    spec = ObservationSpec(state_dim=6, action_dim=3, camera_names=CAMERAS,
                           image_size=(CROP, CROP))
    recorded = list(dataset.load_transitions(output, spec))
    recropped = list(dataset.load_transitions(output, spec, crop=CenterCrop()))
    same = all(np.array_equal(a.observation.images[c], b.observation.images[c])
               and np.array_equal(a.next_observation.images[c], b.next_observation.images[c])
               for a, b in zip(recorded, recropped) for c in CAMERAS)
    raw = sum(i.message_counts.get(f'/cameras/{c}/image_raw', 0) for i in infos
              for c in CAMERAS)
    return {'episodes': len(infos), 'transitions': len(recorded),
            'labels': sorted({i.label for i in infos}), 'raw_frames': raw,
            'raw_frames_expected': episodes * (steps + 1) * len(CAMERAS),
            'raw_frames_missing': sum(i.raw_frames_missing for i in infos),
            'recrop_equals_recorded': same,
            'bag_mb': sum(f.stat().st_size for f in output.rglob('*.mcap')) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--episodes', type=int, default=3)
    parser.add_argument('--steps', type=int, default=50)
    parser.add_argument('--idle-s', type=float, default=10.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / 'tests'))
    from hilserl_testing.domains import DomainLease

    lease = DomainLease()
    os.environ['ROS_DOMAIN_ID'] = str(lease.domain_id)
    env = dict(os.environ)
    output = pathlib.Path(tempfile.mkdtemp(prefix='demo_recording_')) / 'demos'
    driver = start('so101_driver', 'driver_node', env)
    recorder = start('hilserl_actor', 'demo_recorder_node', env, f'output_dir:={output}',
                     'min_free_disk_mb:=10.0')
    actor = MiniActor()
    try:
        actor.wait_ready()
        actor.spin_for(1.0)
        before = cpu_seconds(recorder.pid)
        actor.spin_for(args.idle_s)
        idle = (cpu_seconds(recorder.pid) - before) / args.idle_s
        latencies = []
        started, before = time.monotonic(), cpu_seconds(recorder.pid)
        for episode in range(args.episodes):
            published = actor.episode(episode, args.steps)
            while saved_count(output) < episode + 1:
                actor.spin_for(0.01)
                if time.monotonic() - published > 10:
                    raise TimeoutError(f'episode {episode} not saved')
            latencies.append(time.monotonic() - published)
        recording = (cpu_seconds(recorder.pid) - before) / (time.monotonic() - started)
    finally:
        actor.close()
        for process in (recorder, driver):
            process.send_signal(signal.SIGINT)
            process.wait(timeout=20)
        lease.release()
    result = check(output, args.steps, args.episodes)
    print(f'recorder CPU, idle (sim driver publishing): {100 * idle:.1f} % of one core')
    print(f'recorder CPU, recording at 10 Hz with 2 cameras: {100 * recording:.1f} % of one core')
    print(f'EpisodeStats -> episode saved: median {1000 * np.median(latencies):.0f} ms '
          f'(includes the 0.3 s publication-order window), max {1000 * max(latencies):.0f} ms')
    steps = max(result['transitions'], 1)
    print(f'bags: {result["bag_mb"]:.1f} MB for {result["transitions"]} steps '
          f'({result["bag_mb"] / steps:.3f} MB per step, zstd); labels {result["labels"]}')
    print(f'raw frames: {result["raw_frames"]} recorded of {result["raw_frames_expected"]}, '
          f'{result["raw_frames_missing"]} missing; re-crop from raw == recorded crops: '
          f'{result["recrop_equals_recorded"]}')
    print(f'recorder exit code {recorder.returncode}, output {output}')


if __name__ == '__main__':
    main()
