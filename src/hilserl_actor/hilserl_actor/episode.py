"""The HIL-SERL control loop and its episodes (ROS-free).

``ActorLoop.tick(now_s, inputs)`` runs once per control period and returns a ``TickOutput``:
what the node should publish or call. Times are the node clock's seconds (simulated time with
``use_sim_time``), supplied by the caller, so the loop is deterministic and unit-testable.

Episode cycle::

    idle --(reset_delay_s)--> resetting --(ResetEpisode answered)--> syncing
      --(reset_sync_steps)--> [waiting for START_EPISODE] --> running --(end)--> idle ...
    idle --(END_SESSION or num_episodes reached)--> finished

While running, tick t builds observation o_t from the latest inputs, then

1. completes the previous step: Transition(o_{t-1}, a_{t-1}, r, o_t) with the episode's end
   decided on o_t (priority: rerecord, safety trip, failure press, success, time limit);
2. if the episode goes on, selects a_t (``ActionSelector``) and sends it.

So every step of every episode yields exactly one transition, the last one with
``terminated`` (success, failure, safety trip) or ``truncated`` (time limit, rerecord, an
operator stop, an input outage, deactivation) set, and each episode ends with one
``EpisodeStats`` after its last transition. The observation o_t is published before the
transition that contains it as next_observation.

Stale inputs (joint states, frames, ground truth older than ``input_timeout_s``) pause the
episode: no step, no command; a pause longer than ``input_outage_s`` ends it (truncated,
``operator``). Inputs older than the reset are never used in the new episode.
"""
import dataclasses
import enum
import secrets
import time

import numpy as np

from hilserl_actor.actions import ActionSelector, GripperPenalty, InterventionTracker, StepAction
from hilserl_actor.observation_builder import (
    BuiltObservation,
    Frame,
    GroundTruthReading,
    JointReading,
    ObservationBuilder,
)
from hilserl_actor.params import ActorParams
from hilserl_actor.teleop.types import EpisodeEventType
from hilserl_learner.observation import Transition


class Phase(enum.Enum):
    IDLE = 'idle'
    RESETTING = 'resetting'
    SYNCING = 'syncing'
    WAITING_START = 'waiting_start'
    RUNNING = 'running'
    FINISHED = 'finished'


class EndReason(enum.Enum):
    """EpisodeStats.end_reason."""

    SUCCESS = 'success'
    FAILURE = 'failure'
    TIME_LIMIT = 'time_limit'
    SAFETY_TRIP = 'safety_trip'
    OPERATOR = 'operator'
    RERECORD = 'rerecord'


TERMINAL = frozenset({EndReason.SUCCESS, EndReason.FAILURE, EndReason.SAFETY_TRIP})
"""End reasons that are true terminal states (no bootstrapping); the others truncate."""
RETRY_RESET_S = 1.0


def generate_run_id() -> str:
    """actor-<UTC time>-<8 hex>: unique per actor run."""
    return f'actor-{time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())}-{secrets.token_hex(4)}'


@dataclasses.dataclass
class ActorInputs:
    """The latest inputs, kept by the node (one object, updated by the callbacks)."""

    joints: JointReading | None = None
    frames: dict[str, Frame] = dataclasses.field(default_factory=dict)
    truth: GroundTruthReading | None = None
    truth_seen: bool = False
    """A ground truth message has arrived since activation (``ground_truth: auto``)."""

    def stale(self, now_s: float, timeout_s: float, cameras, need_truth: bool,
              after_s: float, seed: int | None) -> str | None:
        """Why the inputs cannot make an observation now (None = they can)."""
        def old(reading) -> bool:
            return (reading is None or now_s - reading.received_s > timeout_s
                    or reading.received_s < after_s)

        if old(self.joints):
            return 'joint states'
        missing = [name for name in cameras if old(self.frames.get(name))]
        if missing:
            return f'camera frames of {", ".join(missing)}'
        if need_truth and (old(self.truth) or seed is not None
                           and self.truth.episode_seed != seed):
            return 'ground truth of this episode'
        return None


