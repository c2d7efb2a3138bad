"""A Feetech STS bus over pyserial: transactions with timeouts, retries and counters.

Every transaction flushes stale input, writes one instruction packet and reads the expected
status packets until a deadline computed from the baud rate (wire time of the request and the
replies, plus ``timeout_margin_s`` for USB-serial latency). Corrupted, truncated or missing
replies are retried ``read_retries`` times; what still fails raises a typed ``DriverError``
naming the servo id and joint. Error bits seen in any status packet are latched per servo for
the backend's health report.
"""
import dataclasses
import errno
import termios
import threading
import time

import serial

from so101_driver.errors import ChecksumError, ProtocolError, ServoMissingError, TransportError
from so101_driver.feetech import control_table, protocol

BITS_PER_BYTE = 10
"""8N1: start bit + 8 data bits + stop bit."""
REPLY_DELAY_ALLOWANCE_S = 0.0006
"""Per reply: the factory Return_Delay_Time (250 x 2 us) plus processing time."""
PORT_ERRORS = (serial.SerialException, OSError, termios.error)
"""What a vanished port raises: pyserial's flush calls termios.tcflush, whose termios.error
(EIO after a USB adapter is unplugged or a virtual bus stops) is not an OSError."""


@dataclasses.dataclass
class BusCounters:
    """Cumulative diagnostics counters of one bus."""

    transactions: int = 0
    retries: int = 0
    checksum_errors: int = 0
    timeouts: int = 0
    """Transactions (attempts) in which at least one expected reply never arrived."""
    malformed_packets: int = 0
    failures: int = 0
    """Transactions that failed after every retry."""

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def _open_error_message(port: str, error: Exception) -> str:
    code = getattr(error, 'errno', None)
    text = str(error)
    if code == errno.ENOENT or 'No such file' in text:
        hint = ('no such device; check the USB cable and the port name '
                '(ls /dev/ttyACM* /dev/ttyUSB*)')
    elif code == errno.EACCES or 'Permission denied' in text:
        hint = ('permission denied; add yourself to the dialout group '
                '(sudo usermod -aG dialout $USER, then log in again)')
    elif code == errno.EBUSY or 'busy' in text.lower():
        hint = 'the port is busy; is another program (LeRobot, a second driver) using it?'
    else:
        hint = text
    return f'cannot open {port}: {hint}'


