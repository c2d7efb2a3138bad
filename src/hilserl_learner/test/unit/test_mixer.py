"""RLPD mixing: every transition online, interventions also demo, half-and-half batches."""
import numpy as np

from hilserl_learner.observation import Observation, ObservationSpec, Transition
from hilserl_learner.rl.buffer import ReplayBuffer
from hilserl_learner.rl.mixer import RLPDMixer

SPEC = ObservationSpec(state_dim=1, action_dim=1)


def transition(step: int, intervention: bool, marker: float) -> Transition:
    obs = Observation(np.array([marker], np.float32))
    return Transition(obs, np.zeros(1, np.float32), 0.0, obs, False,
                      is_intervention=intervention, episode_id=0, step_index=step)


def make_mixer(batch_size=64, demo_fraction=0.5):
    return RLPDMixer(ReplayBuffer(SPEC, 100), ReplayBuffer(SPEC, 100), batch_size,
                     demo_fraction, seed=0)


def test_every_transition_goes_online_and_interventions_also_to_demo():
    mixer = make_mixer()
    for step in range(10):
        mixer.add(transition(step, intervention=step % 3 == 0, marker=step))
    assert len(mixer.online) == 10
    assert len(mixer.demo) == 4
    np.testing.assert_array_equal(mixer.demo.data['state'][:4, 0], [0, 3, 6, 9])
    assert mixer.demo.data['is_intervention'][:4].all()


def test_bulk_demos_go_to_the_demo_buffer_only():
    mixer = make_mixer()
    assert mixer.add_demos(transition(i, False, -1.0) for i in range(5)) == 5
    assert (len(mixer.online), len(mixer.demo)) == (0, 5)


def test_batches_are_half_demo_half_online():
    mixer = make_mixer(batch_size=64)
    mixer.add_demos(transition(i, False, -1.0) for i in range(20))
    for step in range(30):
        mixer.add(transition(step, False, +1.0))
    for _ in range(5):
        markers = mixer.sample().observation.state[:, 0].numpy()
        assert (markers[:32] == -1).all() and (markers[32:] == 1).all()


def test_demo_fraction_and_empty_buffers():
    mixer = make_mixer(batch_size=40, demo_fraction=0.25)
    for step in range(5):
        mixer.add(transition(step, False, +1.0))
    assert mixer.demo_count() == 0  # no demos yet: all online
    assert (mixer.sample().observation.state[:, 0].numpy() == 1).all()
    mixer.add_demos([transition(0, False, -1.0)])
    assert mixer.demo_count() == 10
    assert (mixer.sample().observation.state[:10, 0].numpy() == -1).all()
