"""The reward classifier decides success in the running graph: a classifier trained on frames
of oracle episodes rendered by the simulation ends the oracle's episodes in the graph when the
cube is up (sim driver, safety filter, actor in demo mode with reward_classifier_path, oracle:
four processes)."""
import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]

EPISODES = 4


def oracle_frames(seeds, hold_steps=8, max_steps=60):
    """Both cameras' frames of oracle episodes run in process the way the graph runs them
    (the oracle's end-effector deltas through the safety filter core, one control step of
    delay, 10 Hz), with the simulator's success predicate per frame: the classifier learns
    from the trajectories it will judge."""
    from hilserl_actor.oracle import PickConfig, PickController, Scene
    from hilserl_safety.filter import CommandFilter, EeCommand
    from hilserl_safety.limits import effective_limits, urdf_joint_limits
    from hilserl_safety.params import SafetyFilterParams
    from hilserl_safety.supervisor import SafetySupervisor
    from so101_driver.kinematics import So101Kinematics
    from so101_driver.model_files import official_model_files
    from so101_driver.params import SimParams
    from so101_driver.sim.so101_sim import So101Sim

    params = SafetyFilterParams()
    lower, upper = urdf_joint_limits(official_model_files().urdf, params.joint_names)
    supervisor = SafetySupervisor(CommandFilter(params, effective_limits(params, lower, upper),
                                                So101Kinematics()))
    images, success, episode = {'front': [], 'wrist': []}, [], []
    now = 0.0
    with So101Sim(SimParams()) as sim:
        for number, seed in enumerate(seeds):
            sim.reset(seed=seed)
            supervisor.deactivate()
            supervisor.activate(now)
            oracle = PickController(PickConfig(noise_std_m=0.002), seed=seed)
            previous, held = None, 0
            for _ in range(max_steps):
                now += 0.1
                supervisor.on_joint_state(sim.joint_positions(), sim.joint_efforts(), now)
                truth = sim.ground_truth()
                for camera in images:
                    images[camera].append(sim.render(camera))
                success.append(bool(truth.success))
                episode.append(number)
                held = held + 1 if truth.success else 0
                if held > hold_steps:
                    break
                target = None
                if previous is not None:
                    target = supervisor.on_ee_command(EeCommand(
                        previous.delta_m, int(previous.gripper), 0.0, 2), now).target
                scene = Scene(truth.object_position_m, truth.tcp_position_m,
                              truth.tcp_quaternion_wxyz, truth.object_grasped,
                              float(sim.joint_positions()[5]), truth.success,
                              truth.object_quaternion_wxyz)
                previous = oracle.act(scene, None if previous is None else previous.delta_m)
                sim.step(target, 0.1)
    return ({c: np.stack(v) for c, v in images.items()}, np.array(success),
            np.array(episode))


def train_classifier(path):
    """Train on 24 oracle episodes rendered in process (labels: the success predicate)."""
    from hilserl_learner import reward_classifier as rc
    from hilserl_learner.preprocessing import CropConfig

    images, success, episode = oracle_frames(range(300, 324))
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
        'reward_classifier_threshold': 0.85, 'reward_classifier_consecutive_steps': 2})
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
    final = []
    for summary in by_success:
        steps = [t for t in transitions.messages if t.episode_id == summary.episode_id]
        assert steps[-1].terminated and steps[-1].reward == 1.0
        assert all(t.reward == 0.0 for t in steps[:-1])  # not rewarded before
        # The classifier saw the cube up: its centre (0.0125 m at rest) off the table in every
        # success (images and ground truth come on separate topics, a step apart under load),
        # and lifted by about the success predicate's 5 cm in the typical one.
        heights = [round(float(t.next_observation.privileged_state[height]), 4)
                   for t in steps[-5:]]
        assert heights[-1] > 0.02, (summary.episode_id, heights)
        final.append(heights[-1])
    assert np.median(final) > 0.045, final
    codes = ros_processes.stop_all()
    assert codes == {'oracle': 0, 'actor': 0, 'safety_filter': 0, 'so101_driver': 0}, codes
