"""The reward classifier as the actor's success detector: a real trained model file, checked
against the actor's cameras, image size and crop, decides success with its threshold.
"""
import numpy as np
import pytest

from hilserl_actor.observation_builder import BuiltObservation, ObservationBuilder
from hilserl_actor.success import ClassifierSuccess, load_classifier_success
from hilserl_learner import reward_classifier as rc
from hilserl_learner.observation import Observation
from hilserl_learner.preprocessing import CameraCrop, CropConfig, Roi
from hilserl_learner.rl.encoders import EncoderConfig
from so101_driver.kinematics import So101Kinematics

TINY = EncoderConfig(conv_channels=(4, 4), conv_patch_px=4, image_latent_dim=8,
                     spatial_features=2)
CROP = CropConfig({'front': CameraCrop(Roi(0, 0, 20, 20), 16, 16)},
                  default=CameraCrop(None, 16, 16))


@pytest.fixture(scope='module')
def model_file(tmp_path_factory):
    """A classifier trained to call frames with a bright centre a success."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, (80, 16, 16, 3), dtype=np.uint8)
    success = np.tile(np.arange(10) >= 5, 8)
    images[success, 4:12, 4:12] = 250
    config = rc.ClassifierConfig(encoder=TINY, epochs=3, steps_per_epoch=25, batch_size=16,
                                 hidden_dim=16, learning_rate=3e-3)
    result = rc.train({'front': images}, success, np.repeat(np.arange(8), 10), config,
                      log=lambda _: None)
    assert result.best['accuracy'] == 1.0
    return rc.save(tmp_path_factory.mktemp('classifier') / 'model.pt', result.model, config,
                   CROP.to_dict())


def builder(cameras=('front', 'wrist'), crop=CROP):
    return ObservationBuilder(('a', 'b', 'c', 'd', 'e', 'gripper'), cameras, crop, (),
                              So101Kinematics())


def observation(bright: bool):
    image = np.full((16, 16, 3), 30, np.uint8)
    if bright:
        image[4:12, 4:12] = 250
    return BuiltObservation(Observation(np.zeros(9, np.float32),
                                        {'front': image, 'wrist': image}),
                            0.0, np.zeros(3), np.zeros(6), {})


def test_the_classifier_decides_success_with_its_threshold(model_file):
    detector = load_classifier_success(str(model_file), 0.5, builder())
    assert detector(observation(True)) and detector.last_probability > 0.5
    assert not detector(observation(False)) and detector.last_probability < 0.5
    strict = ClassifierSuccess(detector.model, 0.99999)
    assert not strict(observation(True))
    twice = ClassifierSuccess(detector.model, 0.5, consecutive_steps=2)
    assert [twice(observation(b)) for b in (True, False, True, True, True)] == [
        False, False, False, True, True]
    twice.reset()  # a new episode
    assert not twice(observation(True)) and twice(observation(True))
    with pytest.raises(ValueError, match='threshold'):
        ClassifierSuccess(detector.model, 1.0)


def test_a_classifier_that_does_not_fit_the_actor_is_refused(model_file, tmp_path):
    with pytest.raises(ValueError, match=r"camera\(s\) \['front'\]"):
        load_classifier_success(str(model_file), 0.5, builder(cameras=('wrist',)))
    bigger = CropConfig(CROP.cameras, default=CameraCrop(None, 32, 32))
    bigger = bigger.with_camera('front', CameraCrop(Roi(0, 0, 20, 20), 32, 32))
    with pytest.raises(ValueError, match='16x16 images, the actor crops to 32x32'):
        load_classifier_success(str(model_file), 0.5, builder(crop=bigger))
    moved = CROP.with_camera('front', CameraCrop(Roi(4, 0, 20, 20), 16, 16))
    with pytest.raises(ValueError, match='cropped otherwise'):
        load_classifier_success(str(model_file), 0.5, builder(crop=moved))
    with pytest.raises(ValueError, match='does not exist'):
        load_classifier_success(str(tmp_path / 'none.pt'), 0.5, builder())
