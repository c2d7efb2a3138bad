"""The recorder core (ROS-free): episodes, labels, re-record, interruptions, disk and crashes.

Messages are the synthetic actor's (tests/hilserl_testing/demo_streams.py), serialized to CDR
with rosbags and fed as the node would feed them; bags are read back with rosbags.
"""
import errno
import pathlib
import shutil

import pytest
import yaml

from hilserl_actor.errors import RecorderError
from hilserl_actor.recording.recorder import DemoRecorder
from hilserl_actor.recording.types import (
    FrameRef,
    Incoming,
    RecorderSettings,
    StatsInfo,
    TransitionInfo,
)
from hilserl_learner import bag_io
from hilserl_learner import demo_format as fmt
from hilserl_testing import demo_streams as ds

TOPICS = {t.name: t for t in fmt.RECORDED_TOPICS} | {
    fmt.raw_image_topic(ds.CAMERA).name: fmt.raw_image_topic(ds.CAMERA)}
EVENTS = {0: 'SUCCESS', 1: 'FAILURE', 2: 'RERECORD', 3: 'END_SESSION', 4: 'START_EPISODE'}


@pytest.fixture(scope='module')
def typestore():
    return ds.source_typestore()


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def ref(image):
    return FrameRef(image.header.frame_id,
                    image.header.stamp.sec * 1_000_000_000 + image.header.stamp.nanosec)


class Feeder:
    """Feeds (topic, message) pairs to a DemoRecorder the way demo_recorder_node does."""

    def __init__(self, recorder, typestore, clock, step_s=0.01):
        self.recorder, self.typestore, self.clock, self.step_s = recorder, typestore, clock, step_s
        self.notices = []

    def __call__(self, messages):
        for topic, message in messages:
            self.clock.now += self.step_s
            self.send(topic, message)
        return self

    def send(self, topic, message, sent_ns=0):
        spec = TOPICS[topic]
        item = Incoming(spec, int(self.clock.now * 1e9),
                        bytes(self.typestore.serialize_cdr(message, spec.msgtype)), sent_ns)
        r = self.recorder
        if topic == fmt.TRANSITIONS:
            info = TransitionInfo(
                message.header.frame_id, int(message.episode_id), int(message.step_index),
                bool(message.is_intervention), tuple(message.observation.camera_names),
                tuple(ref(i) for i in message.observation.images)
                + tuple(ref(i) for i in message.next_observation.images),
                bool(message.terminated or message.truncated))
            out = r.on_transition(item, info)
        elif topic == fmt.OBSERVATION:
            out = r.on_message(item, tuple(ref(i) for i in message.images))
        elif topic == fmt.EPISODE_STATS:
            out = r.on_stats(item, StatsInfo(
                message.header.frame_id, int(message.episode_id), message.end_reason,
                bool(message.success), int(message.length), int(message.intervention_steps),
                int(message.intervention_count), int(message.policy_version),
                float(message.episode_return), bool(message.terminated),
                bool(message.truncated)))
        elif topic == fmt.EPISODE_EVENT:
            out = r.on_event(item, EVENTS[message.event])
        elif topic == fmt.INTERVENTION:
            out = r.on_message(item, latched=True)
        elif spec.msgtype == fmt.IMAGE_TYPE:
            out = r.on_raw_frame(item, ref(message))
        else:
            out = r.on_message(item)
        self.notices += out

    def tick(self, seconds=0.0):
        self.clock.now += seconds
        self.notices += self.recorder.tick()

    def texts(self, level):
        return [n.text for n in self.notices if n.level == level]


def make_recorder(tmp_path, typestore, clock=None, free_bytes=None, writer_factory=None,
                  **overrides):
    settings = {'output_dir': tmp_path / 'demos', 'task': 'pick', 'fps': 10.0,
                'raw_camera_names': (ds.CAMERA,), 'crop_config': ds.RECORDED_CROP.to_dict(),
                'crop_config_file': '/crop.yaml', 'calibration_id': 'arm@sha256:0',
                'flush_period_s': 0.5, 'episode_stats_timeout_s': 2.0, **overrides}
    clock = clock or Clock()
    kwargs = {'clock': clock}
    if free_bytes is not None:
        kwargs['free_bytes'] = free_bytes
    if writer_factory is not None:
        kwargs['writer_factory'] = writer_factory
    recorder = DemoRecorder(RecorderSettings(**settings), typestore, **kwargs)
    notices = recorder.start()
    feeder = Feeder(recorder, typestore, clock)
    feeder.notices += notices
    return recorder, feeder


