"""roi_crop: choose each camera's crop ROI and save it into the shared crop config (CLI).

The live source subscribes to ``<prefix>/<name>/image_raw`` and takes the first frame of each
camera; everything else is in ``hilserl_actor.roi_tool``.
"""
import functools
import sys
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from hilserl_actor.nodes import conversions
from hilserl_actor.roi_tool import CaptureError, main_offline


def capture_live(args) -> dict:
    """The first frame of every camera from its live topic (CaptureError after timeout_s)."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('roi_crop', context=context)
    frames = {}

    def keep(name, message):
        if name not in frames:
            try:
                frames[name] = conversions.camera_frame(message, time.monotonic()).image
            except ValueError as error:
                node.get_logger().warning(f'{name}: frame rejected: {error}',
                                          throttle_duration_sec=2.0)

    try:
        for name in args.cameras:
            node.create_subscription(Image, f'{args.topic_prefix}/{name}/image_raw',
                                     functools.partial(keep, name),
                                     qos_profile_sensor_data)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + args.timeout_s
        while len(frames) < len(args.cameras) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        executor.shutdown()
    finally:
        node.destroy_node()
        context.try_shutdown()
    missing = [name for name in args.cameras if name not in frames]
    if missing:
        topics = ', '.join(f'{args.topic_prefix}/{name}/image_raw' for name in missing)
        raise CaptureError(f'no frame on {topics} within {args.timeout_s:g} s: is the camera '
                           'node (or the sim driver) running?')
    return frames


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if '--ros-args' in argv:  # launched by ros2 run with ROS arguments: not ours
        argv = argv[:argv.index('--ros-args')]
    try:
        return main_offline(argv, capture_live)
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
