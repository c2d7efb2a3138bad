"""``calibrate``: interactive SO-101 calibration, writing LeRobot's calibration JSON.

Steps (as LeRobot's SO-101 follower calibration, so the file stays interchangeable):

1. torque off; clear Homing_Offset and the position limits so raw positions are read;
2. the user puts the arm in the middle of its range (URDF zero pose: upper arm up, forearm
   forward, wrist straight, gripper half open) and presses Enter; Homing_Offset = present - 2047
   is written so that this pose reads 2047;
3. the user moves every joint through its whole range while a live table shows min/position/max;
   Enter ends the recording (wrist_roll is given the full turn 0..4095);
4. the ranges are written to Min/Max_Position_Limit and the JSON file is saved.

``--non-interactive --duration-s N`` skips the prompts (step 2 uses the pose at start, step 3
records for N seconds): for scripted runs against the virtual bus.
"""
import argparse
from collections.abc import Callable
import pathlib
import shutil
import sys
import threading
import time
from typing import TextIO

from so101_driver.errors import DriverError
from so101_driver.feetech import calibration as cal
from so101_driver.feetech import control_table as ct
from so101_driver.feetech.backend import check_servos
from so101_driver.feetech.bus import FeetechBus
from so101_driver.model_files import JOINT_NAMES

MIN_RANGE_TICKS = 20
"""A recorded range narrower than this (1.8 deg) means the joint was not moved."""
OFF_CENTRE_WARNING_TICKS = 400


def _present(bus: FeetechBus, ids: dict[str, int]) -> dict[str, int]:
    values = bus.sync_read(list(ids.values()), ('Present_Position',))
    return {name: values[servo_id]['Present_Position'] for name, servo_id in ids.items()}


def _table(mins: dict[str, int], positions: dict[str, int], maxes: dict[str, int]) -> list[str]:
    lines = [f'{"joint":<15}{"min":>7}{"pos":>7}{"max":>7}']
    lines += [f'{name:<15}{mins[name]:>7}{positions[name]:>7}{maxes[name]:>7}'
              for name in positions]
    return lines


