"""demo_recorder_node across real processes: a peer plays the actor's side of a demo session.

The installed node records what a publisher process (test/ros/peers/demo_actor.py) sends on
the contract topics; the bags are read back with rosbags and with mcap's own reader, then
loaded with hilserl_learner.dataset, by the installed load_demos and by the installed
learner_node (demo_dataset). Also: a full disk (min_free_disk_mb raised at runtime), SIGINT
mid-episode, and SIGKILL mid-episode followed by a restart that repairs the bag.
"""
import collections
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import yaml

from hilserl_testing import demo_streams as ds
from hilserl_testing.processes import executable_path, wait_until

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PEER = pathlib.Path(__file__).parent / 'peers' / 'demo_actor.py'
RAW = '/cameras/front/image_raw'


def start_recorder(ros_processes, output_dir, **overrides):
    parameters = {'output_dir': str(output_dir), 'task': 'test_task', 'camera_names': ['front'],
                  'control_rate_hz': 10.0, 'flush_period_s': 0.2, 'min_free_disk_mb': 0.0}
    parameters.update(overrides)
    return ros_processes.start_node('hilserl_actor', 'demo_recorder_node', name='demo_recorder',
                                    parameters=parameters)


def start_peer(ros_processes, name, episodes, *extra):
    return ros_processes.start(name, [sys.executable, PEER, episodes, *extra])


def session_counts(output_dir):
    path = pathlib.Path(output_dir) / 'session.yaml'
    return yaml.safe_load(path.read_text())['counts'] if path.exists() else {}


class Diagnostics:
    """The recorder's latest /diagnostics status, as a dict."""

    def __init__(self, ros_client):
        from diagnostic_msgs.msg import DiagnosticArray

        self.log = ros_client.subscribe(DiagnosticArray, '/diagnostics')

    def last(self):
        for message in reversed(self.log.messages):
            for status in message.status:
                if status.name == 'demo_recorder':
                    values = {kv.key: kv.value for kv in status.values}
                    return dict(values, level=int.from_bytes(status.level, 'little')
                                if isinstance(status.level, bytes) else int(status.level),
                                message=status.message)
        return {}


def set_min_free_disk_mb(ros_client, value):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    request = SetParameters.Request(
        parameters=[Parameter('min_free_disk_mb', value=float(value)).to_parameter_msg()])
    response = ros_client.call(SetParameters, '/demo_recorder/set_parameters', request)
    assert response.results[0].successful, response.results[0].reason


