"""FeetechBus against the virtual STS3215 bus over a real pseudo-terminal."""
import time

import pytest

from so101_driver.errors import ChecksumError, ProtocolError, ServoMissingError, TransportError
from so101_driver.feetech import protocol
from so101_driver.feetech.bus import FeetechBus
from so101_driver.feetech.virtual_bus import VirtualBus

NAMES = {1: 'shoulder_pan', 2: 'shoulder_lift', 3: 'elbow_flex', 4: 'wrist_flex',
         5: 'wrist_roll', 6: 'gripper'}
IDS = list(NAMES)
STATE = ('Present_Position', 'Present_Velocity', 'Present_Load')


@pytest.fixture
def virtual():
    with VirtualBus(seed=1) as bus:
        yield bus


@pytest.fixture
def bus(virtual):
    # A generous margin: the emulator thread shares two loaded CI cores with the tests.
    feetech = FeetechBus(virtual.port, read_retries=2, timeout_margin_s=0.2, joint_names=NAMES)
    feetech.open()
    yield feetech
    feetech.close()


def test_ping_model_read_and_write(bus, virtual):
    assert bus.ping(1) == 0
    assert [bus.read_model_number(i) for i in IDS] == [777] * 6
    bus.write(3, 'P_Coefficient', 16)
    assert bus.read(3, 'P_Coefficient') == 16
    assert virtual.servo(3).get('P_Coefficient') == 16
    bus.write(2, 'Homing_Offset', -300)
    assert bus.read(2, 'Homing_Offset') == -300
    assert virtual.servo(2).memory[31:33] == bytes((0x2C, 0x09))
    with pytest.raises(ValueError, match='read-only'):
        bus.write(1, 'Present_Position', 5)


def test_sync_read_and_sync_write_move_the_servos(bus, virtual):
    state = bus.sync_read(IDS, STATE)
    assert state[1] == {'Present_Position': 1830, 'Present_Velocity': 0, 'Present_Load': 0}
    for servo_id in IDS:
        bus.write(servo_id, 'Torque_Enable', 1)
    goals = {i: 2000 + 10 * i for i in IDS}
    bus.sync_write('Goal_Position', goals)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        state = bus.sync_read(IDS, STATE)
        if all(abs(state[i]['Present_Position'] - goals[i]) <= 2 for i in IDS):
            break
        time.sleep(0.02)
    assert {i: state[i]['Present_Position'] for i in IDS} == pytest.approx(goals, abs=2)
    assert bus.counters.failures == 0


