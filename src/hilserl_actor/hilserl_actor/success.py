"""The reward classifier as the actor's success detector (ROS-free).

``ClassifierSuccess`` runs a classifier trained by ``train_reward_classifier``
(``hilserl_learner.reward_classifier``) on the observation's cropped images and reports success
when its probability reaches the threshold. ``load_classifier_success`` checks the model
against the actor before the first episode: its cameras must be among the actor's, its image
size must be the crop's output size, and it must have been trained on frames cut with the same
crop config (a classifier trained on other crops would judge images it never saw).
"""
from hilserl_actor.episode import SuccessDetector
from hilserl_actor.observation_builder import BuiltObservation, ObservationBuilder
from hilserl_learner.errors import ConfigurationError
from hilserl_learner.preprocessing import CropConfig, CropError


class ClassifierSuccess(SuccessDetector):
    """Success = the classifier's probability >= ``threshold`` for ``consecutive_steps``
    observations in a row (of the same episode).
    """

    def __init__(self, model, threshold: float, consecutive_steps: int = 1):
        """``model``: a ``hilserl_learner.reward_classifier.ClassifierModel``."""
        if not 0.0 < threshold < 1.0:
            raise ValueError(f'reward classifier threshold must be in (0, 1), got {threshold}')
        if consecutive_steps < 1:
            raise ValueError(f'consecutive_steps must be >= 1, got {consecutive_steps}')
        self.model = model
        self.threshold = threshold
        self.consecutive_steps = consecutive_steps
        self.last_probability: float | None = None
        """The probability of the latest observation judged (for logs and diagnostics)."""
        self._run = 0

    def __call__(self, observation: BuiltObservation) -> bool:
        self.last_probability = self.model.probability(observation.observation.images)
        self._run = self._run + 1 if self.last_probability >= self.threshold else 0
        return self._run >= self.consecutive_steps

    def reset(self) -> None:
        self._run = 0


def load_classifier_success(path: str, threshold: float, builder: ObservationBuilder,
                            consecutive_steps: int = 1) -> ClassifierSuccess:
    """Load and check the classifier at ``path``; ValueError saying what does not fit."""
    from hilserl_learner import reward_classifier  # torch: only when a classifier is used

    try:
        model = reward_classifier.load(path)
    except ConfigurationError as error:
        raise ValueError(f'reward_classifier_path: {error}') from error
    missing = [c for c in model.camera_names if c not in builder.camera_names]
    if missing:
        raise ValueError(f'reward classifier {path} needs camera(s) {missing}; the actor has '
                         f'{list(builder.camera_names)}')
    size = builder.spec().image_size
    if tuple(model.image_size) != tuple(size):
        raise ValueError(f'reward classifier {path} takes {model.image_size[0]}x'
                         f'{model.image_size[1]} images, the actor crops to {size[0]}x{size[1]}')
    if model.crop is not None:
        try:
            trained = CropConfig.from_dict(model.crop, f'reward classifier {path}: crop')
        except CropError as error:
            raise ValueError(str(error)) from error
        differ = [name for name in model.camera_names
                  if trained.camera(name) != builder.crop.camera(name)]
        if differ:
            raise ValueError(
                f'reward classifier {path} was trained on frames cropped otherwise than the '
                f'actor crops camera(s) {differ} (trained: '
                f'{[trained.camera(n) for n in differ]}, actor: '
                f'{[builder.crop.camera(n) for n in differ]}): use the crop config it was '
                'trained with (crop_config_file) or retrain it')
    return ClassifierSuccess(model, threshold, consecutive_steps)
