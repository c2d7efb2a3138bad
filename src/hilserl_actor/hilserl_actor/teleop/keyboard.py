"""Keyboard teleoperation core: terminal bytes -> key names -> the same outputs as the gamepad.

Terminals report key presses, never releases. A motion or gripper key therefore acts for
``key_hold_s`` after each press; holding a key makes the terminal repeat it, which keeps the
motion going. Motion uses the right hand (I/K, J/L, U/O or the arrow keys and Page Up/Down),
the gripper, takeover and events the left hand, so the event keys the operator needs most
(s, f, r, x, space) never collide with a motion key.
"""
import dataclasses

from hilserl_actor.teleop.session import TeleopSession
from hilserl_actor.teleop.types import Action, Gripper, TeleopOutputs

ESC = 0x1b
CSI_SEQUENCES = {
    '[A': 'up', '[B': 'down', '[C': 'right', '[D': 'left',
    'OA': 'up', 'OB': 'down', 'OC': 'right', 'OD': 'left',
    '[5~': 'page_up', '[6~': 'page_down',
}
CONTROL_BYTES = {0x0d: 'enter', 0x0a: 'enter', 0x20: 'space', 0x7f: 'backspace',
                 0x08: 'backspace', 0x09: 'tab'}


@dataclasses.dataclass(frozen=True)
class KeyBinding:
    """What one key does: move along an axis, set the gripper, or an action."""

    description: str
    axis: int | None = None
    direction: float = 0.0
    gripper: Gripper | None = None
    action: Action | None = None


def _move(axis: int, direction: float, text: str) -> KeyBinding:
    return KeyBinding(text, axis=axis, direction=direction)


# key name -> binding; the README's key table mirrors this.
KEY_BINDINGS = {
    'i': _move(0, 1.0, '+x forward'), 'up': _move(0, 1.0, '+x forward'),
    'k': _move(0, -1.0, '-x back'), 'down': _move(0, -1.0, '-x back'),
    'j': _move(1, 1.0, '+y left'), 'left': _move(1, 1.0, '+y left'),
    'l': _move(1, -1.0, '-y right'), 'right': _move(1, -1.0, '-y right'),
    'u': _move(2, 1.0, '+z up'), 'page_up': _move(2, 1.0, '+z up'),
    'o': _move(2, -1.0, '-z down'), 'page_down': _move(2, -1.0, '-z down'),
    'c': KeyBinding('close gripper', gripper=Gripper.CLOSE),
    'v': KeyBinding('open gripper', gripper=Gripper.OPEN),
    'space': KeyBinding('toggle takeover (intervention)', action=Action.TOGGLE_TAKEOVER),
    'enter': KeyBinding('success', action=Action.SUCCESS),
    's': KeyBinding('success', action=Action.SUCCESS),
    'f': KeyBinding('failure', action=Action.FAILURE),
    'r': KeyBinding('re-record episode', action=Action.RERECORD),
    'n': KeyBinding('start next episode', action=Action.START_EPISODE),
    'q': KeyBinding('end session', action=Action.END_SESSION),
    'escape': KeyBinding('end session', action=Action.END_SESSION),
    'x': KeyBinding('E-STOP (latch)', action=Action.ESTOP),
    'backspace': KeyBinding('E-STOP (latch)', action=Action.ESTOP),
    '+': KeyBinding('faster', action=Action.SPEED_UP),
    '=': KeyBinding('faster', action=Action.SPEED_UP),
    '-': KeyBinding('slower', action=Action.SPEED_DOWN),
    '_': KeyBinding('slower', action=Action.SPEED_DOWN),
}
HELP_KEYS = ('h', '?')


