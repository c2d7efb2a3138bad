"""The camera node across processes, on a real OpenCV source: a looping video file that is
renamed away (the camera disappears) and back (it reconnects)."""
import numpy as np
import pytest

pytestmark = pytest.mark.ros

NODE = '/camera_test'
RGB = (200, 50, 10)  # conftest.write_video's colour


def last_status(log):
    return log.last.status[0] if log.last is not None else None


def test_camera_node_publishes_rgb_images_and_reconnects(ros_client, ros_processes,
                                                         video_file, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from sensor_msgs.msg import CameraInfo, Image

    from hilserl_testing.client import SENSOR

    images = ros_client.subscribe(Image, '/cameras/test/image_raw', SENSOR)
    infos = ros_client.subscribe(CameraInfo, '/cameras/test/camera_info', SENSOR)
    diagnostics = ros_client.subscribe(DiagnosticArray, '/diagnostics')
    ros_processes.start_node(
        'so101_driver', 'camera_node', name='camera_test',
        parameters={'camera_name': 'test', 'device': str(video_file), 'width': 32,
                    'height': 24, 'fps': 20.0, 'reconnect_interval_s': 0.2})
    ros_client.bring_up(NODE)

    ros_client.spin_until(lambda: len(images) >= 30, 10, '30 images (past the file end)')
    image = images.last
    assert (image.width, image.height, image.encoding, image.step) == (32, 24, 'rgb8', 96)
    assert image.header.frame_id == 'test_camera'
    pixels = np.frombuffer(bytes(image.data), np.uint8).reshape(24, 32, 3)
    np.testing.assert_allclose(pixels[20, 16], RGB, atol=12)
    assert (infos.last.width, infos.last.height) == (32, 24)
    images.clear()
    ros_client.spin_for(1.0)
    assert 8 <= len(images) <= 25  # paced at about 20 fps

    video_file.rename(tmp_path / 'gone.avi')  # the camera disappears
    ros_client.spin_until(lambda: last_status(diagnostics) is not None and
                          last_status(diagnostics).level == DiagnosticStatus.ERROR, 10,
                          'an ERROR diagnostic for the lost camera')
    assert 'camera lost' in last_status(diagnostics).message
    images.clear()
    ros_client.spin_for(0.5)
    assert len(images) == 0
    assert ros_client.lifecycle_state(NODE) == 'active'

    (tmp_path / 'gone.avi').rename(video_file)  # and comes back
    ros_client.spin_until(lambda: len(images) >= 5, 10, 'images after reconnecting')
    ros_client.spin_until(lambda: last_status(diagnostics).level == DiagnosticStatus.OK, 10,
                          'an OK diagnostic after reconnecting')
    values = {v.key: v.value for v in last_status(diagnostics).values}
    assert values['reconnects'] == '1'
    assert ros_processes.stop_all() == {'camera_test': 0}


def test_missing_camera_fails_configure_with_the_reason(ros_client, ros_processes, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray

    diagnostics = ros_client.subscribe(DiagnosticArray, '/diagnostics')
    ros_processes.start_node('so101_driver', 'camera_node', name='camera_test',
                             parameters={'camera_name': 'test',
                                         'device': str(tmp_path / 'no_camera.avi')})
    assert ros_client.lifecycle_state(NODE, timeout_s=20) == 'unconfigured'
    assert not ros_client.lifecycle_transition(NODE, 'configure')
    status = ros_client.spin_until(
        lambda: next((m.status[0] for m in diagnostics.messages
                      if 'configure failed' in m.status[0].message), None), 5,
        'the configure failure on /diagnostics')
    assert 'does not exist' in status.message
    assert ros_processes.stop_all() == {'camera_test': 0}
