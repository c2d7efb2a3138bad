"""The demo recorder core: the actor's streams in, one finished rosbag2 per episode out.

Inputs are handled ``reorder_window_s`` after arrival, in publication order (each topic has
its own reader; the executor interleaves them). Episodes are delimited by the Transitions'
``(header.frame_id, episode_id)``:
- the first Transition of a new episode opens ``episode_<NNNN>/`` (the next free index) and
  writes into it the newest message of each latched topic (the intervention state) and what
  arrived in the ``preroll_s`` before it (the end of the reset: the start event,
  observations, joint states); older messages between episodes are not recorded;
- every message after that goes into the open episode, raw camera frames only when a recorded
  policy image was cropped from them (``frames.RawFrameMatcher``); after its last transition
  (terminated or truncated) only its EpisodeStats and the raw frames it refers to do: the
  rest is held for the next episode's pre-roll;
- the episode's EpisodeStats closes it at once (summary, metadata.yaml, sidecar, session
  index): label ``success`` or ``failure``; end_reason ``rerecord`` deletes it instead;
- if the next episode's Transitions arrive first, they wait up to
  ``episode_stats_timeout_s`` for the EpisodeStats, then the open episode is finalized as
  ``interrupted`` (missing_episode_stats);
- ``finish(reason)`` (Ctrl-C, deactivate, shutdown) finalizes the open episode as
  ``interrupted``: a complete, readable bag.
Write failures (``OSError`` such as ENOSPC, ``DemoWriteError``) delete the episode being
written, report an error and skip the rest of that episode; finished episodes are never
touched again. Below ``min_free_disk_mb`` no episode starts, and a recording one is finalized
as interrupted (disk_full). Methods return ``Notice``s for the node to log; the core logs
nothing itself.
"""
import collections
import dataclasses
import heapq
import itertools
import math
import time

from hilserl_actor.recording.episode import CreateError, OpenEpisode
from hilserl_actor.recording.frames import RawFrameMatcher
from hilserl_actor.recording.output_dir import (
    DiskGuard,
    describe_error,
    disk_free_bytes,
    prepare_output_dir,
)
from hilserl_actor.recording.types import (
    FrameRef,
    Incoming,
    Notice,
    RecorderSettings,
    StatsInfo,
    TransitionInfo,
)
from hilserl_learner import demo_format as fmt
from hilserl_learner.bag_io import EpisodeBagWriter
from hilserl_learner.errors import DemoWriteError

WRITE_ERRORS = (OSError, DemoWriteError)
END_SESSION = 'END_SESSION'
RERECORD = 'rerecord'


@dataclasses.dataclass
class _Held:
    """A message not yet assigned to an episode."""

    item: Incoming
    arrived_s: float
    transition: TransitionInfo | None = None
    frames: tuple[FrameRef, ...] = ()


