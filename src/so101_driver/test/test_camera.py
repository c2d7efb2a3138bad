"""OpenCV capture and reconnection without ROS, on a real video file source."""
import threading
import time

import numpy as np
import pytest

from so101_driver.camera import CameraStream, OpenCvCamera, parse_device
from so101_driver.errors import CameraError
from so101_driver.params import CameraParams

RGB = (200, 50, 10)  # the colour of conftest.write_video's frames


def test_parse_device():
    assert parse_device('0') == 0 and parse_device(' 2 ') == 2
    assert parse_device('/dev/video0') == '/dev/video0'


def test_video_file_frames_are_rgb_at_the_requested_size(video_file):
    path = video_file
    camera = OpenCvCamera(CameraParams(device=str(path), width=32, height=24))
    assert camera.is_file
    camera.open()
    frame = camera.read()
    camera.release()
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
    np.testing.assert_allclose(frame[20, 16], RGB, atol=12)


def test_missing_device_raises_a_clear_error(tmp_path):
    camera = OpenCvCamera(CameraParams(device=str(tmp_path / 'nothing.avi')))
    with pytest.raises(CameraError, match='does not exist'):
        camera.open()


def test_stream_loops_a_file_and_reconnects_after_it_disappears(video_file, tmp_path):
    path = video_file
    params = CameraParams(device=str(path), width=64, height=48, fps=50.0,
                          reconnect_interval_s=0.1)
    frames, events = [], []
    lock = threading.Lock()

    def on_frame(frame):
        with lock:
            frames.append(frame)

    stream = CameraStream(OpenCvCamera(params), on_frame, lambda k, m: events.append((k, m)))
    stream.start()
    try:
        _wait(lambda: len(frames) >= 25, 'frames across the end of the 10-frame file')
        assert [kind for kind, _ in events] == ['opened']
        assert stream.status().connected and stream.status().fps > 20
        path.rename(tmp_path / 'moved.avi')  # the camera disappears
        _wait(lambda: any(kind == 'open_failed' for kind, _ in events), 'a failed reopen')
        _wait(lambda: not stream.status().connected, 'the camera reported lost')
        assert 'does not exist' in stream.status().last_error
        (tmp_path / 'moved.avi').rename(path)  # and comes back
        count = len(frames)
        _wait(lambda: len(frames) > count + 3, 'frames after the camera came back')
        assert events[-1][0] == 'reconnected' and stream.status().reconnects == 1
    finally:
        assert stream.stop(2.0)


def _wait(predicate, what, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        time.sleep(0.01)
