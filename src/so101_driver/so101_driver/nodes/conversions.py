"""The only mapping between ROS messages and the driver's ROS-free core types."""
import array

from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import Pose, Twist
import numpy as np
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState

from hilserl_msgs.msg import SimGroundTruth
from so101_driver.backend import JointSample
from so101_driver.sim.so101_sim import GroundTruth
from so101_driver.trajectory import TrajectoryCommand

try:  # cv_bridge is part of a full ROS install, not of the PyPI wheels
    from cv_bridge import CvBridge
except ImportError:  # pragma: no cover - depends on the installation
    CvBridge = None

_BRIDGE = CvBridge() if CvBridge is not None else None
DIAGNOSTIC_LEVELS = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN,
                     'error': DiagnosticStatus.ERROR, 'stale': DiagnosticStatus.STALE}


# --- time ------------------------------------------------------------------------------------
def time_from_seconds(seconds: float) -> Time:
    nanoseconds = int(round(max(0.0, seconds) * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def seconds_from_duration(duration: Duration) -> float:
    return duration.sec + duration.nanosec * 1e-9


def clock_message(seconds: float) -> Clock:
    return Clock(clock=time_from_seconds(seconds))


# --- joints ----------------------------------------------------------------------------------
def joint_state(sample: JointSample, names, stamp: Time) -> JointState:
    message = JointState(name=list(names))
    message.header.stamp = stamp
    message.position = sample.positions_rad.astype(float).tolist()
    message.velocity = sample.velocities_rad_s.astype(float).tolist()
    message.effort = sample.efforts.astype(float).tolist()
    return message


def position_command(message) -> list[float]:
    """Float64MultiArray -> the values (the core checks length and finiteness)."""
    return list(message.data)


def trajectory_command(message) -> TrajectoryCommand:
    """trajectory_msgs/JointTrajectory -> TrajectoryCommand (accelerations are ignored).

    Ragged or malformed points pass through unchanged; the core rejects them with the reason.
    """
    points = message.points
    times = [seconds_from_duration(point.time_from_start) for point in points]
    positions = [list(point.positions) for point in points]
    velocities = None
    if any(len(point.velocities) for point in points):
        velocities = [list(point.velocities) for point in points]
    return TrajectoryCommand(tuple(message.joint_names), times, positions, velocities)


# --- simulation ------------------------------------------------------------------------------
def pose(position, quaternion_wxyz) -> Pose:
    message = Pose()
    message.position.x, message.position.y, message.position.z = map(float, position)
    w, x, y, z = map(float, quaternion_wxyz)
    message.orientation.w, message.orientation.x = w, x
    message.orientation.y, message.orientation.z = y, z
    return message


def ground_truth(truth: GroundTruth, stamp: Time) -> SimGroundTruth:
    message = SimGroundTruth()
    message.header.stamp = stamp
    message.header.frame_id = 'world'
    message.object_pose = pose(truth.object_position_m, truth.object_quaternion_wxyz)
    twist = Twist()
    twist.linear.x, twist.linear.y, twist.linear.z = map(float,
                                                         truth.object_linear_velocity_m_s)
    twist.angular.x, twist.angular.y, twist.angular.z = map(
        float, truth.object_angular_velocity_rad_s)
    message.object_twist = twist
    message.tcp_pose = pose(truth.tcp_position_m, truth.tcp_quaternion_wxyz)
    message.object_height_m = float(truth.object_height_m)
    message.object_grasped = bool(truth.object_grasped)
    message.success = bool(truth.success)
    message.episode_seed = int(truth.episode_seed)
    return message


def fill_reset_response(response, result, message: str = ''):
    """hilserl_msgs/ResetEpisode response from a sim ``ResetResult``."""
    response.success = True
    response.message = message
    response.seed = int(result.seed)
    response.object_pose = pose(result.object_position_m, result.object_quaternion_wxyz)
    response.joint_positions = [float(v) for v in result.joint_positions_rad]
    return response


# --- images ----------------------------------------------------------------------------------
def image(frame: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image rgb8 (cv_bridge when installed)."""
    if _BRIDGE is not None:
        message = _BRIDGE.cv2_to_imgmsg(np.ascontiguousarray(frame), encoding='rgb8')
    else:
        height, width = frame.shape[:2]
        message = Image(height=height, width=width, encoding='rgb8', is_bigendian=0,
                        step=width * 3)
        message.data = array.array('B', np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
    message.header.stamp = stamp
    message.header.frame_id = frame_id
    return message


def camera_info(width: int, height: int, stamp: Time, frame_id: str,
                intrinsics: np.ndarray | None = None) -> CameraInfo:
    """CameraInfo; without ``intrinsics`` K stays zero (an uncalibrated camera, REP 104)."""
    message = CameraInfo(width=int(width), height=int(height), distortion_model='plumb_bob')
    message.header.stamp = stamp
    message.header.frame_id = frame_id
    message.d = [0.0] * 5
    if intrinsics is not None:
        k = np.asarray(intrinsics, dtype=float)
        message.k = k.ravel().tolist()
        message.r = np.eye(3).ravel().tolist()
        message.p = np.hstack([k, np.zeros((3, 1))]).ravel().tolist()
    return message


# --- diagnostics -----------------------------------------------------------------------------
def diagnostic_status(name: str, hardware_id: str, level: str, message: str,
                      values: dict) -> DiagnosticStatus:
    status = DiagnosticStatus(name=name, hardware_id=hardware_id, message=message)
    status.level = DIAGNOSTIC_LEVELS[level]
    status.values = [KeyValue(key=str(key), value=str(value)) for key, value in values.items()]
    return status
