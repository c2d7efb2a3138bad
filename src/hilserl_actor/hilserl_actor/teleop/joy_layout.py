"""SDL pad state -> sensor_msgs/Joy layout, exactly as ROS 2's ``joy`` package builds it.

``joy`` (ros-drivers/joystick_drivers, ROS 2 Humble to Kilted) has two nodes on SDL2:
  * ``game_controller_node`` uses the SDL *game-controller* API: every pad SDL has a mapping
    for gets the same layout, 6 axes (SDL_CONTROLLER_AXIS_* order: left x, left y, right x,
    right y, left trigger, right trigger) and SDL_CONTROLLER_BUTTON_MAX buttons (21 since SDL
    2.0.14: A, B, X, Y, back, guide, start, left stick, right stick, left shoulder, right
    shoulder, D-pad up, down, left, right, misc1, paddles 1-4, touchpad).
  * ``joy_node`` uses the raw SDL *joystick* API: the device's own axes, then two axes per
    hat (D-pad), and its buttons, in the order the OS driver reports them.
Both convert an SDL axis value v in [-32768, 32767] the same way: the deadzone is cut out
and the rest rescaled, and the sign is flipped so that left and up (forward) are positive.
So sticks read +1 pushed left / up, and game-controller triggers (SDL 0..32767) read 0 at rest
and -1 fully pressed. A hat reads +1 left / up and -1 right / down.
"""
import numpy as np

GAME_CONTROLLER_AXES = 6
GAME_CONTROLLER_BUTTONS = 21
SDL_AXIS_MAX = 32767


def axis_to_joy(raw: int, deadzone: float) -> float:
    """One SDL axis value -> the Joy axis value joy's nodes publish (float32 arithmetic)."""
    value = float(max(-SDL_AXIS_MAX, min(SDL_AXIS_MAX, int(raw))))
    unscaled_deadzone = SDL_AXIS_MAX * deadzone
    if value > unscaled_deadzone:
        value -= unscaled_deadzone
    elif value < -unscaled_deadzone:
        value += unscaled_deadzone
    else:
        value = 0.0
    scale = float(np.float32(-1.0 / (1.0 - deadzone) / SDL_AXIS_MAX))
    return float(np.float32(value * scale))


def hat_to_joy(x: int, y: int) -> tuple[float, float]:
    """An SDL hat as (x: -1 left .. +1 right, y: +1 up .. -1 down) -> Joy's (left +1, up +1)."""
    return (float(-x), float(y))


def game_controller_joy(axes_raw, buttons, deadzone: float) -> tuple[list[float], list[int]]:
    """The game_controller_node layout from SDL game-controller axes (6) and buttons (21)."""
    if len(axes_raw) != GAME_CONTROLLER_AXES or len(buttons) != GAME_CONTROLLER_BUTTONS:
        raise ValueError(f'game-controller state needs {GAME_CONTROLLER_AXES} axes and '
                         f'{GAME_CONTROLLER_BUTTONS} buttons, got {len(axes_raw)}, {len(buttons)}')
    return [axis_to_joy(v, deadzone) for v in axes_raw], [int(bool(b)) for b in buttons]


def joystick_joy(axes_raw, hats, buttons, deadzone: float) -> tuple[list[float], list[int]]:
    """The joy_node layout from raw SDL joystick axes, hats ((x, y) pairs) and buttons."""
    axes = [axis_to_joy(v, deadzone) for v in axes_raw]
    for x, y in hats:
        axes.extend(hat_to_joy(x, y))
    return axes, [int(bool(b)) for b in buttons]


class JoyPublishScheduler:
    """When to publish a Joy state, with joy's autorepeat and coalescing rules.

    Button changes publish at once. Axis changes publish once ``coalesce_interval_s`` has
    passed since the first unpublished change (at once if it is 0), so a moving stick does not
    flood the topic. An unchanged state is republished every 1 / ``autorepeat_rate_hz`` (never
    if 0). The first state after a (re)connection publishes at once.
    """

    def __init__(self, autorepeat_rate_hz: float, coalesce_interval_s: float):
        self.autorepeat_period_s = 1.0 / autorepeat_rate_hz if autorepeat_rate_hz > 0 else None
        self.coalesce_interval_s = coalesce_interval_s
        self.reset()

    def reset(self) -> None:
        self._axes = None
        self._buttons = None
        self._published_s = None
        self._pending_since_s = None

    def should_publish(self, axes: list[float], buttons: list[int], now_s: float) -> bool:
        """Whether to publish this state now (if so, it becomes the last published one)."""
        publish = self._axes is None or buttons != self._buttons
        if not publish and axes != self._axes:
            if self._pending_since_s is None:
                self._pending_since_s = now_s
            publish = now_s - self._pending_since_s >= self.coalesce_interval_s
        elif not publish:
            self._pending_since_s = None
        if (not publish and self.autorepeat_period_s is not None
                and now_s - self._published_s >= self.autorepeat_period_s):
            publish = True
        if publish:
            self._axes, self._buttons = list(axes), list(buttons)
            self._published_s = now_s
            self._pending_since_s = None
        return publish
