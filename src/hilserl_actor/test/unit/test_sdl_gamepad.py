"""SdlGamepad against SDL's own virtual joystick driver, in both Joy layouts (no ROS)."""
import ctypes
import importlib.util
import pathlib

import pytest

from hilserl_actor.teleop.sdl_gamepad import SdlGamepad

PEER = pathlib.Path(__file__).parents[1] / 'ros' / 'peers' / 'virtual_gamepad.py'
NAME = 'Virtual Controller'
SDL_HAT_UP, SDL_HAT_LEFT = 0x01, 0x08


@pytest.fixture(scope='module')
def peer():
    spec = importlib.util.spec_from_file_location('virtual_gamepad', PEER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sdl(peer):
    pytest.importorskip('pygame')
    library = peer.load_sdl()
    library.SDL_JoystickSetVirtualHat.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint8]
    return library


def test_game_controller_layout_and_hot_plug(peer, sdl):
    gamepad = SdlGamepad('game_controller', 0, NAME, deadzone=0.05)
    try:
        result = gamepad.poll(scan=True)
        assert result.axes is None and 'no gamepad found' in result.warnings[0]
        pad = peer.VirtualPad(sdl)
        pad.attach()
        result = gamepad.poll(scan=True)
        assert result.info and gamepad.connected
        assert result.axes == [0.0] * 6 and result.buttons == [0] * 21
        sdl.SDL_JoystickSetVirtualAxis(pad.handle, 1, 32767)   # left stick fully down
        sdl.SDL_JoystickSetVirtualAxis(pad.handle, 4, 32767)   # left trigger fully pressed
        sdl.SDL_JoystickSetVirtualButton(pad.handle, 3, 1)     # Y
        result = gamepad.poll(scan=False)
        assert result.axes[1] == pytest.approx(-1.0) and result.axes[4] == pytest.approx(-1.0)
        assert result.buttons[3] == 1 and sum(result.buttons) == 1
        pad.detach()
        result = gamepad.poll(scan=False)
        assert result.disconnected and result.axes is None and not gamepad.connected
    finally:
        gamepad.shutdown()


def test_joystick_layout_matches_joy_node(peer, sdl):
    gamepad = SdlGamepad('joystick', 0, NAME, deadzone=0.05)
    pad = peer.VirtualPad(sdl)
    try:
        index = sdl.SDL_JoystickAttachVirtual(1, 6, 15, 1)  # 6 axes, 15 buttons, 1 hat
        handle = pad.handle = sdl.SDL_JoystickOpen(index)
        for trigger in (4, 5):
            sdl.SDL_JoystickSetVirtualAxis(handle, trigger, -32768)
        sdl.SDL_JoystickSetVirtualHat(handle, 0, SDL_HAT_UP | SDL_HAT_LEFT)
        result = gamepad.poll(scan=True)
        assert gamepad.connected
        # Raw joystick order: 6 axes, then the hat as (left +1, up +1); the raw trigger axes
        # rest at -32768, which joy_node publishes as +1 (as for an Xbox pad on xpad).
        assert len(result.axes) == 8 and len(result.buttons) == 15
        assert result.axes[4:6] == [pytest.approx(1.0)] * 2
        assert result.axes[6:] == [1.0, 1.0]
    finally:
        if pad.handle is not None:
            pad.detach()
        gamepad.shutdown()
