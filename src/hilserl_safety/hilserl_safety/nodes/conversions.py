"""The only mapping between ROS messages and the safety core's types."""
import array
import itertools

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
import numpy as np
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from visualization_msgs.msg import Marker, MarkerArray

from hilserl_msgs.msg import EndEffectorCommand as EndEffectorCommandMsg
from hilserl_msgs.msg import JointCommand as JointCommandMsg
from hilserl_msgs.msg import SafetyEvent
from hilserl_safety.filter import EeCommand, Gripper, JointCommand, Limit, Severity, Source

# The core's enums mirror the message constants; a test checks every pair.
ENUM_CONSTANTS = (
    [(Source[name], getattr(msg, f'SOURCE_{name}')) for name in Source.__members__
     for msg in (EndEffectorCommandMsg, JointCommandMsg)]
    + [(Gripper[name], getattr(EndEffectorCommandMsg, f'GRIPPER_{name}'))
       for name in Gripper.__members__]
    + [(Limit[name], getattr(SafetyEvent, f'LIMIT_{name}')) for name in Limit.__members__]
    + [(Severity[name], getattr(SafetyEvent, f'SEVERITY_{name}'))
       for name in Severity.__members__])


def ee_command_from_msg(msg) -> EeCommand:
    delta = np.array((msg.delta_m.x, msg.delta_m.y, msg.delta_m.z), dtype=float)
    return EeCommand(delta, int(msg.gripper_command), float(msg.gripper_position_rad),
                     int(msg.source))


def joint_command_from_msg(msg) -> JointCommand:
    return JointCommand(tuple(msg.names), tuple(float(p) for p in msg.positions),
                        int(msg.source))


class JointStateMapper:
    """/joint_states (any joint order, extra joints allowed) -> arrays in our joint order."""

    def __init__(self, joint_names):
        self.joint_names = tuple(joint_names)
        self._cache_key = None
        self._indices = None

    def __call__(self, msg):
        """(positions, efforts, velocities) in joint_names order; positions None when a joint
        is missing or the arrays are inconsistent, efforts / velocities None when absent.
        """
        key = tuple(msg.name)
        if key != self._cache_key:
            lookup = {name: i for i, name in enumerate(key)}
            self._indices = (np.array([lookup[n] for n in self.joint_names])
                             if all(n in lookup for n in self.joint_names) else None)
            self._cache_key = key
        if self._indices is None or len(msg.position) != len(key):
            return None, None, None
        positions = np.asarray(msg.position, dtype=float)[self._indices]
        efforts = velocities = None
        if len(msg.effort) == len(key):
            efforts = np.asarray(msg.effort, dtype=float)[self._indices]
        if len(msg.velocity) == len(key):
            velocities = np.asarray(msg.velocity, dtype=float)[self._indices]
        return positions, efforts, velocities


def target_to_msg(target, joint_names) -> Float64MultiArray:
    """Joint targets for the driver's /forward_position_controller/commands."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label='joints', size=len(joint_names), stride=1)]
    msg.data = array.array('d', np.asarray(target, dtype=float).tolist())
    return msg


def event_to_msg(event, stamp, frame_id: str = 'base_link') -> SafetyEvent:
    msg = SafetyEvent()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.limit = int(event.limit)
    msg.limit_name = event.limit_name
    msg.severity = int(event.severity)
    msg.source = int(event.source)
    msg.names = list(event.names)
    msg.offending_values = array.array('d', event.offending)
    msg.clipped_values = array.array('d', event.clipped)
    msg.message = event.message
    return msg


def diagnostics_msg(stamp, node_name: str, level: str, summary: str, counters,
                    extra: dict) -> DiagnosticArray:
    """One DiagnosticStatus with the counters of every limit and the state flags."""
    levels = {'ok': DiagnosticStatus.OK, 'warn': DiagnosticStatus.WARN,
              'error': DiagnosticStatus.ERROR}
    status = DiagnosticStatus(level=levels[level], name=f'{node_name}: safety filter',
                              message=summary, hardware_id='so101')
    values = {'commands': counters.commands, 'outputs': counters.outputs,
              'dropped_commands': counters.dropped,
              'invalid_joint_states': counters.invalid_joint_states}
    values.update({f'events_{name}': count for name, count in counters.by_limit.items()})
    values.update(extra)
    status.values = [KeyValue(key=key, value=str(value)) for key, value in values.items()]
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status]
    return msg


def markers_msg(stamp, box, tcp, frame_id: str = 'base_link') -> MarkerArray:
    """The workspace box (line list) and the current TCP target (sphere) for rviz2."""
    edges = Marker(type=Marker.LINE_LIST, action=Marker.ADD, ns='workspace', id=0)
    edges.header.frame_id, edges.header.stamp = frame_id, stamp
    edges.pose.orientation.w = 1.0
    edges.scale.x = 0.003
    edges.color.r, edges.color.g, edges.color.b, edges.color.a = 1.0, 0.6, 0.0, 0.9
    corners = {c: np.where(c, box.max_m, box.min_m) for c in itertools.product((0, 1), repeat=3)}
    for a, b in itertools.combinations(corners, 2):
        if sum(x != y for x, y in zip(a, b)) == 1:
            edges.points.extend(Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
                                for p in (corners[a], corners[b]))
    target = Marker(type=Marker.SPHERE, ns='target', id=1)
    target.header.frame_id, target.header.stamp = frame_id, stamp
    target.action = Marker.ADD if tcp is not None else Marker.DELETE
    if tcp is not None:
        target.pose.position = Point(x=float(tcp[0]), y=float(tcp[1]), z=float(tcp[2]))
    target.pose.orientation.w = 1.0
    target.scale.x = target.scale.y = target.scale.z = 0.02
    target.color.g, target.color.a = 1.0, 0.9
    return MarkerArray(markers=[edges, target])
