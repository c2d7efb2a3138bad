"""OpenCV camera capture with reconnection, for the camera node (no ROS).

``OpenCvCamera`` wraps one ``cv2.VideoCapture`` (camera index, device path, video file or
stream URL) and returns RGB frames of the requested size. ``CameraStream`` reads it in a
thread of its own at no more than ``fps``, hands every frame to a callback, and when the camera
disappears keeps trying to reopen it every ``reconnect_interval_s``. A video file plays in a
loop: at its end it is reopened (so a deleted or renamed file shows up as a lost camera).
"""
from collections.abc import Callable
import dataclasses
import os
import threading
import time

import cv2
import numpy as np

from so101_driver.errors import CameraError
from so101_driver.params import CameraParams


def parse_device(device: str) -> int | str:
    """'2' -> camera index 2; anything else is a path or URL."""
    text = device.strip()
    return int(text) if text.isdigit() else text


class OpenCvCamera:
    """One OpenCV video source delivering (height, width, 3) uint8 RGB frames."""

    def __init__(self, params: CameraParams):
        self.params = params
        self.source = parse_device(params.device)
        self.is_file = isinstance(self.source, str) and os.path.isfile(self.source)
        self._capture = None

    @property
    def is_open(self) -> bool:
        return self._capture is not None

    def open(self) -> None:
        """Open the source; raise CameraError with the reason."""
        self.release()
        if isinstance(self.source, str) and '://' not in self.source \
                and not os.path.exists(self.source):
            raise CameraError(f'camera {self.params.camera_name}: {self.source} does not exist')
        capture = cv2.VideoCapture(self.source)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f'camera {self.params.camera_name}: OpenCV cannot open '
                              f'{self.source!r}')
        if not self.is_file:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.params.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.params.height)
            capture.set(cv2.CAP_PROP_FPS, self.params.fps)
            timeout_ms = self.params.read_timeout_s * 1000.0
            capture.set(cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms)  # where supported
        self._capture = capture

    def read(self) -> np.ndarray | None:
        """The next RGB frame, or None at the end of a video file. Raises CameraError."""
        if self._capture is None:
            raise CameraError(f'camera {self.params.camera_name} is not open')
        ok, frame = self._capture.read()
        if not ok or frame is None:
            if self.is_file:
                return None
            raise CameraError(f'camera {self.params.camera_name}: no frame from '
                              f'{self.source!r} (disconnected?)')
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        else:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if frame.shape[:2] != (self.params.height, self.params.width):
            frame = cv2.resize(frame, (self.params.width, self.params.height),
                               interpolation=cv2.INTER_AREA)
        return frame

    def release(self) -> None:
        if self._capture is not None:
            capture, self._capture = self._capture, None
            capture.release()


@dataclasses.dataclass(frozen=True)
class CameraStatus:
    connected: bool
    frames: int
    reconnects: int
    last_error: str
    fps: float
    """Recent frames per second (a running average of the frame intervals)."""
    last_frame_age_s: float
    """Seconds since the last frame (inf before the first)."""


class CameraStream:
    """Read a camera in a thread, pace to ``fps``, reconnect when it disappears.

    ``on_frame(frame)`` gets every RGB frame; ``on_event(kind, message)`` gets 'opened',
    'lost', 'open_failed' and 'reconnected', from the capture thread.
    """

    def __init__(self, camera: OpenCvCamera, on_frame: Callable[[np.ndarray], None],
                 on_event: Callable[[str, str], None]):
        self.camera = camera
        self.params = camera.params
        self.on_frame = on_frame
        self.on_event = on_event
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._frames = 0
        self._reconnects = 0
        self._last_error = ''
        self._connected = False
        self._last_frame_s = -np.inf
        self._interval_s = np.inf

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f'camera_{self.params.camera_name}')
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop the capture thread; True when it ended within ``timeout_s``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return False
            self._thread = None
        return True

    def status(self) -> CameraStatus:
        with self._lock:
            now = time.monotonic()
            age = now - self._last_frame_s
            connected = self._connected and age <= self.params.read_timeout_s
            fps = 1.0 / self._interval_s if age <= max(1.0, 2 * self._interval_s) else 0.0
            return CameraStatus(connected, self._frames, self._reconnects, self._last_error,
                                fps, age)

    def _run(self) -> None:
        period = 1.0 / self.params.fps
        next_frame_s = time.monotonic()
        ever_connected = False
        while not self._stop.is_set():
            if not self.camera.is_open:
                try:
                    self.camera.open()
                except CameraError as error:
                    self._set_state(False, str(error))
                    self.on_event('open_failed', str(error))
                    self._stop.wait(self.params.reconnect_interval_s)
                    continue
            try:
                frame = self.camera.read()
            except CameraError as error:
                self.camera.release()
                self._set_state(False, str(error))
                self.on_event('lost', str(error))
                self._stop.wait(self.params.reconnect_interval_s)
                continue
            if frame is None:  # end of a video file: play it again from the start
                self.camera.release()
                if not self._connected:  # reopened, and still no frame: an empty file
                    self._set_state(False, f'camera {self.params.camera_name}: '
                                           f'{self.camera.source!r} has no frames')
                    self._stop.wait(self.params.reconnect_interval_s)
                continue
            if not self._connected:
                kind = 'reconnected' if ever_connected else 'opened'
                with self._lock:
                    self._reconnects += int(ever_connected)
                self.on_event(kind, f'camera {self.params.camera_name}: {kind} '
                                    f'{self.camera.source!r}')
                ever_connected = True
            self._count_frame()
            self.on_frame(frame)
            now = time.monotonic()
            next_frame_s = max(next_frame_s + period, now - period)
            if next_frame_s > now:
                self._stop.wait(next_frame_s - now)
        self.camera.release()

    def _set_state(self, connected: bool, error: str = '') -> None:
        with self._lock:
            self._connected = connected
            if error:
                self._last_error = error

    def _count_frame(self) -> None:
        with self._lock:
            now = time.monotonic()
            self._connected = True
            self._frames += 1
            interval = now - self._last_frame_s
            if interval < 5.0:
                self._interval_s = interval if not np.isfinite(self._interval_s) \
                    else 0.8 * self._interval_s + 0.2 * interval
            self._last_frame_s = now
