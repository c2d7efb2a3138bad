"""The actor loop's episodes, steps and transitions, driven with synthetic inputs (ROS-free)."""
import numpy as np
import pytest

from hilserl_actor.actions import (
    ActionSelector,
    ActionSettings,
    HumanActionSource,
    HumanEeCommand,
    ZeroActionSource,
)
from hilserl_actor.episode import ActorInputs, ActorLoop, Phase, ResetOutcome
from hilserl_actor.observation_builder import (
    Frame,
    GroundTruthReading,
    JointReading,
    ObservationBuilder,
)
from hilserl_actor.params import DEFAULT_JOINT_NAMES, ActorParams
from hilserl_actor.teleop.types import EpisodeEventType, Gripper
from hilserl_learner.observation import validate_transition
from hilserl_learner.preprocessing import CameraCrop, CropConfig
from so101_driver.kinematics import So101Kinematics

HOME = np.array([0.0, -0.6, 0.5, 1.42, 1.5708, 0.7])
PERIOD = 0.1


@pytest.fixture(scope='module')
def kinematics():
    return So101Kinematics()


class Harness:
    """An ActorLoop with inputs that the test controls; collects every output."""

    def __init__(self, kinematics, **overrides):
        values = {'camera_names': ('front',), 'max_episode_steps': 5, 'seed': 10,
                  'reset_delay_s': 0.3, 'reset_sync_steps': 2, 'ground_truth': 'auto'}
        values.update(overrides)
        self.params = ActorParams(**values)
        settings = ActionSettings(self.params.action_scale_m, self.params.discrete_gripper,
                                  self.params.human_command_timeout_s)
        builder = ObservationBuilder(DEFAULT_JOINT_NAMES, self.params.camera_names,
                                     CropConfig(default=CameraCrop(None, 16, 16)),
                                     self.params.privileged_fields, kinematics)
        self.human = HumanActionSource(settings, DEFAULT_JOINT_NAMES, kinematics)
        self.loop = ActorLoop(self.params, builder,
                              ActionSelector('demo', self.human, ZeroActionSource(settings)),
                              'run-test')
        self.inputs = ActorInputs()
        self.now = 0.0
        self.joints = HOME.copy()
        self.publish_truth = True
        self.success = False
        self.fresh = True
        self.seed = None
        self.frame_count = 0
        self.outputs = []

    def feed(self):
        if not self.fresh:
            return
        self.inputs.joints = JointReading(self.joints.copy(), self.now, self.now)
        self.frame_count += 1
        image = np.full((24, 32, 3), self.frame_count % 256, np.uint8)
        self.inputs.frames['front'] = Frame(image, self.now, self.now, f'header{self.frame_count}')
        if self.publish_truth:
            self.inputs.truth = GroundTruthReading(
                np.array([0.2, 0.0, 0.0125]), np.array([1.0, 0, 0, 0]), np.zeros(3),
                np.array([0.2, 0.0, 0.09]), 0.0, False, self.success,
                self.seed if self.seed is not None else 0, self.now, self.now)
            self.inputs.truth_seen = True

    def tick(self, count=1):
        for _ in range(count):
            self.now = round(self.now + PERIOD, 6)
            self.feed()
            out = self.loop.tick(self.now, self.inputs)
            self.outputs.append(out)
            if out.reset is not None:
                self.seed = out.reset.seed
                self.answer = (out.reset.token, ResetOutcome(True, 'ok', out.reset.seed, HOME))
        return self.outputs[-1]

    def reset_answer(self):
        token, outcome = self.answer
        return self.loop.on_reset_result(token, outcome, self.now)

    def start(self):
        """activate, reset, sync: the loop is running when this returns."""
        self.loop.activate(self.now)
        self.tick()
        self.reset_answer()
        while self.loop.phase is not Phase.RUNNING:
            self.tick()

    def collect(self, name):
        return [getattr(o, name) for o in self.outputs if getattr(o, name) is not None]


