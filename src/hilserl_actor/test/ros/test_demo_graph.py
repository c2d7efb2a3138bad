"""Acceptance: the oracle's demonstrations through the real graph (sim driver, safety filter,
actor in demo mode, oracle: four processes, simulated time), and the actor's topic contract
on that data."""
import collections

import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

EPISODES = 10
# joint_state_timeout_s (wall clock) is raised so a loaded CI machine pausing the simulation
# does not trip it. Everything else is the default (effort trips included).
SAFETY = {'joint_state_timeout_s': 1.5}
STATE_NAMES = ['shoulder_pan.position_rad', 'shoulder_lift.position_rad',
               'elbow_flex.position_rad', 'wrist_flex.position_rad', 'wrist_roll.position_rad',
               'gripper.position_rad', 'tcp.x_rel_m', 'tcp.y_rel_m', 'tcp.z_rel_m']


def subscribe_with_time(client, msg_type, topic, qos):
    """Messages with their publication time (source timestamp, ns), in arrival order."""
    log = []
    client.node.create_subscription(
        msg_type, topic, lambda message, info: log.append((message, info['source_timestamp'])),
        qos)
    return log


def test_oracle_demonstrations_succeed_through_the_graph(ros_client, ros_processes, tmp_path):
    from hilserl_msgs.msg import EpisodeStats, Observation, Transition
    from hilserl_testing.client import KEEP_ALL, RELIABLE

    crop = tmp_path / 'crop.yaml'
    crop.write_text(yaml.safe_dump({
        'format': 'hilserl_crop/1', 'default_output': {'width': 64, 'height': 64},
        'cameras': {'front': {'roi': {'x': 16, 'y': 8, 'width': 96, 'height': 96},
                              'output': {'width': 64, 'height': 64}}}}))
    stats = subscribe_with_time(ros_client, EpisodeStats, '/hilserl/episode_stats', KEEP_ALL)
    transitions = subscribe_with_time(ros_client, Transition, '/hilserl/transitions', KEEP_ALL)
    observations = subscribe_with_time(ros_client, Observation, '/hilserl/observation',
                                       RELIABLE)
    sim_time = {'use_sim_time': True}
    ros_processes.start_node('so101_driver', 'driver_node', 'so101_driver',
                             parameters={'real_time_factor': 1.0})
    ros_processes.start_node('hilserl_safety', 'safety_filter_node', 'safety_filter',
                             parameters=SAFETY)
    ros_processes.start_node('hilserl_actor', 'actor_node', 'actor', parameters={
        **sim_time, 'mode': 'demo', 'seed': 7000, 'num_episodes': EPISODES,
        'max_episode_steps': 80, 'crop_config_file': str(crop)})
    ros_processes.start_node('hilserl_actor', 'oracle_node', 'oracle',
                             parameters={**sim_time, 'noise_std_m': 0.002, 'seed': 3})
    for node in ('so101_driver', 'safety_filter', 'oracle', 'actor'):  # the graph's order
        ros_client.bring_up(node, timeout_s=60)
    ros_client.spin_until(lambda: len(stats) >= EPISODES, 180, f'{EPISODES} episodes')
    ros_client.spin_for(0.5)

    episodes = [message for message, _ in stats]
    assert [e.episode_id for e in episodes] == list(range(EPISODES))
    successes = sum(e.success for e in episodes)
    assert successes >= 9, [(e.end_reason, e.length) for e in episodes]
    assert all(e.end_reason in ('success', 'time_limit', 'safety_trip') for e in episodes)

    by_episode = collections.defaultdict(list)
    for message, stamp in transitions:
        by_episode[message.episode_id].append((message, stamp))
    run_ids = {message.header.frame_id for message, _ in transitions}
    assert len(run_ids) == 1 and run_ids.pop().startswith('actor-')
    for (summary, summary_stamp) in stats:
        steps = by_episode[summary.episode_id]
        assert [m.step_index for m, _ in steps] == list(range(summary.length))
        assert all(not (m.terminated or m.truncated) for m, _ in steps[:-1])
        last, last_stamp = steps[-1]
        assert (last.terminated, last.truncated) == (summary.terminated, summary.truncated)
        assert last.terminated == (summary.end_reason in ('success', 'safety_trip'))
        assert last.reward == {'success': 1.0, 'safety_trip': -1.0}.get(summary.end_reason, 0.0)
        assert summary_stamp > last_stamp, 'episode stats before the last transition'
        assert summary.intervention_steps >= summary.length - 1  # the oracle drives
        assert summary.policy_rate_hz == pytest.approx(10.0, rel=0.2)
        for message, _ in steps:
            assert len(message.action) == 4 and max(map(abs, message.action[:3])) <= 1.0
            assert message.action[3] in (0.0, 1.0, 2.0)
        first = steps[0][0]
        assert first.observation.state[6:] == pytest.approx([0, 0, 0], abs=1e-6)

    published = {(m.header.stamp.sec, m.header.stamp.nanosec): t for m, t in observations}
    example = observations[0][0]
    assert list(example.state_names) == STATE_NAMES
    assert list(example.camera_names) == ['front', 'wrist']
    assert [(i.height, i.width, i.encoding) for i in example.images] == [(64, 64, 'rgb8')] * 2
    assert 'object_position.x_m' in example.privileged_names
    for message, stamp in transitions:
        for observation in (message.observation, message.next_observation):
            assert observation.header.frame_id == message.header.frame_id
            assert [i.header.frame_id for i in observation.images] == [
                'front_camera', 'wrist_camera']  # the raw frames' headers
            assert all(i.header.stamp.sec + i.header.stamp.nanosec > 0
                       for i in observation.images)
        key = (message.next_observation.header.stamp.sec,
               message.next_observation.header.stamp.nanosec)
        assert key in published and published[key] < stamp, (
            'next_observation not published on /hilserl/observation before its transition')

    codes = ros_processes.stop_all()
    assert codes == {'oracle': 0, 'actor': 0, 'safety_filter': 0, 'so101_driver': 0}, codes