@dataclasses.dataclass(frozen=True)
class ResetRequest:
    seed: int | None
    """None = the driver draws a fresh seed."""
    randomize_object: bool
    token: int
    """Echo it in ``on_reset_result`` (answers to abandoned requests are ignored)."""


@dataclasses.dataclass(frozen=True)
class ResetOutcome:
    success: bool
    message: str = ''
    seed: int | None = None
    joint_positions_rad: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class EpisodeSummary:
    """EpisodeStats of one finished episode."""

    episode_id: int
    policy_version: int
    episode_return: float
    success: bool
    length: int
    intervention_steps: int
    intervention_count: int
    intervention_rate: float
    policy_rate_hz: float
    duration_s: float
    terminated: bool
    truncated: bool
    end_reason: str


@dataclasses.dataclass(frozen=True)
class TransitionRecord:
    """A transition and the built observations it came from (for the image headers)."""

    transition: Transition
    observation: BuiltObservation
    next_observation: BuiltObservation


@dataclasses.dataclass
class TickOutput:
    """What the node publishes or calls after one tick / event, in this order: reset request,
    sync command, observation, transition, episode stats, action command.
    """

    reset: ResetRequest | None = None
    sync_joints_rad: np.ndarray | None = None
    observation: BuiltObservation | None = None
    transition: TransitionRecord | None = None
    stats: EpisodeSummary | None = None
    action: StepAction | None = None
    logs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """(level, text): 'info', 'warn' (throttled by the node per text), 'error'."""


@dataclasses.dataclass
class _Episode:
    episode_id: int
    seed: int | None
    start_s: float
    start_tcp_m: np.ndarray | None = None
    steps: int = 0
    episode_return: float = 0.0
    intervention_steps: int = 0
    intervention_count: int = 0
    previous_intervention: bool = False
    pending: tuple[BuiltObservation, StepAction, float] | None = None
    """(observation, action, gripper penalty) of the step awaiting its next observation."""
    hold_steps_left: int | None = None
    """Steps still to run after success was first detected (success_hold_steps); None before."""
    step_succeeded: bool = False
    """Whether the latest observation was judged a success (the step's reward)."""
    last_observation: BuiltObservation | None = None
    paused_since_s: float | None = None


class SuccessDetector:
    """Says whether an observation shows success. The reward classifier (a later issue)
    implements the same call on the cropped images.
    """

    def __call__(self, observation: BuiltObservation) -> bool:
        raise NotImplementedError

    def reset(self) -> None:
        """A new episode starts (a detector with memory forgets it)."""


class GroundTruthSuccess(SuccessDetector):
    """Simulation: the ground truth's success predicate (cube lifted)."""

    def __call__(self, observation: BuiltObservation) -> bool:
        return observation.truth is not None and bool(observation.truth.success)


