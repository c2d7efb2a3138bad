"""Fixtures of the so101_driver tests: a video file that stands in for a camera (real OpenCV
capture, no hardware)."""
import pathlib

import cv2
import numpy as np
import pytest

RGB = (200, 50, 10)
WIDTH, HEIGHT = 64, 48


def write_video(path: pathlib.Path, frames: int = 10, fps: float = 20.0) -> pathlib.Path:
    """An MJPG .avi of solid ``RGB`` frames with a white square moving left to right."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), 'OpenCV cannot write MJPG video'
    for index in range(frames):
        frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        frame[:] = RGB[::-1]  # OpenCV writes BGR
        frame[4:12, 4 + 4 * index:12 + 4 * index] = 255
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def video_file(tmp_path):
    """A 10-frame, 64x48 MJPG video file (solid RGB colour, moving white square)."""
    return write_video(tmp_path / 'camera.avi')