def messages(typestore, plan, **kwargs):
    return ds.episode_messages(ds.rosbags_maker(typestore), plan, **kwargs)


def topic_counts(directory):
    counts = {}
    for topic, _, _ in bag_io.read_messages(directory):
        counts[topic] = counts.get(topic, 0) + 1
    return counts


def expected_counts(steps):
    return {fmt.EPISODE_EVENT: 1, fmt.INTERVENTION: 1, '/cameras/front/image_raw': steps + 1,
            fmt.OBSERVATION: steps, fmt.JOINT_STATES: steps, fmt.HUMAN_EE_COMMAND: steps,
            fmt.EE_COMMAND: steps, fmt.TRANSITIONS: steps, fmt.EPISODE_STATS: 1}


def test_episodes_are_split_labelled_and_complete(tmp_path, typestore):
    recorder, feed = make_recorder(tmp_path, typestore)
    plans = [ds.EpisodePlan(0, 5, 'success'), ds.EpisodePlan(1, 3, 'rerecord'),
             ds.EpisodePlan(2, 4, 'failure'), ds.EpisodePlan(3, 3, 'time_limit')]
    for plan in plans:
        feed(messages(typestore, plan))
    out = tmp_path / 'demos'
    dirs = fmt.episode_dirs(out)
    assert [d.name for d in dirs] == ['episode_0000', 'episode_0001', 'episode_0002']
    infos = [fmt.read_sidecar(d) for d in dirs]
    assert [(i.label, i.end_reason, i.episode_id, i.length) for i in infos] == [
        ('success', 'success', 0, 5), ('failure', 'failure', 2, 4),
        ('failure', 'time_limit', 3, 3)]
    first = infos[0]
    assert first.task == 'pick' and first.fps == 10.0 and first.camera_names == ['front']
    assert first.raw_camera_names == ['front'] and first.crop_config == ds.RECORDED_CROP.to_dict()
    assert first.calibration_id == 'arm@sha256:0' and first.run_id == ds.RUN_ID
    assert first.intervention_steps == 4 and first.intervention_count == 2  # steps 0-2, 4
    assert first.policy_version == 7 and first.success and first.terminated
    assert first.raw_frames_missing == 0 and first.error == ''
    for directory, plan in zip(dirs, (plans[0], plans[2], plans[3])):
        assert topic_counts(directory) == expected_counts(plan.steps), directory.name
        meta = yaml.safe_load((directory / fmt.BAG_METADATA).read_text())
        info = meta['rosbag2_bagfile_information']
        assert info['version'] == 9 and info['storage_identifier'] == 'mcap'
        assert fmt.EpisodeInfo.from_custom_data(info['custom_data']) == fmt.read_sidecar(
            directory)
    session = yaml.safe_load((out / fmt.SESSION_INDEX).read_text())
    assert session['counts'] == {'success': 1, 'failure': 2}
    assert [e['directory'] for e in session['episodes']] == [d.name for d in dirs]
    assert recorder.status()['discarded'] == 1 and recorder.current is None
    assert not feed.texts('error') and not feed.texts('warn')


def test_transitions_and_raw_frames_read_back_exactly(tmp_path, typestore):
    recorder, feed = make_recorder(tmp_path, typestore)
    plan = ds.EpisodePlan(4, 3, 'success')
    # extra raw frames nobody used, between the steps: not recorded
    extra = [('/cameras/front/image_raw', ds.raw_image_message(ds.rosbags_maker(typestore), 4,
                                                                50 + i)) for i in range(3)]
    stream = messages(typestore, plan)
    feed(stream[:5] + extra + stream[5:])
    directory = fmt.episode_dirs(tmp_path / 'demos')[0]
    transitions = [m for t, _, m in bag_io.read_messages(directory, {fmt.TRANSITIONS})]
    for message, step in zip(transitions, ds.steps_of(plan)):
        assert message.step_index == step.step_index
        assert message.terminated == step.terminated and message.reward == step.reward
        assert list(message.action) == pytest.approx(list(step.action))
    frames = [m for t, _, m in bag_io.read_messages(directory, {'/cameras/front/image_raw'})]
    stamps = sorted(f.header.stamp.sec * 10**9 + f.header.stamp.nanosec for f in frames)
    assert stamps == [ds.frame_stamp_ns(4, i) for i in range(4)]
    assert bytes(frames[0].data) == ds.raw_frame(4, 0).tobytes()


