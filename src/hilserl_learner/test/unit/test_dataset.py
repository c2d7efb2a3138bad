"""The dataset loader: flags, images, re-cropping, skipping, labelled frames, demo buffers.

Bags are written like the recorder writes them (``EpisodeBagWriter`` with the synthetic actor's
messages, tests/hilserl_testing/demo_streams.py), so every value read back can be checked.
"""
import io

import numpy as np
import pytest
import torch
import yaml

from hilserl_learner import dataset, demo_buffer, load_demos
from hilserl_learner import demo_format as fmt
from hilserl_learner.bag_io import EpisodeBagWriter
from hilserl_learner.errors import DatasetError
from hilserl_learner.learner import Learner
from hilserl_learner.observation import ObservationSpec
from hilserl_learner.params import LearnerParams
from hilserl_learner.rl.encoders import EncoderConfig
from hilserl_learner.rl.sac_rlpd import SACConfig
from hilserl_testing import demo_streams as ds

torch.set_num_threads(1)
SPEC = ObservationSpec(state_dim=4, action_dim=3, camera_names=('front',), image_size=(16, 16),
                       discrete_gripper=True)
TOPICS = {t.name: t for t in fmt.RECORDED_TOPICS} | {
    fmt.raw_image_topic('front').name: fmt.raw_image_topic('front')}
PLANS = (ds.EpisodePlan(0, 5, 'success'), ds.EpisodePlan(1, 4, 'failure'),
         ds.EpisodePlan(2, 3, 'time_limit'))


@pytest.fixture(scope='module')
def typestore():
    return ds.source_typestore()


def write_episode(out, index, plan, typestore, label=None, raw=True, with_stats=True):
    directory = out / fmt.episode_dir_name(index)
    writer = EpisodeBagWriter(directory, typestore)
    writer.open()
    stamp = 10**18 + index * 10**9
    for number, (topic, message) in enumerate(ds.episode_messages(
            ds.rosbags_maker(typestore), plan, with_stats=with_stats)):
        spec = TOPICS[topic]
        if spec.msgtype == fmt.IMAGE_TYPE and not raw:
            continue
        writer.write(spec, stamp + number, bytes(typestore.serialize_cdr(message, spec.msgtype)))
    steps = ds.steps_of(plan)
    info = fmt.EpisodeInfo(
        index=index, label=label or ('success' if plan.success else 'failure'),
        end_reason=plan.end_reason, task='pick', fps=10.0, camera_names=['front'],
        raw_camera_names=['front'] if raw else [], crop_config=ds.RECORDED_CROP.to_dict(),
        run_id=ds.RUN_ID, episode_id=plan.episode_id, length=plan.steps,
        terminated=steps[-1].terminated, truncated=steps[-1].truncated,
        intervention_steps=sum(s.is_intervention for s in steps))
    writer.close(info.custom_data())
    fmt.write_sidecar(directory, info)
    return directory


@pytest.fixture(scope='module')
def session(tmp_path_factory, typestore):
    """Three finished episodes, one interrupted (no flags, no stats), one still recording."""
    out = tmp_path_factory.mktemp('session')
    for index, plan in enumerate(PLANS):
        write_episode(out, index, plan, typestore)
    write_episode(out, 3, ds.EpisodePlan(3, 3, 'rerecord'), typestore, label='interrupted',
                  with_stats=False)
    write_episode(out, 4, ds.EpisodePlan(4, 2, 'success'), typestore, label='recording')
    fmt.write_session_index(out)
    return out


def crop(window, episode_id, frame):
    return window.apply('front', ds.raw_frame(episode_id, frame))


def check_episode(transitions, plan, window=ds.RECORDED_CROP, privileged_dim=0):
    steps = ds.steps_of(plan)
    assert len(transitions) == len(steps)
    for transition, step in zip(transitions, steps):
        t = step.step_index
        assert transition.step_index == t and transition.episode_id == plan.episode_id
        assert (transition.terminated, transition.truncated) == (step.terminated, step.truncated)
        assert transition.is_intervention == step.is_intervention
        assert transition.reward == step.reward
        assert transition.gripper_penalty == pytest.approx(step.gripper_penalty)
        np.testing.assert_array_equal(transition.action, step.action)
        np.testing.assert_array_equal(transition.observation.state, step.state)
        np.testing.assert_array_equal(transition.next_observation.state, step.next_state)
        for obs, frame in ((transition.observation, t), (transition.next_observation, t + 1)):
            image = obs.images['front']
            assert image.dtype == np.uint8 and image.shape == (16, 16, 3)
            np.testing.assert_array_equal(image, crop(window, plan.episode_id, frame))
            assert obs.privileged.shape == (privileged_dim,)


