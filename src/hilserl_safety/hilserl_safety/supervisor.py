"""The safety filter's state machine (ROS-free): measured state, trips, e-stop, watchdogs.

The node calls one method per input (joint state, EE command, joint command, heartbeat, e-stop)
and ``tick`` at ``control_rate_hz``, always with a monotonic ``now_s``; each returns an
:class:`Output`: the joint target to publish (or None), the events to report, and a torque
request for the driver (or None).

States: *waiting* (no valid joint state since activation), *running*, and holds that drop
commands: *e-stop* (latched until ``release_estop``), *effort trip* (a joint stalled: above its
effort threshold while slower than ``stall_velocity_rad_s`` for ``effort_trip_samples`` samples;
it holds at least ``trip_hold_s`` and until every effort is under its threshold), *stale joint
states*, *heartbeat lost* (policy commands only). The watchdog (no command for
``command_timeout_s``) holds without dropping: the next command resumes. Holding means keeping
the last safe target (after an effort trip: the measured position, so the arm stops pushing);
the filter never extrapolates.
"""
import dataclasses

import numpy as np

from hilserl_safety.filter import (
    ARM,
    CommandFilter,
    EeCommand,
    Event,
    JointCommand,
    Limit,
    Severity,
    Source,
)


@dataclasses.dataclass
class Output:
    """What one input produced."""

    target: np.ndarray | None = None
    events: list[Event] = dataclasses.field(default_factory=list)
    torque: bool | None = None
    """True/False: ask the driver to enable/disable torque."""


@dataclasses.dataclass
class Counters:
    """Cumulative counts for /diagnostics."""

    commands: int = 0
    outputs: int = 0
    dropped: int = 0
    invalid_joint_states: int = 0
    by_limit: dict[str, int] = dataclasses.field(
        default_factory=lambda: {limit.name.lower(): 0 for limit in Limit})


