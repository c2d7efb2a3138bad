"""nodes/conversions.py: Transition and Observation messages <-> core types."""
import numpy as np
import pytest

pytestmark = pytest.mark.ros


def core_transition():
    from hilserl_learner.observation import Observation, Transition

    rng = np.random.default_rng(0)

    def obs():
        return Observation(rng.standard_normal(5).astype(np.float32),
                           {'front': rng.integers(0, 256, (6, 10, 3), dtype=np.uint8),
                            'wrist': rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)},
                           rng.standard_normal(2).astype(np.float32))
    return Transition(obs(), np.array([0.5, -1.0, 0.25, 2.0], np.float32), 1.0, obs(),
                      terminated=False, truncated=True, is_intervention=True,
                      gripper_penalty=-0.02, episode_id=12, step_index=7, source='run-1')


def test_transition_round_trip():
    from hilserl_learner.nodes.conversions import transition_from_msg, transition_to_msg

    original = core_transition()
    restored = transition_from_msg(transition_to_msg(original))
    for field in ('reward', 'terminated', 'truncated', 'is_intervention', 'episode_id',
                  'step_index', 'source'):
        assert getattr(restored, field) == getattr(original, field)
    assert restored.gripper_penalty == pytest.approx(-0.02)
    np.testing.assert_array_equal(restored.action, original.action)
    for a, b in ((restored.observation, original.observation),
                 (restored.next_observation, original.next_observation)):
        np.testing.assert_array_equal(a.state, b.state)
        np.testing.assert_array_equal(a.privileged, b.privileged)
        assert list(a.images) == ['front', 'wrist']
        for name in a.images:
            assert a.images[name].dtype == np.uint8
            np.testing.assert_array_equal(a.images[name], b.images[name])


def test_padded_rows_and_bad_images():
    from sensor_msgs.msg import Image

    from hilserl_learner.errors import InvalidTransitionError
    from hilserl_learner.nodes.conversions import image_to_array, observation_from_msg
    from hilserl_msgs.msg import Observation as ObservationMsg

    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = frame.reshape(2, 9)
    image = Image(height=2, width=3, encoding='rgb8', step=12, data=padded.tobytes())
    np.testing.assert_array_equal(image_to_array(image, 'x'), frame)
    with pytest.raises(InvalidTransitionError, match='image_encoding'):
        image_to_array(Image(height=2, width=3, encoding='bgr8', step=9,
                             data=frame.tobytes()), 'x')
    with pytest.raises(InvalidTransitionError, match='image_size'):
        image_to_array(Image(height=3, width=3, encoding='rgb8', step=9,
                             data=frame.tobytes()), 'x')
    with pytest.raises(InvalidTransitionError, match='camera_names'):
        observation_from_msg(ObservationMsg(camera_names=['a', 'b'], images=[image]))
    with pytest.raises(InvalidTransitionError, match='appears twice'):
        observation_from_msg(ObservationMsg(camera_names=['a', 'a'], images=[image, image]))


def test_stats_message():
    from hilserl_learner.nodes.conversions import stats_to_msg

    stats = {'policy_version': 3, 'updates': 40, 'actor_updates': 20, 'online_buffer_size': 9,
             'demo_buffer_size': 2, 'buffer_bytes': 1000, 'transitions_received': 9,
             'transitions_rejected': 1, 'transitions_dropped': 0, 'training': True,
             'checkpoints_skipped': 0, 'checkpoints_failed': 1, 'nonfinite_steps': 4,
             'losses': {'critic_loss': 0.5, 'temperature': 0.01, 'grad_norm_critic': 2.0}}
    msg = stats_to_msg(stats, 12.5, 10.0)
    assert (msg.policy_version, msg.updates, msg.updates_per_s) == (3, 40, 12.5)
    assert msg.critic_loss == 0.5 and np.isnan(msg.actor_loss)
    assert np.isnan(msg.gripper_critic_loss)
    assert list(msg.extra_names) == ['grad_norm_critic', 'checkpoints_skipped',
                                     'checkpoints_failed', 'nonfinite_steps']
    assert list(msg.extra_values) == [2.0, 0.0, 1.0, 4.0]
