"""oracle_node in mode intervene across processes: this test plays a policy (heartbeat and
SOURCE_POLICY commands through the safety filter to the sim driver); the oracle takes over
briefly when the policy drives away from the cube or stalls."""
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

TAKEOVER_STEPS = 5


def test_oracle_takes_over_when_the_policy_drifts_or_stalls(ros_client, ros_processes):
    from std_msgs.msg import Header

    from hilserl_msgs.msg import EndEffectorCommand, InterventionState
    from hilserl_msgs.srv import ResetEpisode
    from hilserl_testing.client import LATCHED

    ros_processes.start_node('so101_driver', 'driver_node', 'so101_driver',
                             parameters={'camera_rate_hz': 0.0})
    ros_processes.start_node('hilserl_safety', 'safety_filter_node', 'safety_filter')
    ros_processes.start_node('hilserl_actor', 'oracle_node', 'oracle', parameters={
        'mode': 'intervene', 'drift_window_steps': 3, 'drift_threshold_m': 0.015,
        'stall_steps': 8, 'takeover_steps': TAKEOVER_STEPS, 'cooldown_steps': 3,
        'takeover_probability_start': 1.0, 'takeover_probability_end': 1.0})
    states = ros_client.subscribe(InterventionState, '/hilserl/intervention', LATCHED)
    oracle_commands = ros_client.subscribe(EndEffectorCommand, '/hilserl/human/ee_command')
    policy = ros_client.publisher(EndEffectorCommand, '/hilserl/ee_command')
    heartbeat = ros_client.publisher(Header, '/hilserl/actor_heartbeat')
    for node in ('so101_driver', 'safety_filter', 'oracle'):
        ros_client.bring_up(node, timeout_s=60)
    reset = ros_client.call(ResetEpisode, '/so101_driver/reset_episode',
                            ResetEpisode.Request(use_seed=True, seed=5, randomize_object=False))
    assert reset.success and reset.object_pose.position.y == pytest.approx(0.0)
    ros_client.wait_for_subscribers(policy, 2)  # the safety filter and the oracle

    def drive(delta_y, steps):
        """``steps`` policy commands at 10 Hz; the intervention state after each."""
        seen = []
        for _ in range(steps):
            heartbeat.publish(Header(frame_id='test-policy'))
            command = EndEffectorCommand(source=EndEffectorCommand.SOURCE_POLICY)
            command.delta_m.y = delta_y
            policy.publish(command)
            ros_client.spin_for(0.1)
            seen.append(bool(states.last and states.last.active))
        return seen

    assert not any(drive(0.0, 3))
    oracle_commands.clear()
    # drift: the policy pushes the TCP sideways, away from the cube (at y = 0)
    active = drive(-0.015, 12)
    assert any(active), 'no takeover while drifting away'
    start = active.index(True)
    assert start <= 8
    takeover = list(oracle_commands.messages)
    assert takeover and all(m.source == EndEffectorCommand.SOURCE_SCRIPT for m in takeover)
    assert takeover[0].delta_m.y > 0.0, 'the oracle heads back towards the cube'
    assert states.last.source == InterventionState.SOURCE_ORACLE
    assert active[start:start + TAKEOVER_STEPS] == [True] * TAKEOVER_STEPS
    assert False in active[start + TAKEOVER_STEPS:], 'the takeover is brief'
    assert len(takeover) <= TAKEOVER_STEPS + 1
    count = states.last.intervention_count
    # stall: the policy stops commanding motion; the oracle takes over after stall_steps
    stalled = drive(0.0, 20)
    assert True in stalled[3:], 'no takeover while stalled'
    assert states.last.intervention_count > count
    codes = ros_processes.stop_all()
    assert codes == {'oracle': 0, 'safety_filter': 0, 'so101_driver': 0}, codes
