"""SDL state -> Joy layout conversion (as joy's nodes) and the publish scheduler (ROS-free)."""
import numpy as np
import pytest

from hilserl_actor.teleop.joy_layout import (
    JoyPublishScheduler,
    axis_to_joy,
    game_controller_joy,
    hat_to_joy,
    joystick_joy,
)


def joy_reference(raw, deadzone):
    """joy's convertRawAxisValueToROS, transcribed step by step in float64/float32."""
    raw = -32767 if raw == -32768 else raw
    unscaled = 32767.0 * deadzone
    value = float(raw)
    if abs(value) <= unscaled:
        value = 0.0
    else:
        value = value - unscaled if value > 0 else value + unscaled
    scale = np.float32(-1.0 / (1.0 - deadzone) / 32767.0)
    return float(np.float32(value * np.float64(scale)))


@pytest.mark.parametrize('deadzone', [0.0, 0.05, 0.2])
def test_axis_conversion_matches_joy(deadzone):
    for raw in (-32768, -32767, -20000, -1639, -1638, -1, 0, 1, 1638, 1639, 20000, 32767):
        assert axis_to_joy(raw, deadzone) == joy_reference(raw, deadzone)
    assert axis_to_joy(32767, deadzone) == pytest.approx(-1.0)    # right / down: -1
    assert axis_to_joy(-32768, deadzone) == pytest.approx(1.0)    # left / up: +1
    assert axis_to_joy(16000, 0.05) == pytest.approx(-(16000 - 1638.35) / (0.95 * 32767), 1e-6)


def test_game_controller_layout():
    raw_axes = [-32768, 32767, 0, 100, 0, 32767]  # left stick left+down, RT fully pressed
    buttons = [False] * 21
    buttons[0] = buttons[10] = True
    axes, out_buttons = game_controller_joy(raw_axes, buttons, 0.05)
    assert axes[0] == pytest.approx(1.0) and axes[1] == pytest.approx(-1.0)
    assert axes[3] == 0.0  # inside the deadzone
    assert axes[4] == 0.0 and axes[5] == pytest.approx(-1.0)  # triggers: 0 rest, -1 pressed
    assert out_buttons == [1] + [0] * 9 + [1] + [0] * 10
    with pytest.raises(ValueError, match='6 axes and 21 buttons'):
        game_controller_joy(raw_axes[:4], buttons, 0.05)


def test_joystick_layout_appends_two_axes_per_hat():
    axes, buttons = joystick_joy([0, -32768], [(-1, 1), (1, -1), (0, 0)], [1, 0], 0.05)
    assert axes[2:] == [1.0, 1.0, -1.0, -1.0, 0.0, 0.0]  # left/up +1, right/down -1
    assert buttons == [1, 0]
    assert hat_to_joy(1, 0) == (-1.0, 0.0)


def test_scheduler_buttons_at_once_axes_coalesced_autorepeat():
    scheduler = JoyPublishScheduler(autorepeat_rate_hz=20.0, coalesce_interval_s=0.02)
    rest = ([0.0] * 6, [0] * 21)
    assert scheduler.should_publish(*rest, 0.0)          # first state
    assert not scheduler.should_publish(*rest, 0.01)
    assert scheduler.should_publish([0.0] * 6, [1] + [0] * 20, 0.02)  # button: at once
    moved = ([0.5] + [0.0] * 5, [1] + [0] * 20)
    assert not scheduler.should_publish(*moved, 0.03)    # axis: wait for more changes
    assert scheduler.should_publish(*moved, 0.05)        # coalesce interval passed
    assert not scheduler.should_publish(*moved, 0.06)
    assert scheduler.should_publish(*moved, 0.101)       # autorepeat after 50 ms
    scheduler.reset()
    assert scheduler.should_publish(*moved, 0.11)        # first after a reconnect


def test_scheduler_without_autorepeat_or_coalescing():
    scheduler = JoyPublishScheduler(autorepeat_rate_hz=0.0, coalesce_interval_s=0.0)
    assert scheduler.should_publish([0.0], [0], 0.0)
    assert not scheduler.should_publish([0.0], [0], 100.0)  # no autorepeat
    assert scheduler.should_publish([0.2], [0], 100.001)     # axis change at once
