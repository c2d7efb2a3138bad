"""teleop_node across processes: /joy from this test -> commands, interventions, events, e-stop."""
import importlib.util
import math
import pathlib

import pytest

from hilserl_testing.processes import ProcessGroup

pytestmark = pytest.mark.ros

_spec = importlib.util.spec_from_file_location(
    'joy_helpers', pathlib.Path(__file__).with_name('joy_helpers.py'))
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)
joy_state, A, BACK, RB = helpers.joy_state, helpers.A, helpers.BACK, helpers.RB

RATE_HZ, SPEED_M_S = 20.0, 0.2
STEP_M = SPEED_M_S / RATE_HZ  # 0.01 m per control step at full deflection
PARAMS = {'control_rate_hz': RATE_HZ, 'max_ee_speed_m_s': SPEED_M_S, 'deadzone': 0.1,
          'joy_timeout_s': 1.0, 'event_debounce_s': 0.2, 'intervention_period_s': 0.5}


@pytest.fixture(scope='module')
def teleop(ros_domain, ros_client, tmp_path_factory):
    """One teleop_node for the module, brought up through its lifecycle services."""
    group = ProcessGroup(tmp_path_factory.mktemp('teleop_logs'))
    process = group.start_node('hilserl_actor', 'teleop_node', name='teleop', parameters=PARAMS)
    try:
        assert ros_client.lifecycle_state('teleop', timeout_s=20) == 'unconfigured'
        ros_client.bring_up('teleop')
        yield process
    except BaseException:
        print(group.logs())
        raise
    finally:
        codes = group.stop_all()
        assert codes == {'teleop': 0}, group.logs()


@pytest.fixture(scope='module')
def outputs(ros_client):
    from std_msgs.msg import Bool

    from hilserl_msgs.msg import EndEffectorCommand, EpisodeEvent, InterventionState
    from hilserl_testing.client import KEEP_ALL, LATCHED

    return {
        'command': ros_client.subscribe(EndEffectorCommand, '/hilserl/human/ee_command'),
        'state': ros_client.subscribe(InterventionState, '/hilserl/intervention', LATCHED),
        'event': ros_client.subscribe(EpisodeEvent, '/hilserl/episode_event', KEEP_ALL),
        'estop': ros_client.subscribe(Bool, '/hilserl/estop'),
    }


@pytest.fixture(scope='module')
def joy(ros_client):
    return helpers.JoyDriver(ros_client)


def is_active(states) -> bool:
    return states.last is not None and states.last.active


def latched_state(ros_client, predicate, timeout_s=5.0):
    """The intervention state a *new* (late) transient-local subscriber receives."""
    from hilserl_msgs.msg import InterventionState
    from hilserl_testing.client import LATCHED

    return ros_client.wait_for_message(InterventionState, '/hilserl/intervention', timeout_s,
                                       predicate, qos=LATCHED)


def test_configured_node_latches_an_inactive_intervention(teleop, ros_client):
    from hilserl_msgs.msg import InterventionState

    state = latched_state(ros_client, None)
    assert (state.active, state.intervention_count) == (False, 0)
    assert state.source == InterventionState.SOURCE_GAMEPAD


def test_takeover_drives_the_arm_with_scaled_deltas(teleop, ros_client, joy, outputs):
    from hilserl_msgs.msg import EndEffectorCommand

    commands = outputs['command']
    joy.hold(joy_state(), 0.3)
    assert len(commands) == 0, 'commands without takeover'
    # Left stick fully up (+x), barely left inside the deadzone (y stays 0), right stick 55 %
    # down (-z: (0.55 - 0.1) / 0.9 = 0.5), right trigger pressed (close), takeover held.
    drive = joy_state(RB, left_y=1.0, left_x=0.05, right_y=-0.55, right_trigger=-1.0)
    joy.hold(drive, 1.0)
    active = latched_state(ros_client, lambda m: m.active)
    assert active.intervention_count == 1
    assert len(commands) >= 8, f'{len(commands)} commands in 1 s at {RATE_HZ} Hz'
    last = commands.last
    norm = math.hypot(1.0, 0.5)
    assert last.source == EndEffectorCommand.SOURCE_HUMAN
    assert last.header.frame_id == 'base_link'
    assert last.delta_m.x == pytest.approx(STEP_M / norm, rel=1e-6)
    assert last.delta_m.y == 0.0
    assert last.delta_m.z == pytest.approx(-0.5 * STEP_M / norm, rel=1e-6)
    assert last.gripper_command == EndEffectorCommand.GRIPPER_CLOSE
    assert all(math.sqrt(c.delta_m.x ** 2 + c.delta_m.y ** 2 + c.delta_m.z ** 2)
               <= STEP_M + 1e-9 for c in commands.messages)
    # Release the takeover: the state clears (also for a late subscriber), commands stop.
    joy.hold(joy_state(left_y=1.0), 0.3)
    released = latched_state(ros_client, lambda m: not m.active)
    assert released.intervention_count == 1
    count = len(commands)
    joy.hold(joy_state(left_y=1.0), 0.4)
    assert len(commands) == count, 'commands after the takeover was released'


