"""The roi_crop tool's core (ROS-free): frames from PNGs or demo bags, ROI choice, config file.

``roi_crop`` (``nodes/roi_crop.py``) shows the first frame of each camera and saves each
camera's region of interest and output size into the crop config that the actor, the demo
recorder, the dataset loader and the reward classifier share
(``hilserl_learner.preprocessing``). Frames come from the live topics
``/cameras/<name>/image_raw`` (the node module), a demo bag directory (read with ``rosbags``:
the first ``/cameras/<name>/image_raw`` message of the first bag), or saved PNG files. The ROI
is chosen with the mouse in an OpenCV window when a display and a GUI-capable OpenCV are
available; otherwise (``opencv-python-headless``, no display, ``--no-gui``) it is taken from
``--roi name=x,y,w,h``, and ``--save-frames DIR`` writes the frames as PNGs to pick it from.
"""
import argparse
import os
import pathlib
import sys

import cv2
import numpy as np

from hilserl_learner.preprocessing import (
    DEFAULT_CROP_FILE,
    CameraCrop,
    CropConfig,
    CropError,
    Roi,
    crop_and_resize,
    load_crop_config,
    save_crop_config,
)

SOURCES = ('auto', 'live', 'bag', 'image', 'none')


class RoiToolError(Exception):
    """A usage or input problem; the message says what to do (exit status 2)."""


class CaptureError(RoiToolError):
    """No frame arrived from a live camera topic (exit status 1)."""


def gui_available() -> tuple[bool, str]:
    """Whether OpenCV can open a window here, and why not."""
    if not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        return False, 'no display (DISPLAY / WAYLAND_DISPLAY not set)'
    info = cv2.getBuildInformation()
    gui = next((line.split(':', 1)[1].strip() for line in info.splitlines()
                if line.strip().startswith('GUI:')), 'NONE')
    if gui.upper() in ('NONE', ''):
        return False, ('this OpenCV has no GUI backend (opencv-python-headless); install '
                       'opencv-python for the window, or pass --roi name=x,y,w,h')
    return True, gui


def parse_assignments(values, what: str) -> dict[str, str]:
    """['front=a', ...] -> {'front': 'a'}; RoiToolError on a malformed item."""
    result = {}
    for item in values or ():
        name, sep, value = item.partition('=')
        if not sep or not name or not value:
            raise RoiToolError(f'{what} {item!r}: expected NAME=VALUE')
        result[name] = value
    return result


def parse_size(text: str) -> tuple[int, int]:
    """'128x96' -> (width, height)."""
    width, sep, height = text.lower().partition('x')
    try:
        size = (int(width), int(height))
    except ValueError:
        size = None
    if not sep or size is None or min(size) < 8:
        raise RoiToolError(f'--output-size {text!r}: expected WIDTHxHEIGHT (>= 8 px each)')
    return size


def read_png(path) -> np.ndarray:
    """An image file -> RGB uint8 (H, W, 3)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise RoiToolError(f'cannot read the image {path}')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def write_png(path, rgb: np.ndarray) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)):
        raise RoiToolError(f'cannot write {path}')
    return path


def image_from_raw(encoding: str, height: int, width: int, step: int, data) -> np.ndarray:
    """A sensor_msgs/Image's fields (rgb8 / bgr8) -> RGB uint8 (H, W, 3)."""
    if encoding not in ('rgb8', 'bgr8'):
        raise RoiToolError(f'image encoding {encoding!r}: expected rgb8 or bgr8')
    rows = np.frombuffer(bytes(data), np.uint8)
    if rows.size != height * step or step < width * 3:
        raise RoiToolError(f'image of {rows.size} bytes does not fit {width}x{height}')
    image = rows.reshape(height, step)[:, :width * 3].reshape(height, width, 3)
    return np.ascontiguousarray(image[:, :, ::-1] if encoding == 'bgr8' else image)


def frames_from_bag(path, cameras, topic_prefix: str = '/cameras') -> dict[str, np.ndarray]:
    """The first frame of each camera in a rosbag2 directory (or the first bag of a directory
    of bags, as the demo recorder writes one per episode).
    """
    from rosbags.highlevel import AnyReader

    root = pathlib.Path(path).expanduser()
    candidates = [root] if (root / 'metadata.yaml').is_file() else sorted(
        p.parent for p in root.glob('*/metadata.yaml'))
    if not candidates:
        raise RoiToolError(f'{root}: no rosbag2 directory (metadata.yaml) here or below')
    wanted = {f'{topic_prefix}/{name}/image_raw': name for name in cameras}
    frames: dict[str, np.ndarray] = {}
    for bag in candidates:
        with AnyReader([bag]) as reader:
            connections = [c for c in reader.connections if c.topic in wanted]
            if not connections:  # (an empty list would mean: every connection)
                continue
            for connection, _, raw in reader.messages(connections=connections):
                name = wanted[connection.topic]
                if name in frames:
                    continue
                msg = reader.deserialize(raw, connection.msgtype)
                frames[name] = image_from_raw(msg.encoding, msg.height, msg.width, msg.step,
                                              msg.data)
                if len(frames) == len(wanted):
                    return frames
    missing = sorted(set(cameras) - set(frames))
    raise RoiToolError(f'{root}: no {", ".join(f"{topic_prefix}/{m}/image_raw" for m in missing)}'
                       ' messages in the bag(s)')


