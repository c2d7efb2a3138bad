"""A gamepad through SDL2 (pygame): find, open, read and lose it, with hot-plug.

ROS-free; ``gamepad_node`` polls ``SdlGamepad.poll()`` and publishes what it returns. SDL is
used headless: its video driver defaults to 'dummy' (no window, no display needed) only so
that pygame's event queue, which carries the hot-plug events, can be drained.
"""
import contextlib
import dataclasses
import os

from hilserl_actor.errors import GamepadError
from hilserl_actor.teleop.joy_layout import (
    GAME_CONTROLLER_AXES,
    GAME_CONTROLLER_BUTTONS,
    game_controller_joy,
    joystick_joy,
)


@dataclasses.dataclass
class PollResult:
    """One poll: the pad's Joy state if a pad is open, and what happened (for the log)."""

    axes: list[float] | None = None
    buttons: list[int] | None = None
    info: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    disconnected: bool = False


class SdlGamepad:
    """One pad selected by SDL device index or name, in the game-controller or joystick layout."""

    def __init__(self, layout: str, device_id: int, device_name: str, deadzone: float):
        if layout not in ('game_controller', 'joystick'):
            raise ValueError(f'layout: {layout!r} is not game_controller or joystick')
        os.environ.setdefault('PYGAME_HIDE_SUPPORT_PROMPT', '1')
        os.environ.setdefault('SDL_VIDEODRIVER', 'dummy')
        # Read the pad even while another window has the focus (joy does not need focus either).
        os.environ.setdefault('SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS', '1')
        # Signals stay with the program (Ctrl-C must not become an SDL quit event).
        os.environ.setdefault('SDL_NO_SIGNAL_HANDLERS', '1')
        try:
            import pygame
            import pygame._sdl2.controller as controller
        except ImportError as error:
            raise GamepadError(f'pygame (SDL2) is not available: {error}') from error
        self._pygame, self._controller = pygame, controller
        self.layout, self.device_id, self.device_name = layout, device_id, device_name
        self.deadzone = deadzone
        try:
            pygame.joystick.init()
            controller.init()
        except pygame.error as error:
            raise GamepadError(f'SDL cannot initialise its joystick subsystem: {error}') from error
        try:
            pygame.display.init()  # only for the event queue (hot-plug events)
            self._events = True
        except pygame.error:
            self._events = False
        self._device = None  # pygame Controller or Joystick
        self._instance_id = None
        self.name = ''

    @property
    def connected(self) -> bool:
        return self._device is not None

    def describe_target(self) -> str:
        if self.device_name:
            return f'device_name {self.device_name!r}'
        return f'device_id {self.device_id}'

    def poll(self, scan: bool) -> PollResult:
        """Pump SDL, handle hot-plug, and read the open pad; look for a pad if ``scan``."""
        result = PollResult()
        removed = self._pump()
        if self._device is not None and (self._instance_id in removed or not self._attached()):
            result.warnings.append(f'gamepad {self.name!r} disconnected; waiting for it to be '
                                   'plugged back in (no /joy messages until then)')
            result.disconnected = True
            self.close()
        if self._device is None and scan:
            self._open(result)
        if self._device is not None:
            result.axes, result.buttons = self._read()
        return result

    def close(self) -> None:
        if self._device is not None:
            with contextlib.suppress(self._pygame.error):
                self._device.quit()
        self._device, self._instance_id, self.name = None, None, ''

    def shutdown(self) -> None:
        self.close()
        self._controller.quit()
        self._pygame.joystick.quit()
        self._pygame.display.quit()

    # --- internals -----------------------------------------------------------------------
    def _pump(self) -> set[int]:
        """Process SDL events; the instance ids of removed devices."""
        pygame = self._pygame
        if not self._events:
            self._controller.update()
            return set()
        removed = set()
        for event in pygame.event.get():
            if event.type in (pygame.JOYDEVICEREMOVED, pygame.CONTROLLERDEVICEREMOVED):
                removed.add(getattr(event, 'instance_id', None))
        return removed

    def _attached(self) -> bool:
        if self.layout == 'game_controller':
            return bool(self._device.attached())
        return bool(self._device.get_init())

    def _candidates(self) -> list[tuple[int, str]]:
        """(SDL device index, name) of the pads this layout can open."""
        pygame, controller = self._pygame, self._controller
        found = []
        for index in range(pygame.joystick.get_count()):
            if self.layout == 'game_controller':
                if controller.is_controller(index):
                    found.append((index, controller.name_forindex(index) or ''))
                else:
                    found.append((index, None))  # a joystick without a controller mapping
            elif self.device_name or index == self.device_id:
                found.append((index, pygame.joystick.Joystick(index).get_name()))
        return found

    def _open(self, result: PollResult) -> None:
        candidates = self._candidates()
        if self.device_name:
            matches = [(i, n) for i, n in candidates if n == self.device_name]
        else:
            matches = [(i, n) for i, n in candidates if i == self.device_id]
        if not matches:
            names = ', '.join(f'{i}: {n!r}' for i, n in candidates if n is not None) or 'none'
            result.warnings.append(
                f'no gamepad found for {self.describe_target()} (pads SDL sees: {names}); '
                'still looking, plug one in')
            return
        index, name = matches[0]
        if name is None:
            result.warnings.append(
                f'device {index} has no SDL game-controller mapping: add one with the '
                'SDL_GAMECONTROLLERCONFIG environment variable, or use layout:=joystick')
            return
        try:
            if self.layout == 'game_controller':
                self._device = self._controller.Controller(index)
                self._instance_id = self._device.as_joystick().get_instance_id()
            else:
                self._device = self._pygame.joystick.Joystick(index)
                self._instance_id = self._device.get_instance_id()
        except self._pygame.error as error:
            result.warnings.append(f'cannot open gamepad {index} ({name!r}): {error}')
            self._device = None
            return
        self.name = name
        result.info.append(f'opened gamepad {index}: {name!r} ({self.layout} layout, '
                           f'deadzone {self.deadzone})')

    def _read(self) -> tuple[list[float], list[int]]:
        device = self._device
        if self.layout == 'game_controller':
            axes = [device.get_axis(i) for i in range(GAME_CONTROLLER_AXES)]
            buttons = [device.get_button(i) for i in range(GAME_CONTROLLER_BUTTONS)]
            return game_controller_joy(axes, buttons, self.deadzone)
        # pygame returns raw / 32768 for joystick axes: recover SDL's integer value.
        axes = [round(device.get_axis(i) * 32768) for i in range(device.get_numaxes())]
        hats = [device.get_hat(i) for i in range(device.get_numhats())]
        buttons = [device.get_button(i) for i in range(device.get_numbuttons())]
        return joystick_joy(axes, hats, buttons, self.deadzone)
