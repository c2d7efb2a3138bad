"""STS3215 control table: the registers LeRobot uses for the SO-101, with sizes and encodings.

Addresses and sizes follow the Feetech STS/SMS memory table as LeRobot transcribes it
(``STS_SMS_SERIES_CONTROL_TABLE``). Multi-byte values are little-endian. Registers with a
``sign_bit`` are sign-magnitude encoded (bit 15 for positions and velocities, bit 11 for the
homing offset, bit 10 for the load). ``eeprom`` registers persist across power cycles when the
``Lock`` register is 0.
"""
import dataclasses

from so101_driver.feetech import protocol

STS3215_MODEL_NUMBER = 777
TICKS_PER_TURN = 4096
MAX_TICK = TICKS_PER_TURN - 1
HALF_TURN_TICK = 2047
"""LeRobot's half-turn homing target: Homing_Offset = present - 2047 puts the mid pose here."""
HOMING_OFFSET_LIMIT = 2047
"""|Homing_Offset| must fit 11 bits of magnitude."""
LOAD_FULL_SCALE = 1000
"""Present_Load magnitude at 100 % of the maximum torque (unit 0.1 %)."""
VELOCITY_TICKS_PER_UNIT = 1.0
"""Present_Velocity counts encoder steps per second (50 steps/s = 0.732 rpm)."""
VOLTAGE_V_PER_UNIT = 0.1
CURRENT_A_PER_UNIT = 0.0065
"""Present_Current unit as commonly documented for the STS3215 (~6.5 mA); unverified."""

BAUDRATE_INDEX = {1_000_000: 0, 500_000: 1, 250_000: 2, 128_000: 3, 115_200: 4}
"""Baud_Rate register values on which LeRobot and Feetech's tables agree."""


@dataclasses.dataclass(frozen=True)
class Register:
    """One entry of the memory table."""

    name: str
    address: int
    size: int
    sign_bit: int | None = None
    eeprom: bool = False
    read_only: bool = False

    def encode(self, value: int) -> bytes:
        """Host value -> wire bytes (sign-magnitude where applicable), range-checked."""
        raw = int(value)
        if self.sign_bit is not None:
            raw = protocol.encode_sign_magnitude(raw, self.sign_bit)
        elif raw < 0:
            raise ValueError(f'{self.name}: negative value {value} for an unsigned register')
        try:
            return protocol.to_le(raw, self.size)
        except ValueError as error:
            raise ValueError(f'{self.name}: {error}') from None

    def decode(self, data: bytes | bytearray) -> int:
        """Wire bytes -> host value."""
        raw = protocol.from_le(data)
        return raw if self.sign_bit is None else protocol.decode_sign_magnitude(raw, self.sign_bit)


_R = Register
REGISTERS: tuple[Register, ...] = (
    # EEPROM
    _R('Firmware_Major_Version', 0, 1, eeprom=True, read_only=True),
    _R('Firmware_Minor_Version', 1, 1, eeprom=True, read_only=True),
    _R('Model_Number', 3, 2, eeprom=True, read_only=True),
    _R('ID', 5, 1, eeprom=True),
    _R('Baud_Rate', 6, 1, eeprom=True),
    _R('Return_Delay_Time', 7, 1, eeprom=True),
    _R('Response_Status_Level', 8, 1, eeprom=True),
    _R('Min_Position_Limit', 9, 2, eeprom=True),
    _R('Max_Position_Limit', 11, 2, eeprom=True),
    _R('Max_Temperature_Limit', 13, 1, eeprom=True),
    _R('Max_Voltage_Limit', 14, 1, eeprom=True),
    _R('Min_Voltage_Limit', 15, 1, eeprom=True),
    _R('Max_Torque_Limit', 16, 2, eeprom=True),
    _R('Phase', 18, 1, eeprom=True),
    _R('Unloading_Condition', 19, 1, eeprom=True),
    _R('LED_Alarm_Condition', 20, 1, eeprom=True),
    _R('P_Coefficient', 21, 1, eeprom=True),
    _R('D_Coefficient', 22, 1, eeprom=True),
    _R('I_Coefficient', 23, 1, eeprom=True),
    _R('Minimum_Startup_Force', 24, 2, eeprom=True),
    _R('CW_Dead_Zone', 26, 1, eeprom=True),
    _R('CCW_Dead_Zone', 27, 1, eeprom=True),
    _R('Protection_Current', 28, 2, eeprom=True),
    _R('Angular_Resolution', 30, 1, eeprom=True),
    _R('Homing_Offset', 31, 2, sign_bit=11, eeprom=True),
    _R('Operating_Mode', 33, 1, eeprom=True),
    _R('Protective_Torque', 34, 1, eeprom=True),
    _R('Protection_Time', 35, 1, eeprom=True),
    _R('Overload_Torque', 36, 1, eeprom=True),
    _R('Velocity_Loop_P', 37, 1, eeprom=True),
    _R('Over_Current_Protection_Time', 38, 1, eeprom=True),
    _R('Velocity_Loop_I', 39, 1, eeprom=True),
    # SRAM
    _R('Torque_Enable', 40, 1),
    _R('Acceleration', 41, 1),
    _R('Goal_Position', 42, 2, sign_bit=15),
    _R('Goal_Time', 44, 2),
    _R('Goal_Velocity', 46, 2, sign_bit=15),
    _R('Torque_Limit', 48, 2),
    _R('Lock', 55, 1),
    _R('Present_Position', 56, 2, sign_bit=15, read_only=True),
    _R('Present_Velocity', 58, 2, sign_bit=15, read_only=True),
    _R('Present_Load', 60, 2, sign_bit=10, read_only=True),
    _R('Present_Voltage', 62, 1, read_only=True),
    _R('Present_Temperature', 63, 1, read_only=True),
    _R('Status', 65, 1, read_only=True),
    _R('Moving', 66, 1, read_only=True),
    _R('Present_Current', 69, 2, read_only=True),
    _R('Goal_Position_2', 71, 2, read_only=True),
    # Factory area
    _R('Maximum_Velocity_Limit', 84, 1, eeprom=True),
    _R('Maximum_Acceleration', 85, 1, eeprom=True),
)
BY_NAME: dict[str, Register] = {register.name: register for register in REGISTERS}
EEPROM_ADDRESSES = frozenset(
    address for r in REGISTERS if r.eeprom for address in range(r.address, r.address + r.size))
READ_ONLY_ADDRESSES = frozenset(
    address for r in REGISTERS if r.read_only
    for address in range(r.address, r.address + r.size))

PHASE_ANGLE_FEEDBACK_BIT = 0x10
"""Phase bit 4; LeRobot clears it on the STS3215 so that positions stay within 0..4095."""

STATE_BLOCK_ADDRESS = BY_NAME['Present_Position'].address
STATE_BLOCK_SIZE = 6
"""Present_Position, Present_Velocity, Present_Load: one contiguous 6-byte block."""
HEALTH_BLOCK_ADDRESS = BY_NAME['Present_Voltage'].address
HEALTH_BLOCK_SIZE = 9
"""Present_Voltage (62) .. Present_Current (69-70), one read instead of four."""


def register(name: str) -> Register:
    """Look a register up by LeRobot's name; KeyError lists the valid names."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f'unknown STS3215 register {name!r}; known: {sorted(BY_NAME)}') from None


def decode_block(data: bytes, address: int, names: tuple[str, ...]) -> dict[str, int]:
    """Decode registers from a block of bytes that starts at ``address``."""
    values = {}
    for name in names:
        reg = BY_NAME[name]
        offset = reg.address - address
        values[name] = reg.decode(data[offset:offset + reg.size])
    return values
