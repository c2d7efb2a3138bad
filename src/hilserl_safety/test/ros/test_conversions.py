"""Message <-> core mapping and parameter declaration (in-process rclpy)."""
import numpy as np
import pytest

pytestmark = pytest.mark.ros


def test_core_enums_equal_the_message_constants():
    from hilserl_safety.nodes.conversions import ENUM_CONSTANTS

    assert len(ENUM_CONSTANTS) == 3 * 2 + 4 + 11 + 4
    for core, constant in ENUM_CONSTANTS:
        assert int(core) == constant, core


def test_joint_states_are_mapped_by_name():
    from sensor_msgs.msg import JointState

    from hilserl_safety.nodes.conversions import JointStateMapper

    mapper = JointStateMapper(('a', 'b', 'c'))
    msg = JointState(name=['c', 'x', 'a', 'b'], position=[3.0, 9.0, 1.0, 2.0],
                     velocity=[0.3, 0.9, 0.1, 0.2], effort=[30.0, 90.0, 10.0, 20.0])
    positions, efforts, velocities = mapper(msg)
    np.testing.assert_array_equal(positions, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(efforts, [10.0, 20.0, 30.0])
    np.testing.assert_array_equal(velocities, [0.1, 0.2, 0.3])
    assert mapper(JointState(name=['a', 'b'], position=[1.0, 2.0])) == (None, None, None)
    positions, efforts, velocities = mapper(JointState(name=['a', 'b', 'c'],
                                                       position=[1.0, 2.0, 3.0]))
    assert efforts is None and velocities is None and positions.tolist() == [1.0, 2.0, 3.0]
    assert mapper(JointState(name=['a', 'b', 'c'], position=[1.0]))[0] is None


def test_commands_events_and_markers():
    from builtin_interfaces.msg import Time

    from hilserl_msgs.msg import EndEffectorCommand, SafetyEvent
    from hilserl_safety.filter import Event, Limit, Severity
    from hilserl_safety.limits import WorkspaceBox
    from hilserl_safety.nodes import conversions

    msg = EndEffectorCommand(source=1, gripper_command=3, gripper_position_rad=0.4)
    msg.delta_m.x, msg.delta_m.z = 0.01, -0.02
    command = conversions.ee_command_from_msg(msg)
    assert command.delta_m.tolist() == [0.01, 0.0, -0.02]
    assert (command.source, command.gripper, command.gripper_position_rad) == (1, 3, 0.4)
    event = Event(Limit.WORKSPACE, Severity.CLIP, 'workspace_x_m', 'clipped', 1, ('x',),
                  (0.5,), (0.35,))
    out = conversions.event_to_msg(event, Time(sec=3))
    assert (out.limit, out.severity, out.source) == (SafetyEvent.LIMIT_WORKSPACE,
                                                     SafetyEvent.SEVERITY_CLIP, 1)
    assert list(out.names) == ['x'] and list(out.clipped_values) == [0.35]
    target = conversions.target_to_msg(np.arange(6.0), ['j'] * 6)
    assert list(target.data) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    box = WorkspaceBox(np.array([0.1, -0.2, 0.0]), np.array([0.3, 0.2, 0.2]))
    markers = conversions.markers_msg(Time(), box, np.array([0.2, 0.0, 0.1]))
    edges = np.array([[p.x, p.y, p.z] for p in markers.markers[0].points]).reshape(12, 2, 3)
    assert np.all(np.count_nonzero(edges[:, 0] != edges[:, 1], axis=1) == 1)
    assert markers.markers[1].pose.position.z == pytest.approx(0.1)


def test_parameters_are_declared_from_the_dataclass(ros_domain):
    import rclpy

    from hilserl_safety.nodes.parameters import declare_parameters, read_parameters
    from hilserl_safety.params import SafetyFilterParams

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain)
    try:
        node = rclpy.create_node('declare_test', context=context,
                                 start_parameter_services=False)
        declare_parameters(node, SafetyFilterParams)
        assert read_parameters(node, SafetyFilterParams) == SafetyFilterParams()
        [control, box] = node.describe_parameters(['control_rate_hz', 'workspace_max_m'])
        assert control.read_only and control.floating_point_range[0].to_value == 1000.0
        assert 'Rate of the watchdog' in control.description
        assert not box.read_only and 'decrease' in box.additional_constraints
        with pytest.raises(ValueError, match='workspace_min_m'):
            read_parameters(node, SafetyFilterParams, {'workspace_min_m': [0.5, 0.0, 0.0]})
        node.destroy_node()
    finally:
        context.try_shutdown()