def eventually(condition, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
    return False


def test_moving_servo_reports_velocity_and_load(bus, virtual):
    bus.write(1, 'Torque_Enable', 1)
    bus.sync_write('Goal_Position', {1: 3000})

    def state():
        return bus.sync_read([1], STATE)[1]

    assert eventually(lambda: state()['Present_Velocity'] > 500 and state()['Present_Load'] > 100)
    bus.sync_write('Goal_Position', {1: 1000})
    assert eventually(lambda: state()['Present_Velocity'] < -500
                      and state()['Present_Load'] < -100)


def test_retries_recover_from_corrupted_replies(bus, virtual):
    virtual.corrupt_next(3, 2)
    blocks = bus.sync_read_block(IDS, 56, 6)
    assert sorted(blocks) == IDS
    assert bus.counters.retries == 2
    assert bus.counters.checksum_errors == 2
    assert bus.counters.failures == 0
    virtual.garbage_next = 1
    assert bus.read(4, 'Model_Number') == 777


def test_persistent_corruption_raises_checksum_error_naming_the_joint(bus, virtual):
    virtual.corrupt_next(5, 10)
    with pytest.raises(ChecksumError, match=r'servo id 5 \(wrist_roll\).*after 3 tries'):
        bus.sync_read_block(IDS, 56, 6)
    assert bus.counters.failures == 1
    virtual.corrupt_next(5, 0)
    assert len(bus.sync_read_block(IDS, 56, 6)) == 6


def test_silent_servo_raises_a_clear_error_after_the_retries(bus, virtual):
    virtual.set_silent(4)
    start = time.monotonic()
    with pytest.raises(ServoMissingError, match=r'servo id 4 \(wrist_flex\) did not answer'):
        bus.sync_read_block(IDS, 56, 6)
    elapsed = time.monotonic() - start
    assert 0.5 <= elapsed < 3.0  # three attempts of ~0.2 s each, never a hang
    assert bus.counters.retries == 2 and bus.counters.timeouts == 3
    with pytest.raises(ServoMissingError, match='servo id 4'):
        bus.ping(4)
    virtual.set_silent(4, False)
    assert bus.ping(4) == 0


def test_error_bits_are_latched(bus, virtual):
    virtual.set_error(2, 'overload')
    bus.sync_read_block(IDS, 56, 6)
    virtual.set_error(2)
    bus.sync_read_block(IDS, 56, 6)
    assert bus.last_errors[2] == 0
    assert protocol.error_names(bus.latched_errors[2]) == ('overload',)
    bus.clear_latched_errors()
    assert bus.latched_errors == {}


def test_wrong_reply_length_is_a_protocol_error(virtual):
    feetech = FeetechBus(virtual.port, read_retries=0, timeout_margin_s=0.05)
    feetech.open()
    try:
        # Ask servo 1 for 2 bytes but expect 3: the reply is valid but has the wrong size.
        with pytest.raises(ProtocolError, match='2 data bytes, expected 3'):
            feetech.transact(protocol.read(1, 56, 2), [(1, 3)])
    finally:
        feetech.close()


def test_reg_write_waits_for_action(bus, virtual):
    bus.reg_write(1, 'P_Coefficient', 20)
    assert bus.read(1, 'P_Coefficient') == 32
    bus.action()
    assert bus.read(1, 'P_Coefficient') == 20


def test_eeprom_lock_decides_what_survives_a_power_cycle(bus, virtual):
    bus.write(1, 'Lock', 1)
    bus.write(1, 'P_Coefficient', 10)
    bus.write(1, 'Lock', 0)
    bus.write(1, 'D_Coefficient', 11)
    bus.write(1, 'Torque_Enable', 1)
    virtual.servo(1).power_cycle()
    assert bus.read(1, 'P_Coefficient') == 32
    assert bus.read(1, 'D_Coefficient') == 11
    assert bus.read(1, 'Torque_Enable') == 0


def test_port_that_cannot_be_opened_gives_a_clear_error(tmp_path):
    missing = FeetechBus(str(tmp_path / 'ttyACM9'))
    with pytest.raises(TransportError, match=r'cannot open .*ttyACM9: no such device; check'):
        missing.open()
    not_open = FeetechBus(str(tmp_path / 'ttyACM9'))
    with pytest.raises(TransportError, match='not open'):
        not_open.ping(1)


def test_timeouts_follow_the_baud_rate():
    fast = FeetechBus('/dev/null', 1_000_000, timeout_margin_s=0.01)
    slow = FeetechBus('/dev/null', 57_600, timeout_margin_s=0.01)
    # 14-byte sync read request + six 12-byte replies = 86 bytes on the wire.
    assert fast.timeout_for(14, 72, 6) == pytest.approx(86e-5 + 6 * 6e-4 + 0.01)
    assert slow.timeout_for(14, 72, 6) - fast.timeout_for(14, 72, 6) == pytest.approx(
        86 * 10 / 57_600 - 86e-5)


def test_a_port_that_vanishes_gives_a_transport_error():
    virtual = VirtualBus(seed=1)
    virtual.start()
    feetech = FeetechBus(virtual.port, timeout_margin_s=0.2, joint_names=NAMES)
    feetech.open()
    assert feetech.ping(1) == 0
    virtual.stop()  # as a USB adapter pulled out: every access fails with EIO
    with pytest.raises(TransportError, match='unplugged'):
        feetech.sync_read(IDS, STATE)
    with pytest.raises(TransportError):
        feetech.sync_write('Goal_Position', dict.fromkeys(IDS, 2048))
    feetech.close()
    assert not feetech.is_open
