"""find_joint_limits: record joint and TCP ranges from /joint_states while a person moves the
arm (torque off, or teleoperation), print them live, and write the limit file the safety filter
loads (its ``limits_file`` parameter).

    ros2 run hilserl_safety find_joint_limits --output ~/so101_limits.yaml
    # move every joint through its safe range, then Ctrl-C (or pass --duration-s 60)

This is an interactive command-line tool: the live table goes to stdout, problems to stderr.
Exit status: 0 file written, 2 too little motion / bad arguments (no file written).
"""
import argparse
import datetime
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import JointState

from hilserl_safety.errors import InsufficientMotionError
from hilserl_safety.limits import save_limits_file
from hilserl_safety.nodes.conversions import JointStateMapper
from hilserl_safety.params import LimitFinderParams
from hilserl_safety.range_recorder import RangeRecorder
from so101_driver.dataclass_docs import field_docs


def parse_args(argv) -> LimitFinderParams:
    docs = field_docs(LimitFinderParams)
    defaults = LimitFinderParams()
    parser = argparse.ArgumentParser(prog='find_joint_limits', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ('output', 'urdf_path'):
        parser.add_argument(f'--{name.replace("_", "-")}', default=getattr(defaults, name),
                            help=docs[name])
    for name in ('min_range_rad', 'min_duration_s', 'duration_s', 'print_period_s'):
        parser.add_argument(f'--{name.replace("_", "-")}', type=float,
                            default=getattr(defaults, name), help=docs[name])
    parser.add_argument('--allow-partial', action='store_true', help=docs['allow_partial'])
    parser.add_argument('--joints', nargs='+', default=list(defaults.joint_names),
                        help=docs['joint_names'])
    args = parser.parse_args(argv)
    return LimitFinderParams(
        output=args.output, min_range_rad=args.min_range_rad,
        min_duration_s=args.min_duration_s, duration_s=args.duration_s,
        print_period_s=args.print_period_s, allow_partial=args.allow_partial,
        urdf_path=args.urdf_path, joint_names=tuple(args.joints))


def make_recorder(params: LimitFinderParams) -> RangeRecorder:
    from so101_driver.kinematics import So101Kinematics
    from so101_driver.model_files import ARM_JOINT_NAMES

    kinematics = None
    if params.joint_names[:len(ARM_JOINT_NAMES)] == ARM_JOINT_NAMES:
        kinematics = So101Kinematics(params.urdf_path or None)
    return RangeRecorder(params.joint_names, kinematics)


def record(params: LimitFinderParams, recorder: RangeRecorder) -> None:
    """Spin until duration_s has passed (or Ctrl-C / shutdown), feeding the recorder."""
    node = rclpy.create_node('joint_limit_finder')
    mapper = JointStateMapper(params.joint_names)

    def on_joint_state(msg: JointState) -> None:
        positions = mapper(msg)[0]
        if positions is None:
            recorder.rejected += 1
            return
        recorder.add(positions, time.monotonic())

    def show() -> None:
        sys.stdout.write(recorder.summary() + '\n\n')
        sys.stdout.flush()

    node.create_subscription(JointState, '/joint_states', on_joint_state,
                             QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    node.create_timer(params.print_period_s, show)
    sys.stdout.write('recording /joint_states: move every joint through its safe range; '
                     + ('Ctrl-C to finish\n' if params.duration_s == 0
                        else f'finishing {params.duration_s} s after the first sample\n'))
    try:
        while rclpy.ok():
            if (params.duration_s and recorder.first_s is not None
                    and time.monotonic() - recorder.first_s >= params.duration_s):
                break
            rclpy.spin_once(node, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()


def write(params: LimitFinderParams, recorder: RangeRecorder) -> int:
    sys.stdout.write('final ranges:\n' + recorder.summary() + '\n')
    try:
        limits = recorder.limits_file(params.min_range_rad, params.min_duration_s,
                                      params.allow_partial)
    except InsufficientMotionError as error:
        sys.stderr.write(f'find_joint_limits: {error}\n')
        return 2
    stamp = datetime.datetime.now().astimezone().isoformat(timespec='seconds')
    save_limits_file(params.output, limits, comment=(
        f'SO-101 joint and TCP ranges recorded by find_joint_limits on {stamp}.\n'
        'Load it with the safety_filter parameter limits_file; the filter intersects these\n'
        'ranges with the URDF limits and keeps joint_limit_margin_rad inside them.'))
    left_out = sorted(set(params.joint_names) - set(limits.joint_ranges_rad))
    sys.stdout.write(f'wrote {params.output}'
                     + (f' (left out, too little motion: {left_out})' if left_out else '')
                     + '\n')
    return 0


def main(args=None) -> int:
    argv = remove_ros_args(args if args is not None else sys.argv)[1:]
    try:
        params = parse_args(argv)
    except ValueError as error:
        sys.stderr.write(f'find_joint_limits: {error}\n')
        return 2
    recorder = make_recorder(params)
    rclpy.init(args=args)
    try:
        record(params, recorder)
    finally:
        rclpy.try_shutdown()
    return write(params, recorder)


if __name__ == '__main__':
    sys.exit(main())
