"""learner_node across real processes: transitions in, training, successive weight versions out.

A publisher process streams transitions (with three invalid ones and one gap), the installed
learner_node trains, and this test process, as the actor would, fetches successive versions
of the policy over /hilserl/get_policy_weights and checks that they change the policy's
output. Then SIGINT (final checkpoint, exit 0), a restart with resume=true, and a fresh start
in the same run directory (the earlier run's outputs are moved aside).
"""
import pathlib
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PUBLISHER = pathlib.Path(__file__).parent / 'peers' / 'transition_publisher.py'
STATS_TOPIC = '/hilserl/learner_stats'


def learner_parameters(run_dir, resume=False):
    return {
        'state_dim': 4, 'action_dim': 3, 'discrete_gripper': True, 'camera_names': ['front'],
        'image_height_px': 16, 'image_width_px': 16, 'online_capacity': 2000,
        'demo_capacity': 1000, 'learning_starts': 60, 'num_threads': 1,
        'run_dir': str(run_dir), 'resume': resume, 'checkpoint_every_updates': 0,
        'weights_period_s': 0.3, 'stats_period_s': 0.25, 'stats_every_updates': 1,
        'sac.batch_size': 32, 'sac.hidden_dims': [32, 32],
        'encoder.conv_channels': [8, 8], 'encoder.conv_patch_px': 4,
        'encoder.image_latent_dim': 16, 'encoder.proprio_latent_dim': 8,
    }


def start_learner(ros_processes, run_dir, resume=False):
    return ros_processes.start_node(
        'hilserl_learner', 'learner_node', name='learner',
        parameters=learner_parameters(run_dir, resume),
        remappings={'~/stats': STATS_TOPIC})


def fetch(ros_client, version):
    from hilserl_msgs.srv import GetPolicyWeights

    return ros_client.call(GetPolicyWeights, '/hilserl/get_policy_weights',
                           GetPolicyWeights.Request(current_version=version), timeout_s=10)


def probe_observation():
    from hilserl_learner.observation import Observation

    frame = np.zeros((16, 16, 3), np.uint8)
    frame[4, 9] = 255
    return Observation(np.array([0.2, -0.4, 0.1, 0.0], np.float32), {'front': frame})


def test_learner_trains_and_serves_changing_weights_then_resumes(ros_client, ros_processes,
                                                                  tmp_path):
    from hilserl_learner.policy import Policy
    from hilserl_msgs.msg import LearnerStats

    run_dir = tmp_path / 'run'
    learner = start_learner(ros_processes, run_dir)
    ros_client.bring_up('learner')
    assert ros_client.lifecycle_state('learner') == 'active'

    first = fetch(ros_client, 0)
    assert first.ready and first.version == 1 and len(first.weights) > 0
    policy = Policy.from_config_json(first.config_json)
    policy.load_weights(bytes(first.weights), first.checksum, first.version)
    probe = probe_observation()
    initial_action = policy.act(probe)
    assert initial_action.shape == (4,)
    assert len(fetch(ros_client, 1).weights) == 0  # current: no payload

    stats = ros_client.subscribe(LearnerStats, STATS_TOPIC)
    ros_processes.start('publisher', [sys.executable, PUBLISHER, '300', '--bad', '--gap'])

    def trained():
        last = stats.last
        return (last is not None and last.transitions_received == 300 and last.training
                and last.updates >= 40)
    ros_client.spin_until(trained, 60, 'the learner receiving 300 transitions and training')
    last = stats.last
    assert last.transitions_rejected == 3
    assert last.transitions_dropped == 1
    assert last.online_buffer_size == 300
    assert last.demo_buffer_size == 15 * 7 + 1  # steps 0, 3, ..., 18 of 15 episodes, + 1
    assert np.isfinite(last.critic_loss) and np.isfinite(last.actor_loss)
    assert 0 < last.temperature < 1

    # Successive versions, each checksum-verified, each changing the policy's output.
    version, outputs = first.version, [initial_action]
    for _ in range(2):
        def newer(current=version):
            response = fetch(ros_client, current)
            return response if response.version > current else None
        response = ros_client.spin_until(newer, 30, f'a weights version newer than {version}')
        assert len(response.weights) > 0
        policy.load_weights(bytes(response.weights), response.checksum, response.version)
        outputs.append(policy.act(probe))
        version = response.version
    assert not np.allclose(outputs[0][:3], outputs[1][:3])
    assert not np.allclose(outputs[1][:3], outputs[2][:3])

    updates_before_stop = stats.last.updates
    ros_processes.stop_all()
    assert ros_processes.exit_codes['learner'] == 0
    assert (run_dir / 'checkpoints' / 'latest').is_file()
    assert (run_dir / 'tensorboard').is_dir()

    # Resume: counters, buffers and the weights version continue.
    stats.clear()
    start_learner(ros_processes, run_dir, resume=True)
    ros_client.bring_up('learner')
    resumed = fetch(ros_client, 0)
    assert resumed.version >= version
    ros_client.spin_until(lambda: stats.last is not None, 10, 'stats after resume')
    assert stats.last.online_buffer_size == 300
    assert stats.last.updates >= updates_before_stop
    assert learner.process.returncode == 0

    # A fresh run in the same directory moves the earlier run's outputs aside (none deleted).
    ros_processes.stop_all()
    latest_name = (run_dir / 'checkpoints' / 'latest').read_text()
    stats.clear()
    start_learner(ros_processes, run_dir, resume=False)
    ros_client.bring_up('learner')
    ros_client.spin_until(lambda: stats.last is not None, 10, 'stats of the fresh run')
    assert stats.last.online_buffer_size == 0 and stats.last.updates == 0
    (earlier,) = (run_dir / 'earlier').iterdir()
    assert (earlier / 'checkpoints' / 'latest').read_text() == latest_name
    assert (earlier / 'checkpoints' / latest_name / 'agent.pt').is_file()
    assert (earlier / 'tensorboard').is_dir()
    assert not (run_dir / 'checkpoints').exists() or not any((run_dir / 'checkpoints').iterdir())