class ActorLoop:
    """Episodes, steps and transitions of one actor (module docstring)."""

    def __init__(self, params: ActorParams, builder: ObservationBuilder,
                 selector: ActionSelector, run_id: str,
                 success: SuccessDetector | None = None):
        self.params = params
        self.builder = builder
        self.selector = selector
        self.run_id = run_id
        self.success_detector = success
        """A custom detector (the reward classifier, later); None = the ground truth's success
        when it is used, otherwise only the operator's SUCCESS event."""
        self.interventions = InterventionTracker(params.intervention_timeout_s)
        self.gripper = GripperPenalty(params.gripper_penalty)
        self.policy_version = 0
        self.phase = Phase.FINISHED
        self.use_truth = params.ground_truth == 'on'
        self._truth_decided = params.ground_truth != 'auto'
        self.builder.use_privileged = self.use_truth and bool(params.privileged_fields)
        self._next_episode_id = 0
        self.episodes_done = 0
        self._episode: _Episode | None = None
        self._token = 0
        self._reset_due_s = 0.0
        self._reset_started_s = 0.0
        self._reset_seed: int | None = None
        self._sync_left = 0
        self._sync_joints: np.ndarray | None = None
        self._inputs_after_s = 0.0
        self._flags: set[str] = set()
        self._start_requested = False
        self._session_end = False
        self._episodes_started = 0

    # --- lifecycle -------------------------------------------------------------------------
    def activate(self, now_s: float) -> None:
        """Start a session: the first reset is requested at the next tick."""
        self.phase = Phase.IDLE
        self._reset_due_s = now_s
        self._session_end = False
        self._start_requested = False
        self._episodes_started = 0
        self._flags.clear()

    def deactivate(self, now_s: float, inputs: ActorInputs) -> TickOutput:
        """Stop: a running episode ends here (truncated, end_reason 'operator')."""
        out = TickOutput()
        if self.phase is Phase.RUNNING and self._episode is not None:
            self._end_now(now_s, inputs, EndReason.OPERATOR, out, 'the actor was deactivated')
        self.phase = Phase.FINISHED
        return out

    @property
    def episode_id(self) -> int | None:
        return self._episode.episode_id if self._episode is not None else None

    @property
    def running(self) -> bool:
        return self.phase is Phase.RUNNING

    # --- inputs from the node --------------------------------------------------------------
    def on_event(self, event: EpisodeEventType, now_s: float) -> list[tuple[str, str]]:
        """An operator event; returns log lines."""
        running = self.phase is Phase.RUNNING
        if event is EpisodeEventType.END_SESSION:
            self._session_end = True
            if not running and self.phase is not Phase.FINISHED:
                self.phase = Phase.FINISHED
                return [('info', 'END_SESSION: session finished (no episode was running)')]
            return [('info', 'END_SESSION: the session ends after this episode')]
        if event is EpisodeEventType.START_EPISODE:
            self._start_requested = True
            return []
        if not running:
            return [('info', f'{event.name} ignored: no episode is running')]
        self._flags.add(event.name)
        return []

    def on_safety_trip(self, message: str) -> list[tuple[str, str]]:
        if self.phase is not Phase.RUNNING:
            return [('warn', f'safety trip between episodes: {message}')]
        self._flags.add('SAFETY_TRIP')
        return [('error', f'safety trip, ending the episode: {message}')]

    def on_reset_result(self, token: int, outcome: ResetOutcome, now_s: float
                        ) -> list[tuple[str, str]]:
        if self.phase is not Phase.RESETTING or token != self._token:
            return []
        if not outcome.success:
            self.phase = Phase.IDLE
            self._reset_due_s = now_s + RETRY_RESET_S
            return [('warn', f'episode reset failed: {outcome.message}; retrying every '
                             f'{RETRY_RESET_S:g} s')]
        self.phase = Phase.SYNCING
        self._sync_left = self.params.reset_sync_steps
        self._sync_joints = outcome.joint_positions_rad
        self._reset_seed = outcome.seed
        self._inputs_after_s = now_s
        return [('info', f'episode reset (seed {outcome.seed})')]

    # --- the loop --------------------------------------------------------------------------
    def tick(self, now_s: float, inputs: ActorInputs) -> TickOutput:
        out = TickOutput()
        if self.phase is Phase.IDLE and now_s >= self._reset_due_s:
            self._request_reset(now_s, out)
        elif self.phase is Phase.RESETTING:
            if now_s - self._reset_started_s > self.params.reset_timeout_s:
                self.phase = Phase.IDLE
                self._reset_due_s = now_s
                out.logs.append(('warn', f'no answer from the episode reset within '
                                         f'{self.params.reset_timeout_s:g} s; retrying'))
        elif self.phase is Phase.SYNCING:
            self._sync(now_s, inputs, out)
        elif self.phase is Phase.WAITING_START:
            if self._start_requested:
                self._start_requested = False
                self.phase = Phase.RUNNING
                out.logs.append(('info', 'START_EPISODE received'))
        elif self.phase is Phase.RUNNING:
            self._step(now_s, inputs, out)
        return out

    def _request_reset(self, now_s: float, out: TickOutput) -> None:
        if self._session_over():
            self.phase = Phase.FINISHED
            out.logs.append(('info', f'session finished: {self.episodes_done} episodes'))
            return
        seed = self.params.seed
        self._token += 1
        out.reset = ResetRequest(None if seed < 0 else seed + self._episodes_started,
                                 self.params.randomize_object, self._token)
        self.phase = Phase.RESETTING
        self._reset_started_s = now_s

    def _session_over(self) -> bool:
        limit = self.params.num_episodes
        return self._session_end or (limit > 0 and self.episodes_done >= limit)

    def _sync(self, now_s: float, inputs: ActorInputs, out: TickOutput) -> None:
        joints = self._sync_joints
        if (joints is None or len(joints) != len(self.builder.joint_names)) and (
                inputs.joints is not None):
            joints = inputs.joints.positions_rad
        if self._sync_left > 0 and joints is not None:
            out.sync_joints_rad = np.asarray(joints, dtype=float)
            self._sync_left -= 1
            return
        if not self._truth_decided:
            self._truth_decided = True
            self.use_truth = inputs.truth_seen
            self.builder.use_privileged = self.use_truth and bool(self.params.privileged_fields)
            out.logs.append(('info', 'ground truth: ' + (
                f'used (simulation): success from it, privileged state '
                f'{list(self.builder.privileged_names)}' if self.use_truth
                else 'not published (real robot): success from the operator only')))
        self._start_episode(now_s)
        if self.params.wait_for_start_event and not self._start_requested:
            self.phase = Phase.WAITING_START
            out.logs.append(('info', f'episode {self._episode.episode_id} ready: waiting for '
                                     'START_EPISODE'))
        else:
            self._start_requested = False
            self.phase = Phase.RUNNING

    def _start_episode(self, now_s: float) -> None:
        self._episode = _Episode(self._next_episode_id, self._reset_seed, now_s)
        self._next_episode_id += 1
        self._episodes_started += 1
        self._flags.clear()
        self.gripper.reset()
        if self.success_detector is not None:
            self.success_detector.reset()

    def _step(self, now_s: float, inputs: ActorInputs, out: TickOutput) -> None:
        episode, params = self._episode, self.params
        if episode.start_tcp_m is None:
            episode.start_s = now_s
        reason = inputs.stale(now_s, params.input_timeout_s, self.builder.camera_names,
                              self.use_truth, self._inputs_after_s,
                              self._reset_seed if self.use_truth else None)
        if reason is not None and not self._flags & {'RERECORD', 'SAFETY_TRIP', 'FAILURE'}:
            if episode.paused_since_s is None:
                episode.paused_since_s = now_s
            waited = now_s - episode.paused_since_s
            out.logs.append(('warn', f'no fresh {reason} (older than '
                                     f'{params.input_timeout_s:g} s): episode paused'))
            if waited > params.input_outage_s:
                self._end_now(now_s, inputs, EndReason.OPERATOR, out,
                              f'no fresh {reason} for {waited:.1f} s')
            return
        if reason is not None:  # an ending flag: end without a new observation
            self._end_now(now_s, inputs, self._flag_reason(), out, 'operator or safety stop')
            return
        episode.paused_since_s = None
        if episode.start_tcp_m is None:
            episode.start_tcp_m = self.builder.tcp(inputs.joints.positions_rad)
        observation = self.builder.build(inputs.joints, inputs.frames,
                                         inputs.truth if self.use_truth else None,
                                         episode.start_tcp_m)
        out.observation = observation
        end = None
        if episode.pending is not None:
            end = self._end_reason(observation)
            self._complete_step(now_s, observation, end, out)
            if end is not None:
                self._finish(now_s, end, out)
                return
        action = self.selector.select(now_s, observation.observation,
                                      self.interventions.active(now_s),
                                      {'joints_rad': observation.joints_rad})
        penalty = self.gripper.step(action.gripper)
        episode.pending = (observation, action, penalty)
        episode.last_observation = observation
        out.action = action

    def _flag_reason(self) -> EndReason | None:
        flags = self._flags
        for flag, reason in (('RERECORD', EndReason.RERECORD),
                             ('SAFETY_TRIP', EndReason.SAFETY_TRIP),
                             ('FAILURE', EndReason.FAILURE)):
            if flag in flags:
                return reason
        return None

    def _end_reason(self, observation: BuiltObservation) -> EndReason | None:
        episode = self._episode
        episode.step_succeeded = False
        reason = self._flag_reason()
        if reason is not None:
            return reason
        if 'SUCCESS' in self._flags:
            episode.step_succeeded = True
            return EndReason.SUCCESS
        detector = self.success_detector
        if detector is None and self.use_truth:
            detector = GroundTruthSuccess()
        episode.step_succeeded = detector is not None and detector(observation)
        if episode.hold_steps_left is not None:  # holding on after success
            episode.hold_steps_left -= 1
            if episode.hold_steps_left <= 0:
                return EndReason.SUCCESS
        elif episode.step_succeeded:
            if self.params.success_hold_steps == 0:
                return EndReason.SUCCESS
            episode.hold_steps_left = self.params.success_hold_steps
        if episode.steps + 1 >= self.params.max_episode_steps:
            return (EndReason.SUCCESS if episode.hold_steps_left is not None
                    else EndReason.TIME_LIMIT)
        return None

    def _reward(self, end: EndReason | None) -> float:
        params = self.params
        if end is None or end is EndReason.SUCCESS:
            # While holding on after success, every step judged a success is rewarded.
            return params.success_reward if self._episode.step_succeeded else 0.0
        return {EndReason.FAILURE: params.failure_reward,
                EndReason.SAFETY_TRIP: params.safety_penalty}.get(end, 0.0)

    def _complete_step(self, now_s: float, next_observation: BuiltObservation,
                       end: EndReason | None, out: TickOutput) -> None:
        episode = self._episode
        observation, action, penalty = episode.pending
        reward = self._reward(end)
        transition = Transition(
            observation=observation.observation, action=action.action, reward=reward,
            next_observation=next_observation.observation,
            terminated=end in TERMINAL, truncated=end is not None and end not in TERMINAL,
            is_intervention=action.is_intervention, gripper_penalty=penalty,
            episode_id=episode.episode_id, step_index=episode.steps, source=self.run_id)
        out.transition = TransitionRecord(transition, observation, next_observation)
        episode.steps += 1
        episode.episode_return += reward
        if action.is_intervention:
            episode.intervention_steps += 1
            if not episode.previous_intervention:
                episode.intervention_count += 1
        episode.previous_intervention = action.is_intervention
        episode.pending = None

    def _end_now(self, now_s: float, inputs: ActorInputs, reason: EndReason,
                 out: TickOutput, why: str) -> None:
        """End the running episode without a fresh observation: the last transition's
        next_observation repeats the last observation (the episode is cut short).
        """
        episode = self._episode
        if episode.pending is not None:
            self._complete_step(now_s, episode.pending[0], reason, out)
        out.logs.append(('warn' if reason is EndReason.OPERATOR else 'info',
                         f'episode {episode.episode_id} ended ({reason.value}): {why}'))
        self._finish(now_s, reason, out)

    def _finish(self, now_s: float, reason: EndReason, out: TickOutput) -> None:
        episode = self._episode
        duration = max(now_s - episode.start_s, 0.0)
        length = episode.steps
        out.stats = EpisodeSummary(
            episode_id=episode.episode_id, policy_version=self.policy_version,
            episode_return=episode.episode_return, success=reason is EndReason.SUCCESS,
            length=length, intervention_steps=episode.intervention_steps,
            intervention_count=episode.intervention_count,
            intervention_rate=episode.intervention_steps / length if length else 0.0,
            policy_rate_hz=length / duration if duration > 0 else 0.0, duration_s=duration,
            terminated=reason in TERMINAL, truncated=reason not in TERMINAL,
            end_reason=reason.value)
        if reason is not EndReason.RERECORD:
            self.episodes_done += 1
        out.logs.append(('info', f'episode {episode.episode_id} ended: {reason.value}, '
                                 f'{length} steps, return {episode.episode_return:g}, '
                                 f'{episode.intervention_steps} intervention steps'))
        self._episode = None
        self._flags.clear()
        self.phase = Phase.IDLE
        self._reset_due_s = now_s + self.params.reset_delay_s
