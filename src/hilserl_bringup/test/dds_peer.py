"""Talker / listener peers for the Fast DDS profile tests (not installed).

  dds_peer.py talker TOPIC                 publish std_msgs/String at 20 Hz until stopped
  dds_peer.py listener TOPIC COUNT TIMEOUT exit 0 after COUNT messages, 1 after TIMEOUT s
"""
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from std_msgs.msg import String


def talker(node, topic):
    publisher = node.create_publisher(String, topic, 10)
    count = [0]

    def tick():
        count[0] += 1
        publisher.publish(String(data=f'message {count[0]}'))

    node.create_timer(0.05, tick)
    rclpy.spin(node)
    return 0


def listener(node, topic, count, timeout_s):
    received = []
    node.create_subscription(String, topic, received.append, 10)
    deadline = time.monotonic() + timeout_s
    while len(received) < count and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    return 0 if len(received) >= count else 1


def main():
    rclpy.init()
    node = rclpy.create_node(f'dds_peer_{sys.argv[1]}')
    code = 1
    try:
        if sys.argv[1] == 'talker':
            code = talker(node, sys.argv[2])
        else:
            code = listener(node, sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    except (KeyboardInterrupt, ExternalShutdownException):
        code = 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
