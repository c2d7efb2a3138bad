"""The per-command pipeline of the safety filter (ROS-free): command -> safe joint targets.

An end-effector command goes through: workspace box -> end-effector step limit -> IK (approach
pitch and wrist roll held) -> joint position limits -> joint velocity limit -> workspace gate.
A joint command goes through: joint position limits -> workspace projection (IK back into the
box) -> joint velocity limit -> workspace gate. The gate first slows the step near the walls
(``wall_zone_m``, ``ee_wall_max_step_m``), then halves it until the TCP stays in the box.

Guarantees for every output ``out`` computed from the reference ``base`` (the last target, or
the measured positions after a re-synchronisation) over a step of ``dt_s``:

- each joint lies within its limits, or no farther outside them than ``base`` was;
- ``|out - base| <= max_joint_speed_rad_s * min(dt_s, 1 / control_rate_hz)`` per joint;
- where the TCP of ``base`` or of ``out`` lies within ``wall_zone_m`` of a wall, the TCP moves
  at most ``ee_wall_max_step_m`` times the elapsed fraction of a period (plus 0.1 %);
- the TCP (FK of ``out``) lies in the workspace box within ``workspace_tolerance_m``, or no
  farther from it than the TCP of ``base``.

The velocity step scales all arm joints by one factor (the path keeps its direction) and the
workspace gate halves that step until the TCP stays inside, so the arm holds at ``base`` rather
than leave the box. Nothing here blocks, logs or allocates ROS objects.
"""
import dataclasses
import enum

import numpy as np

ARM = 5  # the first five joints move the TCP; the last joint is the gripper
_AXES = ('x', 'y', 'z')
_GATE_HALVINGS = 6


class Source(enum.IntEnum):
    """Who sent a command (EndEffectorCommand.SOURCE_*)."""

    POLICY = 0
    HUMAN = 1
    SCRIPT = 2


class Gripper(enum.IntEnum):
    """EndEffectorCommand.GRIPPER_*."""

    STAY = 0
    CLOSE = 1
    OPEN = 2
    POSITION = 3


class Limit(enum.IntEnum):
    """SafetyEvent.LIMIT_*."""

    MALFORMED = 0
    WORKSPACE = 1
    EE_STEP = 2
    IK = 3
    JOINT_POSITION = 4
    JOINT_VELOCITY = 5
    EFFORT = 6
    WATCHDOG = 7
    HEARTBEAT = 8
    ESTOP = 9
    TRACKING = 10


class Severity(enum.IntEnum):
    """SafetyEvent.SEVERITY_*."""

    INFO = 0
    CLIP = 1
    TRIP = 2
    ESTOP = 3


@dataclasses.dataclass(frozen=True)
class EeCommand:
    """An end-effector delta command (hilserl_msgs/EndEffectorCommand)."""

    delta_m: np.ndarray
    gripper: int = Gripper.STAY
    gripper_position_rad: float = 0.0
    source: int = Source.POLICY


@dataclasses.dataclass(frozen=True)
class JointCommand:
    """A joint-space command (hilserl_msgs/JointCommand); joints not named keep their target."""

    names: tuple[str, ...]
    positions: tuple[float, ...]
    source: int = Source.POLICY


@dataclasses.dataclass(frozen=True)
class Event:
    """One clip or trip (hilserl_msgs/SafetyEvent)."""

    limit: Limit
    severity: Severity
    limit_name: str
    message: str
    source: int = Source.POLICY
    names: tuple[str, ...] = ()
    offending: tuple[float, ...] = ()
    clipped: tuple[float, ...] = ()


_SOURCES = frozenset(int(s) for s in Source)
_GRIPPER_COMMANDS = frozenset(int(g) for g in Gripper)


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


