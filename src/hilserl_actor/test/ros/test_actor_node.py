"""actor_node across processes, with this test playing the driver (joint states, a camera,
the reset service) and the humans (EE and leader-arm commands, operator events, safety)."""
import array

import numpy as np
import pytest

from hilserl_testing.processes import ProcessGroup

pytestmark = pytest.mark.ros

HOME = [0.0, -0.6, 0.5, 1.42, 1.5708, 0.7]
JOINTS = ['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll', 'gripper']
PARAMS = {'camera_names': ['front'], 'ground_truth': 'off', 'control_rate_hz': 20.0,
          'max_episode_steps': 20, 'reset_delay_s': 0.1, 'reset_sync_steps': 2, 'seed': 40,
          'run_id': 'actor-test-run', 'human_command_timeout_s': 0.3}


class FakeRobot:
    """Joint states (50 Hz), a 32x24 rgb8 camera (20 Hz) and /so101_driver/reset_episode."""

    def __init__(self, client):
        from sensor_msgs.msg import Image, JointState

        from hilserl_msgs.srv import ResetEpisode
        from hilserl_testing.client import SENSOR

        node = client.node
        self.node = node
        self.resets = []
        self.frames = 0
        self._joints = node.create_publisher(JointState, '/joint_states', 10)
        self._image = node.create_publisher(Image, '/cameras/front/image_raw', SENSOR)
        node.create_service(ResetEpisode, '/so101_driver/reset_episode', self._reset)
        node.create_timer(0.02, self._publish_joints)
        node.create_timer(0.05, self._publish_image)

    def _publish_joints(self):
        from sensor_msgs.msg import JointState

        message = JointState(name=JOINTS, position=HOME, velocity=[0.0] * 6, effort=[0.0] * 6)
        message.header.stamp = self.node.get_clock().now().to_msg()
        self._joints.publish(message)

    def _publish_image(self):
        from sensor_msgs.msg import Image

        self.frames += 1
        message = Image(height=24, width=32, encoding='rgb8', step=96)
        message.data = array.array('B', bytes([self.frames % 256]) * (24 * 96))
        message.header.stamp = self.node.get_clock().now().to_msg()
        message.header.frame_id = 'front_camera'
        self._image.publish(message)

    def _reset(self, request, response):
        self.resets.append((request.use_seed, request.seed, request.randomize_object))
        response.success, response.seed = True, request.seed
        response.joint_positions = HOME
        return response


@pytest.fixture(scope='module')
def robot(ros_client):
    return FakeRobot(ros_client)


@pytest.fixture(scope='module')
def topics(ros_client):
    from std_msgs.msg import Header

    from hilserl_msgs.msg import (
        EndEffectorCommand,
        EpisodeStats,
        JointCommand,
        Observation,
        Transition,
    )
    from hilserl_testing.client import KEEP_ALL

    return {
        'ee': ros_client.subscribe(EndEffectorCommand, '/hilserl/ee_command'),
        'joint': ros_client.subscribe(JointCommand, '/hilserl/joint_command'),
        'heartbeat': ros_client.subscribe(Header, '/hilserl/actor_heartbeat'),
        'observation': ros_client.subscribe(Observation, '/hilserl/observation'),
        'transition': ros_client.subscribe(Transition, '/hilserl/transitions', KEEP_ALL),
        'stats': ros_client.subscribe(EpisodeStats, '/hilserl/episode_stats', KEEP_ALL),
    }


@pytest.fixture(scope='module')
def actor(ros_domain, ros_client, robot, topics, tmp_path_factory):
    group = ProcessGroup(tmp_path_factory.mktemp('actor_logs'))
    group.start_node('hilserl_actor', 'actor_node', name='actor', parameters=PARAMS)
    try:
        ros_client.bring_up('actor', timeout_s=60)
        yield group
    except BaseException:
        print(group.logs())
        raise
    finally:
        codes = group.stop_all()
        assert codes == {'actor': 0}, group.logs()


