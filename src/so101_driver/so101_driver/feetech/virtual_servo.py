"""One emulated STS3215: memory table, EEPROM lock, motor model and fault injection.

The motor model is a position servo: while torque is on, the encoder position tracks
Goal_Position (clamped to the position limits) with a first-order response of time constant
``time_constant_s``, a speed limit and the Acceleration register's acceleration limit.
Present_Load follows the tracking error (plus an optional static load, e.g. gravity), the
temperature rises slowly with the load, and Present_Current follows the load. With torque off
the joint stays where it is unless a "hand" moves it (``move_by_hand`` or the hand sweep).
Positions are kept as the raw encoder angle; Present_Position = raw - Homing_Offset, wrapped to
0..4095 as on an STS3215 with Phase bit 4 cleared.
"""
import dataclasses
import math

from so101_driver.feetech import control_table as ct

REG = ct.BY_NAME

FACTORY_DEFAULTS: dict[str, int] = {
    # Emulator defaults: the documented registers at plausible factory values (the real
    # factory settings vary with the firmware; these are not measurements).
    'Firmware_Major_Version': 3, 'Firmware_Minor_Version': 10,
    'Model_Number': ct.STS3215_MODEL_NUMBER, 'Baud_Rate': 0, 'Return_Delay_Time': 250,
    'Response_Status_Level': 1, 'Min_Position_Limit': 0, 'Max_Position_Limit': ct.MAX_TICK,
    'Max_Temperature_Limit': 70, 'Max_Voltage_Limit': 140, 'Min_Voltage_Limit': 40,
    'Max_Torque_Limit': 1000, 'Phase': 0x1C, 'Unloading_Condition': 44,
    'LED_Alarm_Condition': 47, 'P_Coefficient': 32, 'D_Coefficient': 32, 'I_Coefficient': 0,
    'Minimum_Startup_Force': 16, 'CW_Dead_Zone': 1, 'CCW_Dead_Zone': 1,
    'Protection_Current': 500, 'Angular_Resolution': 1, 'Homing_Offset': 0,
    'Operating_Mode': 0, 'Protective_Torque': 20, 'Protection_Time': 200,
    'Overload_Torque': 80, 'Velocity_Loop_P': 10, 'Over_Current_Protection_Time': 200,
    'Velocity_Loop_I': 200, 'Torque_Enable': 0, 'Acceleration': 0, 'Goal_Position': 0,
    'Goal_Time': 0, 'Goal_Velocity': 0, 'Torque_Limit': 1000, 'Lock': 0,
    'Maximum_Velocity_Limit': 0, 'Maximum_Acceleration': 0,
}
MEMORY_SIZE = 256


@dataclasses.dataclass
class MotorModel:
    """Parameters of the emulated motor (per servo)."""

    max_speed_ticks_s: float = 3000.0
    """About 264 deg/s, the order of an STS3215 at 12 V without load."""
    time_constant_s: float = 0.04
    """First-order tracking time constant toward the goal."""
    load_per_tick: float = 4.0
    """Present_Load units (0.1 %) per tick of tracking error."""
    static_load: float = 0.0
    """Constant load with torque on (0.1 % units), e.g. holding against gravity."""
    supply_voltage_v: float = 12.0
    ambient_temperature_c: float = 30.0
    heating_c_per_s_at_full_load: float = 0.5
    cooling_per_s: float = 0.01
    stall_current_a: float = 2.7


@dataclasses.dataclass
class FaultInjection:
    """What the test or the CLI asked this servo to get wrong."""

    silent: bool = False
    """Never answer (a disconnected servo)."""
    corrupt_next: int = 0
    """Corrupt the checksum of this many next replies."""
    corrupt_probability: float = 0.0
    """Corrupt each reply with this probability (the bus's seeded RNG)."""
    error_bits: int = 0
    """Error bits reported in every status packet and in the Status register."""


@dataclasses.dataclass
class HandSweep:
    """A simulated person moving a limp joint back and forth (for calibration runs)."""

    amplitude_ticks: float = 0.0
    """Half the swept range; 0 disables the sweep."""
    period_s: float = 2.0
    delay_s: float = 0.5
    """How long the joint stays still after a write of Torque_Enable = 0 or of Homing_Offset
    (a calibration tool recording the middle pose) before the sweep starts around that pose."""


