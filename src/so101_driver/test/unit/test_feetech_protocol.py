"""Feetech STS framing: worked examples from the notes, resynchronisation, round trips."""
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest

from so101_driver.feetech import control_table as ct
from so101_driver.feetech import protocol as p


def test_worked_examples_from_the_notes():
    assert p.ping(1) == bytes.fromhex('FF FF 01 02 01 FB')
    assert p.write(1, 42, ct.register('Goal_Position').encode(2048)) == bytes.fromhex(
        'FF FF 01 05 03 2A 00 08 C4')


def test_instruction_layouts():
    assert p.read(1, 56, 2) == bytes.fromhex('FF FF 01 04 02 38 02 BE')
    sync_read = p.sync_read([1, 2, 3], 56, 6)
    assert sync_read[:7] == bytes.fromhex('FF FF FE 07 82 38 06')
    assert sync_read[7:10] == bytes((1, 2, 3))
    assert sync_read[-1] == p.checksum(sync_read[2:-1])
    goals = {i: ct.register('Goal_Position').encode(2048) for i in range(1, 7)}
    sync_write = p.sync_write(42, 2, goals)
    # LEN = N * (L + 1) + 4 and 26 bytes for six goal positions (notes, section 1.3).
    assert sync_write[3] == 6 * 3 + 4
    assert len(sync_write) == 26
    assert p.action() == bytes.fromhex('FF FF FE 02 05 FA')
    assert p.reg_write(2, 40, b'\x01')[4] == p.Instruction.REG_WRITE
    with pytest.raises(ValueError, match='expected 2'):
        p.sync_write(42, 2, {1: b'\x00'})


def test_sign_magnitude_examples():
    assert p.encode_sign_magnitude(-100, 15) == 0x8064
    assert p.encode_sign_magnitude(-300, 11) == 0x092C
    assert p.decode_sign_magnitude(0x092C, 11) == -300
    assert p.decode_sign_magnitude(0x0400 | 37, 10) == -37
    with pytest.raises(ValueError, match='sign bit 11'):
        p.encode_sign_magnitude(2048, 11)
    assert ct.register('Homing_Offset').encode(-300) == bytes((0x2C, 0x09))
    assert ct.register('Present_Load').decode(bytes((0x25, 0x04))) == -37
    with pytest.raises(ValueError, match='Model_Number'):
        ct.register('Model_Number').encode(70000)
    with pytest.raises(ValueError, match='negative'):
        ct.register('ID').encode(-1)


@given(st.integers(-(2 ** 15 - 1), 2 ** 15 - 1), st.sampled_from([10, 11, 15]))
def test_sign_magnitude_round_trip(value, bit):
    if abs(value) >= 2 ** bit:
        with pytest.raises(ValueError):
            p.encode_sign_magnitude(value, bit)
    else:
        assert p.decode_sign_magnitude(p.encode_sign_magnitude(value, bit), bit) == value


def test_status_parsing_and_error_bits():
    reply = p.status(3, 0x24, bytes((0x00, 0x08)))
    result = p.parse(reply)
    assert result.packets == [p.Packet(3, 0x24, b'\x00\x08')]
    assert p.error_names(0x24) == ('overheat', 'overload')
    assert p.error_names(0x0B) == ('voltage', 'encoder', 'over_current')
    assert p.error_names(0x40) == ('unknown_0x40',)
    assert p.error_names(0) == ()


def test_rejects_bad_checksum_length_id_and_error_byte():
    good = p.status(1, 0, b'\x10\x20')
    bad_checksum = good[:-1] + bytes((good[-1] ^ 1,))
    result = p.parse(bad_checksum + good)
    assert result.packets == [p.Packet(1, 0, b'\x10\x20')]
    assert result.checksum_errors == 1
    bad_id = bytes.fromhex('FF FF FE 02 00 FF')
    bad_len = bytes.fromhex('FF FF 01 01 00 FD')
    bad_error = p.encode_packet(1, 0x80)
    result = p.parse(bad_id + bad_len + bad_error + good)
    assert result.packets == [p.Packet(1, 0, b'\x10\x20')]
    assert result.malformed == 3
    # Instruction packets may be broadcast (0xFE) and carry codes above 0x7F.
    assert p.parse(p.sync_read([1], 56, 2), status_packets=False).packets[0].code == 0x82


