"""Test peer: plays the actor, teleop, driver and camera of a demo session on the real topics.

  demo_actor.py EPISODES [--partial ID:STEPS] [--period S]

EPISODES: comma-separated ``id:steps:end_reason`` (end_reason success, failure, time_limit,
rerecord, ...). Each episode's messages (tests/hilserl_testing/demo_streams.py) are published
in order with the contract's QoS: transitions, observations, episode stats and events,
intervention state, commands, joint states and raw camera frames. ``--partial ID:STEPS`` then
publishes the first STEPS steps of one more episode and no EpisodeStats. Prints ``published
N`` when done and stays up until stopped, so reliable delivery can finish.
"""
import argparse
import pathlib
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[5] / 'tests'))
from hilserl_learner import demo_format as fmt  # noqa: E402
from hilserl_testing import demo_streams as ds  # noqa: E402

QOS = {
    'reliable': QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
    'keep_all': QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                           reliability=ReliabilityPolicy.RELIABLE),
    'latched': QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL),
    'sensor': qos_profile_sensor_data,
}


def plan_list(text: str) -> list[ds.EpisodePlan]:
    plans = []
    for item in filter(None, text.split(',')):
        episode, steps, reason = item.split(':')
        plans.append(ds.EpisodePlan(int(episode), int(steps), reason))
    return plans


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('episodes')
    parser.add_argument('--partial', default='')
    parser.add_argument('--period', type=float, default=0.003)
    args = parser.parse_args()
    make = ds.rclpy_maker()
    messages = [m for plan in plan_list(args.episodes) for m in ds.episode_messages(make, plan)]
    if args.partial:
        episode, steps = (int(v) for v in args.partial.split(':'))
        partial = ds.episode_messages(make, ds.EpisodePlan(episode, steps + 1, 'success'),
                                      with_stats=False)
        last = [i for i, (topic, _) in enumerate(partial) if topic == fmt.TRANSITIONS][steps - 1]
        messages += partial[:last + 1]
    rclpy.init()
    node = rclpy.create_node('demo_actor')
    specs = {t.name: t for t in fmt.RECORDED_TOPICS} | {
        fmt.raw_image_topic(ds.CAMERA).name: fmt.raw_image_topic(ds.CAMERA)}
    publishers = {}
    for topic, message in messages:
        if topic not in publishers:
            publishers[topic] = node.create_publisher(type(message), topic, QOS[specs[topic].qos])
    try:
        deadline = time.monotonic() + 30
        while any(p.get_subscription_count() == 0 for p in publishers.values()):
            if time.monotonic() > deadline:
                raise TimeoutError('no subscriber on ' + ', '.join(
                    t for t, p in publishers.items() if p.get_subscription_count() == 0))
            rclpy.spin_once(node, timeout_sec=0.05)
        # A writer may see a reader (count > 0, possibly a lingering endpoint of an earlier
        # process) before that reader has matched the writer: a volatile reader drops what
        # came before its match. Under CI load 0.2 s lost an episode's first message once.
        time.sleep(1.0)
        for topic, message in messages:
            publishers[topic].publish(message)
            rclpy.spin_once(node, timeout_sec=args.period)
        print(f'published {len(messages)}', flush=True)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
