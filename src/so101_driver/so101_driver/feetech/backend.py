"""The real SO-101 backend: six STS3215 servos on one Feetech bus (``RobotBackend``).

``connect`` opens the port, pings and model-checks every servo, turns the torque off, checks
the calibration stored in the servos against the calibration file and configures the servos as
LeRobot's SO-101 follower does (only EEPROM values that differ are written, to spare the
flash). ``read`` is one SYNC_READ of Present_Position..Present_Load; ``write_positions`` one
SYNC_WRITE of Goal_Position. Error bits of every status packet are latched per joint and
reported by ``health`` until ``clear_faults``.
"""
import time

import numpy as np

from so101_driver.backend import BackendHealth, JointHealth, JointSample
from so101_driver.errors import (
    CommandError,
    ConfigurationError,
    DriverError,
    ProtocolError,
    ServoMissingError,
    TransportError,
    WrongServoModelError,
)
from so101_driver.feetech import calibration as cal
from so101_driver.feetech import control_table as ct
from so101_driver.feetech import protocol
from so101_driver.feetech.bus import FeetechBus
from so101_driver.feetech.config import FeetechBackendConfig
from so101_driver.model_files import JOINT_NAMES

_CONFIG_BLOCK = (5, 32)
"""EEPROM bytes 5..36 (ID .. Overload_Torque): read once per servo at connect."""
_HEALTH_BLOCK = (ct.BY_NAME['Torque_Enable'].address, 31)
"""Torque_Enable (40) .. Present_Current (69-70): one sync read per health() call."""
_HEALTH_NAMES = ('Torque_Enable', 'Present_Voltage', 'Present_Temperature', 'Status',
                 'Present_Current')


def check_servos(bus: FeetechBus, servo_ids: tuple[int, ...], expected_model: int) -> None:
    """Ping every servo (all missing ones are named at once), then check the model numbers."""
    missing = []
    for servo_id in servo_ids:
        try:
            bus.ping(servo_id)
        except ServoMissingError:
            missing.append(bus.label(servo_id))
    if missing:
        raise ServoMissingError(
            f'no answer from {", ".join(missing)} on {bus.port} at {bus.baudrate} baud; check '
            'the 3-pin cables between the servos, the power supply (is it switched on?) and '
            'that the ids were set up')
    for servo_id in servo_ids:
        model = bus.read_model_number(servo_id)
        if model != expected_model:
            raise WrongServoModelError(
                f'{bus.label(servo_id)} reports model number {model}, expected {expected_model} '
                '(STS3215)')