def test_a_raw_frame_arriving_after_its_policy_image_is_kept(tmp_path, typestore):
    recorder, feed = make_recorder(tmp_path, typestore)
    stream = messages(typestore, ds.EpisodePlan(0, 2, 'success'))
    raw = [i for i, m in enumerate(stream) if m[0] == '/cameras/front/image_raw']
    lost, late = stream[raw[1]], stream[raw[2]]  # frame 1 never arrives, frame 2 arrives late
    stream = [m for m in stream if m is not lost and m is not late]
    feed(stream[:-1] + [late] + stream[-1:])
    info = fmt.read_sidecar(fmt.episode_dirs(tmp_path / 'demos')[0])
    assert info.raw_frames_missing == 1
    assert topic_counts(fmt.episode_dirs(tmp_path / 'demos')[0])['/cameras/front/image_raw'] == 2
    assert any('without their raw camera frame' in t for t in feed.texts('warn'))


def test_preroll_keeps_the_end_of_the_reset_and_the_intervention_state(tmp_path, typestore):
    recorder, feed = make_recorder(tmp_path, typestore, preroll_s=1.0)
    make = ds.rosbags_maker(typestore)
    feed([(fmt.INTERVENTION, ds.intervention_message(make, True, 1))])
    feed([(fmt.JOINT_STATES, ds.joint_state_message(make, 0, 90 + i)) for i in range(5)])
    feed.tick(5.0)  # a long reset: all of that is old now, except the intervention state
    feed([(fmt.JOINT_STATES, ds.joint_state_message(make, 0, 99))])
    feed(messages(typestore, ds.EpisodePlan(0, 2, 'success'))[2:])  # no event / intervention
    counts = topic_counts(fmt.episode_dirs(tmp_path / 'demos')[0])
    assert counts[fmt.INTERVENTION] == 1 and counts[fmt.JOINT_STATES] == 2 + 1


def test_finish_mid_episode_leaves_a_valid_interrupted_bag(tmp_path, typestore):
    recorder, feed = make_recorder(tmp_path, typestore)
    feed(messages(typestore, ds.EpisodePlan(0, 3, 'success')))
    feed(messages(typestore, ds.EpisodePlan(1, 6, 'success'), with_stats=False)[:20])
    notices = recorder.finish('stopped')
    dirs = fmt.episode_dirs(tmp_path / 'demos')
    info = fmt.read_sidecar(dirs[1])
    assert (info.label, info.end_reason) == ('interrupted', 'stopped')
    assert info.length == topic_counts(dirs[1])[fmt.TRANSITIONS] == 2
    assert fmt.read_sidecar(dirs[0]).label == 'success'
    assert any('interrupted' in n.text for n in notices)
    assert recorder.finish('stopped') == []  # idempotent


def test_stats_late_or_missing_when_the_next_episode_starts(tmp_path, typestore):
    recorder, feed = make_recorder(tmp_path, typestore, episode_stats_timeout_s=2.0)
    first = messages(typestore, ds.EpisodePlan(0, 3, 'success'))
    second = messages(typestore, ds.EpisodePlan(1, 3, 'failure'))
    # stats of episode 0 arrive after two transitions of episode 1 (within the timeout)
    feed(first[:-1] + second[:10] + first[-1:] + second[10:])
    third = messages(typestore, ds.EpisodePlan(2, 2, 'success'))
    fourth = messages(typestore, ds.EpisodePlan(3, 2, 'success'))
    feed(third[:-1] + fourth[:9])  # episode 2's stats never arrive
    feed.tick(3.0)
    feed(fourth[9:])
    infos = [fmt.read_sidecar(d) for d in fmt.episode_dirs(tmp_path / 'demos')]
    assert [(i.episode_id, i.label, i.end_reason, i.length) for i in infos] == [
        (0, 'success', 'success', 3), (1, 'failure', 'failure', 3),
        (2, 'interrupted', 'missing_episode_stats', 2), (3, 'success', 'success', 2)]
    for directory in fmt.episode_dirs(tmp_path / 'demos')[:2]:
        assert topic_counts(directory) == expected_counts(3), directory.name
    assert any('no EpisodeStats' in t for t in feed.texts('warn'))