def test_an_episode_from_reset_to_success(kinematics):
    h = Harness(kinematics)
    h.loop.activate(0.0)
    out = h.tick()
    assert out.reset.seed == 10 and out.reset.randomize_object
    assert h.loop.phase is Phase.RESETTING
    assert h.reset_answer() == [('info', 'episode reset (seed 10)')]
    syncs = [h.tick().sync_joints_rad for _ in range(2)]
    assert all(s == pytest.approx(HOME) for s in syncs)
    out = h.tick()  # sync done -> running from the next tick
    assert any('ground truth: used' in text for _, text in out.logs)
    assert h.loop.phase is Phase.RUNNING
    h.tick(3)
    h.success = True
    h.tick()
    transitions = [r.transition for r in h.collect('transition')]
    stats = h.collect('stats')
    assert [t.step_index for t in transitions] == [0, 1, 2]
    assert [t.terminated for t in transitions] == [False, False, True]
    assert [t.reward for t in transitions] == [0.0, 0.0, 1.0]
    assert all(t.source == 'run-test' and t.episode_id == 0 for t in transitions)
    assert len(stats) == 1 and stats[0].end_reason == 'success' and stats[0].success
    assert stats[0].length == 3 and stats[0].episode_return == 1.0 and stats[0].terminated
    assert stats[0].policy_rate_hz == pytest.approx(10.0, rel=0.35)
    # next_observation of step t is the observation of step t + 1 (same frames)
    records = h.collect('transition')
    for earlier, later in zip(records, records[1:]):
        assert earlier.next_observation is later.observation
    # every observation is published before the transition holding it as next_observation
    for out in h.outputs:
        if out.transition is not None:
            assert out.observation is out.transition.next_observation
    spec = h.loop.builder.spec()
    assert spec.state_dim == 9 and spec.privileged_dim == 7 and spec.image_size == (16, 16)
    for transition in transitions:
        validate_transition(transition, spec)
    # the state's TCP part is relative to the episode start (the arm did not move: zero)
    assert transitions[0].observation.state[6:] == pytest.approx(np.zeros(3), abs=1e-6)
    assert h.loop.phase is Phase.IDLE
    h.tick(2)
    assert h.loop.phase is Phase.IDLE, 'reset_delay_s not respected'
    h.tick(2)
    assert h.collect('reset')[-1].seed == 11


def test_time_limit_truncates_and_human_steps_are_interventions(kinematics):
    h = Harness(kinematics, max_episode_steps=4, ground_truth='off',
                human_command_timeout_s=0.15)
    h.start()
    h.human.set_ee(HumanEeCommand(np.array([0.05, 0, 0]), Gripper.CLOSE, h.now + PERIOD))
    h.tick()                       # step 0: human, closes the gripper
    h.tick()                       # step 1: the command is 0.1 s old: still fresh
    h.tick(2)                      # steps 2, 3: stale -> zero action
    h.tick()                       # time limit
    transitions = [r.transition for r in h.collect('transition')]
    assert [t.step_index for t in transitions] == [0, 1, 2, 3]
    assert transitions[-1].truncated and not transitions[-1].terminated
    assert [t.is_intervention for t in transitions] == [True, True, False, False]
    assert transitions[0].action.tolist() == pytest.approx([1.0, 0, 0, 0.0])  # clipped
    assert transitions[0].gripper_penalty == pytest.approx(-0.02)
    assert transitions[1].gripper_penalty == 0.0
    assert h.collect('action')[0].delta_m == pytest.approx([0.025, 0, 0])
    stats = h.collect('stats')[0]
    assert (stats.end_reason, stats.length, stats.intervention_steps,
            stats.intervention_count) == ('time_limit', 4, 2, 1)
    assert stats.intervention_rate == pytest.approx(0.5) and stats.truncated
    assert transitions[0].observation.privileged.size == 0  # ground truth off


@pytest.mark.parametrize('event, reason, reward, terminated', [
    (EpisodeEventType.FAILURE, 'failure', 0.0, True),
    (EpisodeEventType.RERECORD, 'rerecord', 0.0, False),
    (EpisodeEventType.SUCCESS, 'success', 1.0, True),
])
def test_operator_events_end_the_episode(kinematics, event, reason, reward, terminated):
    h = Harness(kinematics, num_episodes=1)
    h.start()
    h.tick(2)
    assert h.loop.on_event(event, h.now) == []
    h.tick()
    last = h.collect('transition')[-1].transition
    stats = h.collect('stats')[0]
    assert (stats.end_reason, last.reward, last.terminated, last.truncated) == (
        reason, reward, terminated, not terminated)
    h.tick(5)
    if reason == 'rerecord':  # discarded: does not count towards num_episodes
        assert h.loop.phase is Phase.RESETTING
    else:
        assert h.loop.phase is Phase.FINISHED


def test_safety_trip_terminates_with_the_penalty(kinematics):
    h = Harness(kinematics, safety_penalty=-0.5)
    assert h.loop.on_safety_trip('effort') == [('warn', 'safety trip between episodes: effort')]
    h.start()
    h.tick(2)
    h.loop.on_safety_trip('effort: elbow_flex')
    h.tick()
    last = h.collect('transition')[-1].transition
    assert last.terminated and last.reward == -0.5
    assert h.collect('stats')[0].end_reason == 'safety_trip'


def test_end_session_stops_after_the_current_episode(kinematics):
    h = Harness(kinematics)
    h.start()
    h.tick()
    h.loop.on_event(EpisodeEventType.END_SESSION, h.now)
    assert h.loop.phase is Phase.RUNNING
    h.tick(10)
    assert len(h.collect('stats')) == 1 and h.loop.phase is Phase.FINISHED
    assert len(h.collect('reset')) == 1


def test_wait_for_start_event(kinematics):
    h = Harness(kinematics, wait_for_start_event=True)
    h.loop.activate(0.0)
    h.tick()
    h.reset_answer()
    h.tick(5)
    assert h.loop.phase is Phase.WAITING_START and not h.collect('transition')
    h.loop.on_event(EpisodeEventType.START_EPISODE, h.now)
    h.tick(3)
    assert h.loop.phase is Phase.RUNNING and len(h.collect('transition')) == 1