def test_transitions_carry_the_recorded_flags_images_and_interventions(session):
    transitions = list(dataset.load_transitions(session, SPEC))
    assert len(transitions) == 5 + 4 + 3
    start = 0
    for plan in PLANS:
        check_episode(transitions[start:start + plan.steps], plan)
        start += plan.steps
    assert len({t.source for t in transitions}) == 3
    privileged = list(dataset.load_transitions(
        session / 'episode_0000', ObservationSpec(**{**SPEC.to_dict(), 'privileged_dim': 2})))
    check_episode(privileged, PLANS[0], privileged_dim=2)
    np.testing.assert_array_equal(privileged[2].observation.privileged, [0.5, 2.0])


def test_interrupted_episodes_only_on_request_and_their_last_step_is_truncated(session):
    transitions = list(dataset.load_transitions(session, SPEC, include_interrupted=True))
    assert len(transitions) == 12 + 3
    last = transitions[-1]
    assert last.episode_id == 3 and last.truncated and not last.terminated
    assert not any(t.terminated or t.truncated for t in transitions[12:14])
    only_success = list(dataset.load_transitions(session, SPEC, labels=('success',)))
    assert len(only_success) == 5


def test_a_different_crop_recrops_the_raw_frames(session, tmp_path, monkeypatch):
    check_episode(list(dataset.load_transitions(session / 'episode_0001', SPEC,
                                                crop=ds.OTHER_CROP)),
                  PLANS[1], window=ds.OTHER_CROP)
    # the recorded crop, as a file: the recorded images are used as they are (no raw frames
    # needed), also when the file spells the same crop differently
    same = tmp_path / 'same.yaml'
    content = ds.RECORDED_CROP.to_dict()
    content.pop('default_output')
    same.write_text(yaml.safe_dump(content))
    episode = session / 'episode_0001'
    check_episode(list(dataset.load_transitions(episode, SPEC, crop=same)), PLANS[1])
    # another crop file re-crops the raw frames with hilserl_learner.preprocessing
    other = tmp_path / 'other.yaml'
    other.write_text(yaml.safe_dump(ds.OTHER_CROP.to_dict()))
    check_episode(list(dataset.load_transitions(episode, SPEC, crop=other)), PLANS[1],
                  window=ds.OTHER_CROP)
    # a missing or broken crop file is a clear error
    with pytest.raises(DatasetError, match='no crop config'):
        list(dataset.load_transitions(episode, SPEC, crop=tmp_path / 'absent.yaml'))


def test_recrop_to_another_size(session):
    spec = ObservationSpec(**{**SPEC.to_dict(), 'image_size': (8, 12)})
    window = ds.window_crop(3, 5, size=(8, 12))
    transitions = list(dataset.load_transitions(session / 'episode_0002', spec, crop=window))
    np.testing.assert_array_equal(transitions[1].next_observation.images['front'],
                                  crop(window, 2, 2))


@pytest.mark.parametrize('change, match', [
    ({'state_dim': 5}, 'state has 4 values, the learner expects 5'),
    ({'image_size': (32, 32)}, 'pass the crop config'),
    ({'camera_names': ('front', 'wrist')}, r"cameras \['wrist'\] were not recorded"),
    ({'discrete_gripper': False}, 'action has 4 values, the learner expects 3'),
    ({'privileged_dim': 3}, 'privileged state has 2 values'),
])
def test_data_that_does_not_fit_the_learner_is_a_clear_error(session, change, match):
    spec = ObservationSpec(**{**SPEC.to_dict(), **change})
    with pytest.raises(DatasetError, match=match):
        list(dataset.load_transitions(session, spec))


def test_missing_inputs_are_clear_errors(tmp_path, typestore):
    with pytest.raises(DatasetError, match='does not exist'):
        list(dataset.load_transitions(tmp_path / 'absent', SPEC))
    with pytest.raises(DatasetError, match='no recorded episodes'):
        list(dataset.load_transitions(tmp_path, SPEC))
    write_episode(tmp_path, 0, PLANS[0], typestore, raw=False)
    with pytest.raises(DatasetError, match='record_raw_images was off'):
        list(dataset.load_transitions(tmp_path, SPEC, crop=ds.OTHER_CROP))
    unfinished = tmp_path / 'episode_0001'
    unfinished.mkdir()
    fmt.write_sidecar(unfinished, fmt.EpisodeInfo(index=1, label='success'))
    with pytest.raises(DatasetError, match='unfinished'):
        list(dataset.load_transitions(tmp_path, SPEC))