class DemoRecorder:
    """Splits the streams into episodes and writes each to its own bag (module docstring)."""

    def __init__(self, settings: RecorderSettings, typestore, *, free_bytes=disk_free_bytes,
                 clock=time.monotonic, writer_factory=EpisodeBagWriter):
        self.settings = settings
        self._typestore = typestore
        self._clock = clock
        self._writer_factory = writer_factory
        self._matcher = RawFrameMatcher(settings.raw_frame_buffer_s, settings.raw_frame_wait_s)
        self.current: OpenEpisode | None = None
        self._held: collections.deque[_Held] = collections.deque()
        self._latched: dict[str, Incoming] = {}  # newest message of each latched topic
        self._queue: list = []  # heap of (sent_ns, sequence, arrival, handler, item, args)
        self._sequence = itertools.count()
        self._waiting_since: float | None = None
        self._skip_key: tuple[str, int] | None = None
        self._notices: list[Notice] = []
        self.saved = collections.Counter()
        self.session_kept = 0
        self.discarded = 0
        self.dropped = 0
        self.last_error = ''
        self.session_ending = False
        self.done = False
        self._disk = DiskGuard(settings.output_dir, free_bytes)
        self._last_disk_check = -math.inf

    # --- session ---------------------------------------------------------------------------
    def start(self) -> list[Notice]:
        """Create the output directory, repair episodes a killed recorder left, check space.

        RecorderError if the directory cannot be used.
        """
        self._notices += prepare_output_dir(self.settings.output_dir)
        self._disk_ok(force=True)
        return self._drain()

    def finish(self, reason: str) -> list[Notice]:
        """Finalize what is being recorded as ``interrupted`` (``reason``); idempotent."""
        self._pump(everything=True)
        if self.current is not None:
            self._close(fmt.LABEL_INTERRUPTED, reason,
                        error=f'recording stopped ({reason}) during the episode')
        held = next((h for h in self._held if h.transition is not None), None)
        if held is not None and not self.done and self._open(held.transition.key):
            self._write_held(held.arrived_s)
            if self.current is not None:
                self._close(fmt.LABEL_INTERRUPTED, reason,
                            error=f'recording stopped ({reason}) during the episode')
        self._held.clear()
        self._waiting_since = None
        return self._drain()

    def set_min_free_disk_mb(self, value: float) -> list[Notice]:
        self.settings = dataclasses.replace(self.settings, min_free_disk_mb=float(value))
        self._disk_ok(force=True)
        if self.disk_low and self.current is not None:
            self._stop_for_disk()
        return self._drain()

    # --- inputs ----------------------------------------------------------------------------
    # Each input is queued and handled once ``reorder_window_s`` old, in publication order.
    def on_transition(self, item: Incoming, transition: TransitionInfo) -> list[Notice]:
        return self._enqueue(item, self._on_transition, transition)

    def on_message(self, item: Incoming, frames: tuple[FrameRef, ...] = (),
                   latched: bool = False) -> list[Notice]:
        """Any other message; ``frames``: raw frames it refers to; ``latched``: a state topic
        whose newest message always goes into the next episode.
        """
        return self._enqueue(item, self._on_message, frames, latched)

    def on_event(self, item: Incoming, event: str) -> list[Notice]:
        return self._enqueue(item, self._on_event, event)

    def on_raw_frame(self, item: Incoming, ref: FrameRef) -> list[Notice]:
        return self._enqueue(item, self._on_raw_frame, ref)

    def on_stats(self, item: Incoming, stats: StatsInfo) -> list[Notice]:
        return self._enqueue(item, self._on_stats, stats)

    def _enqueue(self, item: Incoming, handler, *args) -> list[Notice]:
        if self.done:
            return []
        heapq.heappush(self._queue, (item.sent_ns or item.received_ns, next(self._sequence),
                                     self._clock(), handler, item, args))
        self._pump()
        return self._drain()

    def _pump(self, everything: bool = False) -> None:
        horizon = self._clock() - self.settings.reorder_window_s
        while self._queue and (everything or self._queue[0][2] <= horizon):
            _, _, _, handler, item, args = heapq.heappop(self._queue)
            if self.done:
                self._queue.clear()
                return
            handler(item, *args)

    def _on_transition(self, item: Incoming, transition: TransitionInfo) -> None:
        key = transition.key
        if key == self._skip_key:
            self.dropped += 1
        elif self.current is None:
            if self._open(key):
                self._write_held(self._clock())
                self._write(item, transition)
            else:
                self.dropped += 1 + len(self._held)
                self._held.clear()
        elif self.current.key == key:
            self._write(item, transition)
        else:
            if self._waiting_since is None:
                self._waiting_since = self._clock()
            self._held.append(_Held(item, self._clock(), transition, transition.frames))

    def _on_message(self, item: Incoming, frames: tuple[FrameRef, ...],
                    latched: bool) -> None:
        if latched:
            self._latched[item.topic.name] = item
        if self._accepting():
            self._write(item, None, frames)
        elif not latched:  # the newest latched state goes into the next episode anyway
            self._held.append(_Held(item, self._clock(), None, frames))
            self._trim_held()

    def _on_event(self, item: Incoming, event: str) -> None:
        self._on_message(item, (), False)
        if event == END_SESSION and not self.done:
            self.session_ending = True
            if self.current is None and self._waiting_since is None:
                self._end_session('END_SESSION event')
            else:
                self._say('info', 'END_SESSION: the session ends with the current episode')

    def _on_raw_frame(self, item: Incoming, ref: FrameRef) -> None:
        frame = self._matcher.offer(ref, item, self._clock())
        if frame is not None:  # a frame the open episode's images wait for
            if self.current is not None:
                self._write(frame, None)
            else:
                self._held.append(_Held(frame, self._clock()))

    def _on_stats(self, item: Incoming, stats: StatsInfo) -> None:
        current = self.current
        if current is not None and stats.matches(current.key):
            self._write(item, None)
            if self.current is not None:  # still open (no write error)
                if stats.end_reason == RERECORD:
                    self._discard()
                else:
                    label = fmt.LABEL_SUCCESS if stats.success else fmt.LABEL_FAILURE
                    self._close(label, stats.end_reason, stats)
            self._after_close()
        elif self._skip_key is not None and stats.matches(self._skip_key):
            self._skip_key = None
        else:
            self._say('warn', f'EpisodeStats of actor episode {stats.episode_id} '
                              f'({stats.end_reason}) without a recorded episode: ignored')

    def tick(self) -> list[Notice]:
        """Periodic work: stats timeout, raw frame expiry, chunk flush, disk check."""
        if self.done:
            return []
        self._pump()
        now = self._clock()
        missing = self._matcher.expire(now)
        if self.current is not None:
            self.current.info.raw_frames_missing += missing
        if (self._waiting_since is not None
                and now - self._waiting_since > self.settings.episode_stats_timeout_s):
            self._say('warn', f'{self.current.name}: no EpisodeStats within '
                              f'{self.settings.episode_stats_timeout_s} s while the next '
                              'episode started; finalized as interrupted')
            self._close(fmt.LABEL_INTERRUPTED, 'missing_episode_stats',
                        error='the EpisodeStats of this episode never arrived')
            self._after_close()
        self._trim_held()
        current = self.current
        if current is not None and now - current.last_flush_s >= self.settings.flush_period_s:
            try:
                current.flush(now)
            except WRITE_ERRORS as error:
                self._fail(error)
        if not self._disk_ok() and self.current is not None:
            self._stop_for_disk()
        return self._drain()

    # --- status ----------------------------------------------------------------------------
    @property
    def disk_low(self) -> bool:
        return self._disk.low

    @property
    def free_mb(self) -> float:
        return self._disk.free_mb

    def status(self) -> dict:
        current = self.current
        if self.done:
            state = 'done'
        elif self.disk_low:
            state = 'disk_full'
        elif current is not None:
            state = 'recording'
        else:
            state = 'idle'
        return {
            'state': state, 'episode': current.name if current else '',
            'episode_steps': current.info.length if current else 0,
            'saved_success': self.saved[fmt.LABEL_SUCCESS],
            'saved_failure': self.saved[fmt.LABEL_FAILURE],
            'saved_interrupted': self.saved[fmt.LABEL_INTERRUPTED],
            'discarded': self.discarded, 'dropped_messages': self.dropped,
            'free_disk_mb': round(self.free_mb, 1), 'last_error': self.last_error,
        }

    # --- episodes --------------------------------------------------------------------------
    def _accepting(self) -> bool:
        """Whether a message (other than a transition or stats) goes to the open episode."""
        return (self.current is not None and self._waiting_since is None
                and not self.current.ended)

    def _open(self, key: tuple[str, int]) -> bool:
        settings = self.settings
        if not self._disk_ok(force=True):
            self._skip_key = key
            self._say('error', f'actor episode {key[1]} is not recorded: only '
                               f'{self.free_mb:.0f} MB free on {settings.output_dir} '
                               f'(min_free_disk_mb {settings.min_free_disk_mb:g})')
            return False
        try:
            episode = OpenEpisode.create(settings, key, self._typestore, self._writer_factory,
                                         self._clock())
        except CreateError as failure:
            self._skip_key = key
            self.last_error = f'{failure.directory.name}: {describe_error(failure.error)}'
            self._say('error', f'actor episode {key[1]} is not recorded: cannot create '
                               f'{failure.directory}: {describe_error(failure.error)}')
            return False
        self.current = episode
        self._matcher.end_episode()
        self._skip_key = None
        self._say('info', f'{episode.name}: recording actor episode {key[1]}'
                          + (f' of run {key[0]}' if key[0] else ''))
        return True

    def _write(self, item: Incoming, transition: TransitionInfo | None,
               frames: tuple[FrameRef, ...] = ()) -> None:
        current = self.current
        try:
            current.write(item)
            if transition is not None:
                current.note_transition(transition)
                frames = transition.frames
            if frames and self.settings.raw_camera_names:
                for frame in self._matcher.claim(frames, self._clock()):
                    current.write(frame)
        except WRITE_ERRORS as error:
            self._fail(error)

    def _write_held(self, start_s: float) -> None:
        """Start the episode just opened: the newest latched states, then the held messages
        of the pre-roll window (and the episode's own held transitions).
        """
        for item in list(self._latched.values()):
            if self.current is not None:
                self._write(item, None)
        horizon = start_s - self.settings.preroll_s
        while self._held and self.current is not None:
            held = self._held[0]
            if held.transition is not None and held.transition.key != self.current.key:
                self._waiting_since = held.arrived_s  # yet another episode: wait for stats
                return
            self._held.popleft()
            if held.transition is None and held.arrived_s < horizon:
                continue
            self._write(held.item, held.transition, held.frames)
        self._waiting_since = None

    def _trim_held(self) -> None:
        """Between episodes, forget what is older than the pre-roll window."""
        if self._waiting_since is not None or (
                self.current is not None and not self.current.ended):
            return
        horizon = self._clock() - self.settings.preroll_s
        while self._held and self._held[0].arrived_s < horizon:
            self._held.popleft()

    def _close(self, label: str, end_reason: str, stats: StatsInfo | None = None,
               error: str = '') -> None:
        current, self.current = self.current, None
        missing = self._matcher.end_episode()
        try:
            info = current.finalize(label, end_reason, stats, error, missing)
        except WRITE_ERRORS as failure:
            current.discard()
            self.last_error = f'{current.name}: {describe_error(failure)}'
            self._say('error', f'{current.name}: could not be finalized '
                               f'({describe_error(failure)}); dropped. Finished episodes are '
                               'kept')
            return
        self.saved[label] += 1
        self.session_kept += int(label in fmt.KEPT_LABELS)
        self._update_index()
        self._say('info' if label != fmt.LABEL_INTERRUPTED else 'warn',
                  f'{current.name}: saved, label {label} ({end_reason}), {info.length} steps, '
                  f'{info.intervention_steps} intervention steps, '
                  f'{current.writer.bytes_written / 1e6:.1f} MB')
        if info.error and label != fmt.LABEL_INTERRUPTED:
            self._say('warn', f'{current.name}: {info.error}')
        if info.raw_frames_missing:
            self._say('warn', f'{current.name}: {info.raw_frames_missing} policy images '
                              'without their raw camera frame (re-cropping those steps is '
                              'not possible)')

    def _discard(self) -> None:
        current, self.current = self.current, None
        self._matcher.end_episode()
        current.discard()
        self.discarded += 1
        self._update_index()
        self._say('info', f'{current.name}: discarded (re-record)')

    def _fail(self, error: BaseException) -> None:
        current, self.current = self.current, None
        self._matcher.end_episode()
        current.discard()
        self._skip_key = current.key
        self.last_error = f'{current.name}: {describe_error(error)}'
        self._say('error', f'{current.name}: writing failed: {describe_error(error)}. The '
                           'episode is dropped and recording resumes with the next one; '
                           'finished episodes are kept')
        self._update_index()

    def _stop_for_disk(self) -> None:
        key = self.current.key
        self._say('error', f'{self.current.name}: only {self.free_mb:.0f} MB free on '
                           f'{self.settings.output_dir} (min_free_disk_mb '
                           f'{self.settings.min_free_disk_mb:g}): finalized as interrupted; '
                           'no episode is recorded until space is freed')
        self._close(fmt.LABEL_INTERRUPTED, 'disk_full',
                    error='stopped: free disk space below min_free_disk_mb')
        self._skip_key = key

    def _after_close(self) -> None:
        maximum = self.settings.max_episodes
        if maximum and self.session_kept >= maximum:
            self._end_session(f'{self.session_kept} episodes recorded (max_episodes)')
        elif self.session_ending:
            self._end_session('END_SESSION event')
        if self.done:
            return
        held = next((h for h in self._held if h.transition is not None), None)
        if held is None:
            self._waiting_since = None
        elif self._open(held.transition.key):
            self._write_held(held.arrived_s)
        else:
            self._held = collections.deque(
                h for h in self._held
                if h.transition is None or h.transition.key != held.transition.key)
            self._waiting_since = None

    def _end_session(self, why: str) -> None:
        self.done = True
        self._held.clear()
        self._queue.clear()
        self._waiting_since = None
        self._say('info', f'session complete: {why}; saved {dict(self.saved)}, '
                          f'{self.discarded} discarded')

    # --- helpers ---------------------------------------------------------------------------
    def _disk_ok(self, force: bool = False) -> bool:
        """Whether at least min_free_disk_mb is free (checked every flush_period_s)."""
        now = self._clock()
        if force or now - self._last_disk_check >= self.settings.flush_period_s:
            self._last_disk_check = now
            low, message = self._disk.check(self.settings.min_free_disk_mb)
            if message:
                self._say('error' if low else 'info', message)
                if low:
                    self.last_error = self._disk.problem
        return not self._disk.low

    def _update_index(self) -> None:
        try:
            fmt.write_session_index(self.settings.output_dir)
        except OSError as error:
            self._say('warn', f'session.yaml not updated: {describe_error(error)}')

    def _say(self, level: str, text: str) -> None:
        self._notices.append(Notice(level, text))

    def _drain(self) -> list[Notice]:
        notices, self._notices = self._notices, []
        return notices
