"""The reward classifier decides success in the running graph: a classifier trained on frames
rendered by the simulation ends the oracle's episodes when the cube is up (sim driver, safety
filter, actor in demo mode with reward_classifier_path, oracle: four processes)."""
import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

EPISODES = 4


def train_classifier(path):
    """Train on 24 scripted episodes rendered by the sim (labels: its success predicate)."""
    from hilserl_learner import reward_classifier as rc
    from hilserl_learner.preprocessing import CropConfig
    from so101_driver.params import SimParams
    from so101_driver.sim.scripted import render_scripted_episode
    from so101_driver.sim.so101_sim import So101Sim

    with So101Sim(SimParams()) as sim:
        episodes = [render_scripted_episode(sim, seed, hold_steps=10)
                    for seed in range(300, 324)]
    images = {camera: np.concatenate([e.images[camera] for e in episodes])
              for camera in ('front', 'wrist')}
    success = np.concatenate([e.success for e in episodes])
    episode = np.concatenate([[i] * len(e.success) for i, e in enumerate(episodes)])
    config = rc.ClassifierConfig(epochs=6, val_fraction=0.25)
    result = rc.train(images, success, episode, config, log=lambda _: None)
    assert result.best['accuracy'] >= 0.85, result.best
    # The actor's default crop: full frames resized to 128x128 (the sim renders 128x128).
    return rc.save(path, result.model, config, CropConfig().to_dict())


def test_the_classifier_ends_episodes_when_the_cube_is_lifted(ros_client, ros_processes,
                                                              tmp_path):
    from hilserl_msgs.msg import EpisodeStats, Transition
    from hilserl_testing.client import KEEP_ALL

    model = train_classifier(tmp_path / 'classifier.pt')
    stats = ros_client.subscribe(EpisodeStats, '/hilserl/episode_stats', KEEP_ALL)
    transitions = ros_client.subscribe(Transition, '/hilserl/transitions', KEEP_ALL)
    sim_time = {'use_sim_time': True}
    ros_processes.start_node('so101_driver', 'driver_node', 'so101_driver',
                             parameters={'real_time_factor': 1.0})
    ros_processes.start_node('hilserl_safety', 'safety_filter_node', 'safety_filter',
                             parameters={'joint_state_timeout_s': 1.5})
    ros_processes.start_node('hilserl_actor', 'actor_node', 'actor', parameters={
        **sim_time, 'mode': 'demo', 'seed': 8000, 'num_episodes': EPISODES,
        'max_episode_steps': 60, 'reward_classifier_path': str(model),
        'reward_classifier_threshold': 0.5})
    ros_processes.start_node('hilserl_actor', 'oracle_node', 'oracle',
                             parameters={**sim_time, 'noise_std_m': 0.002, 'seed': 5})
    for node in ('so101_driver', 'safety_filter', 'oracle', 'actor'):
        ros_client.bring_up(node, timeout_s=90)
    ros_client.spin_until(lambda: len(stats) >= EPISODES, 180, f'{EPISODES} episodes')
    ros_client.spin_for(0.5)

    episodes = stats.messages[:EPISODES]
    by_success = [e for e in episodes if e.end_reason == 'success']
    assert len(by_success) >= EPISODES - 1, [(e.end_reason, e.length) for e in episodes]
    names = list(transitions.messages[0].next_observation.privileged_names)
    height = names.index('object_position.z_m')
    for summary in by_success:
        last = [t for t in transitions.messages if t.episode_id == summary.episode_id][-1]
        assert last.terminated and last.reward == 1.0
        # The classifier saw the cube up: its centre well above its resting height (0.0125 m).
        cube_z = last.next_observation.privileged_state[height]
        assert cube_z > 0.035, (summary.episode_id, cube_z)
        # ...and not before: earlier steps were not rewarded.
        steps = [t for t in transitions.messages if t.episode_id == summary.episode_id]
        assert all(t.reward == 0.0 for t in steps[:-1])
    codes = ros_processes.stop_all()
    assert codes == {'oracle': 0, 'actor': 0, 'safety_filter': 0, 'so101_driver': 0}, codes