def mcap_contents(directory):
    """(topic counts, [(episode_id, step_index, terminated, truncated)]) via mcap's reader."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    counts, steps = collections.Counter(), []
    (bag,) = pathlib.Path(directory).glob('*.mcap')
    with open(bag, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_summary() is not None  # a finished file: summary and footer
        for _, channel, _, message in reader.iter_decoded_messages():
            counts[channel.topic] += 1
            if channel.topic == '/hilserl/transitions':
                steps.append((message.episode_id, message.step_index, message.terminated,
                              message.truncated))
    return counts, steps


def check_episode(directory, plan, label):
    """Every message of ``plan`` is in the bag, read with rosbags and with mcap."""
    from hilserl_learner import bag_io
    from hilserl_learner import demo_format as fmt

    info = fmt.read_sidecar(directory)
    assert (info.label, info.episode_id, info.length) == (label, plan.episode_id, plan.steps)
    assert info.task == 'test_task' and info.camera_names == ['front']
    counts = collections.Counter(topic for topic, _, _ in bag_io.read_messages(directory))
    raw = counts.pop(RAW, 0)
    assert raw + info.raw_frames_missing == plan.steps + 1 and raw > 0
    assert counts == {'/hilserl/episode_event': 1, '/hilserl/intervention': 1,
                      '/hilserl/observation': plan.steps, '/joint_states': plan.steps,
                      '/hilserl/human/ee_command': plan.steps, '/hilserl/ee_command': plan.steps,
                      '/hilserl/transitions': plan.steps, '/hilserl/episode_stats': 1}
    mcap_counts, steps = mcap_contents(directory)
    assert mcap_counts == counts + collections.Counter({RAW: raw} if raw else {})
    expected = [(plan.episode_id, s.step_index, s.terminated, s.truncated)
                for s in ds.steps_of(plan)]
    assert steps == expected
    meta = yaml.safe_load((directory / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    assert meta['custom_data']['hilserl.label'] == label
    assert meta['message_count'] == sum(counts.values()) + raw


def test_records_episodes_survives_a_full_disk_and_feeds_the_learner(
        ros_client, ros_processes, tmp_path):
    from hilserl_learner import dataset
    from hilserl_learner import demo_format as fmt
    from hilserl_learner.observation import ObservationSpec
    from hilserl_msgs.msg import LearnerStats

    out = tmp_path / 'demos'
    crop = tmp_path / 'crop.yaml'
    crop.write_text(yaml.safe_dump(ds.RECORDED_CROP.to_dict()))
    start_recorder(ros_processes, out, crop_config=str(crop))
    diagnostics = Diagnostics(ros_client)
    ros_client.bring_up('demo_recorder')
    plans = [ds.EpisodePlan(0, 5, 'success'), ds.EpisodePlan(1, 3, 'rerecord'),
             ds.EpisodePlan(2, 4, 'failure'), ds.EpisodePlan(3, 3, 'time_limit')]
    peer = start_peer(ros_processes, 'actor', ','.join(
        f'{p.episode_id}:{p.steps}:{p.end_reason}' for p in plans))
    wait_until(lambda: session_counts(out) == {'success': 1, 'failure': 2}, 60,
               'three episodes saved')
    peer.stop()
    dirs = fmt.episode_dirs(out)
    assert [d.name for d in dirs] == ['episode_0000', 'episode_0001', 'episode_0002']
    for directory, plan, label in zip(dirs, (plans[0], plans[2], plans[3]),
                                      ('success', 'failure', 'failure')):
        check_episode(directory, plan, label)
    info = fmt.read_sidecar(dirs[0])
    assert info.crop_config == ds.RECORDED_CROP.to_dict() and info.end_reason == 'success'
    assert info.intervention_steps == 4 and info.policy_version == 7

    # "Full disk": no episode is recorded, the node stays up and says why; then it resumes.
    set_min_free_disk_mb(ros_client, 1e9)
    ros_client.spin_until(lambda: diagnostics.last().get('state') == 'disk_full', 10,
                          'disk_full in /diagnostics')
    assert diagnostics.last()['level'] == 2 and 'min_free_disk_mb' in diagnostics.last()[
        'message']
    full = start_peer(ros_processes, 'actor_disk_full', '4:3:success')
    wait_until(lambda: 'published' in full.output(), 30, 'the peer publishing')
    ros_client.spin_until(lambda: int(diagnostics.last().get('dropped_messages', 0)) >= 3, 10,
                          'dropped transitions')
    full.stop()
    assert ros_client.lifecycle_state('demo_recorder') == 'active'
    set_min_free_disk_mb(ros_client, 0.0)
    resumed = start_peer(ros_processes, 'actor_resumed', '5:2:success')
    wait_until(lambda: session_counts(out) == {'success': 2, 'failure': 2}, 30,
               'recording resumed')
    resumed.stop()
    dirs = fmt.episode_dirs(out)
    assert [fmt.read_sidecar(d).episode_id for d in dirs] == [0, 2, 3, 5]
    check_episode(dirs[3], ds.EpisodePlan(5, 2, 'success'), 'success')

    # The loader, the load_demos command and the learner node read them.
    spec = ObservationSpec(state_dim=4, action_dim=3, camera_names=('front',),
                           image_size=(16, 16), discrete_gripper=True)
    transitions = list(dataset.load_transitions(out, spec))
    assert len(transitions) == 5 + 4 + 3 + 2
    assert [t.terminated for t in transitions[:5]] == [False] * 4 + [True]
    assert transitions[11].truncated and not transitions[11].terminated
    frames = dataset.load_labelled_frames(out)
    assert len(frames) == 6 + 5 + 4 + 3 and frames.success.sum() == 2
    result = subprocess.run(
        [str(executable_path('hilserl_learner', 'load_demos')), str(out), '--output',
         str(tmp_path / 'buffer')], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load(result.stdout.split('saved demo buffer')[0])['transitions'] == 14

    stats = ros_client.subscribe(LearnerStats, '/hilserl/learner_stats')
    ros_processes.start_node('hilserl_learner', 'learner_node', name='learner', parameters={
        'state_dim': 4, 'action_dim': 3, 'discrete_gripper': True, 'camera_names': ['front'],
        'image_height_px': 16, 'image_width_px': 16, 'online_capacity': 200,
        'demo_capacity': 100, 'demo_dataset': str(out), 'num_threads': 1,
        'run_dir': str(tmp_path / 'run'), 'checkpoint_every_updates': 0,
        'stats_period_s': 0.25, 'sac.batch_size': 8, 'sac.hidden_dims': [16, 16],
        'encoder.conv_channels': [4, 4], 'encoder.conv_patch_px': 4,
        'encoder.image_latent_dim': 8, 'encoder.proprio_latent_dim': 8},
        remappings={'~/stats': '/hilserl/learner_stats'})
    ros_client.bring_up('learner', timeout_s=60)
    ros_client.spin_until(lambda: stats.last is not None, 20, 'learner stats')
    assert stats.last.demo_buffer_size == 14 and stats.last.online_buffer_size == 0


def test_sigint_mid_episode_leaves_valid_files(ros_client, ros_processes, tmp_path):
    from hilserl_learner import bag_io
    from hilserl_learner import demo_format as fmt

    out = tmp_path / 'demos'
    recorder = start_recorder(ros_processes, out)
    diagnostics = Diagnostics(ros_client)
    ros_client.bring_up('demo_recorder')
    peer = start_peer(ros_processes, 'actor', '0:4:success', '--partial', '1:6')
    wait_until(lambda: session_counts(out) == {'success': 1}, 60, 'the first episode saved')
    ros_client.spin_until(lambda: diagnostics.last().get('episode_steps') == '6', 20,
                          'six steps of the second episode recorded')
    recorder.send_signal(signal.SIGINT)
    wait_until(lambda: not recorder.is_running(), 20, 'the recorder exiting after SIGINT')
    assert recorder.process.returncode == 0, recorder.output()
    peer.stop()
    first, second = fmt.episode_dirs(out)
    check_episode(first, ds.EpisodePlan(0, 4, 'success'), 'success')
    info = fmt.read_sidecar(second)
    assert (info.label, info.end_reason, info.length) == ('interrupted', 'stopped', 6)
    steps = [m.step_index for _, _, m in bag_io.read_messages(second, {fmt.TRANSITIONS})]
    assert steps == list(range(6))
    counts, mcap_steps = mcap_contents(second)
    assert counts['/hilserl/transitions'] == 6 and [s[1] for s in mcap_steps] == steps
    assert session_counts(out) == {'success': 1, 'interrupted': 1}


def test_sigkill_mid_episode_is_repaired_at_the_next_start(ros_client, ros_processes, tmp_path):
    from hilserl_learner import demo_format as fmt

    out = tmp_path / 'demos'
    recorder = start_recorder(ros_processes, out)
    diagnostics = Diagnostics(ros_client)
    ros_client.bring_up('demo_recorder')
    peer = start_peer(ros_processes, 'actor', '', '--partial', '0:8')
    ros_client.spin_until(lambda: diagnostics.last().get('episode_steps') == '8', 30,
                          'eight steps recorded')
    time.sleep(0.6)  # > flush_period_s: the chunks are on disk
    recorder.send_signal(signal.SIGKILL)
    wait_until(lambda: not recorder.is_running(), 10, 'the recorder killed')
    peer.stop()
    (episode,) = fmt.episode_dirs(out)
    assert not (episode / 'metadata.yaml').exists()
    # (autostart: the killed node's endpoints linger in discovery, a service call could go
    # to it; configure repairs the episode)
    start_recorder(ros_processes, out, autostart=True)
    wait_until(lambda: fmt.read_sidecar(episode).label == 'interrupted', 30, 'the repair')
    info = fmt.read_sidecar(episode)
    assert (info.label, info.end_reason, info.length) == ('interrupted', 'crash', 8)
    counts, steps = mcap_contents(episode)
    assert [s[1] for s in steps] == list(range(8))


def test_a_complete_session_asks_the_lifecycle_manager_for_shutdown_then_exits(
        ros_client, ros_processes, tmp_path):
    """max_episodes reached: the recorder asks its graph_manager (the installed lifecycle
    manager) for SHUTDOWN, is finalized by it, and exits 0; the manager does not take the
    exit for a node failure."""
    out = tmp_path / 'demos'
    recorder = start_recorder(ros_processes, out, max_episodes=1,
                              graph_manager='lifecycle_manager')
    manager = ros_processes.start_node(
        'hilserl_bringup', 'lifecycle_manager', name='lifecycle_manager',
        parameters={'node_names': ['demo_recorder'], 'autostart': True,
                    'monitor_period_s': 0.1, 'service_timeout_s': 60.0})
    wait_until(lambda: 'STARTUP: 1 node(s) active' in manager.output(), 60,
               'the manager bringing the recorder up')
    start_peer(ros_processes, 'actor', '0:3:success')
    wait_until(lambda: not recorder.is_running(), 60, 'the recorder exiting')
    assert recorder.process.returncode == 0, recorder.output()
    assert session_counts(out) == {'success': 1}
    log = recorder.output()
    assert 'asking lifecycle_manager/manage_graph for SHUTDOWN' in log
    assert 'SHUTDOWN incomplete' not in log and 'did not answer' not in log
    time.sleep(0.5)  # five health checks after the exit
    text = manager.output()
    assert 'SHUTDOWN: 1 node(s) finalized' in text
    assert 'managed node failed' not in text and 'RESET' not in text
    assert manager.is_running()
