"""The roi_crop tool's core: frames from PNGs and demo bags, ROI checks, the saved config."""
import io
import pathlib
import types

import numpy as np
import pytest

from hilserl_actor import roi_tool
from hilserl_learner.preprocessing import CameraCrop, Roi, load_crop_config


def frame(width=64, height=48, value=0):
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(width)[None, :]
    image[..., 1] = value
    return image


def args(tmp_path, *extra):
    return roi_tool.parser().parse_args(['--output', str(tmp_path / 'crop.yaml'), *extra])


def test_parsing_helpers():
    assert roi_tool.parse_size('96x64') == (96, 64)
    with pytest.raises(roi_tool.RoiToolError, match='WIDTHxHEIGHT'):
        roi_tool.parse_size('96')
    assert roi_tool.parse_assignments(['front=1,2,3,4'], '--roi') == {'front': '1,2,3,4'}
    with pytest.raises(roi_tool.RoiToolError, match='NAME=VALUE'):
        roi_tool.parse_assignments(['front'], '--roi')


def test_gui_detection_without_a_display(monkeypatch):
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    assert roi_tool.gui_available() == (False, 'no display (DISPLAY / WAYLAND_DISPLAY not set)')
    monkeypatch.setenv('DISPLAY', ':0')
    available, why = roi_tool.gui_available()
    import cv2
    if 'GUI:                           NONE' in cv2.getBuildInformation():
        assert not available and 'opencv-python-headless' in why


def test_command_line_rois_are_checked_saved_and_merged(tmp_path):
    frames = {'front': frame(), 'wrist': frame(32, 32)}
    out = io.StringIO()
    path = roi_tool.run(args(tmp_path, '--roi', 'front=8,4,40,40', 'wrist=0,0,32,32',
                             '--output-size', '16x16', '--preview-dir', str(tmp_path / 'p'),
                             '--save-frames', str(tmp_path / 'f')), frames, out)
    config = load_crop_config(path)
    assert config.camera('front') == CameraCrop(Roi(8, 4, 40, 40), 16, 16)
    preview = roi_tool.read_png(tmp_path / 'p' / 'front_crop.png')
    assert preview.shape == (16, 16, 3)
    assert preview[0, 0, 0] == pytest.approx(9, abs=2)  # x = 8..10 averaged
    assert (roi_tool.read_png(tmp_path / 'f' / 'front.png') == frames['front']).all()
    assert 'front: ROI x=8 y=4 40x40 of the 64x48 frame -> 16x16' in out.getvalue()
    # a second run for one camera keeps the other
    roi_tool.run(args(tmp_path, '--cameras', 'front', '--roi', 'front=0,0,10,10'),
                 {'front': frame()}, io.StringIO())
    config = load_crop_config(path)
    assert config.camera('front').roi == Roi(0, 0, 10, 10)
    assert config.camera('wrist') == CameraCrop(Roi(0, 0, 32, 32), 16, 16)
    roi_tool.run(args(tmp_path, '--cameras', 'front', '--roi', 'front=0,0,10,10',
                      '--replace'), {'front': frame()}, io.StringIO())
    assert set(load_crop_config(path).cameras) == {'front'}


def test_problems_are_reported(tmp_path, monkeypatch):
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    with pytest.raises(roi_tool.RoiToolError, match='no ROI for wrist'):
        roi_tool.run(args(tmp_path, '--roi', 'front=0,0,8,8'), {'front': frame()})
    with pytest.raises(Exception, match='does not fit the 64x48 frame'):
        roi_tool.run(args(tmp_path, '--cameras', 'front', '--roi', 'front=40,0,40,10'),
                     {'front': frame()})
    with pytest.raises(roi_tool.RoiToolError, match='not in --cameras'):
        roi_tool.run(args(tmp_path, '--cameras', 'front', '--roi', 'front=0,0,8,8',
                          'side=0,0,8,8'), {'front': frame()})
    assert not (tmp_path / 'crop.yaml').exists()


def test_the_window_is_used_when_a_gui_is_there(tmp_path, monkeypatch):
    monkeypatch.setattr(roi_tool, 'gui_available', lambda: (True, 'GTK'))
    shown = []

    def select(name, image):
        shown.append((name, image.shape))
        return Roi(1, 2, 20, 10)

    roi_tool.run(args(tmp_path, '--cameras', 'front'), {'front': frame()}, io.StringIO(),
                 select=select)
    assert shown == [('front', (48, 64, 3))]
    assert load_crop_config(tmp_path / 'crop.yaml').camera('front').roi == Roi(1, 2, 20, 10)


def write_bag(path: pathlib.Path, frames: dict):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    types_ = types.SimpleNamespace(**{n.split('/')[-1]: store.types[n] for n in (
        'sensor_msgs/msg/Image', 'std_msgs/msg/Header', 'builtin_interfaces/msg/Time')})
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        for index, (name, image) in enumerate(frames.items()):
            connection = writer.add_connection(f'/cameras/{name}/image_raw',
                                               'sensor_msgs/msg/Image', typestore=store)
            header = types_.Header(stamp=types_.Time(sec=index, nanosec=0), frame_id=name)
            bgr = image[:, :, ::-1] if name == 'wrist' else image
            message = types_.Image(header=header, height=image.shape[0], width=image.shape[1],
                                   encoding='bgr8' if name == 'wrist' else 'rgb8',
                                   is_bigendian=0, step=image.shape[1] * 3,
                                   data=np.ascontiguousarray(bgr).reshape(-1))
            writer.write(connection, index * 1000,
                         store.serialize_cdr(message, 'sensor_msgs/msg/Image'))


def test_first_frames_from_a_demo_bag(tmp_path):
    frames = {'front': frame(value=50), 'wrist': frame(32, 24, value=90)}
    write_bag(tmp_path / 'bags' / 'episode_000', frames)
    loaded = roi_tool.frames_from_bag(tmp_path / 'bags', ['front', 'wrist'])
    assert (loaded['front'] == frames['front']).all()
    assert (loaded['wrist'] == frames['wrist']).all()  # bgr8 converted to RGB
    with pytest.raises(roi_tool.RoiToolError, match='/cameras/side/image_raw'):
        roi_tool.frames_from_bag(tmp_path / 'bags', ['side'])
    with pytest.raises(roi_tool.RoiToolError, match='no rosbag2 directory'):
        roi_tool.frames_from_bag(tmp_path, ['front'])
