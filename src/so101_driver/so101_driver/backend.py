"""What every driver backend provides, so the node treats simulation and hardware alike.

Units are SI in the driver's joint order (``model_files.JOINT_NAMES``): positions in rad,
velocities in rad/s, efforts in N·m (simulation) or the servo's signed load in percent of the
maximum torque (hardware; see ``JointSample.effort_unit``).
"""
import dataclasses
import math
from typing import Protocol

import numpy as np

from so101_driver.errors import ConfigurationError
from so101_driver.params import DriverParams, SimParams


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

    def joint_values(self) -> dict[str, str]:
        """Per-joint diagnostics values ('elbow_flex.temperature_c': '31', ...)."""
        values = {}
        for name, joint in self.joints.items():
            if math.isfinite(joint.temperature_c):
                values[f'{name}.temperature_c'] = f'{joint.temperature_c:.0f}'
            if math.isfinite(joint.voltage_v):
                values[f'{name}.voltage_v'] = f'{joint.voltage_v:.1f}'
            if math.isfinite(joint.current_a):
                values[f'{name}.current_a'] = f'{joint.current_a:.3f}'
            if joint.faults:
                values[f'{name}.faults'] = ', '.join(joint.faults)
        return values


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


def make_backend(params: DriverParams, sim_params: SimParams | None = None) -> RobotBackend:
    """The backend ``params.backend`` names. Raises ConfigurationError when unavailable."""
    if params.backend == 'sim':
        from so101_driver.sim.backend import SimBackend

        return SimBackend(sim_params or SimParams())
    try:
        from so101_driver.feetech.backend import FeetechBackend
    except ImportError as error:  # pyserial missing
        raise ConfigurationError(f'backend real is not available: {error}') from error
    return FeetechBackend(feetech_config(params))


def feetech_config(params: DriverParams):
    """The real backend's configuration from the driver parameters.

    '' as calibration_file means LeRobot's default location. The backend never turns the
    torque off by itself when it closes: the node does so at cleanup only when
    ``disable_torque_on_cleanup`` is set (otherwise the servos keep holding their last goal).
    """
    from so101_driver.feetech.config import FeetechBackendConfig

    extra = {'calibration_file': params.calibration_file} if params.calibration_file else {}
    try:
        return FeetechBackendConfig(port=params.port, baudrate=params.baudrate,
                                    read_retries=params.read_retries,
                                    timeout_margin_s=params.bus_timeout_margin_s,
                                    on_calibration_mismatch=params.on_calibration_mismatch,
                                    disable_torque_on_close=False, **extra)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f'backend real: {error}') from error