def run_calibration(bus: FeetechBus, ids: dict[str, int], *, wait_for_middle: Callable[[], None],
                    recording_done: Callable[[], bool], out: TextIO,
                    full_turn_joints: tuple[str, ...] = cal.FULL_TURN_JOINTS,
                    sample_period_s: float = 0.02, live: bool = False
                    ) -> dict[str, cal.MotorCalibration]:
    """Calibrate the servos on ``bus``; return the calibration (already written to the servos).

    ``wait_for_middle`` returns once the arm is in its middle pose; ``recording_done`` is polled
    while recording the ranges. Raises DriverError (bus) or ValueError (a joint did not move).
    """
    for servo_id in ids.values():
        bus.write(servo_id, 'Torque_Enable', 0)
        bus.write(servo_id, 'Lock', 0)
        bus.write(servo_id, 'Homing_Offset', 0)
        bus.write(servo_id, 'Min_Position_Limit', 0)
        bus.write(servo_id, 'Max_Position_Limit', ct.MAX_TICK)
    print('Torque is off. Move the arm to the MIDDLE of its range (upper arm up, forearm '
          'forward, wrist straight, gripper half open).', file=out, flush=True)
    wait_for_middle()
    raw = _present(bus, ids)
    offsets = {}
    for name, position in raw.items():
        offset = position - ct.HALF_TURN_TICK
        if abs(offset) > ct.HOMING_OFFSET_LIMIT:
            raise ValueError(f'{name} reads {position} at the middle pose, which no homing '
                             'offset can bring to 2047; turn the joint a little and retry')
        offsets[name] = offset
        bus.write(ids[name], 'Homing_Offset', offset)
    print(f'Homing offsets written: {offsets}', file=out)
    print('Now move EVERY joint through its whole range of motion'
          + ('; press Enter when done.' if live else '.'), file=out, flush=True)
    positions = _present(bus, ids)
    mins, maxes = dict(positions), dict(positions)
    shown = 0
    last_print = 0.0
    while not recording_done():
        positions = _present(bus, ids)
        for name, value in positions.items():
            mins[name] = min(mins[name], value)
            maxes[name] = max(maxes[name], value)
        now = time.monotonic()
        if live and now - last_print > 0.1:
            if shown:
                out.write(f'\x1b[{shown}F')
            lines = _table(mins, positions, maxes)
            out.write(''.join(f'{line}\x1b[K\n' for line in lines))
            out.flush()
            shown, last_print = len(lines), now
        time.sleep(sample_period_s)
    if not live:
        print('\n'.join(_table(mins, positions, maxes)), file=out)
    for name in full_turn_joints:
        if name in ids:
            mins[name], maxes[name] = 0, ct.MAX_TICK
    still = [name for name in ids if maxes[name] - mins[name] < MIN_RANGE_TICKS]
    if still:
        raise ValueError(f'these joints did not move during the recording: {still}; '
                         'move every joint from one end of its range to the other')
    calibration = {}
    for name, servo_id in ids.items():
        calibration[name] = cal.MotorCalibration(
            id=servo_id, drive_mode=0, homing_offset=offsets[name], range_min=mins[name],
            range_max=maxes[name])
        bus.write(servo_id, 'Min_Position_Limit', mins[name])
        bus.write(servo_id, 'Max_Position_Limit', maxes[name])
        off_centre = calibration[name].mid - ct.HALF_TURN_TICK
        if name not in full_turn_joints and abs(off_centre) > OFF_CENTRE_WARNING_TICKS:
            print(f'warning: the range of {name} is not centred on the middle pose '
                  f'({off_centre:+.0f} ticks): its zero will not be the pose you chose',
                  file=out)
    return calibration


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='calibrate', description='Calibrate an SO-101 follower arm (Feetech STS3215 bus) '
        "and write LeRobot's calibration JSON.")
    parser.add_argument('--port', default='/dev/ttyACM0', help='bus port (default %(default)s)')
    parser.add_argument('--baudrate', type=int, default=1_000_000)
    parser.add_argument('--robot-id', default='so101_follower',
                        help='LeRobot robot id: the file is <LeRobot calibration dir>/robots/'
                        'so101_follower/<robot-id>.json unless --calibration-file is given')
    parser.add_argument('--calibration-file', default='', help='where to write the JSON')
    parser.add_argument('--ids', type=int, nargs=6, default=list(range(1, 7)),
                        metavar='ID', help=f'servo ids of {", ".join(JOINT_NAMES)}')
    parser.add_argument('--full-turn-joints', nargs='*', default=list(cal.FULL_TURN_JOINTS),
                        help='joints given the full 0..4095 range (default: wrist_roll)')
    parser.add_argument('--non-interactive', action='store_true',
                        help='no prompts: the pose at start is the middle pose, ranges are '
                        'recorded for --duration-s seconds')
    parser.add_argument('--duration-s', type=float, default=10.0,
                        help='recording time in --non-interactive mode (default %(default)s)')
    parser.add_argument('--read-retries', type=int, default=2)
    return parser


def main(argv: list[str] | None = None, stdin: TextIO | None = None,
         out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    path = pathlib.Path(args.calibration_file or cal.default_calibration_path(args.robot_id))
    ids = dict(zip(JOINT_NAMES, args.ids))
    if args.non_interactive:
        deadline = [float('inf')]

        def wait_for_middle():
            deadline[0] = time.monotonic() + args.duration_s

        def recording_done():
            return time.monotonic() >= deadline[0]
    else:
        pressed = threading.Event()

        def wait_for_middle():
            out.write('Press Enter when the arm is in the middle pose... ')
            out.flush()
            stdin.readline()
            threading.Thread(target=lambda: (stdin.readline(), pressed.set()),
                             daemon=True).start()

        recording_done = pressed.is_set
    bus = FeetechBus(args.port, args.baudrate, read_retries=args.read_retries,
                     joint_names={i: n for n, i in ids.items()})
    try:
        bus.open()
        check_servos(bus, tuple(ids.values()), ct.STS3215_MODEL_NUMBER)
        calibration = run_calibration(
            bus, ids, wait_for_middle=wait_for_middle, recording_done=recording_done, out=out,
            full_turn_joints=tuple(args.full_turn_joints), live=not args.non_interactive)
    except (DriverError, ValueError) as error:
        print(f'calibration failed: {error}', file=sys.stderr)
        return 1
    finally:
        bus.close()
    if path.exists():
        backup = path.with_name(path.name + '.bak')
        shutil.copyfile(path, backup)
        print(f'previous calibration kept as {backup}', file=out)
    cal.save_calibration(path, calibration)
    print(f'calibration written to {path} (and to the servos). Start the driver with '
          f'backend:=real port:={args.port} calibration_file:={path}', file=out, flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