class FeetechBackend:
    """SO-101 on a Feetech STS3215 bus; see FeetechBackendConfig for the parameters."""

    joint_names = JOINT_NAMES

    def __init__(self, config: FeetechBackendConfig):
        self.config = config
        self._ids = config.ordered_ids
        self.calibration: dict[str, cal.MotorCalibration] | None = None
        self.mapping: cal.JointMapping | None = None
        # Until connect() loads the calibration: the URDF limits.
        self.lower_limits_rad = np.array([cal.URDF_JOINT_LIMITS_RAD[n][0] for n in JOINT_NAMES])
        self.upper_limits_rad = np.array([cal.URDF_JOINT_LIMITS_RAD[n][1] for n in JOINT_NAMES])
        self.bus = FeetechBus(config.port, config.baudrate, read_retries=config.read_retries,
                              timeout_margin_s=config.timeout_margin_s,
                              joint_names={i: n for n, i in config.servo_ids.items()})
        self.notes: list[str] = []
        """What connect() changed (written calibration, configured registers)."""
        self._torque_enabled = False
        self._connected = False
        self._last_error = ''

    # --- connection ------------------------------------------------------------------------
    def connect(self) -> None:
        self.calibration = cal.load_calibration(self.config.calibration_file, JOINT_NAMES)
        wrong_ids = {n: (c.id, self.config.servo_ids[n]) for n, c in self.calibration.items()
                     if c.id != self.config.servo_ids[n]}
        if wrong_ids:
            raise ConfigurationError(
                f'{self.config.calibration_file}: servo ids (file, configured) differ: '
                f'{wrong_ids}; is this the calibration of another arm?')
        self.mapping = cal.JointMapping(self.calibration, JOINT_NAMES)
        self.lower_limits_rad = self.mapping.lower_limits_rad.copy()
        self.upper_limits_rad = self.mapping.upper_limits_rad.copy()
        self.bus.open()
        try:
            self._check_servos()
            self._torque_off_all()
            blocks = {i: self.bus.read_block(i, *_CONFIG_BLOCK) for i in self._ids}
            self._check_calibration(blocks)
            self._configure(blocks)
        except BaseException:
            self.bus.close()
            raise
        self._torque_enabled = False
        self._connected = True

    def _check_servos(self) -> None:
        check_servos(self.bus, self._ids, self.config.expected_model_number)

    def _torque_off_all(self) -> None:
        for servo_id in self._ids:
            self.bus.write(servo_id, 'Torque_Enable', 0)
            self.bus.write(servo_id, 'Lock', 0)

    def _check_calibration(self, blocks: dict[int, bytes]) -> None:
        problems, to_write = [], []
        for name in JOINT_NAMES:
            entry = self.calibration[name]
            stored = ct.decode_block(blocks[entry.id], _CONFIG_BLOCK[0],
                                     ('Homing_Offset', 'Min_Position_Limit',
                                      'Max_Position_Limit'))
            found = cal.mismatches(entry, stored['Homing_Offset'],
                                   stored['Min_Position_Limit'], stored['Max_Position_Limit'])
            if found:
                problems.append(f'{name} (id {entry.id}): {", ".join(found)}')
                to_write.append(entry)
        if not problems:
            return
        if self.config.on_calibration_mismatch == 'error':
            raise ConfigurationError(
                f'the servos do not hold the calibration of {self.config.calibration_file}: '
                f'{"; ".join(problems)}. Recalibrate (`ros2 run so101_driver calibrate`), use the '
                "arm's own file, or set on_calibration_mismatch to 'write' to store the file's "
                'values in the servos')
        for entry in to_write:
            self.bus.write(entry.id, 'Homing_Offset', entry.homing_offset)
            self.bus.write(entry.id, 'Min_Position_Limit', entry.range_min)
            self.bus.write(entry.id, 'Max_Position_Limit', entry.range_max)
        self.notes.append(f'wrote the calibration file into the servos: {"; ".join(problems)}')

    def _configure(self, blocks: dict[int, bytes]) -> None:
        cfg = self.config
        gripper_id = cfg.servo_ids['gripper']
        for servo_id in self._ids:
            stored = blocks[servo_id]

            def current(name, block=stored):
                reg = ct.BY_NAME[name]
                offset = reg.address - _CONFIG_BLOCK[0]
                return reg.decode(block[offset:offset + reg.size])

            wanted = {'Return_Delay_Time': cfg.return_delay_time, 'Operating_Mode': 0,
                      'P_Coefficient': cfg.p_coefficient, 'I_Coefficient': cfg.i_coefficient,
                      'D_Coefficient': cfg.d_coefficient,
                      'Phase': current('Phase') & ~ct.PHASE_ANGLE_FEEDBACK_BIT}
            if servo_id == gripper_id:
                wanted.update(Max_Torque_Limit=cfg.gripper_max_torque,
                              Protection_Current=cfg.gripper_protection_current,
                              Overload_Torque=cfg.gripper_overload_torque)
            changed = [name for name, value in wanted.items() if current(name) != value]
            for name in changed:
                self.bus.write(servo_id, name, wanted[name])
            if self.bus.read(servo_id, 'Maximum_Acceleration') != cfg.acceleration:
                self.bus.write(servo_id, 'Maximum_Acceleration', cfg.acceleration)
                changed.append('Maximum_Acceleration')
            if changed:
                self.notes.append(f'{self.bus.label(servo_id)}: configured {changed}')
            self.bus.write(servo_id, 'Acceleration', cfg.acceleration)
            if servo_id == gripper_id:
                self.bus.write(servo_id, 'Torque_Limit', cfg.gripper_max_torque)

    # --- RobotBackend ----------------------------------------------------------------------
    def _require_connected(self) -> None:
        if not self._connected:
            raise TransportError(f'{self.config.port}: the backend is not connected')

    def read(self) -> JointSample:
        self._require_connected()
        try:
            blocks = self.bus.sync_read_block(list(self._ids), ct.STATE_BLOCK_ADDRESS,
                                              ct.STATE_BLOCK_SIZE)
        except DriverError as error:
            self._last_error = str(error)
            raise
        stamp = time.monotonic()
        raw = np.array([[protocol.decode_sign_magnitude(int.from_bytes(b[k:k + 2], 'little'),
                                                        bit)
                         for k, bit in ((0, 15), (2, 15), (4, 10))]
                        for b in (blocks[i] for i in self._ids)], dtype=float)
        faults = {name: protocol.error_names(self.bus.last_errors.get(servo_id, 0))
                  for name, servo_id in zip(JOINT_NAMES, self._ids)
                  if self.bus.last_errors.get(servo_id, 0)}
        m = self.mapping
        return JointSample(positions_rad=m.to_rad(raw[:, 0]),
                           velocities_rad_s=m.velocity_to_rad_s(raw[:, 1]),
                           efforts=m.load_to_percent(raw[:, 2]), stamp_s=stamp,
                           effort_unit='percent', joint_faults=faults)

    def write_positions(self, positions_rad: np.ndarray) -> None:
        self._require_connected()
        try:
            ticks = self.mapping.to_ticks(positions_rad)
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.bus.sync_write('Goal_Position',
                            {servo_id: int(t) for servo_id, t in zip(self._ids, ticks)})

    def set_torque(self, enabled: bool) -> None:
        """Torque on: first hold the present position (no jump), then enable and lock EEPROM."""
        self._require_connected()
        ids = list(self._ids)
        if enabled:
            present = self.bus.sync_read(ids, ('Present_Position',))
            self.bus.sync_write('Goal_Position',
                                {i: present[i]['Present_Position'] for i in ids})
        value = 1 if enabled else 0
        self.bus.sync_write('Torque_Enable', dict.fromkeys(ids, value))
        self.bus.sync_write('Lock', dict.fromkeys(ids, value))
        state = self.bus.sync_read(ids, ('Torque_Enable',))
        wrong = [self.bus.label(i) for i in ids if state[i]['Torque_Enable'] != value]
        if wrong:
            raise ProtocolError(f'torque {"enable" if enabled else "disable"} did not take '
                                f'effect on {", ".join(wrong)}')
        self._torque_enabled = enabled

    def health(self) -> BackendHealth:
        """Torque, temperature, voltage, current and faults of every joint (one sync read).

        Faults are the Status register bits plus every error bit latched from status packets
        since the last clear_faults(). A failed health read, and a read() that failed since the
        previous health() call, are reported in ``warnings`` (latched faults stay), not raised;
        a lost port still raises TransportError.
        """
        self._require_connected()
        ids = list(self._ids)
        values: dict[int, dict[str, int]] = {}
        warnings = []
        if self._last_error:
            warnings.append(f'a reading failed since the last health check: {self._last_error}')
            self._last_error = ''
        try:
            blocks = self.bus.sync_read_block(ids, *_HEALTH_BLOCK)
            values = {i: ct.decode_block(blocks[i], _HEALTH_BLOCK[0], _HEALTH_NAMES)
                      for i in ids}
        except ProtocolError as error:
            warnings.append(f'health read failed: {error}')
        joints = {}
        torque = bool(values) and all(v['Torque_Enable'] for v in values.values())
        for name, servo_id in zip(JOINT_NAMES, ids):
            v = values.get(servo_id)
            bits = self.bus.latched_errors.get(servo_id, 0) | (v['Status'] if v else 0)
            joints[name] = JointHealth(
                temperature_c=float(v['Present_Temperature']) if v else float('nan'),
                voltage_v=v['Present_Voltage'] * ct.VOLTAGE_V_PER_UNIT if v else float('nan'),
                current_a=v['Present_Current'] * ct.CURRENT_A_PER_UNIT if v else float('nan'),
                faults=protocol.error_names(bits))
        problems = list(warnings)
        if values and self._torque_enabled and not torque:
            off = [n for n, i in zip(JOINT_NAMES, ids) if not values[i]['Torque_Enable']]
            problems.append(f'torque dropped on {off}')
        faulted = {n: list(j.faults) for n, j in joints.items() if j.faults}
        if faulted:
            problems.append(f'servo faults: {faulted}')
        return BackendHealth(torque_enabled=torque if values else self._torque_enabled,
                             joints=joints, message='; '.join(problems),
                             counters=self.bus.counters.as_dict(), warnings=tuple(warnings))

    def clear_faults(self) -> None:
        """Forget latched error bits and the last error (after the cause was fixed)."""
        self.bus.clear_latched_errors()
        self._last_error = ''

    def close(self) -> None:
        if not self._connected:
            self.bus.close()
            return
        self._connected = False
        try:
            if self.config.disable_torque_on_close and self.bus.is_open:
                self._connected = True
                try:
                    self.set_torque(False)
                except DriverError:
                    pass  # the port or a servo is gone: nothing more can be done
                finally:
                    self._connected = False
        finally:
            self.bus.close()
