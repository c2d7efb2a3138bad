"""Feetech STS (SCS/SMS "protocol 0") packet framing, byte-exact, with no I/O.

Instruction packet: ``FF FF | id | len | instruction | params... | checksum``
Status packet:      ``FF FF | id | len | error       | params... | checksum``

``len`` counts the instruction/error byte, the parameters and the checksum (``n + 2``); the
checksum is the bitwise NOT of the byte sum of id, len, instruction/error and parameters, low
8 bits. STS servos store 2-byte values little-endian. Everything here is pure functions over
``bytes`` so that the bus, the virtual servo bus and the tests share one implementation.
"""
import dataclasses
import enum

HEADER = b'\xff\xff'
BROADCAST_ID = 0xFE
MAX_SERVO_ID = 0xFD
"""Largest id a status packet may carry (the SDK rejects 0xFE/0xFF in status packets)."""
MAX_LENGTH = 250
"""Largest ``len`` byte accepted (as the SDK); longer claims are treated as garbage."""
MIN_PACKET_BYTES = 6
"""Header (2) + id + len + instruction/error + checksum."""


class Instruction(enum.IntEnum):
    """Instruction codes of the STS protocol."""

    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83


class StatusError(enum.IntFlag):
    """Error bits of a status packet (also mirrored in the Status register, address 65)."""

    VOLTAGE = 0x01
    ENCODER = 0x02
    """'angle' error in the SDK; magnetic-encoder status on the STS3215."""
    OVERHEAT = 0x04
    OVER_CURRENT = 0x08
    OVERLOAD = 0x20


_ERROR_NAMES = (
    (StatusError.VOLTAGE, 'voltage'),
    (StatusError.ENCODER, 'encoder'),
    (StatusError.OVERHEAT, 'overheat'),
    (StatusError.OVER_CURRENT, 'over_current'),
    (StatusError.OVERLOAD, 'overload'),
)
FAULT_NAMES = tuple(name for _, name in _ERROR_NAMES)


def error_names(error: int) -> tuple[str, ...]:
    """Fault names of the set bits, e.g. 0x24 -> ('overheat', 'overload'); unknown bits too."""
    names = [name for bit, name in _ERROR_NAMES if error & bit]
    unknown = error & ~sum(int(bit) for bit, _ in _ERROR_NAMES) & 0xFF
    if unknown:
        names.append(f'unknown_0x{unknown:02x}')
    return tuple(names)


def checksum(body: bytes | bytearray) -> int:
    """Checksum of a packet body (id, len, instruction/error, params): ~sum & 0xFF."""
    return ~sum(body) & 0xFF


# --- value encodings ------------------------------------------------------------------------

def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """Sign-magnitude encode: bit ``sign_bit`` is the sign, the lower bits the magnitude."""
    magnitude = abs(int(value))
    if magnitude > (1 << sign_bit) - 1:
        raise ValueError(f'{value} does not fit a sign-magnitude value with sign bit {sign_bit} '
                         f'(|value| <= {(1 << sign_bit) - 1})')
    return (1 << sign_bit) | magnitude if value < 0 else magnitude


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    """Inverse of encode_sign_magnitude; bits above the sign bit are ignored."""
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if raw & (1 << sign_bit) else magnitude


def to_le(value: int, size: int) -> bytes:
    """Little-endian unsigned encoding of ``value`` on ``size`` bytes (1 or 2 on the STS3215)."""
    if not 0 <= value < (1 << (8 * size)):
        raise ValueError(f'{value} does not fit {size} unsigned byte(s)')
    return int(value).to_bytes(size, 'little')


def from_le(data: bytes | bytearray) -> int:
    """Little-endian unsigned decoding."""
    return int.from_bytes(data, 'little')


# --- packets -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Packet:
    """One decoded packet: ``code`` is the instruction (to a servo) or the error byte (status)."""

    servo_id: int
    code: int
    params: bytes = b''

    @property
    def error(self) -> int:
        return self.code


def encode_packet(servo_id: int, code: int, params: bytes | bytearray = b'') -> bytes:
    """Frame one packet (instruction or status; the layout is the same)."""
    if not 0 <= servo_id <= 0xFE:
        raise ValueError(f'servo id {servo_id} is outside 0..254')
    if not 0 <= code <= 0xFF:
        raise ValueError(f'instruction/error byte {code} is outside 0..255')
    length = len(params) + 2
    if length > MAX_LENGTH:
        raise ValueError(f'packet too long: {len(params)} parameter bytes')
    body = bytes((servo_id, length, code)) + bytes(params)
    return HEADER + body + bytes((checksum(body),))


def ping(servo_id: int) -> bytes:
    return encode_packet(servo_id, Instruction.PING)


def read(servo_id: int, address: int, size: int) -> bytes:
    return encode_packet(servo_id, Instruction.READ, bytes((address, size)))


def write(servo_id: int, address: int, data: bytes) -> bytes:
    return encode_packet(servo_id, Instruction.WRITE, bytes((address,)) + data)


