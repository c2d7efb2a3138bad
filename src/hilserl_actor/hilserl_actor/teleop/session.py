"""The state a teleop front end (gamepad or keyboard) shares: takeover, events, speed, commands.

Times are monotonic seconds supplied by the caller, so everything here is deterministic.
"""
import dataclasses
import math

from hilserl_actor.teleop.types import (
    EVENT_OF_ACTION,
    Action,
    EpisodeEvent,
    Gripper,
    HumanCommand,
    InputDevice,
    InterventionStatus,
    TeleopOutputs,
)


@dataclasses.dataclass(frozen=True)
class SessionSettings:
    """The parameters a session needs (taken from the node's params dataclass)."""

    device: InputDevice
    control_rate_hz: float
    max_ee_speed_m_s: float
    always_active: bool
    event_debounce_s: float
    initial_speed_scale: float
    speed_scale_step: float


class TeleopSession:
    """Intervention state, debounced operator actions, speed scale, command scaling.

    The human holds the arm (intervention active) while the input is available and either
    takeover is requested or ``always_active`` is set. Every inactive -> active change counts
    one intervention.
    """

    def __init__(self, settings: SessionSettings):
        self.settings = settings
        self._takeover = False
        self._available = False
        self._count = 0
        self._active = False
        self._last_seen: dict[Action, float] = {}
        self.speed_scale = settings.initial_speed_scale

    # --- intervention ------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self._active

    @property
    def takeover_requested(self) -> bool:
        return self._takeover

    @property
    def intervention(self) -> InterventionStatus:
        return InterventionStatus(self._active, self._count, self.settings.device)

    def set_control(self, takeover: bool | None = None,
                    available: bool | None = None) -> InterventionStatus | None:
        """Update the takeover request and input availability; the new status if it changed."""
        if takeover is not None:
            self._takeover = takeover
        if available is not None:
            self._available = available
        active = self._available and (self._takeover or self.settings.always_active)
        if active == self._active:
            return None
        self._active = active
        if active:
            self._count += 1
        return self.intervention

    # --- discrete actions --------------------------------------------------------------
    def trigger(self, action: Action, now_s: float, reason: str) -> TeleopOutputs:
        """Apply one press of ``action``, unless the same action was seen within the debounce
        time (every press, accepted or not, restarts that time: a held repeating key or a
        bouncing contact yields one action).
        """
        last = self._last_seen.get(action)
        self._last_seen[action] = now_s
        if last is not None and now_s - last < self.settings.event_debounce_s:
            return TeleopOutputs()
        if action in EVENT_OF_ACTION:
            return TeleopOutputs(events=[EpisodeEvent(EVENT_OF_ACTION[action], reason)])
        if action is Action.ESTOP:
            return TeleopOutputs(estop=True)
        if action is Action.TOGGLE_TAKEOVER:
            return TeleopOutputs(intervention=self.set_control(takeover=not self._takeover))
        step = self.settings.speed_scale_step
        change = step if action is Action.SPEED_UP else -step
        scale = min(1.0, max(step, round(self.speed_scale + change, 6)))
        if scale == self.speed_scale:
            return TeleopOutputs()
        self.speed_scale = scale
        return TeleopOutputs(speed_scale=scale)

    # --- commands ----------------------------------------------------------------------
    @property
    def max_step_m(self) -> float:
        """The largest TCP displacement of one control step at the current speed scale."""
        settings = self.settings
        return settings.max_ee_speed_m_s * self.speed_scale / settings.control_rate_hz

    def command(self, motion: tuple[float, float, float], gripper: Gripper) -> HumanCommand:
        """Scale a motion request (each axis in [-1, 1]) to one control step's displacement.

        The request's norm is clipped to 1, so the step never exceeds ``max_step_m`` in any
        direction (a square stick gate's corner is no faster than an edge).
        """
        if not all(math.isfinite(v) for v in motion):
            raise ValueError(f'motion must be finite, got {motion}')
        norm = math.sqrt(sum(v * v for v in motion))
        factor = self.max_step_m / max(1.0, norm)
        return HumanCommand(tuple(float(v * factor) for v in motion), Gripper(gripper))
