"""The driver's side of the safety filter's interface, played by the test client's node.

It publishes /joint_states at 50 Hz with the positions the filter last commanded (a perfectly
tracking arm) and efforts the test chooses, publishes the actor heartbeat while asked to, and
serves /so101_driver/enable_torque, recording each request. Everything crosses real DDS to the
safety_filter process; nothing inside the filter is replaced.
"""
import time

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, Header
from std_srvs.srv import SetBool

JOINTS = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper')
# Gripper pointing down, TCP at (0.20, 0.00, 0.03) m: inside the default workspace box.
HOME = np.array([-6.1e-05, -0.15178, 0.51356, 1.20902, 0.0, 0.5])


class ArmEcho:
    def __init__(self, client, rate_hz: float = 50.0):
        self.client = client
        node = client.node
        self.positions = HOME.copy()
        self.efforts = np.zeros(6)
        self.publishing = False
        self.heartbeat = False
        self.torque_requests = []
        self.targets = client.subscribe(Float64MultiArray,
                                        '/forward_position_controller/commands')
        self.state_publisher = client.publisher(JointState, '/joint_states')
        self.heartbeat_publisher = client.publisher(Header, '/hilserl/actor_heartbeat')
        self.last_state_s = None
        node.create_service(SetBool, '/so101_driver/enable_torque', self._on_torque)
        node.create_timer(1.0 / rate_hz, self._on_timer)

    def _on_torque(self, request, response):
        self.torque_requests.append((bool(request.data), time.monotonic()))
        response.success, response.message = True, 'ok'
        return response

    def _on_timer(self) -> None:
        if self.targets.last is not None:
            self.positions = np.array(self.targets.last.data)
        if self.publishing:
            msg = JointState(name=list(JOINTS), position=self.positions.tolist(),
                             velocity=[0.0] * 6, effort=self.efforts.tolist())
            msg.header.stamp = self.client.node.get_clock().now().to_msg()
            self.state_publisher.publish(msg)
            self.last_state_s = time.monotonic()
        if self.heartbeat:
            self.heartbeat_publisher.publish(Header(frame_id='actor'))