class VirtualServo:
    """Memory and physics of one servo; the bus serialises access (not thread-safe itself)."""

    def __init__(self, servo_id: int, *, raw_position: float = 2048.0,
                 model: MotorModel | None = None, now: float = 0.0):
        self.memory = bytearray(MEMORY_SIZE)
        for name, value in FACTORY_DEFAULTS.items():
            self.set(name, value)
        self.set('ID', servo_id)
        self.persisted = bytes(self.memory)
        self.model = model or MotorModel()
        self.faults = FaultInjection()
        self.raw_position = float(raw_position)
        self.velocity = 0.0
        self.temperature_c = self.model.ambient_temperature_c
        self.load = 0.0
        self.pending_reg_write: tuple[int, bytes] | None = None
        self.hand_sweep = HandSweep()
        self._time = now
        self._limp_since = now
        self._limp_center_raw = self.raw_position
        self._refresh_sensors()
        self.set('Goal_Position', self.get('Present_Position'))

    # --- registers -------------------------------------------------------------------------
    @property
    def servo_id(self) -> int:
        return self.memory[REG['ID'].address]

    def get(self, name: str) -> int:
        reg = REG[name]
        return reg.decode(self.memory[reg.address:reg.address + reg.size])

    def set(self, name: str, value: int) -> None:
        """Set a register directly (no lock or read-only checks): for tests and the model."""
        reg = REG[name]
        self.memory[reg.address:reg.address + reg.size] = reg.encode(value)

    def read_bytes(self, address: int, size: int) -> bytes:
        return bytes(self.memory[address:address + size]).ljust(size, b'\0')

    def write_bytes(self, address: int, data: bytes) -> None:
        """A WRITE from the bus: read-only bytes are ignored; EEPROM persists if unlocked."""
        torque_before = self.get('Torque_Enable')
        unlocked = self.get('Lock') == 0
        for offset, byte in enumerate(data):
            address_i = address + offset
            if address_i >= MEMORY_SIZE or address_i in ct.READ_ONLY_ADDRESSES:
                continue
            self.memory[address_i] = byte
        if unlocked:
            persisted = bytearray(self.persisted)
            for address_i in range(address, min(address + len(data), MEMORY_SIZE)):
                if address_i in ct.EEPROM_ADDRESSES:
                    persisted[address_i] = self.memory[address_i]
            self.persisted = bytes(persisted)
        torque_after = self.get('Torque_Enable')
        if torque_after and not torque_before:
            self.velocity = 0.0
        touched = range(address, address + len(data))
        homing = REG['Homing_Offset'].address
        if not torque_after and (homing in touched or REG['Torque_Enable'].address in touched):
            # The simulated hand starts over (after a delay) around the present pose.
            self._limp_since = self._time
            self._limp_center_raw = self.raw_position

    def power_cycle(self) -> None:
        """Lose SRAM, reload EEPROM from what was persisted (written while unlocked)."""
        memory = bytearray(self.persisted)
        for reg in ct.REGISTERS:
            if not reg.eeprom and reg.name in FACTORY_DEFAULTS:
                memory[reg.address:reg.address + reg.size] = reg.encode(FACTORY_DEFAULTS[reg.name])
        self.memory = memory
        self.velocity = 0.0
        self.pending_reg_write = None
        self._limp_since = self._time
        self._limp_center_raw = self.raw_position
        self._refresh_sensors()
        self.set('Goal_Position', self.get('Present_Position'))

    # --- motor model -----------------------------------------------------------------------
    def present_position(self) -> float:
        return (self.raw_position - self.get('Homing_Offset')) % ct.TICKS_PER_TURN

    def place(self, raw_position: float) -> None:
        """Put the joint at a raw encoder angle (at rest; a hand sweep restarts around it)."""
        self.raw_position = float(raw_position)
        self.velocity = 0.0
        self._limp_since = self._time
        self._limp_center_raw = self.raw_position
        self._refresh_sensors()

    def move_by_hand(self, present_ticks: float) -> None:
        """Move a limp joint to ``present_ticks`` (ignored while torque is on)."""
        if not self.get('Torque_Enable'):
            self.raw_position += present_ticks - self.present_position()
            self._refresh_sensors()

    def goal(self) -> float:
        goal = self.get('Goal_Position')
        low, high = self.get('Min_Position_Limit'), self.get('Max_Position_Limit')
        if low < high:
            goal = min(max(goal, low), high)
        return float(goal)

    def advance(self, now: float) -> None:
        """Integrate the motor model up to time ``now`` (seconds, monotonic)."""
        elapsed = now - self._time
        if elapsed <= 0:
            return
        self._time = now
        steps = max(1, math.ceil(elapsed / 0.002))
        dt = elapsed / steps
        m = self.model
        accel_reg = self.get('Acceleration')
        max_accel = accel_reg * 100.0 if accel_reg else 1e6
        error = 0.0
        for _ in range(steps):
            if self.get('Torque_Enable'):
                error = self.goal() - self.present_position()
                desired = max(-m.max_speed_ticks_s, min(m.max_speed_ticks_s,
                                                        error / m.time_constant_s))
                change = max(-max_accel * dt, min(max_accel * dt, desired - self.velocity))
                self.velocity += change
                self.raw_position += self.velocity * dt
            else:
                self.velocity = 0.0
        if not self.get('Torque_Enable'):
            self._sweep(now)
        if self.get('Torque_Enable'):
            limit = self.get('Torque_Limit')
            self.load = max(-limit, min(limit, error * m.load_per_tick + m.static_load))
        else:
            self.load = 0.0
        fraction = abs(self.load) / ct.LOAD_FULL_SCALE
        self.temperature_c += elapsed * (m.heating_c_per_s_at_full_load * fraction
                                         - m.cooling_per_s
                                         * (self.temperature_c - m.ambient_temperature_c))
        self._refresh_sensors()

    def _sweep(self, now: float) -> None:
        sweep = self.hand_sweep
        swept_s = now - self._limp_since - sweep.delay_s
        if sweep.amplitude_ticks <= 0 or swept_s <= 0:
            return
        phase = 2 * math.pi * swept_s / sweep.period_s
        self.raw_position = self._limp_center_raw + sweep.amplitude_ticks * math.sin(phase)

    def _refresh_sensors(self) -> None:
        m = self.model
        position = int(round(self.present_position())) % ct.TICKS_PER_TURN
        self.set('Present_Position', position)
        speed = max(-32767, min(32767, int(round(self.velocity))))
        self.set('Present_Velocity', speed)
        self.set('Present_Load', max(-1023, min(1023, int(round(self.load)))))
        self.set('Present_Voltage', int(round(m.supply_voltage_v / ct.VOLTAGE_V_PER_UNIT)))
        self.set('Present_Temperature', max(0, min(255, int(round(self.temperature_c)))))
        amps = 0.02 + m.stall_current_a * abs(self.load) / ct.LOAD_FULL_SCALE
        self.set('Present_Current', int(round(amps / ct.CURRENT_A_PER_UNIT)))
        self.set('Status', self.faults.error_bits & 0xFF)
        self.set('Moving', int(abs(self.velocity) > 20))
        self.set('Goal_Position_2', max(0, int(self.goal())))