def select_roi_gui(name: str, image: np.ndarray) -> Roi | None:
    """Let the user drag a rectangle in an OpenCV window (Enter/Space accepts, c cancels)."""
    title = f'roi_crop: {name} (drag a box, Enter to accept, c to cancel)'
    x, y, w, h = cv2.selectROI(title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                               showCrosshair=True, fromCenter=False)
    cv2.destroyWindow(title)
    return Roi(int(x), int(y), int(w), int(h)) if w > 0 and h > 0 else None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='roi_crop', description='Choose the crop region of each camera and save it into '
        'the crop config shared by the actor, the demo recorder and the learner.')
    p.add_argument('--cameras', nargs='+', default=['front', 'wrist'],
                   help='camera names (topics <prefix>/<name>/image_raw; default: front wrist)')
    p.add_argument('--source', choices=SOURCES, default='auto',
                   help='where the first frames come from: live topics, a demo bag, PNG files '
                        '(--image), or none (ROIs from --roi, not checked against a frame); '
                        'auto = image or bag if given, else live')
    p.add_argument('--bag', help='demo bag directory (or a directory of bags)')
    p.add_argument('--image', nargs='+', metavar='NAME=PNG', help='saved frames, per camera')
    p.add_argument('--roi', nargs='+', metavar='NAME=X,Y,W,H',
                   help='ROIs in source pixels (skips the window for these cameras)')
    p.add_argument('--output-size', default='128x128', metavar='WxH',
                   help='output image size after the crop (default 128x128)')
    p.add_argument('--output', default=DEFAULT_CROP_FILE,
                   help='crop config file to update (default %(default)s); cameras not named '
                        'here are kept')
    p.add_argument('--replace', action='store_true', help='drop the cameras not named here')
    p.add_argument('--save-frames', metavar='DIR', help='write each first frame as DIR/NAME.png')
    p.add_argument('--preview-dir', metavar='DIR',
                   help='write each cropped, resized image as DIR/NAME_crop.png')
    p.add_argument('--topic-prefix', default='/cameras', help='camera topic prefix')
    p.add_argument('--timeout-s', type=float, default=10.0,
                   help='live source: how long to wait for each first frame')
    p.add_argument('--no-gui', action='store_true', help='never open a window')
    return p


def resolve_source(args) -> str:
    if args.source != 'auto':
        return args.source
    if args.image:
        return 'image'
    return 'bag' if args.bag else 'live'


def load_frames(args, source: str) -> dict[str, np.ndarray]:
    """Frames of every camera from an offline source ('image', 'bag', 'none')."""
    if source == 'image':
        paths = parse_assignments(args.image, '--image')
        missing = [name for name in args.cameras if name not in paths]
        if missing:
            raise RoiToolError(f'--image has no frame for {", ".join(missing)}')
        return {name: read_png(paths[name]) for name in args.cameras}
    if source == 'bag':
        if not args.bag:
            raise RoiToolError('--source bag needs --bag DIR')
        return frames_from_bag(args.bag, args.cameras, args.topic_prefix)
    return {}


def run(args, frames: dict[str, np.ndarray], out=sys.stdout,
        select=select_roi_gui) -> pathlib.Path:
    """Choose the ROIs (command line or window), check them, save the config, previews."""
    width, height = parse_size(args.output_size)
    rois = {name: Roi.parse(text) for name, text in
            parse_assignments(args.roi, '--roi').items()}
    unknown = sorted(set(rois) - set(args.cameras))
    if unknown:
        raise RoiToolError(f'--roi for {", ".join(unknown)}, which is not in --cameras')
    if args.save_frames:
        for name, image in frames.items():
            print(f'{name}: first frame saved to '
                  f'{write_png(pathlib.Path(args.save_frames) / f"{name}.png", image)}', file=out)
    need_gui = [name for name in args.cameras if name not in rois]
    if need_gui:
        gui, why = gui_available()
        if args.no_gui or not gui:
            raise RoiToolError(
                f'no ROI for {", ".join(need_gui)}: {"--no-gui" if args.no_gui else why}. '
                'Give --roi NAME=X,Y,W,H (pixels of the source frame; --save-frames DIR writes '
                'the frames to measure it on)')
        for name in need_gui:
            if name not in frames:
                raise RoiToolError(f'no frame of {name} to show')
            roi = select(name, frames[name])
            if roi is None:
                raise RoiToolError(f'{name}: selection cancelled; nothing saved')
            rois[name] = roi
    output = pathlib.Path(args.output).expanduser()
    config = CropConfig() if args.replace or not output.is_file() else load_crop_config(output)
    for name in args.cameras:
        crop = CameraCrop(rois[name], width, height)
        frame = frames.get(name)
        if frame is not None:
            crop.check_frame(frame.shape[1], frame.shape[0], name)
            if args.preview_dir:
                path = write_png(pathlib.Path(args.preview_dir) / f'{name}_crop.png',
                                 crop_and_resize(frame, crop, name))
                print(f'{name}: preview {path}', file=out)
        roi = rois[name]
        size = f' of the {frame.shape[1]}x{frame.shape[0]} frame' if frame is not None else ''
        print(f'{name}: ROI x={roi.x} y={roi.y} {roi.width}x{roi.height}{size} -> '
              f'{width}x{height}', file=out)
        config = config.with_camera(name, crop)
    path = save_crop_config(config, output)
    print(f'saved {path}; set crop_config_file: {path} for the actor and the demo recorder',
          file=out)
    return path


def main_offline(argv=None, live_capture=None, out=sys.stdout) -> int:
    """The tool's main; ``live_capture(args) -> frames`` provides the live source."""
    args = parser().parse_args(argv)
    try:
        source = resolve_source(args)
        if source == 'live':
            if live_capture is None:
                raise RoiToolError('the live source needs ROS (run the installed roi_crop)')
            frames = live_capture(args)
        else:
            frames = load_frames(args, source)
        run(args, frames, out)
    except (RoiToolError, CropError) as error:
        print(f'roi_crop: {error}', file=sys.stderr)
        return 1 if isinstance(error, CaptureError) else 2
    return 0
