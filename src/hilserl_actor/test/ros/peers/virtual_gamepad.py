"""Test peer: the real gamepad_node, with an SDL *virtual* game controller plugged into its SDL.

SDL (2.0.14+) has a virtual joystick driver (SDL_JoystickAttachVirtual); pygame does not wrap
it, so this peer calls it through ctypes on the very SDL library pygame loaded. The virtual pad
lives inside this process, where gamepad_node sees it like a USB pad: hot-plug events, SDL's
game-controller mapping, axis and button state. The product code is unchanged; this file only
adds the pad and plugs, unplugs and moves it on command.

Usage: virtual_gamepad.py COMMAND_FIFO [--ros-args ...]
Commands, one per line on the FIFO: ``attach``, ``detach``, ``axis I VALUE`` (SDL joystick
value -32768..32767; for the triggers -32768 is released), ``button I 0|1``.
"""
import ctypes
import ctypes.util
import glob
import os
import sys
import threading
import time

SDL_INIT_JOYSTICK = 0x200
SDL_JOYSTICK_TYPE_GAMECONTROLLER = 1
AXES, BUTTONS = 6, 15  # SDL maps a virtual game controller's axes/buttons in SDL order


def load_sdl():
    os.environ.setdefault('PYGAME_HIDE_SUPPORT_PROMPT', '1')
    import pygame

    bundled = glob.glob(os.path.join(os.path.dirname(pygame.__file__), os.pardir,
                                     'pygame.libs', 'libSDL2-2*'))
    sdl = ctypes.CDLL(bundled[0] if bundled else ctypes.util.find_library('SDL2'))
    sdl.SDL_WasInit.restype = ctypes.c_uint32
    sdl.SDL_WasInit.argtypes = [ctypes.c_uint32]
    sdl.SDL_JoystickAttachVirtual.argtypes = [ctypes.c_int] * 4
    sdl.SDL_JoystickOpen.restype = ctypes.c_void_p
    sdl.SDL_JoystickOpen.argtypes = [ctypes.c_int]
    sdl.SDL_JoystickClose.argtypes = [ctypes.c_void_p]
    sdl.SDL_JoystickIsVirtual.argtypes = [ctypes.c_int]
    sdl.SDL_JoystickDetachVirtual.argtypes = [ctypes.c_int]
    sdl.SDL_JoystickSetVirtualAxis.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int16]
    sdl.SDL_JoystickSetVirtualButton.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint8]
    sdl.SDL_NumJoysticks.restype = ctypes.c_int
    return sdl


class VirtualPad:
    def __init__(self, sdl):
        self.sdl = sdl
        self.handle = None

    def attach(self):
        index = self.sdl.SDL_JoystickAttachVirtual(SDL_JOYSTICK_TYPE_GAMECONTROLLER, AXES,
                                                   BUTTONS, 0)
        if index < 0:
            raise RuntimeError('SDL_JoystickAttachVirtual failed')
        self.handle = self.sdl.SDL_JoystickOpen(index)
        for trigger in (4, 5):  # released triggers
            self.sdl.SDL_JoystickSetVirtualAxis(self.handle, trigger, -32768)

    def detach(self):
        self.sdl.SDL_JoystickClose(self.handle)
        self.handle = None
        for index in range(self.sdl.SDL_NumJoysticks()):
            if self.sdl.SDL_JoystickIsVirtual(index):
                self.sdl.SDL_JoystickDetachVirtual(index)
                return

    def run(self, fifo_path):
        deadline = time.monotonic() + 30
        while not self.sdl.SDL_WasInit(SDL_INIT_JOYSTICK):  # gamepad_node initialises SDL
            if time.monotonic() > deadline:
                raise RuntimeError('SDL was never initialised')
            time.sleep(0.01)
        with open(fifo_path) as commands:
            for line in commands:
                words = line.split()
                if words == ['attach']:
                    self.attach()
                elif words == ['detach']:
                    self.detach()
                elif words[:1] == ['axis']:
                    self.sdl.SDL_JoystickSetVirtualAxis(self.handle, int(words[1]), int(words[2]))
                elif words[:1] == ['button']:
                    self.sdl.SDL_JoystickSetVirtualButton(self.handle, int(words[1]),
                                                          int(words[2]))


def main():
    fifo_path = sys.argv.pop(1)
    from hilserl_actor.nodes import gamepad_node

    pad = VirtualPad(load_sdl())
    threading.Thread(target=pad.run, args=(fifo_path,), daemon=True).start()
    return gamepad_node.main()


if __name__ == '__main__':
    raise SystemExit(main())