def reg_write(servo_id: int, address: int, data: bytes) -> bytes:
    """Buffered write, applied by the next ACTION."""
    return encode_packet(servo_id, Instruction.REG_WRITE, bytes((address,)) + data)


def action(servo_id: int = BROADCAST_ID) -> bytes:
    return encode_packet(servo_id, Instruction.ACTION)


def sync_read(servo_ids: list[int] | tuple[int, ...], address: int, size: int) -> bytes:
    """One request; every listed servo answers with its own status packet, in order."""
    return encode_packet(BROADCAST_ID, Instruction.SYNC_READ,
                         bytes((address, size)) + bytes(servo_ids))


def sync_write(address: int, size: int, data: dict[int, bytes]) -> bytes:
    """One broadcast packet writing ``size`` bytes at ``address`` of each servo; no reply."""
    params = bytearray((address, size))
    for servo_id, chunk in data.items():
        if len(chunk) != size:
            raise ValueError(f'sync write to id {servo_id}: {len(chunk)} bytes, expected {size}')
        params.append(servo_id)
        params += chunk
    return encode_packet(BROADCAST_ID, Instruction.SYNC_WRITE, params)


def status(servo_id: int, error: int = 0, params: bytes = b'') -> bytes:
    """A status packet (what a servo sends back)."""
    return encode_packet(servo_id, error, params)


def status_length(param_count: int) -> int:
    """Bytes on the wire of a status packet carrying ``param_count`` data bytes."""
    return MIN_PACKET_BYTES + param_count


# --- decoding ------------------------------------------------------------------------------

@dataclasses.dataclass
class ParseResult:
    """What ``parse`` found in a byte buffer."""

    packets: list[Packet]
    remainder: bytes
    """Trailing bytes that may be the start of a packet (feed them again with more data)."""
    checksum_errors: int = 0
    malformed: int = 0
    """Headers followed by an impossible id/len/error byte (skipped to resynchronise)."""
    garbage_bytes: int = 0
    """Bytes skipped while looking for a header."""


def parse(buffer: bytes | bytearray, *, status_packets: bool = True,
          final: bool = False) -> ParseResult:
    """Split ``buffer`` into packets, resynchronising on the next ``FF FF`` after garbage.

    A header followed by a bad id (>0xFD for status packets), a ``len`` outside 2..250, an error
    byte above 0x7F (status packets) or a bad checksum is skipped (resynchronising two bytes
    further on), so a corrupted packet never swallows the valid packet behind it. With
    ``final`` no more bytes will come: a header whose claimed length runs past the end of the
    buffer is treated as garbage too, and the search goes on behind it.
    """
    data = bytes(buffer)
    result = ParseResult(packets=[], remainder=b'')
    max_id = MAX_SERVO_ID if status_packets else BROADCAST_ID
    pos, end = 0, len(data)
    while True:
        start = data.find(HEADER, pos)
        if start < 0:
            # Keep a trailing 0xFF: it may be the first byte of the next header.
            keep = 1 if end > pos and data[end - 1] == 0xFF and not final else 0
            result.garbage_bytes += end - pos - keep
            result.remainder = data[end - keep:] if keep else b''
            return result
        result.garbage_bytes += start - pos
        # Runs of 0xFF: the header is the last two of them.
        while start + 2 < end and data[start + 2] == 0xFF:
            start += 1
            result.garbage_bytes += 1
        if start + 4 > end:
            if final:
                result.garbage_bytes += end - start
                return result
            result.remainder = data[start:]
            return result
        servo_id, length = data[start + 2], data[start + 3]
        if servo_id > max_id or not 2 <= length <= MAX_LENGTH:
            result.malformed += 1
            pos = start + 2
            continue
        stop = start + 4 + length
        if stop > end:
            if final:
                result.malformed += 1
                pos = start + 2
                continue
            result.remainder = data[start:]
            return result
        body = data[start + 2:stop - 1]
        code = data[start + 4]
        if status_packets and code > 0x7F:
            result.malformed += 1
            pos = start + 2
            continue
        if checksum(body) != data[stop - 1]:
            result.checksum_errors += 1
            pos = start + 2
            continue
        result.packets.append(Packet(servo_id, code, data[start + 5:stop - 1]))
        pos = stop


class PacketStream:
    """Incremental parser: feed bytes as they arrive, take complete packets out."""

    def __init__(self, *, status_packets: bool):
        self._status_packets = status_packets
        self._pending = b''
        self.checksum_errors = 0
        self.malformed = 0
        self.garbage_bytes = 0

    def feed(self, data: bytes) -> list[Packet]:
        result = parse(self._pending + data, status_packets=self._status_packets)
        self._pending = result.remainder
        self.checksum_errors += result.checksum_errors
        self.malformed += result.malformed
        self.garbage_bytes += result.garbage_bytes
        return result.packets

    def clear(self) -> None:
        self._pending = b''

    @property
    def pending(self) -> bytes:
        return self._pending
