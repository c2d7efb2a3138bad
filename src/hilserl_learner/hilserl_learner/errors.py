"""Exceptions of the learner. The node turns them into a failed transition, a counter or a log."""


class LearnerError(Exception):
    """Base class of every learner failure."""


class ConfigurationError(LearnerError):
    """Parameters that cannot work together (e.g. a frozen trunk without a checkpoint file)."""


class InvalidTransitionError(LearnerError):
    """A transition failed validation; ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, message: str):
        super().__init__(f'{reason}: {message}')
        self.reason = reason


class WeightsError(LearnerError):
    """A policy weights payload does not match its checksum, format or configuration."""


class TrainingDivergedError(LearnerError):
    """Gradient steps kept producing NaN or inf losses or gradients; training stopped."""


class CheckpointError(LearnerError):
    """A checkpoint is missing, incomplete or does not match the configuration."""


class DatasetError(LearnerError):
    """Demonstrations could not be loaded."""


class DemoWriteError(LearnerError):
    """A demonstration bag could not be written (the disk is fine: OSError covers that)."""