def test_a_diverging_learner_reports_an_error_and_keeps_receiving(ros_client, ros_processes,
                                                                   tmp_path):
    """Rewards of 1e30 (finite, so valid) overflow the TD loss: every step is skipped, then
    training stops with an error on /diagnostics and ~/stats; transitions still arrive and are
    kept by the final checkpoint; the served weights stay the finite initial ones."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    from hilserl_learner.policy import Policy
    from hilserl_msgs.msg import LearnerStats

    run_dir = tmp_path / 'run'
    ros_processes.start_node(
        'hilserl_learner', 'learner_node', name='learner',
        parameters=dict(learner_parameters(run_dir), max_nonfinite_steps_in_a_row=6),
        remappings={'~/stats': STATS_TOPIC})
    stats = ros_client.subscribe(LearnerStats, STATS_TOPIC)
    diagnostics = ros_client.subscribe(DiagnosticArray, '/diagnostics')
    ros_client.bring_up('learner')
    ros_processes.start('publisher', [sys.executable, PUBLISHER, '200', '--reward', '1e30'])

    def errors():
        return [s for m in diagnostics.messages for s in m.status
                if s.name == 'learner' and s.level == DiagnosticStatus.ERROR]

    def stopped_with_all_received():
        last = stats.last
        return (last is not None and last.transitions_received == 200 and not last.training
                and last.online_buffer_size == 200 and errors())
    ros_client.spin_until(stopped_with_all_received, 60,
                          'all 200 transitions received, training stopped with an error')
    extras = dict(zip(stats.last.extra_names, stats.last.extra_values, strict=True))
    assert extras['nonfinite_steps'] == 6
    assert stats.last.updates == 0  # skipped steps are not counted as updates
    assert 'TrainingDivergedError: 6 gradient steps in a row' in errors()[-1].message

    response = fetch(ros_client, 0)
    policy = Policy.from_config_json(response.config_json)
    policy.load_weights(bytes(response.weights), response.checksum, response.version)
    assert response.version == 1 and np.all(np.isfinite(policy.act(probe_observation())))

    ros_processes.stop_all()
    assert ros_processes.exit_codes['learner'] == 0
    import torch

    from hilserl_learner.checkpoint import latest
    saved = torch.load(latest(str(run_dir)) / 'agent.pt', weights_only=False)
    assert saved['counters']['received'] == 200 and saved['counters']['nonfinite_steps'] == 6