class CommandFilter:
    """Turns one command into joint targets within every limit (see the module docstring)."""

    def __init__(self, params, limits, kinematics):
        if tuple(params.joint_names[:ARM]) != tuple(kinematics.joint_names):
            raise ValueError(f'joint_names: the first {ARM} must be the arm joints '
                             f'{kinematics.joint_names}, got {params.joint_names}')
        if len(params.joint_names) != ARM + 1:
            raise ValueError(f'joint_names: need {ARM} arm joints and a gripper')
        self.kinematics = kinematics
        self.set_limits(params, limits)

    def set_limits(self, params, limits) -> None:
        """Install new (e.g. tightened) parameters and limits."""
        self.params = params
        self.limits = limits
        self.names = tuple(params.joint_names)
        self._index = {name: i for i, name in enumerate(self.names)}
        self._speeds = np.array(params.max_joint_speed_rad_s)

    # --- validation ----------------------------------------------------------------------
    def validate_ee(self, command: EeCommand) -> Event | None:
        """An event describing why ``command`` is malformed, or None."""
        delta = np.asarray(command.delta_m, dtype=float)
        if command.source not in _SOURCES:
            return self._malformed('source', f'unknown source {command.source}', command.source)
        if delta.shape != (3,) or not np.all(np.isfinite(delta)):
            return self._malformed('delta_m', f'delta_m must be 3 finite numbers, got {delta}',
                                   command.source, _AXES if delta.shape == (3,) else (),
                                   delta if delta.shape == (3,) else ())
        if command.gripper not in _GRIPPER_COMMANDS:
            return self._malformed('gripper_command', f'unknown gripper command '
                                   f'{command.gripper}', command.source)
        if command.gripper == Gripper.POSITION and not np.isfinite(command.gripper_position_rad):
            return self._malformed('gripper_position_rad', 'gripper_position_rad is not finite',
                                   command.source, (self.names[-1],),
                                   (command.gripper_position_rad,))
        return None

    def validate_joint(self, command: JointCommand) -> Event | None:
        if command.source not in _SOURCES:
            return self._malformed('source', f'unknown source {command.source}', command.source)
        names, positions = tuple(command.names), np.asarray(command.positions, dtype=float)
        if not names or positions.shape != (len(names),):
            return self._malformed('names', f'{len(names)} names but {positions.size} '
                                   'positions (need >= 1 of each, equal counts)', command.source)
        unknown = [n for n in names if n not in self._index]
        if unknown or len(set(names)) != len(names):
            return self._malformed('names', f'unknown or repeated joints {names} '
                                   f'(known: {self.names})', command.source)
        if not np.all(np.isfinite(positions)):
            return self._malformed('positions', 'positions must be finite', command.source,
                                   names, positions)
        return None

    @staticmethod
    def _malformed(field, message, source, names=(), values=()) -> Event:
        return Event(Limit.MALFORMED, Severity.CLIP, field, f'{message}; command rejected, '
                     'holding the last target', int(source), tuple(names), _floats(values))

    # --- pipelines -----------------------------------------------------------------------
    def ee_step(self, command: EeCommand, base: np.ndarray, dt_s: float):
        """(target, events) for a validated EE command starting from ``base``."""
        events = []
        fraction, source = self._fraction(dt_s), int(command.source)
        box = self.limits.box
        start = self.kinematics.fk(base[:ARM])
        requested = start + np.asarray(command.delta_m, dtype=float)
        boxed = box.clip(requested)
        outside = np.flatnonzero(boxed != requested)
        if outside.size:
            events.append(Event(
                Limit.WORKSPACE, Severity.CLIP,
                ','.join(f'workspace_{_AXES[i]}_m' for i in outside),
                'end-effector target clipped to the workspace box', source,
                tuple(_AXES[i] for i in outside), _floats(requested[outside]),
                _floats(boxed[outside])))
        step = boxed - start
        max_step = self.params.ee_max_step_m * fraction
        length = float(np.linalg.norm(step))
        if length > max_step:
            limited = step * (max_step / length)
            events.append(Event(Limit.EE_STEP, Severity.CLIP, 'ee_max_step_m',
                                f'end-effector step {length:.4f} m limited to {max_step:.4f} m',
                                source, _AXES, _floats(step), _floats(limited)))
            step = limited
        candidate = np.array(base, dtype=float)
        arm = self._solve(start + step, start, base[:ARM], source, events)
        if arm is not None:
            candidate[:ARM] = arm
        candidate[ARM] = self._gripper_target(command, base[ARM])
        return self._finish(candidate, base, fraction, source, events, start)

    def joint_step(self, command: JointCommand, base: np.ndarray, dt_s: float):
        """(target, events) for a validated joint command starting from ``base``."""
        events = []
        fraction, source = self._fraction(dt_s), int(command.source)
        candidate = np.array(base, dtype=float)
        for name, position in zip(command.names, command.positions):
            candidate[self._index[name]] = float(position)
        candidate = self._position_limits(candidate, base, source, events)
        requested_tcp = self.kinematics.fk(candidate[:ARM])
        box = self.limits.box
        if not box.contains(requested_tcp, self.params.workspace_tolerance_m):
            inside = box.clip(requested_tcp)
            events.append(Event(Limit.WORKSPACE, Severity.CLIP, 'workspace_m',
                                'joint command would take the TCP out of the workspace box',
                                source, _AXES, _floats(requested_tcp), _floats(inside)))
            result = self._ik(inside, candidate[:ARM])
            if result.converged or result.position_error_m < box.distance(requested_tcp):
                candidate[:ARM] = result.joint_positions
        return self._finish(candidate, base, fraction, source, events)

    # --- stages --------------------------------------------------------------------------
    def _fraction(self, dt_s: float) -> float:
        if not np.isfinite(dt_s):
            return 0.0
        return float(min(max(dt_s * self.params.control_rate_hz, 0.0), 1.0))

    def _ik(self, goal, seed):
        joints = self.limits.joints
        return self.kinematics.ik(goal, seed, tolerance_m=self.params.ik_tolerance_m,
                                  max_iterations=self.params.ik_max_iterations,
                                  lower_limits_rad=joints.lower_rad[:ARM],
                                  upper_limits_rad=joints.upper_rad[:ARM])

    def _solve(self, goal, start, seed, source, events):
        """Arm joints reaching ``goal`` (or closer to it than ``start``); None = hold."""
        distance = float(np.linalg.norm(goal - start))
        if distance < 1e-9:
            return None
        result = self._ik(goal, seed)
        if result.converged:
            return result.joint_positions
        if result.position_error_m < distance - 1e-6:
            events.append(Event(Limit.IK, Severity.CLIP, 'ik',
                                f'target not reachable with the orientation held; moved '
                                f'{distance - result.position_error_m:.4f} m of '
                                f'{distance:.4f} m', source, _AXES, _floats(goal),
                                _floats(self.kinematics.fk(result.joint_positions))))
            return result.joint_positions
        events.append(Event(Limit.IK, Severity.CLIP, 'ik', 'target not reachable with the '
                            'orientation held; arm held', source, _AXES, _floats(goal),
                            _floats(start)))
        return None

    def _gripper_target(self, command: EeCommand, current: float) -> float:
        if command.gripper == Gripper.CLOSE:
            return self.params.gripper_closed_rad
        if command.gripper == Gripper.OPEN:
            return self.params.gripper_open_rad
        if command.gripper == Gripper.POSITION:
            return float(command.gripper_position_rad)
        return float(current)

    def _position_limits(self, candidate, base, source, events):
        """Clip to the joint ranges; a joint already outside may not go farther out."""
        joints = self.limits.joints
        lower = np.minimum(joints.lower_rad, base)
        upper = np.maximum(joints.upper_rad, base)
        clipped = np.clip(candidate, lower, upper)
        changed = np.flatnonzero(clipped != candidate)
        if changed.size:
            names = tuple(self.names[i] for i in changed)
            events.append(Event(Limit.JOINT_POSITION, Severity.CLIP, ','.join(names),
                                'joint targets clipped to the joint limits', source, names,
                                _floats(candidate[changed]), _floats(clipped[changed])))
        return clipped

    def _velocity_limit(self, candidate, base, fraction, source, events):
        """Scale the arm step by one factor, clip the gripper step, to the speed limits."""
        max_delta = self._speeds * (self.params.period_s * fraction)
        delta = candidate - base
        arm = np.abs(delta[:ARM])
        moving = arm > max_delta[:ARM]
        gripper_limit = max_delta[ARM]
        gripper_fast = abs(delta[ARM]) > gripper_limit
        if not (moving.any() or gripper_fast):
            return candidate
        limited = delta.copy()
        if moving.any():
            limited[:ARM] *= float(np.min(max_delta[:ARM][moving] / arm[moving]))
        if gripper_fast:
            limited[ARM] = gripper_limit if delta[ARM] > 0 else -gripper_limit
        out = base + limited
        changed = np.flatnonzero(limited != delta)
        names = tuple(self.names[i] for i in changed)
        limiting = [self.names[i] for i in np.flatnonzero(moving)]
        limiting += [self.names[ARM]] if gripper_fast else []
        events.append(Event(Limit.JOINT_VELOCITY, Severity.CLIP, ','.join(limiting),
                            'joint step limited to the speed limits', source, names,
                            _floats(candidate[changed]), _floats(out[changed])))
        return out

    def _gate(self, target, base, fraction, source, events, base_tcp=None):
        """Slow the step near the walls, then halve it until the TCP is inside the box (or no
        farther out than base).
        """
        box, tolerance = self.limits.box, self.params.workspace_tolerance_m
        if base_tcp is None:
            base_tcp = self.kinematics.fk(base[:ARM])
        allowed = max(box.distance(base_tcp), tolerance)
        step = target[:ARM] - base[:ARM]
        tcp = self.kinematics.fk(base[:ARM] + step)
        step, tcp = self._wall_slowdown(step, base, base_tcp, tcp, fraction, source, events)
        for halving in range(_GATE_HALVINGS + 1):
            arm = base[:ARM] + step * 0.5 ** halving
            if halving:
                tcp = self.kinematics.fk(arm)
            if box.distance(tcp) <= allowed:
                break
        else:
            arm = base[:ARM]
        if halving:
            events.append(Event(Limit.WORKSPACE, Severity.CLIP, 'workspace_m',
                                'joint path would leave the workspace box; step shortened',
                                source, _AXES, _floats(tcp), _floats(box.clip(tcp))))
        out = target.copy()
        out[:ARM] = arm
        return out

    def _wall_slowdown(self, step, base, base_tcp, tcp, fraction, source, events):
        """Within wall_zone_m of a wall, scale the arm step so the TCP moves at most
        ee_wall_max_step_m (times the step fraction); returns (step, tcp).
        """
        params, box = self.params, self.limits.box
        limit = min(params.ee_wall_max_step_m, params.ee_max_step_m) * fraction
        moved = float(np.linalg.norm(tcp - base_tcp))
        if (moved <= limit or params.wall_zone_m <= 0.0
                or min(box.margin(base_tcp), box.margin(tcp)) >= params.wall_zone_m):
            return step, tcp
        requested = tcp
        for _ in range(4):  # the TCP moves almost linearly with a small joint step
            step = step * (0.999 * limit / moved)
            tcp = self.kinematics.fk(base[:ARM] + step)
            moved = float(np.linalg.norm(tcp - base_tcp))
            if moved <= limit * 1.001:
                break
        else:
            step, tcp = step * 0.0, base_tcp
        events.append(Event(Limit.EE_STEP, Severity.CLIP, 'ee_wall_max_step_m',
                            f'within {params.wall_zone_m} m of a workspace wall: step limited '
                            f'to {limit:.4f} m', source, _AXES, _floats(requested - base_tcp),
                            _floats(tcp - base_tcp)))
        return step, tcp

    def _finish(self, candidate, base, fraction, source, events, base_tcp=None):
        candidate = self._position_limits(candidate, base, source, events)
        candidate = self._velocity_limit(candidate, base, fraction, source, events)
        return self._gate(candidate, base, fraction, source, events, base_tcp), events