def test_success_once_per_press(teleop, joy, outputs):
    from hilserl_msgs.msg import EpisodeEvent

    events = outputs['event']
    events.clear()
    joy.hold(joy_state(), 0.2)
    joy.hold(joy_state(A), 0.6)          # held for 12 Joy messages
    joy.hold(joy_state(), 2.0, until=lambda: len(events) >= 1)
    joy.hold(joy_state(), 0.3)
    assert [(e.event, e.source) for e in events.messages] == [(EpisodeEvent.SUCCESS, 'gamepad')]
    joy.hold(joy_state(A), 0.2)
    joy.hold(joy_state(), 2.0, until=lambda: len(events) >= 2)
    joy.hold(joy_state(), 0.2)
    assert [e.event for e in events.messages] == [EpisodeEvent.SUCCESS] * 2


def test_estop_button_latches(teleop, joy, outputs):
    estop = outputs['estop']
    joy.hold(joy_state(), 0.1)
    joy.hold(joy_state(BACK), 2.0, until=lambda: len(estop) > 0)
    assert estop.last.data is True


def test_malformed_joy_is_rejected_and_the_input_times_out(teleop, joy, outputs):
    commands, states = outputs['command'], outputs['state']
    joy.hold(joy_state(RB), 2.0, until=lambda: is_active(states))
    # NaN axes with the takeover "released": rejected, so the intervention stays on ...
    nan_state = joy_state(left_y=float('nan'))
    joy.hold(nan_state, 0.4)
    assert states.last.active
    count = len(commands)
    # ... until joy_timeout_s (1 s) after the last valid message; then commands stop.
    joy.hold(nan_state, 3.0, until=lambda: not states.last.active)
    assert len(commands) > count, 'the last valid input held until the timeout'
    count = len(commands)
    joy.hold(([0.0] * 5, [0] * 21), 0.3)  # too few axes: rejected too
    assert len(commands) == count


def test_deactivate_releases_and_activate_resumes(teleop, ros_client, joy, outputs):
    commands, states = outputs['command'], outputs['state']
    joy.hold(joy_state(RB), 2.0, until=lambda: is_active(states))
    count = states.last.intervention_count
    assert ros_client.lifecycle_transition('teleop', 'deactivate')
    ros_client.spin_until(lambda: not states.last.active, 5, 'the release on deactivate')
    ros_client.spin_for(0.2)
    before = len(commands)
    joy.hold(joy_state(RB), 0.4)  # an inactive node ignores the pad
    assert len(commands) == before and not states.last.active
    assert ros_client.lifecycle_transition('teleop', 'cleanup')
    ros_client.bring_up('teleop')
    joy.hold(joy_state(RB), 3.0, until=lambda: is_active(states))
    assert states.last.intervention_count == 1  # a new configuration starts a new count
    assert count >= 1

def test_bad_mapping_file_fails_configure(ros_client, ros_processes, tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('motion: {x: {axis: 1}}\n')
    ros_processes.start_node('hilserl_actor', 'teleop_node', name='teleop_bad',
                             parameters={'mapping_file': str(bad)})
    assert ros_client.lifecycle_state('teleop_bad', timeout_s=20) == 'unconfigured'
    assert ros_client.lifecycle_transition('teleop_bad', 'configure') is False
    assert ros_client.lifecycle_state('teleop_bad') == 'unconfigured'
    assert ros_processes.stop_all() == {'teleop_bad': 0}


def test_exit_releases_the_intervention(teleop, ros_client, joy):
    """Last in the module: Ctrl-C while the human holds the arm publishes the release first."""
    import signal

    from hilserl_msgs.msg import InterventionState
    from hilserl_testing.client import LATCHED

    states = ros_client.subscribe(InterventionState, '/hilserl/intervention', LATCHED)
    joy.hold(joy_state(RB), 2.0, until=lambda: is_active(states))
    teleop.send_signal(signal.SIGINT)
    joy.hold(joy_state(RB), 5.0, until=lambda: not teleop.is_running())
    assert teleop.process.returncode == 0
    ros_client.spin_until(lambda: not states.last.active, 5, 'the released intervention')