def test_labelled_frames(session):
    frames = dataset.load_labelled_frames(session)
    assert len(frames) == 6 + 5 + 4
    assert frames.images['front'].shape == (15, 16, 16, 3)
    assert list(np.flatnonzero(frames.success)) == [5]  # reward > 0 and the last frame
    np.testing.assert_array_equal(frames.images['front'][7], crop(ds.RECORDED_CROP, 1, 1))
    assert list(frames.episode[:7]) == [0] * 6 + [1]
    assert list(frames.frame_index[:7]) == [0, 1, 2, 3, 4, 5, 0]
    tail = dataset.load_labelled_frames(session, crop=ds.OTHER_CROP, success_tail_frames=3)
    assert list(np.flatnonzero(tail.success)) == [3, 4, 5]
    np.testing.assert_array_equal(tail.images['front'][7], crop(ds.OTHER_CROP, 1, 1))


def test_load_demos_builds_a_demo_buffer_the_learner_loads(session, tmp_path):
    out = io.StringIO()
    buffer = tmp_path / 'demo_buffer'
    assert load_demos.main([str(session), '--output', str(buffer)], out=out) == 0
    summary = yaml.safe_load(out.getvalue().split('saved demo buffer')[0])
    assert summary['episodes'] == 3 and summary['transitions'] == 12
    assert summary['labels'] == {'success': 1, 'failure': 2}
    assert summary['success_rate'] == pytest.approx(1 / 3, abs=1e-3)
    assert summary['intervention_share'] == pytest.approx(10 / 12, abs=1e-3)
    assert summary['spec']['discrete_gripper'] and summary['spec']['action_dim'] == 3
    assert summary['spec']['privileged_dim'] == 2 and summary['buffer_bytes'] > 0
    assert demo_buffer.is_demo_buffer(buffer)
    from_bags = list(dataset.load_transitions(session, SPEC))
    from_buffer = list(dataset.load_transitions(buffer, SPEC))
    assert len(from_buffer) == len(from_bags)
    for a, b in zip(from_bags, from_buffer):
        np.testing.assert_array_equal(a.observation.images['front'],
                                      b.observation.images['front'])
        np.testing.assert_array_equal(a.next_observation.images['front'],
                                      b.next_observation.images['front'])
        np.testing.assert_array_equal(a.action, b.action)
        assert (a.terminated, a.truncated, a.is_intervention, a.reward) == (
            b.terminated, b.truncated, b.is_intervention, b.reward)
    with pytest.raises(DatasetError, match='rebuild it with load_demos'):
        list(dataset.load_transitions(buffer, ObservationSpec(
            **{**SPEC.to_dict(), 'image_size': (8, 8)})))
    # the spec from the learner's parameter file, only successes
    params = tmp_path / 'learner.yaml'
    params.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'state_dim': 4, 'action_dim': 3, 'discrete_gripper': True, 'camera_names': ['front'],
        'image_height_px': 16, 'image_width_px': 16}}}))
    out = io.StringIO()
    assert load_demos.main([str(session), '--learner-params', str(params), '--no-failures'],
                           out=out) == 0
    assert yaml.safe_load(out.getvalue())['transitions'] == 5
    out = io.StringIO()
    assert load_demos.main([str(tmp_path / 'nothing')], out=out) == 1
    assert 'does not exist' in out.getvalue()


