"""The calibrate and virtual_bus command-line tools, in-process and as real processes."""
import io
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from so101_driver.feetech import calibrate_cli
from so101_driver.feetech import calibration as cal
from so101_driver.feetech.backend import FeetechBackend
from so101_driver.feetech.config import FeetechBackendConfig
from so101_driver.feetech.virtual_bus import DEFAULT_RAW_MID, VirtualBus


@pytest.fixture
def virtual():
    with VirtualBus(seed=3) as bus:
        yield bus


def test_non_interactive_calibration_writes_lerobot_json(virtual, tmp_path):
    virtual.set_hand_sweep(300, period_s=0.4, delay_s=0.6)
    path = tmp_path / 'arm.json'
    out = io.StringIO()
    code = calibrate_cli.main(['--port', virtual.port, '--non-interactive', '--duration-s', '1.3',
                               '--calibration-file', str(path)], out=out)
    assert code == 0, out.getvalue()
    content = json.loads(path.read_text())
    assert set(content['elbow_flex']) == set(cal.FIELDS)
    calibration = cal.load_calibration(path)
    for name, entry in calibration.items():
        assert entry.homing_offset == DEFAULT_RAW_MID[entry.id] - 2047, name
        servo = virtual.servo(entry.id)
        assert servo.get('Min_Position_Limit') == entry.range_min
        assert servo.get('Max_Position_Limit') == entry.range_max
        if name == 'wrist_roll':
            assert (entry.range_min, entry.range_max) == (0, 4095)
        else:
            # The hand swept +-300 ticks around the middle pose.
            assert entry.mid == pytest.approx(2047, abs=30), name
            assert entry.range_max - entry.range_min == pytest.approx(600, abs=40), name
    assert 'calibration written to' in out.getvalue()
    # The servos now hold exactly what the file says: the backend accepts it.
    robot = FeetechBackend(FeetechBackendConfig(port=virtual.port, calibration_file=str(path)))
    robot.connect()
    robot.close()


class ScriptedStdin:
    """Enter at once for the middle pose, Enter after a delay to end the recording."""

    def __init__(self, recording_s):
        self.calls = 0
        self.recording_s = recording_s

    def readline(self):
        self.calls += 1
        if self.calls > 1:
            time.sleep(self.recording_s)
        return '\n'


def test_interactive_calibration_with_scripted_input(virtual, tmp_path):
    virtual.set_hand_sweep(200, period_s=0.3, delay_s=0.1)
    path = tmp_path / 'arm.json'
    path.write_text('{"old": true}')
    out = io.StringIO()
    code = calibrate_cli.main(['--port', virtual.port, '--calibration-file', str(path)],
                              stdin=ScriptedStdin(0.8), out=out)
    assert code == 0, out.getvalue()
    text = out.getvalue()
    assert 'Press Enter' in text and '\x1b[' in text and 'shoulder_pan' in text
    assert json.loads((tmp_path / 'arm.json.bak').read_text()) == {'old': True}
    assert cal.load_calibration(path)['gripper'].range_max > 2047 + 150


def test_joints_that_did_not_move_fail_the_calibration(virtual, tmp_path, capsys):
    code = calibrate_cli.main(['--port', virtual.port, '--non-interactive', '--duration-s', '0.2',
                               '--calibration-file', str(tmp_path / 'arm.json')],
                              out=io.StringIO())
    assert code == 1
    assert 'did not move' in capsys.readouterr().err
    assert not (tmp_path / 'arm.json').exists()


def test_calibrate_reports_a_missing_port(tmp_path, capsys):
    code = calibrate_cli.main(['--port', str(tmp_path / 'ttyACM0'), '--non-interactive',
                               '--calibration-file', str(tmp_path / 'arm.json')],
                              out=io.StringIO())
    assert code == 1
    assert 'cannot open' in capsys.readouterr().err


def _start_virtual_bus(args):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    process = subprocess.Popen([sys.executable, '-m', 'so101_driver.feetech.virtual_bus', *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    lines = []
    ready = threading.Event()

    def pump():
        for line in process.stdout:
            lines.append(line)
            if 'Ctrl+C' in line:
                ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    assert ready.wait(30), ''.join(lines)
    return process, lines, reader


def test_virtual_bus_process_serves_the_backend_and_the_calibrate_tool(tmp_path):
    link = tmp_path / 'so101_bus'
    calibration_file = tmp_path / 'virtual.json'
    process, lines, reader = _start_virtual_bus(['--link', str(link), '--calibration',
                                         str(calibration_file), '--hand-sweep-ticks', '250',
                                         '--corrupt-next', '1', '--overheat', '2',
                                         '--duration-s', '60'])
    try:
        assert link.is_symlink() and calibration_file.is_file()
        assert 'wrote a calibration' in lines[0]
        # backend:=real without hardware: point the backend at the virtual bus.
        robot = FeetechBackend(FeetechBackendConfig(port=str(link),
                                                    calibration_file=str(calibration_file)))
        robot.connect()
        try:
            assert robot.bus.counters.retries >= 6  # every servo's first reply was corrupted
            assert robot.health().joints['shoulder_lift'].faults == ('overheat',)
            # Near the zero pose: the simulated hand may already sweep +-250 ticks (0.38 rad).
            np.testing.assert_allclose(robot.read().positions_rad, 0.0, atol=0.45)
            robot.set_torque(True)
            robot.write_positions(np.array([0.2, 0.1, -0.1, 0.3, 0.0, 0.5]))
        finally:
            robot.close()
        result = subprocess.run(
            [sys.executable, '-m', 'so101_driver.feetech.calibrate_cli', '--port', str(link),
             '--non-interactive', '--duration-s', '1.5', '--calibration-file',
             str(tmp_path / 'new.json')], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert cal.load_calibration(tmp_path / 'new.json')['shoulder_pan'].id == 1
    finally:
        process.terminate()
        assert process.wait(10) == 0
        reader.join(5)
    assert not link.exists()
    assert 'stopped' in lines[-1]