def test_topics_interleaved_on_arrival_are_split_in_publication_order(tmp_path, typestore):
    """Each topic has its own reader: arrival order across topics is not publication order."""
    import random

    recorder, feed = make_recorder(tmp_path, typestore, reorder_window_s=0.3)
    stream = (messages(typestore, ds.EpisodePlan(0, 4, 'success'))
              + messages(typestore, ds.EpisodePlan(1, 3, 'failure')))
    sent = [(10**18 + 1000 * i, topic, message) for i, (topic, message) in enumerate(stream)]
    rng = random.Random(3)
    arrival = sorted(sent, key=lambda s: s[0] + rng.randint(0, 8000))
    assert [s[0] for s in arrival] != [s[0] for s in sent]
    for sent_ns, topic, message in arrival:
        feed.clock.now += 0.001
        feed.send(topic, message, sent_ns)
    assert fmt.episode_dirs(tmp_path / 'demos') == []  # nothing handled before the window
    feed.tick(0.5)
    dirs = fmt.episode_dirs(tmp_path / 'demos')
    assert [fmt.read_sidecar(d).label for d in dirs] == ['success', 'failure']
    assert topic_counts(dirs[0]) == expected_counts(4)
    assert topic_counts(dirs[1]) == expected_counts(3)


class FailingWriter(bag_io.EpisodeBagWriter):
    """Raises ENOSPC on the Nth write of the episode directories named in ``fail``."""

    fail: dict = {}

    def write(self, topic, timestamp_ns, data):
        left = self.fail.get(self.directory.name)
        if left is not None:
            if left == 0:
                raise OSError(errno.ENOSPC, 'No space left on device')
            self.fail[self.directory.name] = left - 1
        super().write(topic, timestamp_ns, data)


def test_a_write_error_drops_only_the_episode_being_written(tmp_path, typestore):
    FailingWriter.fail = {'episode_0001': 12}
    recorder, feed = make_recorder(tmp_path, typestore, writer_factory=FailingWriter)
    feed(messages(typestore, ds.EpisodePlan(0, 3, 'success')))
    feed(messages(typestore, ds.EpisodePlan(1, 4, 'success')))  # fails mid-episode
    FailingWriter.fail = {}
    feed(messages(typestore, ds.EpisodePlan(2, 2, 'failure')))
    infos = [fmt.read_sidecar(d) for d in fmt.episode_dirs(tmp_path / 'demos')]
    assert [(i.episode_id, i.label) for i in infos] == [(0, 'success'), (2, 'failure')]
    assert topic_counts(fmt.episode_dirs(tmp_path / 'demos')[0]) == expected_counts(3)
    errors = feed.texts('error')
    assert len(errors) == 1 and 'the disk is full' in errors[0] and 'kept' in errors[0]
    assert 'No space left' in recorder.status()['last_error']


def test_min_free_disk_stops_and_resumes_recording(tmp_path, typestore):
    free = {'bytes': 10**12}
    recorder, feed = make_recorder(tmp_path, typestore, min_free_disk_mb=100.0,
                                   free_bytes=lambda path: free['bytes'])
    feed(messages(typestore, ds.EpisodePlan(0, 3, 'success')))
    stream = messages(typestore, ds.EpisodePlan(1, 6, 'success'))
    feed(stream[:15])
    free['bytes'] = 50 * 10**6
    feed.tick(1.0)  # the periodic check finalizes the open episode
    feed(stream[15:])  # the rest of that episode is not recorded
    feed(messages(typestore, ds.EpisodePlan(2, 2, 'success')))  # nor the next one
    assert recorder.status()['state'] == 'disk_full'
    free['bytes'] = 10**12
    feed(messages(typestore, ds.EpisodePlan(3, 2, 'failure')))
    infos = [fmt.read_sidecar(d) for d in fmt.episode_dirs(tmp_path / 'demos')]
    assert [(i.episode_id, i.label, i.end_reason) for i in infos] == [
        (0, 'success', 'success'), (1, 'interrupted', 'disk_full'), (3, 'failure', 'failure')]
    assert infos[1].length == 2
    assert any('only 50 MB free' in t for t in feed.texts('error'))
    assert any('not recorded' in t for t in feed.texts('error'))
    notices = recorder.set_min_free_disk_mb(1e7)  # above the free space: at once
    assert recorder.disk_low and any('disk almost full' in n.text for n in notices)