class KeyDecoder:
    """Splits terminal input bytes into key names ('a', 'enter', 'up', 'escape', ...).

    A lone ESC is the Escape key only once ``escape_timeout_s`` passes without the rest of an
    escape sequence (arrow keys send ESC [ A); call ``flush`` when ``deadline_s`` is reached.
    Letters are lower-cased (Caps Lock); unknown sequences and non-ASCII bytes are dropped.
    """

    def __init__(self, escape_timeout_s: float = 0.05):
        self.escape_timeout_s = escape_timeout_s
        self._buffer = bytearray()
        self._escape_since: float | None = None

    @property
    def deadline_s(self) -> float | None:
        """When a pending lone ESC becomes the Escape key (None if nothing is pending)."""
        if self._escape_since is None:
            return None
        return self._escape_since + self.escape_timeout_s

    def feed(self, data: bytes, now_s: float) -> list[str]:
        self._buffer += data
        return self._parse(now_s, final=False)

    def flush(self, now_s: float) -> list[str]:
        """Keys that are complete by now (a lone ESC after the timeout)."""
        deadline = self.deadline_s
        return self._parse(now_s, final=deadline is not None and now_s >= deadline)

    def _parse(self, now_s: float, final: bool) -> list[str]:
        keys = []
        buffer = self._buffer
        while buffer:
            byte = buffer[0]
            if byte != ESC:
                del buffer[0]
                key = self._plain(byte)
                if key is not None:
                    keys.append(key)
                continue
            length = _sequence_length(buffer)
            if length is None:  # an incomplete sequence: wait, unless it timed out
                if not final:
                    if self._escape_since is None:
                        self._escape_since = now_s
                    break
                del buffer[0]
                keys.append('escape')
            elif length == 1:
                del buffer[0]
                keys.append('escape')
            else:
                sequence = bytes(buffer[1:length]).decode('ascii', 'replace')
                del buffer[:length]
                if sequence in CSI_SEQUENCES:
                    keys.append(CSI_SEQUENCES[sequence])
            self._escape_since = None
            final = False
        if not buffer:
            self._escape_since = None
        return keys

    @staticmethod
    def _plain(byte: int) -> str | None:
        if byte in CONTROL_BYTES:
            return CONTROL_BYTES[byte]
        if 0x21 <= byte <= 0x7e:
            return chr(byte).lower()
        return None


def _sequence_length(buffer: bytearray) -> int | None:
    """Length of the escape sequence at the start of buffer; 1 for a lone ESC followed by a
    non-sequence byte; None if more bytes are needed.
    """
    if len(buffer) < 2:
        return None
    introducer = buffer[1]
    if introducer == ord('O'):  # SS3: ESC O <final>
        return 3 if len(buffer) >= 3 else None
    if introducer != ord('['):
        return 1
    for index in range(2, len(buffer)):  # CSI: parameters 0x30-0x3f, intermediates, final
        if 0x40 <= buffer[index] <= 0x7e:
            return index + 1
        if not 0x20 <= buffer[index] <= 0x3f:
            return index  # malformed: drop what we have
    return None


class KeyboardTeleop:
    """Key presses -> TeleopOutputs through a TeleopSession (see the module docstring)."""

    def __init__(self, session: TeleopSession, key_hold_s: float):
        self.session = session
        self.key_hold_s = key_hold_s
        self._axes: dict[int, tuple[float, float]] = {}  # axis -> (direction, until_s)
        self._gripper: tuple[Gripper, float] | None = None
        self.session.set_control(available=True)

    def on_key(self, key: str, now_s: float) -> TeleopOutputs | None:
        """Apply one key; None if the key is not bound."""
        binding = KEY_BINDINGS.get(key)
        if binding is None:
            return None
        if binding.axis is not None:
            self._axes[binding.axis] = (binding.direction, now_s + self.key_hold_s)
            return TeleopOutputs()
        if binding.gripper is not None:
            self._gripper = (binding.gripper, now_s + self.key_hold_s)
            return TeleopOutputs()
        return self.session.trigger(binding.action, now_s, f'keyboard {key}')

    def motion(self, now_s: float) -> tuple[float, float, float]:
        """The motion request of the keys still acting at ``now_s``."""
        return tuple(direction if until >= now_s else 0.0
                     for direction, until in (self._axes.get(a, (0.0, -1.0)) for a in range(3)))

    def gripper(self, now_s: float) -> Gripper:
        if self._gripper is None or self._gripper[1] < now_s:
            return Gripper.STAY
        return self._gripper[0]

    def tick(self, now_s: float) -> TeleopOutputs:
        """One control step: the human command while the intervention is active."""
        if not self.session.active:
            return TeleopOutputs()
        return TeleopOutputs(command=self.session.command(self.motion(now_s),
                                                          self.gripper(now_s)))

    def release(self) -> TeleopOutputs:
        """The keyboard goes away (shutdown): the intervention ends."""
        self._axes.clear()
        self._gripper = None
        return TeleopOutputs(intervention=self.session.set_control(available=False))
