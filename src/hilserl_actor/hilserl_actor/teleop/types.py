"""ROS-free value types the teleop cores produce; nodes/conversions.py maps them to messages.

The integer values equal the constants of hilserl_msgs (EndEffectorCommand.GRIPPER_*,
EpisodeEvent.*, InterventionState.SOURCE_*), which tests/unit checks against the messages.
"""
import dataclasses
import enum


class Gripper(enum.IntEnum):
    """Discrete gripper command of one control step (EndEffectorCommand.gripper_command)."""

    STAY = 0
    CLOSE = 1
    OPEN = 2


class EpisodeEventType(enum.IntEnum):
    """Operator events (EpisodeEvent.event)."""

    SUCCESS = 0
    FAILURE = 1
    RERECORD = 2
    END_SESSION = 3
    START_EPISODE = 4


class InputDevice(enum.IntEnum):
    """Who holds the arm during an intervention (InterventionState.source)."""

    GAMEPAD = 1
    KEYBOARD = 2


class Action(enum.Enum):
    """Discrete operator actions; the first five become EpisodeEvents."""

    SUCCESS = 'success'
    FAILURE = 'failure'
    RERECORD = 'rerecord'
    END_SESSION = 'end_session'
    START_EPISODE = 'start_episode'
    ESTOP = 'estop'
    SPEED_UP = 'speed_up'
    SPEED_DOWN = 'speed_down'
    TOGGLE_TAKEOVER = 'toggle_takeover'


EVENT_OF_ACTION = {
    Action.SUCCESS: EpisodeEventType.SUCCESS,
    Action.FAILURE: EpisodeEventType.FAILURE,
    Action.RERECORD: EpisodeEventType.RERECORD,
    Action.END_SESSION: EpisodeEventType.END_SESSION,
    Action.START_EPISODE: EpisodeEventType.START_EPISODE,
}


@dataclasses.dataclass(frozen=True)
class HumanCommand:
    """One control step of the human: TCP displacement (m, base frame) and gripper command."""

    delta_m: tuple[float, float, float]
    gripper: Gripper


@dataclasses.dataclass(frozen=True)
class InterventionStatus:
    """Whether the human holds the arm, and how many takeovers there were this session."""

    active: bool
    count: int
    device: InputDevice


@dataclasses.dataclass(frozen=True)
class EpisodeEvent:
    """An operator event with a human-readable reason."""

    event: EpisodeEventType
    reason: str


@dataclasses.dataclass
class TeleopOutputs:
    """What a teleop core wants published after one input or tick (empty = nothing)."""

    command: HumanCommand | None = None
    intervention: InterventionStatus | None = None
    """Set when the intervention state changed (the node publishes it at once)."""
    events: list[EpisodeEvent] = dataclasses.field(default_factory=list)
    estop: bool = False
    speed_scale: float | None = None
    """Set when the speed scale changed."""
    warnings: list[str] = dataclasses.field(default_factory=list)
    """Degradations for the node to log (e.g. the input stream went silent)."""

    def merge(self, other: 'TeleopOutputs') -> 'TeleopOutputs':
        """Combine two outputs (the later command and intervention state win)."""
        return TeleopOutputs(
            command=other.command or self.command,
            intervention=other.intervention or self.intervention,
            events=self.events + other.events,
            estop=self.estop or other.estop,
            speed_scale=other.speed_scale if other.speed_scale is not None else self.speed_scale,
            warnings=self.warnings + other.warnings)