class SafetySupervisor:
    """State and timing around :class:`CommandFilter`; see the module docstring."""

    def __init__(self, command_filter: CommandFilter):
        self.filter = command_filter
        self.counters = Counters()
        self.estop_latched = False
        self._torque_off = False
        self.deactivate()

    @property
    def params(self):
        return self.filter.params

    @property
    def estop_state(self) -> tuple[bool, bool]:
        """(latched, torque disabled by it), to carry a latch into a new supervisor."""
        return self.estop_latched, self._torque_off

    def restore_estop(self, state: tuple[bool, bool]) -> None:
        self.estop_latched, self._torque_off = state

    @property
    def tripped(self) -> bool:
        """An effort trip holds the arm."""
        return self._trip_s is not None

    # --- lifecycle -----------------------------------------------------------------------
    def activate(self, now_s: float) -> None:
        """Start over: wait for a fresh joint state, then hold it until the first command."""
        self.active = True
        self._activated_s = now_s

    def deactivate(self) -> Output:
        """Stop accepting commands; the hold target is published once."""
        output = Output(self.target.copy() if getattr(self, 'target', None) is not None
                        else None)
        self.active = False
        self.target = None
        self.measured = None
        self.efforts = None
        self.velocities = None
        self._state_s = None
        self._stale_reported = False
        self._last_output_s = None
        self._last_command_s = None
        self._last_source = None
        self._heartbeat_s = None
        self._heartbeat_reported = False
        self._trip_s = None
        self._exceed = None
        return output

    # --- inputs --------------------------------------------------------------------------
    def on_joint_state(self, positions, efforts, now_s: float, velocities=None) -> Output:
        """A /joint_states sample in joint_names order (efforts and velocities may be None;
        unusable velocities are ignored: every effort sample then counts).
        """
        output = Output()
        positions = np.asarray(positions, dtype=float)
        count = len(self.filter.names)
        efforts = None if efforts is None else np.asarray(efforts, dtype=float)
        valid = positions.shape == (count,) and np.all(np.isfinite(positions))
        if efforts is None or efforts.shape != (count,) or not np.all(np.isfinite(efforts)):
            valid = valid and not self.params.require_effort
            efforts = None
        if not valid:
            self.counters.invalid_joint_states += 1
            return output
        if velocities is not None:
            velocities = np.asarray(velocities, dtype=float)
            if velocities.shape != (count,) or not np.all(np.isfinite(velocities)):
                velocities = None
        self.measured, self.efforts, self._state_s = positions, efforts, now_s
        self.velocities = velocities
        self._stale_reported = False
        if not self.active:
            return output
        if self.target is None:
            self.target = positions.copy()
            self._exceed = np.zeros(count, dtype=int)
            return output
        if efforts is not None and not self.estop_latched:
            self._check_effort(efforts, velocities, output)
        return output

    def on_heartbeat(self, now_s: float) -> None:
        self._heartbeat_s = now_s
        self._heartbeat_reported = False

    def on_ee_command(self, command: EeCommand, now_s: float) -> Output:
        return self._command(command, now_s, self.filter.validate_ee, self.filter.ee_step)

    def on_joint_command(self, command: JointCommand, now_s: float) -> Output:
        return self._command(command, now_s, self.filter.validate_joint, self.filter.joint_step)

    def latch_estop(self, now_s: float, origin: str) -> Output:
        """Latch the e-stop (idempotent): hold, and disable torque with estop_action
        'torque_off'.
        """
        output = Output()
        if self.estop_latched:
            return output
        self.estop_latched = True
        output.target = None if self.target is None else self.target.copy()
        output.events.append(self._event(Limit.ESTOP, Severity.ESTOP, 'estop',
                                         f'emergency stop latched ({origin}); commands are '
                                         'dropped until it is released via the service'))
        if self.params.estop_action == 'torque_off':
            output.torque = False
            self._torque_off = True
        return output

    def release_estop(self, now_s: float) -> tuple[bool, str, Output]:
        """Release a latched e-stop: (success, reason, output). Needs a fresh joint state
        when torque was disabled, since the target restarts from the measured position.
        """
        output = Output()
        if not self.estop_latched:
            return True, 'not latched', output
        if self._torque_off:
            if not self._state_fresh(now_s):
                return False, 'no fresh /joint_states: cannot re-synchronise the target', output
            if self.active:
                self.target = self.measured.copy()
                output.target = self.target.copy()
            output.torque = True
            self._torque_off = False
        self.estop_latched = False
        self._last_command_s = None
        output.events.append(self._event(Limit.ESTOP, Severity.INFO, 'estop',
                                         'emergency stop released'))
        return True, 'released', output

    def tick(self, now_s: float) -> Output:
        """Periodic checks: stale joint states, command watchdog, heartbeat."""
        output = Output()
        if not self.active or self.target is None:
            return output
        if not self._state_fresh(now_s) and not self._stale_reported:
            self._stale_reported = True
            self._last_command_s = None
            output.target = self.target.copy()
            output.events.append(self._event(
                Limit.WATCHDOG, Severity.TRIP, 'joint_state_timeout_s',
                f'no valid /joint_states for {self.params.joint_state_timeout_s} s; holding'))
            return output
        if self._last_command_s is None:
            return output
        if (self._last_source == Source.POLICY and not self._heartbeat_fresh(now_s)
                and not self._heartbeat_reported):
            self._heartbeat_reported = True
            self._last_command_s = None
            output.target = self.target.copy()
            output.events.append(self._heartbeat_event(Source.POLICY))
        elif now_s - self._last_command_s > self.params.command_timeout_s:
            self._last_command_s = None
            output.target = self.target.copy()
            output.events.append(self._event(
                Limit.WATCHDOG, Severity.INFO, 'command_timeout_s',
                f'no command for {self.params.command_timeout_s} s; holding', self._last_source))
        return output

    # --- internals -----------------------------------------------------------------------
    def _command(self, command, now_s, validate, step) -> Output:
        output = Output()
        self.counters.commands += 1
        problem = validate(command)
        if problem is not None:
            output.events.append(self._count(problem))
            return output
        source = int(command.source)
        if not self._may_move(now_s, source, output):
            self.counters.dropped += 1
            return output
        base = self._base(now_s, source, output)
        elapsed = (self.params.period_s if self._last_output_s is None
                   else now_s - self._last_output_s)
        target, events = step(command, base, min(elapsed, self.params.period_s))
        output.events.extend(self._count(event) for event in events)
        self.target = target
        self._last_output_s = now_s
        self._last_command_s = now_s
        self._last_source = source
        self.counters.outputs += 1
        output.target = target.copy()
        return output

    def _may_move(self, now_s, source, output) -> bool:
        if not self.active or self.estop_latched or self.target is None:
            return False
        if not self._state_fresh(now_s):
            return False
        if self._trip_s is not None:
            threshold = np.array(self.params.max_effort)
            calm = self.efforts is None or np.all(np.abs(self.efforts) <= threshold)
            if now_s - self._trip_s < self.params.trip_hold_s or not calm:
                return False
            self._trip_s = None
            output.events.append(self._event(Limit.EFFORT, Severity.INFO, 'effort',
                                             'effort trip cleared; commands accepted again'))
        if source == Source.POLICY and not self._heartbeat_fresh(now_s):
            if not self._heartbeat_reported:
                self._heartbeat_reported = True
                output.events.append(self._heartbeat_event(source))
            return False
        return True

    def _base(self, now_s, source, output) -> np.ndarray:
        """The last target, or the measured arm position when the arm left it."""
        base = self.target.copy()
        gap = np.abs(self.measured[:ARM] - base[:ARM])
        if np.any(gap > self.params.resync_threshold_rad):
            moved = np.flatnonzero(gap > self.params.resync_threshold_rad)
            names = tuple(self.filter.names[i] for i in moved)
            output.events.append(self._count(Event(
                Limit.TRACKING, Severity.INFO, 'resync_threshold_rad',
                'arm far from the target (reset, moved by hand or blocked): target '
                're-synchronised to the measured position', source, names,
                tuple(float(base[i]) for i in moved),
                tuple(float(self.measured[i]) for i in moved))))
            base[:ARM] = self.measured[:ARM]
            self._last_output_s = None
        return base

    def _check_effort(self, efforts, velocities, output) -> None:
        """Count samples of stalled joints (over the threshold and not moving); trip after
        effort_trip_samples in a row.
        """
        threshold = np.array(self.params.max_effort)
        over = np.abs(efforts) > threshold
        if velocities is not None:
            over &= np.abs(velocities) <= self.params.stall_velocity_rad_s
        self._exceed = np.where(over, self._exceed + 1, 0)
        tripped = self._exceed >= self.params.effort_trip_samples
        if self._trip_s is not None or not tripped.any():
            return
        self._trip_s = self._state_s
        self._last_command_s = None
        hold = self._effort_hold()
        self.target = hold
        output.target = hold.copy()
        joints = np.flatnonzero(tripped)
        names = tuple(self.filter.names[i] for i in joints)
        source = Source.SCRIPT if self._last_source is None else self._last_source
        output.events.append(self._count(Event(
            Limit.EFFORT, Severity.TRIP, ','.join(names),
            f'effort above {self.params.max_effort} {self.params.effort_unit} without '
            f'moving for {self.params.effort_trip_samples} samples: holding; end the episode',
            int(source), names, tuple(float(efforts[i]) for i in joints),
            tuple(float(hold[i]) for i in joints))))

    def _effort_hold(self) -> np.ndarray:
        """The measured position (stops the push) if it satisfies the limits, else the target."""
        hold = self.target.copy()
        measured = self.measured
        limits = self.filter.limits
        inside_joints = not np.any(limits.joints.excess(measured) > limits.joints.excess(hold))
        tcp = self.filter.kinematics.fk(measured[:ARM])
        allowed = max(limits.box.distance(self.filter.kinematics.fk(hold[:ARM])),
                      self.params.workspace_tolerance_m)
        if inside_joints and limits.box.distance(tcp) <= allowed:
            hold[:ARM] = measured[:ARM]
        return hold

    def _state_fresh(self, now_s) -> bool:
        return (self._state_s is not None
                and now_s - self._state_s <= self.params.joint_state_timeout_s)

    def _heartbeat_fresh(self, now_s) -> bool:
        return (self._heartbeat_s is not None
                and now_s - self._heartbeat_s <= self.params.heartbeat_timeout_s)

    def _heartbeat_event(self, source) -> Event:
        return self._event(Limit.HEARTBEAT, Severity.TRIP, 'heartbeat_timeout_s',
                           f'no actor heartbeat for {self.params.heartbeat_timeout_s} s while '
                           'the policy drives: policy commands dropped, holding', source)

    def _event(self, limit, severity, limit_name, message, source=None) -> Event:
        source = Source.SCRIPT if source is None else source
        return self._count(Event(limit, severity, limit_name, message, int(source)))

    def _count(self, event: Event) -> Event:
        self.counters.by_limit[event.limit.name.lower()] += 1
        return event
