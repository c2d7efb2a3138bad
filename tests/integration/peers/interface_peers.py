"""Peer processes for the cross-process interface tests.

  interface_peers.py transitions COUNT   publish COUNT Transitions with two 128x128 RGB images
  interface_peers.py weights SIZE_BYTES  serve GetPolicyWeights, SIZE_BYTES payload, version 3

Content is a deterministic function of the step index / size, so the test can check every byte.
"""
import array
import hashlib
import sys

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from hilserl_msgs.msg import Observation, Transition
from hilserl_msgs.srv import GetPolicyWeights

WEIGHTS_VERSION = 3


def frames(step: int) -> list[np.ndarray]:
    rng = np.random.default_rng(step)
    return [rng.integers(0, 256, (128, 128, 3), dtype=np.uint8) for _ in range(2)]


def observation(step: int) -> Observation:
    obs = Observation()
    obs.header.frame_id = 'base_link'
    obs.state_names = [f'joint_{i}' for i in range(6)]
    obs.state = [float(step) + i / 10 for i in range(6)]
    obs.camera_names = ['front', 'wrist']
    for frame in frames(step):
        image = Image(height=128, width=128, encoding='rgb8', step=128 * 3)
        image.data = array.array('B', frame.tobytes())
        obs.images.append(image)
    obs.privileged_names = ['cube_x', 'cube_y', 'cube_z']
    obs.privileged_state = [0.2, -0.1, 0.015]
    return obs


def publish_transitions(node, count: int) -> None:
    qos = QoSProfile(depth=count, history=HistoryPolicy.KEEP_ALL,
                     reliability=ReliabilityPolicy.RELIABLE)
    publisher = node.create_publisher(Transition, '/hilserl/transitions', qos)
    while publisher.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.05)
    for step in range(count):
        message = Transition(episode_id=7, step_index=step, reward=float(step == count - 1),
                             terminated=step == count - 1, truncated=False,
                             is_intervention=step % 2 == 1,
                             gripper_penalty=-0.02 * (step % 3 == 0))
        message.header.stamp = node.get_clock().now().to_msg()
        message.observation = observation(step)
        message.next_observation = observation(step + 1)
        message.action = [0.1 * step, -0.5, 1.0, Transition.GRIPPER_STAY]
        publisher.publish(message)
        rclpy.spin_once(node, timeout_sec=0.02)
    # Stay up until the test stops us, so reliable delivery can finish.
    rclpy.spin(node)


def serve_weights(node, size: int) -> None:
    payload = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    checksum = hashlib.sha256(payload).hexdigest()
    cached = array.array('B', payload)

    def handle(request, response):
        response.ready = True
        response.version = WEIGHTS_VERSION
        response.format = 'test-blob-v1'
        response.checksum = checksum
        response.config_json = '{}'
        if request.current_version != WEIGHTS_VERSION:
            response.weights = cached
        return response

    node.create_service(GetPolicyWeights, '/hilserl/get_policy_weights', handle)
    rclpy.spin(node)


def main() -> None:
    role, amount = sys.argv[1], int(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node(f'interface_peer_{role}')
    try:
        if role == 'transitions':
            publish_transitions(node, amount)
        else:
            serve_weights(node, amount)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