def test_a_killed_recorder_leaves_an_episode_the_next_start_repairs(tmp_path, typestore):
    recorder, feed = make_recorder(tmp_path, typestore, flush_period_s=0.5)
    feed(messages(typestore, ds.EpisodePlan(0, 2, 'success')))
    feed(messages(typestore, ds.EpisodePlan(1, 8, 'success'), with_stats=False)[:30])
    feed.tick(1.0)  # flushed to disk
    feed(messages(typestore, ds.EpisodePlan(1, 8, 'success'), with_stats=False)[30:])
    # "kill": copy what is on disk now, without closing anything
    crashed = tmp_path / 'crashed'
    shutil.copytree(tmp_path / 'demos', crashed)
    assert not (crashed / 'episode_0001' / fmt.BAG_METADATA).exists()
    assert fmt.read_sidecar(crashed / 'episode_0001').label == 'recording'
    again, feed2 = make_recorder(crashed.parent, typestore, output_dir=crashed)
    info = fmt.read_sidecar(crashed / 'episode_0001')
    assert (info.label, info.end_reason) == ('interrupted', 'crash')
    assert 0 < info.length <= 8 and info.length == topic_counts(
        crashed / 'episode_0001')[fmt.TRANSITIONS]
    assert fmt.read_sidecar(crashed / 'episode_0000').label == 'success'
    assert any('repaired' in t for t in feed2.texts('warn'))
    # an episode killed before anything reached the disk is removed
    empty = tmp_path / 'empty' / 'episode_0000'
    empty.mkdir(parents=True)
    fmt.write_sidecar(empty, fmt.EpisodeInfo(index=0))
    (empty / 'episode_0000.mcap').write_bytes(b'\x89MCAP0\r\n\x01')
    make_recorder(tmp_path, typestore, output_dir=tmp_path / 'empty')
    assert not empty.exists()
    recorder.finish('stopped')


def test_a_kill_between_closing_the_bag_and_the_sidecar_is_repaired_from_metadata(
        tmp_path, typestore):
    recorder, feed = make_recorder(tmp_path, typestore)
    feed(messages(typestore, ds.EpisodePlan(0, 2, 'failure')))
    directory = fmt.episode_dirs(tmp_path / 'demos')[0]
    fmt.write_sidecar(directory, fmt.EpisodeInfo(index=0))  # as at open: label recording
    make_recorder(tmp_path, typestore)
    info = fmt.read_sidecar(directory)
    assert (info.label, info.end_reason, info.length) == ('failure', 'failure', 2)
    assert topic_counts(directory) == expected_counts(2)


def test_session_ends_after_max_episodes_or_end_session(tmp_path, typestore):
    recorder, feed = make_recorder(tmp_path, typestore, max_episodes=2)
    feed(messages(typestore, ds.EpisodePlan(0, 2, 'success')))
    feed(messages(typestore, ds.EpisodePlan(1, 2, 'rerecord')))
    assert not recorder.done
    feed(messages(typestore, ds.EpisodePlan(2, 2, 'failure')))
    assert recorder.done and recorder.status()['state'] == 'done'
    feed(messages(typestore, ds.EpisodePlan(3, 2, 'success')))  # ignored
    assert len(fmt.episode_dirs(tmp_path / 'demos')) == 2

    other, feed = make_recorder(tmp_path / 'b', typestore)
    stream = messages(typestore, ds.EpisodePlan(0, 3, 'success'))
    make = ds.rosbags_maker(typestore)
    feed(stream[:12] + [(fmt.EPISODE_EVENT, ds.event_message(make, 3))])
    assert not other.done
    feed(stream[12:])
    assert other.done


def test_bad_output_dir_is_a_clear_error(tmp_path, typestore):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(RecorderError, match='output_dir'):
        make_recorder(tmp_path, typestore, output_dir=blocker / 'demos')


def test_installed_definitions_hash_like_ros():
    """The bags' RIHS01 hashes equal the ones rosidl generated for the installed packages."""
    import json

    ament = pytest.importorskip('ament_index_python.packages')
    try:
        share = pathlib.Path(ament.get_package_share_directory('hilserl_msgs'))
    except ament.PackageNotFoundError:
        pytest.skip('hilserl_msgs is not installed (run scripts/test.sh)')
    typestore = bag_io.installed_typestore()
    for spec in list(fmt.RECORDED_TOPICS) + [fmt.raw_image_topic('front')]:
        package, _, name = spec.msgtype.split('/')
        path = (share.parent / package / 'msg' / f'{name}.json')
        if not path.exists():
            path = pathlib.Path(ament.get_package_share_directory(package)) / 'msg' / (
                f'{name}.json')
        hashes = json.loads(path.read_text())['type_hashes']
        expected = next(h['hash_string'] for h in hashes if h['type_name'] == spec.msgtype)
        assert typestore.hash_rihs01(spec.msgtype) == expected, spec.msgtype
