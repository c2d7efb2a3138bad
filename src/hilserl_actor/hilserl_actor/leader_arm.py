"""The SO-101 leader arm as a teleoperation input (ROS-free), on the Feetech bus library.

The leader is an SO-101 built with lower-geared STS3215 servos that a person moves by hand;
its joint angles become the follower's joint targets. It is only ever *read*: ``connect``
turns the torque of every servo off (and checks that it is off), and nothing here writes
Torque_Enable = 1 or a goal position.

Angles use the leader's LeRobot calibration file (same format as the follower's:
``so101_driver.feetech.calibration``), mapped onto the follower's URDF joints: arm joints in rad
around the middle of their calibrated range, the gripper's calibrated range onto the jaw's
URDF range, so the follower's joints follow the leader's one to one.
"""
import numpy as np

from hilserl_actor.errors import ActorError
from so101_driver.errors import ConfigurationError, DriverError
from so101_driver.feetech import calibration as cal
from so101_driver.feetech import control_table as ct
from so101_driver.feetech import protocol
from so101_driver.feetech.backend import check_servos
from so101_driver.feetech.bus import FeetechBus

EXPECTED_MODEL = 777
"""STS3215 (the leader's servos have other gear ratios, same model number)."""
LEADER_ROBOT_TYPE = 'so101_leader'


class LeaderArmError(ActorError):
    """The leader arm cannot be used (port, servos, calibration); the message says why."""


def default_leader_calibration_path(leader_id: str = 'so101_leader'):
    """LeRobot's leader calibration: <calibration dir>/teleoperators/so101_leader/<id>.json."""
    folder = cal.lerobot_calibration_dir() / 'teleoperators' / LEADER_ROBOT_TYPE
    return folder / f'{leader_id}.json'


class LeaderArm:
    """Six STS3215 servos of an SO-101 leader on one bus, read-only (torque off)."""

    def __init__(self, port: str, calibration_file: str, joint_names, baudrate: int = 1_000_000,
                 read_retries: int = 2, timeout_margin_s: float = 0.05):
        self.joint_names = tuple(joint_names)
        self.calibration_file = str(calibration_file)
        self.servo_ids = {name: i + 1 for i, name in enumerate(self.joint_names)}
        self.bus = FeetechBus(port, baudrate, read_retries=read_retries,
                              timeout_margin_s=timeout_margin_s,
                              joint_names={i: n for n, i in self.servo_ids.items()})
        self.mapping: cal.JointMapping | None = None
        self._ids: list[int] = []
        self.reads = 0
        self.failed_reads = 0

    def connect(self) -> None:
        """Load the calibration, open the port, check every servo, torque off, check the
        calibration stored in the servos. LeaderArmError says what is wrong.
        """
        try:
            calibration = cal.load_calibration(self.calibration_file, self.joint_names)
        except ConfigurationError as error:
            raise LeaderArmError(f'leader calibration: {error}') from error
        self._ids = [calibration[name].id for name in self.joint_names]
        self.servo_ids = dict(zip(self.joint_names, self._ids))
        self.bus.joint_names = {i: n for n, i in self.servo_ids.items()}
        self.mapping = cal.JointMapping(calibration, self.joint_names)
        try:
            self.bus.open()
        except DriverError as error:
            raise LeaderArmError(f'leader arm: {error}') from error
        try:
            check_servos(self.bus, tuple(self._ids), EXPECTED_MODEL)
            for servo_id in self._ids:
                self.bus.write(servo_id, 'Torque_Enable', 0)
            on = [self.bus.label(i) for i in self._ids if self.bus.read(i, 'Torque_Enable')]
            if on:
                raise LeaderArmError(f'leader arm: torque still on for {", ".join(on)}')
            self._check_calibration(calibration)
        except DriverError as error:
            self.bus.close()
            raise LeaderArmError(f'leader arm: {error}') from error
        except LeaderArmError:
            self.bus.close()
            raise

    def _check_calibration(self, calibration) -> None:
        problems = []
        for name in self.joint_names:
            entry = calibration[name]
            found = cal.mismatches(entry, *(self.bus.read(entry.id, register) for register in (
                'Homing_Offset', 'Min_Position_Limit', 'Max_Position_Limit')))
            if found:
                problems.append(f'{name} (id {entry.id}): {", ".join(found)}')
        if problems:
            raise LeaderArmError(
                f'the leader servos do not hold the calibration of {self.calibration_file}: '
                f'{"; ".join(problems)}; calibrate the leader (LeRobot: lerobot-calibrate '
                '--teleop.type=so101_leader) or use its own file')

    def read(self) -> np.ndarray:
        """Joint angles (rad, follower URDF convention) in ``joint_names`` order.

        Raises DriverError (ServoMissingError, ChecksumError, ProtocolError, TransportError)
        naming the servo when the bus fails after its retries.
        """
        self.reads += 1
        try:
            blocks = self.bus.sync_read_block(self._ids, ct.BY_NAME['Present_Position'].address,
                                              2)
        except DriverError:
            self.failed_reads += 1
            raise
        ticks = np.array([protocol.decode_sign_magnitude(
            int.from_bytes(blocks[i][0:2], 'little'), 15) for i in self._ids], dtype=float)
        return self.mapping.to_rad(ticks)

    def close(self) -> None:
        """Close the port (the torque stays off)."""
        self.bus.close()

    def counters(self) -> dict:
        return {'reads': self.reads, 'failed_reads': self.failed_reads,
                **self.bus.counters.as_dict()}