@pytest.fixture(scope='module')
def human(ros_client):
    from hilserl_msgs.msg import (
        EndEffectorCommand,
        EpisodeEvent,
        InterventionState,
        JointCommand,
        SafetyEvent,
    )
    from hilserl_testing.client import KEEP_ALL, LATCHED

    return {
        'ee': ros_client.publisher(EndEffectorCommand, '/hilserl/human/ee_command'),
        'joint': ros_client.publisher(JointCommand, '/hilserl/human/joint_command'),
        'event': ros_client.publisher(EpisodeEvent, '/hilserl/episode_event', KEEP_ALL),
        'safety': ros_client.publisher(SafetyEvent, '/hilserl/safety_events', KEEP_ALL),
        'intervention': ros_client.publisher(InterventionState, '/hilserl/intervention',
                                             LATCHED),
    }


def next_episode(ros_client, topics, timeout_s=15.0) -> int:
    """Wait until a new episode (after every one seen so far) reaches step 1; its id."""
    after = max((m.episode_id for m in topics['transition'].messages), default=-1)

    def started():
        ids = [m.episode_id for m in topics['transition'].messages
               if m.episode_id > after and m.step_index >= 1]
        return ids[0] + 1 if ids else None
    return ros_client.spin_until(started, timeout_s, f'an episode after {after}') - 1


def stats_of(ros_client, topics, episode, timeout_s=15.0):
    return ros_client.spin_until(
        lambda: next((s for s in topics['stats'].messages if s.episode_id == episode), None),
        timeout_s, f'stats of episode {episode}')


def stream(ros_client, publish, duration_s, period_s=0.05):
    end = ros_client.node.get_clock().now().nanoseconds + int(duration_s * 1e9)
    while ros_client.node.get_clock().now().nanoseconds < end:
        publish()
        ros_client.spin_for(period_s)


def test_train_mode_is_rejected_at_configure(ros_client, tmp_path):
    group = ProcessGroup(tmp_path)
    group.start_node('hilserl_actor', 'actor_node', name='actor_train',
                     parameters={**PARAMS, 'mode': 'train'})
    try:
        assert not ros_client.lifecycle_transition('actor_train', 'configure', timeout_s=60)
        assert ros_client.lifecycle_state('actor_train') == 'unconfigured'
    finally:
        assert group.stop_all() == {'actor_train': 0}
    assert 'comes with the actor issue' in group.logs()


def test_reset_sync_and_time_limited_zero_action_episodes(actor, ros_client, robot, topics):
    from hilserl_msgs.msg import JointCommand

    stats = stats_of(ros_client, topics, 0)
    assert robot.resets[0] == (True, 40, True)
    assert (stats.end_reason, stats.length, stats.truncated, stats.intervention_steps) == (
        'time_limit', 20, True, 0)
    sync = topics['joint'].messages[0]
    assert sync.source == JointCommand.SOURCE_SCRIPT and list(sync.names) == JOINTS
    assert list(sync.positions) == pytest.approx(HOME)
    steps = [m for m in topics['transition'].messages if m.episode_id == 0]
    assert [m.step_index for m in steps] == list(range(20))
    assert all(m.header.frame_id == 'actor-test-run' for m in steps)
    assert all(list(m.action) == [0.0, 0.0, 0.0, 1.0] and not m.is_intervention for m in steps)
    assert steps[-1].truncated and not steps[-1].terminated
    observation = steps[3].observation
    assert [(i.height, i.width) for i in observation.images] == [(128, 128)]
    assert observation.images[0].header.frame_id == 'front_camera'
    assert list(observation.state)[:6] == pytest.approx(HOME)
    assert topics['heartbeat'].last.frame_id == 'actor-test-run'
    assert len(topics['observation']) >= 20


