"""A virtual STS3215 bus on a pseudo-terminal: try ``backend:=real`` without hardware.

``VirtualBus`` opens a pty pair, answers instruction packets written to the slave side
byte-exactly as a chain of STS3215 servos would (PING, READ, WRITE, REG_WRITE, ACTION,
SYNC_READ, SYNC_WRITE, broadcast PING/WRITE), and runs a motor model per servo
(``virtual_servo``). Faults can be injected from Python (tests) or from the command line:
silent servos, corrupted checksums (next N replies or with a probability), error bits
(overload, overheat, ...), garbage bytes before replies.

    ros2 run so101_driver virtual_bus --link /tmp/so101_virtual_bus \
        --calibration /tmp/so101_virtual_calibration.json
"""
import argparse
import os
import random
import select
import signal
import threading
import time
import tty

from so101_driver.feetech import calibration as cal
from so101_driver.feetech import protocol
from so101_driver.feetech.protocol import Instruction
from so101_driver.feetech.virtual_servo import HandSweep, MotorModel, VirtualServo
from so101_driver.model_files import JOINT_NAMES

DEFAULT_IDS = {name: index + 1 for index, name in enumerate(JOINT_NAMES)}
DEFAULT_RAW_MID = {1: 1830, 2: 2210, 3: 1690, 4: 2400, 5: 2048, 6: 1985}
"""Raw encoder angle of each servo at the arm's middle pose (an assembled arm's horns are not
at 2048; emulator choice)."""
STALE_FRAGMENT_S = 0.02
"""An incomplete instruction packet older than this is dropped (the servo's frame timeout)."""
NAME_TO_BIT = {'voltage': protocol.StatusError.VOLTAGE, 'encoder': protocol.StatusError.ENCODER,
               'overheat': protocol.StatusError.OVERHEAT,
               'over_current': protocol.StatusError.OVER_CURRENT,
               'overload': protocol.StatusError.OVERLOAD}


