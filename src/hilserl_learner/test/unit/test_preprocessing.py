"""The shared ROI crop: geometry, resizing, validation and the YAML config round trip."""
import numpy as np
import pytest
import yaml

from hilserl_learner.preprocessing import (
    FORMAT,
    CameraCrop,
    CropConfig,
    CropError,
    Roi,
    crop_and_resize,
    load_crop_config,
    save_crop_config,
)


def pattern(height=60, width=80) -> np.ndarray:
    """Each pixel encodes its own coordinates: R = x, G = y, B = 7."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(width)[None, :]
    image[..., 1] = np.arange(height)[:, None]
    image[..., 2] = 7
    return image


def test_roi_at_output_size_is_an_exact_crop():
    image = pattern()
    out = crop_and_resize(image, CameraCrop(Roi(10, 20, 16, 12), 16, 12))
    assert out.shape == (12, 16, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [10, 20, 7] and out[-1, -1].tolist() == [25, 31, 7]
    assert out.flags.c_contiguous and not np.shares_memory(out, image)


def test_downscale_averages_blocks_with_inter_area():
    image = pattern(32, 32)
    out = crop_and_resize(image, CameraCrop(Roi(0, 0, 32, 32), 8, 8))
    assert out.shape == (8, 8, 3)
    # INTER_AREA at an integer factor: the mean of each 4x4 block (x 0..3 -> 1.5)
    expected_x = [np.mean(range(4 * i, 4 * i + 4)) for i in range(8)]
    assert np.abs(out[0, :, 0].astype(float) - expected_x).max() <= 0.5
    assert np.all(out[..., 2] == 7)


def test_default_crop_is_the_full_frame_resized_to_128():
    image = pattern(96, 160)
    out = CropConfig().apply('anything', image)
    assert out.shape == (128, 128, 3)
    assert out[..., 2].min() == 7  # the whole frame, resized: every pixel is the image's
    assert out[0, 0, 0] < 3 and out[0, -1, 0] > 155  # left and right edges both present


def test_non_square_output_and_aspect():
    out = crop_and_resize(pattern(), CameraCrop(Roi(0, 0, 80, 60), 40, 20))
    assert out.shape == (20, 40, 3)
    assert CameraCrop(None, 40, 20).output_size == (20, 40)


def test_roi_outside_the_frame_and_bad_images_are_errors():
    with pytest.raises(CropError, match='does not fit the 80x60 frame'):
        crop_and_resize(pattern(), CameraCrop(Roi(70, 0, 20, 10)), 'front')
    with pytest.raises(CropError, match='uint8'):
        crop_and_resize(pattern().astype(np.float32), CameraCrop())
    with pytest.raises(CropError, match=r'\(H, W, 3\)'):
        crop_and_resize(pattern()[..., 0], CameraCrop())
    for bad in ((-1, 0, 5, 5), (0, 0, 0, 5), (0, 0, 5.5, 5)):
        with pytest.raises(CropError):
            Roi(*bad)
    with pytest.raises(CropError, match='output_width'):
        CameraCrop(None, 4, 128)
    assert Roi.parse(' 1, 2,3 ,4') == Roi(1, 2, 3, 4)
    with pytest.raises(CropError, match='x,y,width,height'):
        Roi.parse('1,2,3')


def test_yaml_round_trip(tmp_path):
    config = CropConfig({'front': CameraCrop(Roi(12, 34, 200, 150), 96, 64),
                         'wrist': CameraCrop(None, 128, 128)}, CameraCrop(None, 64, 64))
    path = save_crop_config(config, tmp_path / 'sub' / 'crop.yaml')
    assert path.is_file() and not (tmp_path / 'sub' / 'crop.yaml.tmp').exists()
    data = yaml.safe_load(path.read_text())
    assert data['format'] == FORMAT
    assert data['cameras']['front']['roi'] == {'x': 12, 'y': 34, 'width': 200, 'height': 150}
    assert 'roi' not in data['cameras']['wrist']
    loaded = load_crop_config(path)
    assert loaded == config
    assert loaded.camera('other') == CameraCrop(None, 64, 64)
    assert load_crop_config('') == CropConfig() and load_crop_config(None) == CropConfig()
    updated = loaded.with_camera('front', CameraCrop(Roi(0, 0, 10, 10)))
    assert updated.camera('wrist') == config.camera('wrist')


def test_bad_config_files_name_the_problem(tmp_path):
    with pytest.raises(CropError, match='no crop config at'):
        load_crop_config(tmp_path / 'absent.yaml')
    cases = {
        'format: other\n': 'format must be',
        f'format: {FORMAT}\nextra: 1\n': 'unknown keys',
        f'format: {FORMAT}\ncameras:\n  front: {{roi: {{x: 1, y: 2}}}}\n': 'cameras.front.roi',
        f'format: {FORMAT}\ncameras:\n  front: {{output: {{width: 3, height: 64}}}}\n':
            'output_width',
        f'format: {FORMAT}\ncameras:\n  front: {{roi: {{x: -1, y: 0, width: 5, height: 5}}}}\n':
            'cameras.front',
        '[unclosed\n': 'not a readable YAML',
    }
    for index, (text, match) in enumerate(cases.items()):
        path = tmp_path / f'bad{index}.yaml'
        path.write_text(text)
        with pytest.raises(CropError, match=match):
            load_crop_config(path)