def test_stale_inputs_pause_then_end_the_episode(kinematics):
    h = Harness(kinematics, max_episode_steps=50, input_timeout_s=0.25, input_outage_s=1.0)
    h.start()
    h.tick(2)
    h.fresh = False
    h.tick(2)  # 0.2 s: still fresh
    count = len(h.collect('transition'))
    actions = len(h.collect('action'))
    h.tick(3)  # stale: paused, no new transitions or actions
    assert len(h.collect('transition')) == count and len(h.collect('action')) == actions
    assert any('episode paused' in text for o in h.outputs for _, text in o.logs)
    h.tick(10)
    stats = h.collect('stats')[0]
    assert stats.end_reason == 'operator' and stats.truncated
    assert h.collect('transition')[-1].transition.truncated


def test_inputs_from_before_the_reset_are_not_used(kinematics):
    h = Harness(kinematics)
    h.loop.activate(0.0)
    h.tick()
    h.fresh = False           # nothing new arrives after the reset
    h.reset_answer()
    h.tick(6)
    assert h.loop.phase is Phase.RUNNING and not h.collect('observation')
    h.fresh = True
    h.tick()
    assert len(h.collect('observation')) == 1


def test_ground_truth_of_another_episode_is_stale(kinematics):
    h = Harness(kinematics, ground_truth='on')
    h.start()
    h.tick()
    assert h.collect('observation')
    seed = h.seed
    h.seed = seed + 99  # the driver reports another episode's seed
    count = len(h.collect('observation'))
    h.tick(2)
    assert len(h.collect('observation')) == count


def test_reset_failure_and_timeout_are_retried(kinematics):
    h = Harness(kinematics, reset_timeout_s=1.0)
    h.loop.activate(0.0)
    h.tick()
    token = h.answer[0]
    logs = h.loop.on_reset_result(token, ResetOutcome(False, 'no service'), h.now)
    assert 'retrying' in logs[0][1] and h.loop.phase is Phase.IDLE
    h.tick(11)
    assert len(h.collect('reset')) == 2
    h.tick(12)  # no answer within reset_timeout_s -> retried again
    assert len(h.collect('reset')) == 3
    assert h.loop.on_reset_result(token, ResetOutcome(True, seed=1), h.now) == []  # stale token


def test_deactivation_ends_a_running_episode(kinematics):
    h = Harness(kinematics)
    h.start()
    h.tick(2)
    out = h.loop.deactivate(h.now, h.inputs)
    assert out.stats.end_reason == 'operator' and out.transition.transition.truncated
    assert h.loop.phase is Phase.FINISHED
    h.loop.activate(h.now)  # a new session continues the episode ids
    h.tick()
    h.reset_answer()
    while h.loop.phase is not Phase.RUNNING:
        h.tick()
    h.tick()
    assert h.collect('transition')[-1].transition.episode_id in (0, 1)
    assert h.loop.episode_id == 1


def test_without_ground_truth_no_privileged_state_and_no_auto_success(kinematics):
    h = Harness(kinematics)
    h.publish_truth = False
    h.start()
    h.success = True
    h.tick(3)
    assert not h.collect('stats')
    assert h.loop.builder.privileged_names == ()
    assert h.collect('observation')[0].observation.privileged.size == 0


def test_success_hold_steps_keep_rewarding_success_frames_then_terminate(kinematics):
    h = Harness(kinematics, max_episode_steps=20, success_hold_steps=3)
    h.start()
    h.tick(2)
    h.success = True
    h.tick(2)
    h.success = False  # the cube slipped for one step: that step is not rewarded
    h.tick()
    h.success = True
    h.tick(2)
    transitions = [r.transition for r in h.collect('transition')]
    assert [t.reward for t in transitions] == [0.0, 1.0, 1.0, 0.0, 1.0]
    assert [t.terminated for t in transitions] == [False] * 4 + [True]
    (stats,) = h.collect('stats')
    assert stats.end_reason == 'success' and stats.success and stats.episode_return == 3.0


def test_the_time_limit_during_the_hold_still_ends_as_success(kinematics):
    h = Harness(kinematics, max_episode_steps=4, success_hold_steps=10)
    h.start()
    h.tick()
    h.success = True
    h.tick(4)
    (stats,) = h.collect('stats')
    assert stats.end_reason == 'success' and stats.length == 4


class FixedDetector:
    """Reports success from its third call of an episode on."""

    def __init__(self):
        self.calls = 0
        self.resets = 0

    def __call__(self, observation):
        self.calls += 1
        return self.calls >= 3

    def reset(self):
        self.calls = 0
        self.resets += 1


def test_a_custom_success_detector_replaces_the_ground_truth(kinematics):
    h = Harness(kinematics, max_episode_steps=20)
    h.loop.success_detector = FixedDetector()
    h.start()
    h.success = True  # the ground truth is not asked
    h.tick(4)
    transitions = [r.transition for r in h.collect('transition')]
    assert [t.reward for t in transitions] == [0.0, 0.0, 1.0]
    assert transitions[-1].terminated
    assert h.loop.success_detector.resets == 1  # told when the episode started