class VirtualBus:
    """A chain of emulated servos behind a pty (``start()``) or fed directly (``handle()``)."""

    def __init__(self, servo_ids: tuple[int, ...] = (1, 2, 3, 4, 5, 6), *, seed: int = 0,
                 link: str | None = None, model: MotorModel | None = None,
                 wire_baudrate: int | None = None):
        """``wire_baudrate`` set: delay each reply by the wire time of request + reply."""
        now = time.monotonic()
        self.servos = [VirtualServo(i, raw_position=DEFAULT_RAW_MID.get(i, 2048),
                                    model=model or MotorModel(), now=now) for i in servo_ids]
        self.link = link
        self.wire_baudrate = wire_baudrate
        self.garbage_next = 0
        """Prepend garbage bytes to this many next replies."""
        self.requests = 0
        self.replies = 0
        self.corrupted_replies = 0
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self._stream = protocol.PacketStream(status_packets=False)
        self._last_rx = 0.0
        self._master = self._slave = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.port = ''

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> str:
        """Open the pty, start answering in a thread; return the path clients open."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        if self.link:
            if os.path.islink(self.link):
                os.unlink(self.link)
            os.symlink(self.port, self.link)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name='virtual_bus', daemon=True)
        self._thread.start()
        return self.link or self.port

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        if self.link and os.path.islink(self.link) and os.readlink(self.link) == self.port:
            os.unlink(self.link)

    def __enter__(self) -> 'VirtualBus':
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:  # no client has the slave open right now
                time.sleep(0.01)
                continue
            reply = self.handle(data)
            if reply:
                os.write(self._master, reply)

    # --- servos and faults -----------------------------------------------------------------
    def servo(self, servo_id: int) -> VirtualServo:
        """The servo answering to ``servo_id`` now (KeyError if none)."""
        for servo in self.servos:
            if servo.servo_id == servo_id:
                return servo
        raise KeyError(f'no virtual servo with id {servo_id}')

    def set_silent(self, servo_id: int, silent: bool = True) -> None:
        with self.lock:
            self.servo(servo_id).faults.silent = silent

    def corrupt_next(self, servo_id: int, count: int) -> None:
        with self.lock:
            self.servo(servo_id).faults.corrupt_next = count

    def set_corrupt_probability(self, probability: float, servo_ids=None) -> None:
        with self.lock:
            for servo in self.servos:
                if servo_ids is None or servo.servo_id in servo_ids:
                    servo.faults.corrupt_probability = probability

    def set_error(self, servo_id: int, *names: str) -> None:
        """Report these faults ('overload', 'overheat', ...) until cleared with no names."""
        bits = 0
        for name in names:
            bits |= NAME_TO_BIT[name]
        with self.lock:
            servo = self.servo(servo_id)
            servo.faults.error_bits = int(bits)
            servo.advance(time.monotonic())

    def set_hand_sweep(self, amplitude_ticks: float, period_s: float = 2.0,
                       delay_s: float = 0.5) -> None:
        """Let a simulated hand move every limp joint (for calibration without hardware)."""
        with self.lock:
            for servo in self.servos:
                servo.hand_sweep = HandSweep(amplitude_ticks, period_s, delay_s)

    def apply_calibration(self, calibration: dict[str, cal.MotorCalibration]) -> None:
        """Store a calibration in the servos (as EEPROM) and put the arm at its zero pose."""
        mapping = cal.JointMapping(calibration, tuple(calibration))
        with self.lock:
            for index, entry in enumerate(calibration.values()):
                servo = self.servo(entry.id)
                servo.set('Homing_Offset', entry.homing_offset)
                servo.set('Min_Position_Limit', entry.range_min)
                servo.set('Max_Position_Limit', entry.range_max)
                servo.persisted = bytes(servo.memory)
                zero = int(round(mapping.zero_ticks[index]))
                zero = min(max(zero, entry.range_min), entry.range_max)
                servo.advance(time.monotonic())
                servo.place(zero + entry.homing_offset)
                servo.set('Goal_Position', zero)

    def positions(self) -> dict[int, int]:
        """Present_Position of every servo, by id."""
        with self.lock:
            now = time.monotonic()
            for servo in self.servos:
                servo.advance(now)
            return {servo.servo_id: servo.get('Present_Position') for servo in self.servos}

    # --- protocol --------------------------------------------------------------------------
    def handle(self, data: bytes) -> bytes:
        """Feed bytes written by the host; return the bytes the servos send back."""
        with self.lock:
            now = time.monotonic()
            if self._stream.pending and now - self._last_rx > STALE_FRAGMENT_S:
                self._stream.clear()
            self._last_rx = now
            out = bytearray()
            for packet in self._stream.feed(data):
                self.requests += 1
                for servo in self.servos:
                    servo.advance(now)
                out += self._execute(packet)
        if out and self.wire_baudrate:
            time.sleep((len(data) + len(out)) * 10 / self.wire_baudrate)
        return bytes(out)

    def _targets(self, servo_id: int) -> list[VirtualServo]:
        if servo_id == protocol.BROADCAST_ID:
            return sorted(self.servos, key=lambda s: s.servo_id)
        return [s for s in self.servos if s.servo_id == servo_id]

    def _execute(self, packet: protocol.Packet) -> bytes:
        code, params = packet.code, packet.params
        broadcast = packet.servo_id == protocol.BROADCAST_ID
        if code == Instruction.SYNC_READ:
            if len(params) < 2:
                return b''
            address, size = params[0], params[1]
            return b''.join(self._reply(s, s.read_bytes(address, size))
                            for servo_id in params[2:] for s in self._targets(servo_id))
        if code == Instruction.SYNC_WRITE:
            if len(params) < 2 or params[1] == 0:
                return b''
            address, size = params[0], params[1]
            body = params[2:]
            for start in range(0, len(body) - size, size + 1):
                for servo in self._targets(body[start]):
                    servo.write_bytes(address, body[start + 1:start + 1 + size])
            return b''
        out = bytearray()
        for servo in self._targets(packet.servo_id):
            acknowledge = servo.get('Response_Status_Level') >= 1 and not broadcast
            if code == Instruction.PING:
                out += self._reply(servo, b'')
            elif code == Instruction.READ and len(params) == 2 and not broadcast:
                out += self._reply(servo, servo.read_bytes(params[0], params[1]))
            elif code in (Instruction.WRITE, Instruction.REG_WRITE) and len(params) >= 2:
                if code == Instruction.WRITE:
                    servo.write_bytes(params[0], params[1:])
                else:
                    servo.pending_reg_write = (params[0], params[1:])
                if acknowledge:
                    out += self._reply(servo, b'')
            elif code == Instruction.ACTION and servo.pending_reg_write:
                servo.write_bytes(*servo.pending_reg_write)
                servo.pending_reg_write = None
                if acknowledge:
                    out += self._reply(servo, b'')
        return bytes(out)

    def _reply(self, servo: VirtualServo, params: bytes) -> bytes:
        faults = servo.faults
        if faults.silent:
            return b''
        reply = bytearray(protocol.status(servo.servo_id, faults.error_bits & 0x7F, params))
        corrupt = faults.corrupt_next > 0
        if corrupt:
            faults.corrupt_next -= 1
        elif faults.corrupt_probability > 0:
            corrupt = self._rng.random() < faults.corrupt_probability
        if corrupt:
            reply[-1] ^= 0x5A
            self.corrupted_replies += 1
        if self.garbage_next > 0:
            self.garbage_next -= 1
            reply[:0] = bytes((0x00, 0xFF, 0x13, 0xFF))
        self.replies += 1
        return bytes(reply)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='virtual_bus', description='Emulate an SO-101 follower arm (six STS3215 servos) '
        'on a pseudo-terminal; point the driver or the calibrate command at the printed port.')
    parser.add_argument('--link', default='/tmp/so101_virtual_bus',
                        help='symlink to the pty slave (default %(default)s; "" for none)')
    parser.add_argument('--ids', type=int, nargs='+', default=list(DEFAULT_IDS.values()),
                        help='servo ids (default: 1..6, shoulder_pan..gripper)')
    parser.add_argument('--calibration', default='',
                        help='LeRobot calibration JSON to store in the servos (arm starts at '
                        'its zero pose); created with plausible values if it does not exist')
    parser.add_argument('--seed', type=int, default=0, help='seed of the fault RNG')
    parser.add_argument('--silent', type=int, nargs='*', default=[], metavar='ID',
                        help='servos that never answer')
    parser.add_argument('--corrupt-probability', type=float, default=0.0,
                        help='probability of a corrupted checksum in each reply')
    parser.add_argument('--corrupt-next', type=int, default=0, metavar='N',
                        help='corrupt the checksum of the first N replies of every servo')
    for name in NAME_TO_BIT:
        parser.add_argument(f'--{name.replace("_", "-")}', type=int, nargs='*', default=[],
                            metavar='ID', help=f'servos reporting the {name} error bit')
    parser.add_argument('--hand-sweep-ticks', type=float, default=0.0,
                        help='move limp joints +- this many ticks (a person calibrating)')
    parser.add_argument('--wire-baudrate', type=int, default=0,
                        help='delay replies by their wire time at this baud rate (0: none)')
    parser.add_argument('--duration-s', type=float, default=0.0,
                        help='stop after this many seconds (0: until Ctrl+C)')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    bus = VirtualBus(tuple(args.ids), seed=args.seed, link=args.link or None,
                     wire_baudrate=args.wire_baudrate or None)
    if args.calibration:
        names = dict(zip(JOINT_NAMES, args.ids))
        if not os.path.exists(args.calibration):
            offsets = {name: DEFAULT_RAW_MID.get(i, 2048) - 2047 for name, i in names.items()}
            cal.save_calibration(args.calibration, cal.synthetic_calibration(names, offsets))
            print(f'wrote a calibration for the virtual arm to {args.calibration}', flush=True)
        bus.apply_calibration(cal.load_calibration(args.calibration, tuple(names)))
    for servo_id in args.silent:
        bus.set_silent(servo_id)
    bus.set_corrupt_probability(args.corrupt_probability)
    for servo_id in args.ids:
        bus.corrupt_next(servo_id, args.corrupt_next)
    errors: dict[int, list[str]] = {}
    for name in NAME_TO_BIT:
        for servo_id in getattr(args, name):
            errors.setdefault(servo_id, []).append(name)
    for servo_id, names in errors.items():
        bus.set_error(servo_id, *names)
    if args.hand_sweep_ticks:
        bus.set_hand_sweep(args.hand_sweep_ticks)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    port = bus.start()
    print(f'virtual SO-101 bus (servo ids {args.ids}) on {bus.port}'
          + (f' (link {args.link})' if args.link else '') + '; Ctrl+C to stop', flush=True)
    try:
        stop.wait(args.duration_s or None)
    except KeyboardInterrupt:
        pass
    finally:
        bus.stop()
    print(f'virtual bus on {port} stopped: {bus.requests} requests, {bus.replies} replies',
          flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
