"""The keyboard teleop's terminal: cbreak mode that is always restored, help and status text.

This is the program's user interface (like teleop_twist_keyboard's), written to the terminal
the operator types in; ROS logging still goes to stderr.
"""
import contextlib
import os
import termios
import tty

from hilserl_actor.errors import TerminalError
from hilserl_actor.teleop.keyboard import HELP_KEYS, KEY_BINDINGS
from hilserl_actor.teleop.types import Gripper, TeleopOutputs

KEY_LABELS = {'up': 'Up', 'down': 'Down', 'left': 'Left', 'right': 'Right',
              'page_up': 'PgUp', 'page_down': 'PgDn', 'space': 'Space', 'enter': 'Enter',
              'escape': 'Esc', 'backspace': 'Backspace'}


class CbreakTerminal:
    """Context manager: the terminal on ``fd`` in cbreak mode (keys arrive at once, no echo;
    Ctrl-C still interrupts), restored on exit whatever happens inside.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self._saved = None

    def __enter__(self) -> 'CbreakTerminal':
        if not os.isatty(self.fd):
            raise TerminalError(
                'stdin is not a terminal: keyboard_teleop reads keys from an interactive '
                'terminal (run it in its own terminal window, or from a launch file with '
                "prefix='xterm -e')")
        try:
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd, termios.TCSANOW)
        except termios.error as error:
            raise TerminalError(f'cannot configure the terminal: {error}') from error
        return self

    def __exit__(self, *exc_info) -> None:
        self.restore()

    def restore(self) -> None:
        """Put the saved terminal settings back (idempotent)."""
        if self._saved is not None:
            # termios.error: the terminal is gone (hang-up), nothing is left to restore.
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None


def help_text() -> str:
    """The key table, grouped by what the keys do."""
    groups: dict[str, list[str]] = {}
    for key, binding in KEY_BINDINGS.items():
        groups.setdefault(binding.description, []).append(KEY_LABELS.get(key, key))
    lines = ['HIL-SERL keyboard teleop (keys act at once; Ctrl-C quits)']
    lines += [f'  {" / ".join(keys):<16} {description}' for description, keys in groups.items()]
    lines.append(f'  {" / ".join(HELP_KEYS):<16} this help')
    lines.append('Motion and gripper keys act only while takeover is on (or always_active).')
    return '\n'.join(lines)


def status_line(active: bool, speed_scale: float, max_step_m: float,
                motion: tuple[float, float, float], gripper: Gripper, note: str) -> str:
    """One line of state, rewritten in place."""
    arrows = ' '.join(f'{name}{"+" if v > 0 else "-" if v < 0 else "0"}'
                      for name, v in zip('xyz', motion))
    return (f'[{"TAKEOVER" if active else "policy  "}] speed {speed_scale:4.2f} '
            f'({max_step_m * 1000:.1f} mm/step) {arrows} gripper {gripper.name.lower():5s} '
            f'{note}')


def describe(outputs: TeleopOutputs) -> str:
    """A short note of what an input just did, for the status line ('' if nothing)."""
    notes = [f'sent {event.event.name}' for event in outputs.events]
    if outputs.estop:
        notes.append('sent E-STOP')
    if outputs.intervention is not None:
        notes.append('takeover ON' if outputs.intervention.active else 'takeover OFF')
    if outputs.speed_scale is not None:
        notes.append(f'speed {outputs.speed_scale:.2f}')
    return ', '.join(notes)


class Screen:
    """What the operator sees: the key help and one status line rewritten in place."""

    def __init__(self, stream):
        self.stream = stream

    def show_help(self) -> None:
        self.stream.write('\n' + help_text() + '\n')
        self.stream.flush()

    def show_status(self, *args) -> None:
        """``status_line(*args)``, overwriting the previous one."""
        self.stream.write('\r' + status_line(*args) + '\x1b[K')
        self.stream.flush()

    def close(self) -> None:
        self.stream.write('\n')
        self.stream.flush()
