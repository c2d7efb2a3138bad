"""Exceptions of the SO-101 driver. Nodes turn them into a failed transition or a safe hold."""


class DriverError(Exception):
    """Base class of every driver failure."""


class ConfigurationError(DriverError):
    """Invalid parameters or calibration (bad file, missing joint, inconsistent range)."""


class TransportError(DriverError):
    """The serial port is missing, cannot be opened, or stopped answering."""


class ProtocolError(DriverError):
    """A servo answered with a malformed packet, the wrong id, or not at all after retries."""


class ChecksumError(ProtocolError):
    """A status packet failed its checksum (after retries)."""


class ServoMissingError(ProtocolError):
    """A configured servo id did not answer a ping."""


class WrongServoModelError(DriverError):
    """A servo answered with a model number other than the expected one (STS3215 = 777)."""


class ServoFaultError(DriverError):
    """A servo reported a hardware fault (overload, overheat, over-current, voltage)."""

    def __init__(self, message: str, joint_faults: dict[str, list[str]]):
        super().__init__(message)
        self.joint_faults = joint_faults


class CommandError(DriverError, ValueError):
    """A command was rejected: wrong length, NaN/inf, unknown joint, bad timing, or the driver
    cannot take commands now (inactive, torque off, fault).
    """


class CameraError(DriverError):
    """A camera cannot be opened, or stopped delivering frames."""