class FeetechBus:
    """One half-duplex STS bus on a serial port (or any pyserial URL, e.g. a pty path)."""

    def __init__(self, port: str, baudrate: int = 1_000_000, *, read_retries: int = 2,
                 timeout_margin_s: float = 0.05, joint_names: dict[int, str] | None = None):
        if baudrate <= 0:
            raise ValueError(f'baudrate must be positive, got {baudrate}')
        if read_retries < 0:
            raise ValueError(f'read_retries must be >= 0, got {read_retries}')
        if timeout_margin_s <= 0:
            raise ValueError(f'timeout_margin_s must be positive, got {timeout_margin_s}')
        self.port = port
        self.baudrate = baudrate
        self.read_retries = read_retries
        self.timeout_margin_s = timeout_margin_s
        self.joint_names = dict(joint_names or {})
        self.counters = BusCounters()
        self.last_errors: dict[int, int] = {}
        """Error byte of each servo's latest status packet."""
        self.latched_errors: dict[int, int] = {}
        """OR of every error byte seen per servo since the last clear_latched_errors()."""
        self._serial: serial.Serial | None = None
        self._timeout_s: float | None = None
        self._lock = threading.Lock()

    # --- port ------------------------------------------------------------------------------
    def open(self) -> None:
        if self._serial is not None:
            return
        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.1,
                                                 write_timeout=1.0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as error:
            raise TransportError(_open_error_message(self.port, error)) from error
        self._timeout_s = 0.1

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def close(self) -> None:
        with self._lock:
            if self._serial is not None:
                try:
                    self._serial.close()
                except PORT_ERRORS:
                    pass  # the port vanished: nothing left to release
                finally:
                    self._serial = None

    def label(self, servo_id: int) -> str:
        name = self.joint_names.get(servo_id)
        return f'servo id {servo_id} ({name})' if name else f'servo id {servo_id}'

    def clear_latched_errors(self) -> None:
        self.latched_errors.clear()

    def byte_time_s(self) -> float:
        return BITS_PER_BYTE / self.baudrate

    def timeout_for(self, tx_bytes: int, rx_bytes: int, replies: int) -> float:
        """Deadline of one attempt: wire time + reply delays + the configured margin."""
        return ((tx_bytes + rx_bytes) * self.byte_time_s()
                + replies * REPLY_DELAY_ALLOWANCE_S + self.timeout_margin_s)

    # --- raw I/O ---------------------------------------------------------------------------
    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise TransportError(f'{self.port}: the bus is not open')
        return self._serial

    def _send(self, packet: bytes) -> None:
        port = self._port()
        try:
            port.reset_input_buffer()
            port.write(packet)
        except PORT_ERRORS as error:
            raise TransportError(f'{self.port}: write failed ({error}); '
                                 'was the USB cable unplugged?') from error

    def _receive(self, count: int, deadline: float) -> bytes:
        port = self._port()
        data = bytearray()
        try:
            while len(data) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # Millisecond steps: setting pyserial's timeout reconfigures the port.
                timeout = max(0.001, round(remaining + 0.0005, 3))
                if timeout != self._timeout_s:
                    port.timeout = timeout
                    self._timeout_s = timeout
                data += port.read(count - len(data))
        except PORT_ERRORS as error:
            raise TransportError(f'{self.port}: read failed ({error}); '
                                 'was the USB cable unplugged?') from error
        return bytes(data)

    # --- transactions ----------------------------------------------------------------------
    def transact(self, packet: bytes, expected: list[tuple[int, int]]) -> dict[int, bytes]:
        """Send ``packet`` and collect one status packet per ``(servo_id, param_count)``.

        Returns each servo's parameters. Retries the whole exchange on any missing, corrupted
        or malformed reply; raises ServoMissingError (no reply at all), ChecksumError (only
        corrupted replies) or ProtocolError (wrong length) after ``read_retries`` retries.
        """
        rx_bytes = sum(protocol.status_length(n) for _, n in expected)
        timeout = self.timeout_for(len(packet), rx_bytes, len(expected))
        with self._lock:
            self.counters.transactions += 1
            for attempt in range(self.read_retries + 1):
                if attempt:
                    self.counters.retries += 1
                self._send(packet)
                deadline = time.monotonic() + timeout
                raw = self._receive(rx_bytes, deadline)
                replies, problem = self._match(raw, expected)
                if problem is None:
                    return replies
            self.counters.failures += 1
            raise problem

    def _match(self, raw: bytes, expected: list[tuple[int, int]]
               ) -> tuple[dict[int, bytes], Exception | None]:
        result = protocol.parse(raw, status_packets=True, final=True)
        self.counters.checksum_errors += result.checksum_errors
        self.counters.malformed_packets += result.malformed
        got: dict[int, protocol.Packet] = {}
        for packet in result.packets:
            self.last_errors[packet.servo_id] = packet.error
            self.latched_errors[packet.servo_id] = (
                self.latched_errors.get(packet.servo_id, 0) | packet.error)
            got.setdefault(packet.servo_id, packet)
        replies, missing = {}, []
        for servo_id, count in expected:
            packet = got.get(servo_id)
            if packet is None:
                missing.append(servo_id)
            elif len(packet.params) != count:
                return {}, ProtocolError(
                    f'{self.label(servo_id)} answered with {len(packet.params)} data bytes, '
                    f'expected {count}')
            else:
                replies[servo_id] = packet.params
        if not missing:
            return replies, None
        self.counters.timeouts += 1
        who = ', '.join(self.label(servo_id) for servo_id in missing)
        tries = self.read_retries + 1
        if result.checksum_errors:
            return {}, ChecksumError(
                f'{who}: corrupted status packet (bad checksum) on {self.port} after {tries} '
                'tries; check the bus wiring and the power supply')
        if result.malformed or result.garbage_bytes:
            return {}, ProtocolError(
                f'{who}: malformed reply on {self.port} after {tries} tries '
                f'({len(raw)} bytes received); is the baud rate right ({self.baudrate})?')
        return {}, ServoMissingError(
            f'{who} did not answer on {self.port} after {tries} tries; check its cable, '
            'its power supply and its id/baud rate')

    # --- instructions ----------------------------------------------------------------------
    def ping(self, servo_id: int) -> int:
        """Ping a servo; return its error byte (0 = healthy)."""
        self.transact(protocol.ping(servo_id), [(servo_id, 0)])
        return self.last_errors.get(servo_id, 0)

    def read_model_number(self, servo_id: int) -> int:
        return self.read(servo_id, 'Model_Number')

    def read_block(self, servo_id: int, address: int, size: int) -> bytes:
        return self.transact(protocol.read(servo_id, address, size), [(servo_id, size)])[servo_id]

    def read(self, servo_id: int, name: str) -> int:
        reg = control_table.register(name)
        return reg.decode(self.read_block(servo_id, reg.address, reg.size))

    def write_block(self, servo_id: int, address: int, data: bytes) -> None:
        """WRITE with an acknowledging status packet (Response_Status_Level 1, the default)."""
        self.transact(protocol.write(servo_id, address, data), [(servo_id, 0)])

    def write(self, servo_id: int, name: str, value: int) -> None:
        reg = control_table.register(name)
        if reg.read_only:
            raise ValueError(f'{name} is read-only')
        self.write_block(servo_id, reg.address, reg.encode(value))

    def sync_read_block(self, servo_ids: list[int], address: int, size: int
                        ) -> dict[int, bytes]:
        """One SYNC_READ; every servo answers with ``size`` bytes from ``address``."""
        packet = protocol.sync_read(servo_ids, address, size)
        return self.transact(packet, [(servo_id, size) for servo_id in servo_ids])

    def sync_read(self, servo_ids: list[int], names: tuple[str, ...]) -> dict[int, dict[str, int]]:
        """Sync-read contiguous registers ``names`` (one request) and decode them per servo."""
        regs = [control_table.register(name) for name in names]
        start = min(r.address for r in regs)
        size = max(r.address + r.size for r in regs) - start
        blocks = self.sync_read_block(servo_ids, start, size)
        return {servo_id: control_table.decode_block(block, start, names)
                for servo_id, block in blocks.items()}

    def sync_write_block(self, address: int, size: int, data: dict[int, bytes]) -> None:
        """One SYNC_WRITE (broadcast, never answered)."""
        packet = protocol.sync_write(address, size, data)
        with self._lock:
            self.counters.transactions += 1
            self._send(packet)

    def sync_write(self, name: str, values: dict[int, int]) -> None:
        reg = control_table.register(name)
        if reg.read_only:
            raise ValueError(f'{name} is read-only')
        self.sync_write_block(reg.address, reg.size,
                              {servo_id: reg.encode(v) for servo_id, v in values.items()})

    def reg_write(self, servo_id: int, name: str, value: int) -> None:
        """Buffered WRITE, applied by action(); acknowledged like WRITE."""
        reg = control_table.register(name)
        self.transact(protocol.reg_write(servo_id, reg.address, reg.encode(value)),
                      [(servo_id, 0)])

    def action(self) -> None:
        """Broadcast ACTION: every servo applies its buffered REG_WRITE."""
        with self._lock:
            self.counters.transactions += 1
            self._send(protocol.action())
