"""Peer process: streams Transitions of a point-mass task to /hilserl/transitions.

  transition_publisher.py COUNT [--bad] [--gap] [--reward R]

COUNT good transitions (episodes of 20 steps, a 16x16 'front' camera, 4-d state, xyz action +
gripper command, every 3rd step an intervention). ``--bad`` adds three invalid transitions
(NaN state, unknown camera, action out of range); ``--gap`` leaves out one step (counted as
dropped by the learner); ``--reward`` gives every transition that reward (1e30: finite and
valid, but its square overflows the TD loss). Stays up until stopped, so reliable delivery can
finish.
"""
import argparse

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from hilserl_learner.nodes.conversions import transition_to_msg
from hilserl_learner.observation import Observation, Transition
from hilserl_msgs.msg import Transition as TransitionMsg

EPISODE_STEPS = 20


def observation(rng, position) -> Observation:
    frame = np.zeros((16, 16, 3), np.uint8)
    x, y = np.clip(((position[:2] + 1) * 7.5).astype(int), 0, 15)
    frame[y, x] = 255
    frame[..., 2] = rng.integers(0, 40)
    return Observation(np.r_[position, 0.0].astype(np.float32), {'front': frame})


def transitions(count: int, gap: bool, reward: float | None = None):
    rng = np.random.default_rng(1)
    produced = 0
    episode = 0
    while produced < count:
        position = rng.uniform(-1, 1, 3)
        obs = observation(rng, position)
        for step in range(EPISODE_STEPS):
            action = rng.uniform(-1, 1, 3)
            position = np.clip(position + 0.1 * action, -1, 1)
            next_obs = observation(rng, position)
            near = float(np.linalg.norm(position) < 0.3)
            last = step == EPISODE_STEPS - 1
            transition = Transition(obs, np.r_[action, step % 3].astype(np.float32),
                                    near if reward is None else reward,
                                    next_obs, terminated=False, truncated=last,
                                    is_intervention=step % 3 == 0,
                                    gripper_penalty=-0.02 * (step % 3 != 1),
                                    episode_id=episode, step_index=step, source='peer')
            obs = next_obs
            if gap and episode == 1 and step == 5:
                continue  # lost in transport
            yield transition
            produced += 1
            if produced == count:
                return
        episode += 1


def bad_transitions():
    good = next(transitions(1, False))
    nan_state = Transition(Observation(np.full(4, np.nan, np.float32), good.observation.images),
                           good.action, 0.0, good.next_observation, False, episode_id=900)
    wrong_camera = Transition(Observation(good.observation.state, {'side': good.observation
                                                                   .images['front']}),
                              good.action, 0.0, good.next_observation, False, episode_id=901)
    out_of_range = Transition(good.observation, np.array([3.0, 0, 0, 1], np.float32), 0.0,
                              good.next_observation, False, episode_id=902)
    return [nan_state, wrong_camera, out_of_range]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('count', type=int)
    parser.add_argument('--bad', action='store_true')
    parser.add_argument('--gap', action='store_true')
    parser.add_argument('--reward', type=float)
    args = parser.parse_args()
    rclpy.init()
    node = rclpy.create_node('transition_publisher')
    qos = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                     reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(TransitionMsg, '/hilserl/transitions', qos)
    try:
        while publisher.get_subscription_count() == 0:
            rclpy.spin_once(node, timeout_sec=0.05)
        messages = [transition_to_msg(t) for t in transitions(args.count, args.gap,
                                                              args.reward)]
        if args.bad:
            messages[10:10] = [transition_to_msg(t) for t in bad_transitions()]
        for message in messages:
            message.header.stamp = node.get_clock().now().to_msg()
            publisher.publish(message)
            rclpy.spin_once(node, timeout_sec=0.002)
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