def test_resynchronises_after_garbage_and_false_headers():
    good = p.status(2, 0, b'\x01')
    noise = bytes((0x00, 0x13, 0xFF, 0x42, 0xFF))
    result = p.parse(noise + good + b'\xff\xff\xff' + good)
    assert [pk.servo_id for pk in result.packets] == [2, 2]
    # A false header claiming 240 bytes hides the real packet until the input is final.
    false_header = bytes.fromhex('FF FF 01 F0')
    assert p.parse(false_header + good).packets == []
    assert p.parse(false_header + good, final=True).packets == [p.Packet(2, 0, b'\x01')]


def test_incremental_stream_keeps_partial_packets():
    stream = p.PacketStream(status_packets=True)
    data = p.status(4, 0, b'\x05\x06') + p.status(5, 0)
    got = []
    for byte in data:
        got += stream.feed(bytes((byte,)))
    assert got == [p.Packet(4, 0, b'\x05\x06'), p.Packet(5, 0, b'')]
    assert stream.pending == b''


packets = st.builds(p.Packet, st.integers(0, p.MAX_SERVO_ID), st.integers(0, 0x7F),
                    st.binary(max_size=40))


@settings(max_examples=200, deadline=None)
@given(st.lists(packets, max_size=6), st.binary(max_size=12))
def test_status_round_trip_with_leading_garbage(sequence, garbage):
    wire = b''.join(p.status(pk.servo_id, pk.code, pk.params) for pk in sequence)
    # Garbage without 0xFF cannot fake a header; the packets must all come back.
    clean_garbage = garbage.replace(b'\xff', b'')
    result = p.parse(clean_garbage + wire, final=True)
    assert result.packets == sequence
    assert result.garbage_bytes == len(clean_garbage)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_parser_never_crashes_on_random_bytes(data):
    result = p.parse(data, final=True)
    for packet in result.packets:
        assert 0 <= packet.servo_id <= p.MAX_SERVO_ID


def test_control_table_matches_lerobot_addresses():
    expected = {'Model_Number': (3, 2), 'Return_Delay_Time': (7, 1), 'Min_Position_Limit': (9, 2),
                'Max_Position_Limit': (11, 2), 'Max_Torque_Limit': (16, 2), 'Phase': (18, 1),
                'P_Coefficient': (21, 1), 'D_Coefficient': (22, 1), 'I_Coefficient': (23, 1),
                'Protection_Current': (28, 2), 'Homing_Offset': (31, 2),
                'Operating_Mode': (33, 1), 'Overload_Torque': (36, 1), 'Torque_Enable': (40, 1),
                'Acceleration': (41, 1), 'Goal_Position': (42, 2), 'Lock': (55, 1),
                'Present_Position': (56, 2), 'Present_Velocity': (58, 2),
                'Present_Load': (60, 2), 'Present_Voltage': (62, 1),
                'Present_Temperature': (63, 1), 'Status': (65, 1), 'Present_Current': (69, 2),
                'Maximum_Acceleration': (85, 1)}
    for name, (address, size) in expected.items():
        reg = ct.register(name)
        assert (reg.address, reg.size) == (address, size), name
    with pytest.raises(KeyError, match='unknown STS3215 register'):
        ct.register('Goal_Speed')
    block = bytes((0x00, 0x08, 0x32, 0x80, 0x10, 0x04))
    assert ct.decode_block(block, 56, ('Present_Position', 'Present_Velocity',
                                       'Present_Load')) == {
        'Present_Position': 2048, 'Present_Velocity': -50, 'Present_Load': -16}
