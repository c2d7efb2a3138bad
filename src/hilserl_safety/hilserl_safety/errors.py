"""Typed exceptions of hilserl_safety; nodes turn them into a failed transition and a safe stop."""


class SafetyError(Exception):
    """Base class of every error raised by the safety filter and the joint-limit finder."""


class LimitsError(SafetyError):
    """The configured limits are unusable (empty intersection, wrong joints, bad URDF)."""


class LimitsFileError(LimitsError):
    """A joint-limit file (written by find_joint_limits) is missing, unreadable or malformed."""


class InsufficientMotionError(SafetyError):
    """The joint-limit finder saw too little motion to write a trustworthy limit file."""
