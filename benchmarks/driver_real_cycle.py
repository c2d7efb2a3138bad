"""Real-backend control-cycle cost: FeetechBackend.read() + write_positions() per step.

The virtual STS3215 bus runs in its own process (so its CPU time is not counted) on a
pseudo-terminal. A pty has no wire time and no USB latency: the wall time here is our CPU cost
plus the emulator's turnaround, not what a real bus takes. The script prints the wire time the
same exchange needs at the configured baud rate for comparison; ``--wire-baudrate`` makes the
emulator delay each reply by its wire time.

    python benchmarks/driver_real_cycle.py [--steps 2000] [--wire-baudrate 1000000]
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

from so101_driver.feetech import control_table as ct
from so101_driver.feetech import protocol
from so101_driver.feetech.backend import FeetechBackend
from so101_driver.feetech.config import FeetechBackendConfig


def percentiles(values_s):
    ms = np.asarray(values_s) * 1e3
    return (f'p50 {np.percentile(ms, 50):.3f} ms  p99 {np.percentile(ms, 99):.3f} ms  '
            f'mean {ms.mean():.3f} ms')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--steps', type=int, default=2000)
    parser.add_argument('--warmup', type=int, default=100)
    parser.add_argument('--baudrate', type=int, default=1_000_000)
    parser.add_argument('--wire-baudrate', type=int, default=0,
                        help='emulate the wire time of replies at this baud rate (0: none)')
    args = parser.parse_args()

    folder = pathlib.Path(tempfile.mkdtemp(prefix='driver_real_cycle_'))
    link, calibration = folder / 'bus', folder / 'calibration.json'
    command = [sys.executable, '-m', 'so101_driver.feetech.virtual_bus', '--link', str(link),
               '--calibration', str(calibration), '--wire-baudrate', str(args.wire_baudrate)]
    emulator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED='1'))
    try:
        for line in emulator.stdout:
            if 'Ctrl+C' in line:
                break
        robot = FeetechBackend(FeetechBackendConfig(port=str(link), baudrate=args.baudrate,
                                                    calibration_file=str(calibration)))
        robot.connect()
        robot.set_torque(True)
        cpu, wall = [], []
        for step in range(args.warmup + args.steps):
            target = 0.3 * np.sin(np.full(6, step * 0.01))
            c0, w0 = time.process_time(), time.perf_counter()
            robot.read()
            robot.write_positions(target)
            c1, w1 = time.process_time(), time.perf_counter()
            if step >= args.warmup:
                cpu.append(c1 - c0)
                wall.append(w1 - w0)
        counters = robot.bus.counters.as_dict()
        robot.close()
    finally:
        emulator.terminate()
        emulator.wait(10)

    request = len(protocol.sync_read(list(range(1, 7)), ct.STATE_BLOCK_ADDRESS,
                                     ct.STATE_BLOCK_SIZE))
    replies = 6 * protocol.status_length(ct.STATE_BLOCK_SIZE)
    goals = len(protocol.sync_write(42, 2, dict.fromkeys(range(1, 7), b'\x00\x00')))
    wire_ms = (request + replies + goals) * 10 / args.baudrate * 1e3
    print(f'FeetechBackend read()+write_positions() x {args.steps} steps against the virtual '
          f'bus (pty, separate process; wire emulation: {args.wire_baudrate or "off"})')
    print(f'  CPU time per step : {percentiles(cpu)}')
    print(f'  wall time per step: {percentiles(wall)}')
    print(f'  bytes per step: {request} + {replies} (sync read) + {goals} (sync write) = '
          f'{request + replies + goals} -> {wire_ms:.2f} ms of wire time at {args.baudrate} baud')
    print(f'  bus counters: {counters}')


if __name__ == '__main__':
    main()
