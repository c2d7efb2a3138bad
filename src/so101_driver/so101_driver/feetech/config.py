"""Configuration of the real (Feetech STS3215 bus) backend."""
import dataclasses

from so101_driver.feetech.calibration import default_calibration_path
from so101_driver.model_files import JOINT_NAMES

SUPPORTED_BAUDRATES = (4_800, 9_600, 14_400, 19_200, 38_400, 57_600, 115_200, 128_000,
                       250_000, 500_000, 1_000_000)
"""Baud rates an STS3215 can be set to (LeRobot's scan list)."""
CALIBRATION_MISMATCH_POLICIES = ('error', 'write')


def _default_servo_ids() -> dict[str, int]:
    return {name: index + 1 for index, name in enumerate(JOINT_NAMES)}


def _default_calibration_file() -> str:
    return str(default_calibration_path())


@dataclasses.dataclass(frozen=True)
class FeetechBackendConfig:
    """Everything the real backend needs; validated on construction (ValueError names the field).

    The driver node builds it as
    ``FeetechBackendConfig(port=..., baudrate=..., calibration_file=...)``.
    """

    port: str = '/dev/ttyACM0'
    """Serial port of the bus adapter (or a virtual bus pty / its symlink, or a pyserial URL)."""
    baudrate: int = 1_000_000
    """Bus baud rate; the STS3215 default is 1 000 000."""
    calibration_file: str = dataclasses.field(default_factory=_default_calibration_file)
    """LeRobot calibration JSON (default: LeRobot's so101_follower location, id so101_follower)."""
    servo_ids: dict[str, int] = dataclasses.field(default_factory=_default_servo_ids)
    """Servo id of each joint (LeRobot's SO-101 follower: shoulder_pan..gripper = 1..6)."""
    read_retries: int = 2
    """Retries of a transaction with a missing or corrupted reply (LeRobot uses 2)."""
    timeout_margin_s: float = 0.05
    """Added to the wire time of each transaction's deadline (USB-serial latency)."""
    expected_model_number: int = 777
    """Model_Number every servo must report (STS3215 = 777)."""
    return_delay_time: int = 0
    """Return_Delay_Time register (2 us units); LeRobot writes 0 (factory 250 = 500 us)."""
    acceleration: int = 254
    """Acceleration and Maximum_Acceleration registers (LeRobot: 254)."""
    p_coefficient: int = 16
    """Position loop P gain (LeRobot's SO-101 follower: 16, factory 32)."""
    i_coefficient: int = 0
    d_coefficient: int = 32
    gripper_max_torque: int = 500
    """Gripper Max_Torque_Limit and Torque_Limit, 0..1000 = 0..100 % (LeRobot: 500)."""
    gripper_protection_current: int = 250
    """Gripper Protection_Current register (LeRobot: 250)."""
    gripper_overload_torque: int = 25
    """Gripper Overload_Torque in percent (LeRobot: 25)."""
    on_calibration_mismatch: str = 'error'
    """When the servos' Homing_Offset/limits differ from the file: 'error' (refuse to connect)
    or 'write' (store the file's values in the servos, as LeRobot does after asking)."""
    disable_torque_on_close: bool = True
    """Turn the torque off when the backend closes (the arm goes limp: support it)."""

    def __post_init__(self):
        if not isinstance(self.port, str) or not self.port:
            raise ValueError('port must be a non-empty device path, e.g. /dev/ttyACM0')
        if self.baudrate not in SUPPORTED_BAUDRATES:
            raise ValueError(f'baudrate must be one of {SUPPORTED_BAUDRATES}, got {self.baudrate}')
        if not isinstance(self.calibration_file, str) or not self.calibration_file:
            raise ValueError('calibration_file must be a non-empty path')
        if set(self.servo_ids) != set(JOINT_NAMES):
            raise ValueError(f'servo_ids must name exactly the joints {JOINT_NAMES}, '
                             f'got {sorted(self.servo_ids)}')
        ids = list(self.servo_ids.values())
        if len(set(ids)) != len(ids) or not all(
                isinstance(i, int) and 0 <= i <= 253 for i in ids):
            raise ValueError(f'servo_ids must be distinct integers in 0..253, got {ids}')
        if not 0 <= self.read_retries <= 10:
            raise ValueError(f'read_retries must be in 0..10, got {self.read_retries}')
        if not 0 < self.timeout_margin_s <= 1.0:
            raise ValueError(f'timeout_margin_s must be in (0, 1], got {self.timeout_margin_s}')
        for field, high in (('return_delay_time', 254), ('acceleration', 254),
                            ('p_coefficient', 254), ('i_coefficient', 254),
                            ('d_coefficient', 254), ('gripper_max_torque', 1000),
                            ('gripper_protection_current', 1000),
                            ('gripper_overload_torque', 100)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
                raise ValueError(f'{field} must be an integer in 0..{high}, got {value!r}')
        if self.on_calibration_mismatch not in CALIBRATION_MISMATCH_POLICIES:
            raise ValueError(f'on_calibration_mismatch must be one of '
                             f'{CALIBRATION_MISMATCH_POLICIES}, '
                             f'got {self.on_calibration_mismatch!r}')

    @property
    def ordered_ids(self) -> tuple[int, ...]:
        """Servo ids in the driver's joint order."""
        return tuple(self.servo_ids[name] for name in JOINT_NAMES)
