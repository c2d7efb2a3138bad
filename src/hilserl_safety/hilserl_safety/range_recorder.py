"""The joint-limit finder's core (ROS-free): record joint and TCP ranges while a person moves
the arm, check there was enough motion, and produce the limit file content.
"""
import numpy as np

from hilserl_safety.errors import InsufficientMotionError
from hilserl_safety.filter import ARM
from hilserl_safety.limits import LimitsFile, WorkspaceBox


class RangeRecorder:
    """Running min/max of every joint and of the TCP position (forward kinematics)."""

    def __init__(self, joint_names, kinematics=None):
        self.joint_names = tuple(joint_names)
        self.kinematics = kinematics
        count = len(self.joint_names)
        self.joint_min = np.full(count, np.inf)
        self.joint_max = np.full(count, -np.inf)
        self.tcp_min = np.full(3, np.inf)
        self.tcp_max = np.full(3, -np.inf)
        self.samples = 0
        self.rejected = 0
        self.first_s = None
        self.last_s = None

    def add(self, positions, stamp_s: float) -> bool:
        """Record one sample (joint_names order); False (and counted) if it is not finite."""
        positions = np.asarray(positions, dtype=float)
        if positions.shape != self.joint_min.shape or not np.all(np.isfinite(positions)):
            self.rejected += 1
            return False
        np.minimum(self.joint_min, positions, out=self.joint_min)
        np.maximum(self.joint_max, positions, out=self.joint_max)
        if self.kinematics is not None:
            tcp = self.kinematics.fk(positions[:ARM])
            np.minimum(self.tcp_min, tcp, out=self.tcp_min)
            np.maximum(self.tcp_max, tcp, out=self.tcp_max)
        self.samples += 1
        self.first_s = stamp_s if self.first_s is None else self.first_s
        self.last_s = stamp_s
        return True

    @property
    def duration_s(self) -> float:
        return 0.0 if self.first_s is None else self.last_s - self.first_s

    @property
    def ranges_rad(self) -> np.ndarray:
        """Per-joint max - min (0 before the first sample)."""
        return np.where(self.samples > 0, self.joint_max - self.joint_min, 0.0)

    def summary(self) -> str:
        """A multi-line table of the live ranges."""
        lines = [f'{self.samples} samples over {self.duration_s:.1f} s'
                 + (f' ({self.rejected} rejected)' if self.rejected else '')]
        if self.samples == 0:
            return lines[0] + ': waiting for /joint_states'
        for name, low, high in zip(self.joint_names, self.joint_min, self.joint_max):
            lines.append(f'  {name:<14} min {low:+.3f}  max {high:+.3f}  range '
                         f'{high - low:.3f} rad ({np.degrees(high - low):.0f} deg)')
        if self.kinematics is not None:
            lines.append('  TCP min [' + ', '.join(f'{v:+.3f}' for v in self.tcp_min)
                         + '] max [' + ', '.join(f'{v:+.3f}' for v in self.tcp_max) + '] m')
        return '\n'.join(lines)

    def problems(self, min_range_rad: float, min_duration_s: float) -> list[str]:
        """Why the recording is not enough for a limit file (empty when it is)."""
        if self.samples < 2:
            return [f'only {self.samples} valid /joint_states samples: is the driver running?']
        found = []
        if self.duration_s < min_duration_s:
            found.append(f'recorded {self.duration_s:.1f} s, need at least {min_duration_s} s')
        for name, span in zip(self.joint_names, self.ranges_rad):
            if span < min_range_rad:
                found.append(f'{name} moved over {span:.3f} rad, need at least {min_range_rad} '
                             'rad: move it through its whole safe range')
        return found

    def limits_file(self, min_range_rad: float, min_duration_s: float,
                    allow_partial: bool = False) -> LimitsFile:
        """The file content; InsufficientMotionError lists what was missing.

        With ``allow_partial``, joints that moved too little are left out (the filter keeps
        their URDF range) as long as the duration suffices and one joint moved enough.
        """
        problems = self.problems(min_range_rad, min_duration_s)
        enough = self.ranges_rad >= min_range_rad
        if problems and not (allow_partial and enough.any() and self.samples >= 2
                             and self.duration_s >= min_duration_s):
            raise InsufficientMotionError('not writing a limit file:\n  - '
                                          + '\n  - '.join(problems))
        ranges = {name: (float(low), float(high)) for name, low, high, ok in zip(
            self.joint_names, self.joint_min, self.joint_max, enough) if ok}
        box = None
        if self.kinematics is not None and np.all(self.tcp_max > self.tcp_min) and enough.all():
            box = WorkspaceBox(self.tcp_min.copy(), self.tcp_max.copy())
        return LimitsFile(ranges, box, self.samples, self.duration_s)