def test_human_ee_commands_are_forwarded_and_stored(actor, ros_client, topics, human):
    from hilserl_msgs.msg import EndEffectorCommand

    episode = next_episode(ros_client, topics)
    topics['ee'].clear()

    def publish():
        message = EndEffectorCommand(source=EndEffectorCommand.SOURCE_HUMAN,
                                     gripper_command=EndEffectorCommand.GRIPPER_CLOSE)
        message.delta_m.x, message.delta_m.z = 0.05, -0.01
        human['ee'].publish(message)

    stream(ros_client, publish, 0.6)
    sent = [m for m in topics['ee'].messages if m.source == EndEffectorCommand.SOURCE_HUMAN]
    assert len(sent) >= 5
    assert (sent[-1].delta_m.x, sent[-1].delta_m.y) == pytest.approx((0.025, 0.0))  # clipped
    assert sent[-1].delta_m.z == pytest.approx(-0.01)
    assert sent[-1].gripper_command == EndEffectorCommand.GRIPPER_CLOSE
    stream(ros_client, lambda: None, 0.5)
    human_steps = [m for m in topics['transition'].messages
                   if m.episode_id == episode and m.is_intervention]
    assert len(human_steps) >= 5
    assert list(human_steps[-1].action) == pytest.approx([1.0, 0.0, -0.4, 0.0])
    penalties = [m.gripper_penalty for m in human_steps]
    assert penalties.count(pytest.approx(-0.02)) == 1  # closing once, then staying closed
    stats = stats_of(ros_client, topics, episode)
    assert stats.intervention_count == 1 and stats.intervention_steps == len(human_steps)


def test_leader_arm_joint_commands_become_ee_actions(actor, ros_client, topics, human):
    from hilserl_msgs.msg import JointCommand

    episode = next_episode(ros_client, topics)
    topics['joint'].clear()
    target = list(HOME)
    target[1] += 0.1
    target[5] = 0.05  # jaws nearly closed -> 'close'

    def publish():
        human['joint'].publish(JointCommand(source=JointCommand.SOURCE_HUMAN, names=JOINTS,
                                            positions=target))

    stream(ros_client, publish, 0.5)
    forwarded = [m for m in topics['joint'].messages if m.source == JointCommand.SOURCE_HUMAN]
    assert forwarded and list(forwarded[-1].positions) == pytest.approx(target)
    steps = [m for m in topics['transition'].messages
             if m.episode_id == episode and m.is_intervention]
    assert steps
    from so101_driver.kinematics import So101Kinematics
    kinematics = So101Kinematics()
    expected = (kinematics.fk(np.array(target[:5])) - kinematics.fk(np.array(HOME[:5]))) / 0.025
    assert list(steps[-1].action[:3]) == pytest.approx(np.clip(expected, -1, 1), abs=1e-4)
    assert steps[-1].action[3] == 0.0


@pytest.mark.parametrize('kind, reason, reward, terminated', [
    ('failure', 'failure', 0.0, True),
    ('rerecord', 'rerecord', 0.0, False),
    ('safety', 'safety_trip', -1.0, True),
])
def test_operator_and_safety_events_end_the_episode(actor, ros_client, topics, human, kind,
                                                    reason, reward, terminated):
    from hilserl_msgs.msg import EpisodeEvent, SafetyEvent

    episode = next_episode(ros_client, topics)
    if kind == 'safety':
        human['safety'].publish(SafetyEvent(severity=SafetyEvent.SEVERITY_TRIP,
                                            limit=SafetyEvent.LIMIT_EFFORT,
                                            limit_name='elbow_flex', message='test trip'))
    else:
        event = EpisodeEvent.FAILURE if kind == 'failure' else EpisodeEvent.RERECORD
        human['event'].publish(EpisodeEvent(event=event, source='test', reason=kind))
    stats = stats_of(ros_client, topics, episode)
    assert stats.end_reason == reason and stats.length < 20
    last = [m for m in topics['transition'].messages if m.episode_id == episode][-1]
    assert last.step_index == stats.length - 1
    assert (last.terminated, last.truncated, last.reward) == (terminated, not terminated, reward)


def test_end_session_stops_after_the_current_episode(actor, ros_client, robot, topics, human):
    from hilserl_msgs.msg import EpisodeEvent

    episode = next_episode(ros_client, topics)
    human['event'].publish(EpisodeEvent(event=EpisodeEvent.END_SESSION, source='test'))
    stats = stats_of(ros_client, topics, episode)
    assert stats.end_reason == 'time_limit'  # the episode runs to its end
    resets = len(robot.resets)
    ros_client.spin_for(1.0)
    assert len(robot.resets) == resets and max(
        m.episode_id for m in topics['transition'].messages) == episode
