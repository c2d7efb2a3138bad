"""nodes/conversions.py: core types <-> messages, and the core enums equal the msg constants."""
import pytest

from hilserl_actor.teleop.types import (
    EpisodeEvent,
    EpisodeEventType,
    Gripper,
    HumanCommand,
    InputDevice,
    InterventionStatus,
)

pytestmark = pytest.mark.ros


def test_core_enums_equal_the_message_constants():
    from hilserl_msgs.msg import EndEffectorCommand, InterventionState
    from hilserl_msgs.msg import EpisodeEvent as EventMsg

    for gripper in Gripper:
        assert getattr(EndEffectorCommand, f'GRIPPER_{gripper.name}') == gripper.value
    for event in EpisodeEventType:
        assert getattr(EventMsg, event.name) == event.value
    for device in InputDevice:
        assert getattr(InterventionState, f'SOURCE_{device.name}') == device.value


def test_messages_from_core_types():
    from builtin_interfaces.msg import Time

    from hilserl_actor.nodes import conversions
    from hilserl_msgs.msg import EndEffectorCommand
    from hilserl_msgs.msg import EpisodeEvent as EventMsg

    stamp = Time(sec=3, nanosec=4)
    command = conversions.human_command_message(
        HumanCommand((0.01, -0.02, 0.0), Gripper.OPEN), stamp, 'base_link')
    assert command.source == EndEffectorCommand.SOURCE_HUMAN
    assert (command.delta_m.x, command.delta_m.y, command.delta_m.z) == (0.01, -0.02, 0.0)
    assert command.gripper_command == EndEffectorCommand.GRIPPER_OPEN
    assert (command.header.frame_id, command.header.stamp.sec) == ('base_link', 3)
    state = conversions.intervention_message(
        InterventionStatus(True, 7, InputDevice.KEYBOARD), stamp)
    assert (state.active, state.intervention_count, state.source) == (True, 7, 2)
    event = conversions.episode_event_message(
        EpisodeEvent(EpisodeEventType.RERECORD, 'keyboard r'), stamp, 'keyboard')
    assert (event.event, event.source, event.reason) == (EventMsg.RERECORD, 'keyboard',
                                                         'keyboard r')
    joy = conversions.joy_message([0.5, -1.0], [0, 1], stamp)
    assert conversions.joy_arrays(joy) == ([0.5, -1.0], [0, 1])
    assert joy.header.frame_id == 'joy'
    assert conversions.estop_message().data is True
