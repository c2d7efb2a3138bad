"""The installed roi_crop command: end to end on a saved PNG, and on a live camera topic."""
import array
import os
import subprocess
import time

import numpy as np
import pytest

from hilserl_actor.roi_tool import read_png, write_png
from hilserl_learner.preprocessing import CameraCrop, Roi, load_crop_config
from hilserl_testing.processes import executable_path

pytestmark = pytest.mark.ros


def frame(width=80, height=60):
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(width)[None, :] * 3
    image[..., 1] = np.arange(height)[:, None] * 4
    return image


def roi_crop(*args, timeout_s=60):
    env = {**os.environ, 'DISPLAY': ''}
    return subprocess.run([str(executable_path('hilserl_actor', 'roi_crop')), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout_s, env=env)


def test_cli_on_a_saved_png(tmp_path):
    write_png(tmp_path / 'front.png', frame())
    output = tmp_path / 'config' / 'crop.yaml'
    done = roi_crop('--cameras', 'front', '--image', f'front={tmp_path / "front.png"}',
                    '--roi', 'front=10,5,40,30', '--output-size', '32x24', '--output', output,
                    '--preview-dir', tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'front: ROI x=10 y=5 40x30 of the 80x60 frame -> 32x24' in done.stdout
    assert load_crop_config(output).camera('front') == CameraCrop(Roi(10, 5, 40, 30), 32, 24)
    assert read_png(tmp_path / 'front_crop.png').shape == (24, 32, 3)
    # headless OpenCV, no display: a camera without --roi is refused with the way out
    missing = roi_crop('--cameras', 'front', '--image', f'front={tmp_path / "front.png"}',
                       '--output', tmp_path / 'other.yaml')
    assert missing.returncode == 2 and '--roi NAME=X,Y,W,H' in missing.stderr
    assert not (tmp_path / 'other.yaml').exists()


def test_live_topic_capture(ros_client, tmp_path):
    from sensor_msgs.msg import Image

    from hilserl_testing.client import SENSOR

    publisher = ros_client.publisher(Image, '/cameras/front/image_raw', SENSOR)
    image = frame()
    message = Image(height=60, width=80, encoding='bgr8', step=240)
    message.data = array.array('B', image[:, :, ::-1].tobytes())
    message.header.frame_id = 'front_camera'
    timer = ros_client.node.create_timer(0.05, lambda: publisher.publish(message))
    output = tmp_path / 'crop.yaml'
    process = subprocess.Popen(
        [str(executable_path('hilserl_actor', 'roi_crop')), '--cameras', 'front',
         '--roi', 'front=0,0,80,60', '--output-size', '40x30', '--output', str(output),
         '--save-frames', str(tmp_path), '--timeout-s', '20'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 40
    while process.poll() is None and time.monotonic() < deadline:
        ros_client.spin_for(0.1)
    ros_client.node.destroy_timer(timer)
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert (read_png(tmp_path / 'front.png') == image).all()  # bgr8 turned into RGB
    assert load_crop_config(output).camera('front') == CameraCrop(Roi(0, 0, 80, 60), 40, 30)
    assert 'of the 80x60 frame' in stdout
    # nobody publishes the wrist camera: a clear error after the timeout
    failed = roi_crop('--cameras', 'wrist', '--roi', 'wrist=0,0,8,8', '--output',
                      tmp_path / 'wrist.yaml', '--timeout-s', '1')
    assert failed.returncode == 1 and '/cameras/wrist/image_raw' in failed.stderr
