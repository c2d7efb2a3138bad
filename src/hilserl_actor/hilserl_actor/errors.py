"""Typed exceptions of hilserl_actor; nodes catch them at callback and transition boundaries."""


class ActorError(Exception):
    """Base class of every hilserl_actor error."""


class TeleopError(ActorError):
    """Teleoperation (gamepad, keyboard) errors."""


class MappingError(TeleopError, ValueError):
    """A gamepad mapping file is missing, unreadable or invalid (the message names the field)."""


class MalformedJoyError(TeleopError, ValueError):
    """A Joy message does not fit the mapping (too few axes/buttons, NaN, out of range)."""


class GamepadError(TeleopError):
    """The SDL gamepad backend failed (SDL missing, device could not be opened)."""


class TerminalError(TeleopError):
    """The keyboard teleop has no usable terminal (stdin is not a TTY, termios failed)."""


class RecorderError(ActorError):
    """The demo recorder cannot work (output directory, crop or calibration file)."""
