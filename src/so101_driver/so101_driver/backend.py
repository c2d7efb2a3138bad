"""What every driver backend provides, so the node treats simulation and hardware alike.

Units are SI in the driver's joint order (``model_files.JOINT_NAMES``): positions in rad,
velocities in rad/s, efforts in N·m (simulation) or the servo's signed load in percent of the
maximum torque (hardware; see ``JointSample.effort_unit``).
"""
import dataclasses
from typing import Protocol

import numpy as np


@dataclasses.dataclass(frozen=True)
class JointSample:
    """One synchronous reading of every joint."""

    positions_rad: np.ndarray
    velocities_rad_s: np.ndarray
    efforts: np.ndarray
    stamp_s: float
    """Time of the reading: simulation time for the sim backend, time.monotonic() otherwise."""
    effort_unit: str = 'N.m'
    """'N.m' (simulation) or 'percent' (servo load, -100..100)."""
    joint_faults: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Faults the actuators reported with this reading (e.g. the error bits of the servos'
    status packets), by joint name; empty when none. The driver holds the arm at once."""


@dataclasses.dataclass(frozen=True)
class JointHealth:
    """Slow-changing state of one joint's actuator, for diagnostics."""

    temperature_c: float = float('nan')
    voltage_v: float = float('nan')
    current_a: float = float('nan')
    faults: tuple[str, ...] = ()
    """Active fault names, e.g. ('overload',), ('overheat', 'over_current')."""


@dataclasses.dataclass(frozen=True)
class BackendHealth:
    """Overall backend state for /diagnostics."""

    torque_enabled: bool
    joints: dict[str, JointHealth]
    message: str = ''
    """Human-readable summary (backend state, faults, problems)."""
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    """Cumulative counters such as retries, checksum_errors, timeouts."""
    warnings: tuple[str, ...] = ()
    """Problems that do not stop the arm but need attention (a failed health read, a reading
    that failed since the last health check); the driver reports them as WARN."""

    @property
    def faulted(self) -> bool:
        return any(joint.faults for joint in self.joints.values())


class RobotBackend(Protocol):
    """The interface the driver node uses; implemented by the sim and the Feetech backends."""

    joint_names: tuple[str, ...]
    lower_limits_rad: np.ndarray
    """Calibrated range of each joint (targets are clamped to it)."""
    upper_limits_rad: np.ndarray

    def connect(self) -> None:
        """Open the port / build the simulation; check every joint. Raises DriverError."""

    def read(self) -> JointSample:
        """Read every joint. Raises DriverError when the reading failed after retries."""

    def write_positions(self, positions_rad: np.ndarray) -> None:
        """Command every joint's goal position (already clamped by the node)."""

    def set_torque(self, enabled: bool) -> None:
        """Enable or disable the motors' torque (disabled = the arm can be moved by hand)."""

    def health(self) -> BackendHealth:
        """Temperatures, voltages, faults and counters; may be slower than read().

        A failed health reading is reported in ``warnings``; only a lost connection raises.
        """

    def clear_faults(self) -> None:
        """Forget latched faults (the operator fixed the cause); health() then shows what the
        actuators still report.
        """

    def close(self) -> None:
        """Release the port / the simulation. Idempotent."""