def test_the_learner_loads_bags_and_buffers_into_its_demo_buffer(session, tmp_path):
    learner = Learner(LearnerParams(
        state_dim=4, action_dim=3, discrete_gripper=True, camera_names=('front',),
        image_height_px=16, image_width_px=16, online_capacity=100, demo_capacity=100,
        run_dir=str(tmp_path / 'run')),
        SACConfig(batch_size=8, hidden_dims=(8, 8)),
        EncoderConfig(conv_channels=(4, 4), conv_patch_px=4, image_latent_dim=8,
                      proprio_latent_dim=8))
    assert learner.load_demo_dataset(str(session)) == 12
    assert len(learner.mixer.demo) == 12 and len(learner.mixer.online) == 0
    info = learner.bc_warm_start(2)
    assert 'bc_loss' in info and info['bc_transitions'] == 5  # the success episode only
    demo = learner.mixer.demo
    success_states = {tuple(demo.data['state'][slot]) for slot in learner._bc_slots}
    assert set(demo.data['episode_id'][learner._bc_slots]) == {0} and len(success_states) == 5
    batch = learner.mixer.sample_demos(learner._bc_slots)
    assert {tuple(row) for row in batch.observation.state.numpy()} <= success_states
    demo_buffer.save(dataset.load_transitions(session, SPEC), SPEC, tmp_path / 'buffer')
    assert learner.load_demo_dataset(str(tmp_path / 'buffer')) == 12
    assert len(learner.mixer.demo) == 24
    assert learner.bc_warm_start(1)['bc_transitions'] == 12  # a saved buffer has no labels
    learner.close()


def test_the_bc_warm_start_needs_success_episodes_unless_told_otherwise(tmp_path, typestore):
    out = tmp_path / 'failures'
    write_episode(out, 0, ds.EpisodePlan(0, 4, 'failure'), typestore)
    for success_only, expected in ((True, None), (False, 4)):
        learner = Learner(LearnerParams(
            state_dim=4, action_dim=3, discrete_gripper=True, camera_names=('front',),
            image_height_px=16, image_width_px=16, online_capacity=100, demo_capacity=100,
            bc_success_only=success_only, run_dir=str(tmp_path / 'run')),
            SACConfig(batch_size=8, hidden_dims=(8, 8)),
            EncoderConfig(conv_channels=(4, 4), conv_patch_px=4, image_latent_dim=8,
                          proprio_latent_dim=8))
        assert learner.load_demo_dataset(str(out)) == 4
        if expected is None:
            with pytest.raises(DatasetError, match='no episode labelled success'):
                learner.bc_warm_start(1)
        else:
            assert learner.bc_warm_start(1)['bc_transitions'] == expected
        learner.close()


def test_train_reward_classifier_command_trains_on_bags_and_saves_the_model(
        tmp_path, typestore):
    from hilserl_learner import reward_classifier, train_reward_classifier

    out = tmp_path / 'demos'
    plans = [ds.EpisodePlan(i, 6, 'success' if i % 2 == 0 else 'failure') for i in range(6)]
    for index, plan in enumerate(plans):
        write_episode(out, index, plan, typestore)
    model = tmp_path / 'classifier.pt'
    text = io.StringIO()
    code = train_reward_classifier.main(
        [str(out), '--output', str(model), '--success-tail-frames', '3', '--epochs', '2',
         '--steps-per-epoch', '3', '--batch-size', '8', '--threads', '1'], out=text)
    printed = text.getvalue()
    assert code == 0, printed
    assert 'frames: 42 (9 success, 33 not) from 6 episodes; cameras front; images 16x16' in (
        printed)
    assert printed.count('epoch ') == 2 and 'best (validation)' in printed
    loaded = reward_classifier.load(model)
    assert loaded.camera_names == ('front',) and loaded.image_size == (16, 16)
    assert loaded.crop == ds.RECORDED_CROP.to_dict()  # the crop the frames were cut with
    assert set(loaded.metrics) >= {'accuracy', 'precision', 'recall', 'val_frames',
                                   'precision_at_threshold', 'recall_at_threshold'}
    assert loaded.metrics['threshold'] == loaded.threshold == 0.85 and (
        '"precision_at_threshold"' in printed)
    # An impossible accuracy bar gives exit code 3 (the model is still written).
    assert train_reward_classifier.main(
        [str(out), '--output', str(model), '--epochs', '1', '--steps-per-epoch', '1',
         '--min-accuracy', '1.01'], out=io.StringIO()) == 3


def test_train_reward_classifier_command_explains_unusable_data(tmp_path, typestore):
    from hilserl_learner import train_reward_classifier

    out = tmp_path / 'demos'
    for index in range(3):
        write_episode(out, index, ds.EpisodePlan(index, 4, 'failure'), typestore)
    text = io.StringIO()
    code = train_reward_classifier.main([str(out), '--output', str(tmp_path / 'm.pt')],
                                        out=text)
    assert code == 1 and 'no success frames' in text.getvalue()
    assert not (tmp_path / 'm.pt').exists()
