"""``RobotBackend`` over ``So101Sim``, plus the simulation extras the driver node publishes."""
import numpy as np

from so101_driver.backend import BackendHealth, JointHealth, JointSample
from so101_driver.errors import ConfigurationError, DriverError
from so101_driver.model_files import JOINT_NAMES
from so101_driver.params import SimParams
from so101_driver.sim.so101_sim import GroundTruth, ResetResult, So101Sim


class SimBackend:
    """The simulated SO-101 as a driver backend.

    ``read`` stamps samples with the simulated time; the driver loop calls ``advance`` once
    per control period. Efforts are servo torques in N·m. Render from the loop thread only.
    """

    def __init__(self, params: SimParams | None = None):
        self.params = params or SimParams()
        self.joint_names = JOINT_NAMES
        self.lower_limits_rad = np.full(len(JOINT_NAMES), -np.inf)
        self.upper_limits_rad = np.full(len(JOINT_NAMES), np.inf)
        self.sim: So101Sim | None = None
        self._steps = 0
        self._resets = 0

    def connect(self) -> None:
        if self.sim is not None:
            return
        try:
            self.sim = So101Sim(self.params)
        except (FileNotFoundError, ValueError) as error:
            raise ConfigurationError(f'cannot build the simulation: {error}') from error
        self.lower_limits_rad = self.sim.lower_limits_rad.copy()
        self.upper_limits_rad = self.sim.upper_limits_rad.copy()

    def _require(self) -> So101Sim:
        if self.sim is None:
            raise DriverError('the simulation backend is not connected')
        return self.sim

    def read(self) -> JointSample:
        sim = self._require()
        return JointSample(positions_rad=sim.joint_positions(),
                           velocities_rad_s=sim.joint_velocities(),
                           efforts=sim.joint_efforts(), stamp_s=sim.time_s, effort_unit='N.m')

    def write_positions(self, positions_rad: np.ndarray) -> None:
        self._require().set_targets(positions_rad)

    def set_torque(self, enabled: bool) -> None:
        self._require().set_torque(enabled)

    def health(self) -> BackendHealth:
        sim = self._require()
        finite = bool(np.all(np.isfinite(sim.data.qpos)) and np.all(np.isfinite(sim.data.qvel)))
        faults = () if finite else ('simulation_unstable',)
        return BackendHealth(
            torque_enabled=sim.torque_enabled,
            joints={name: JointHealth(faults=faults) for name in JOINT_NAMES},
            message=f'MuJoCo simulation, t = {sim.time_s:.2f} s, episode seed '
                    f'{sim.episode_seed}',
            counters={'physics_steps': self._steps, 'resets': self._resets})

    def clear_faults(self) -> None:
        """Nothing is latched: an unstable simulation stays faulted until it is reset."""

    def close(self) -> None:
        if self.sim is not None:
            sim, self.sim = self.sim, None
            sim.close()

    # --- simulation extras ---------------------------------------------------------------
    @property
    def time_s(self) -> float:
        return self._require().time_s

    @property
    def camera_names(self) -> tuple[str, ...]:
        return self._require().camera_names

    def advance(self, duration_s: float) -> None:
        sim = self._require()
        steps = max(1, int(round(duration_s / sim.timestep_s)))
        sim.step(None, steps * sim.timestep_s)
        self._steps += steps

    def release_renderer(self) -> None:
        """Free the OpenGL context; call from the thread that rendered."""
        if self.sim is not None:
            self.sim.close()

    def render(self, camera: str) -> np.ndarray:
        return self._require().render(camera)

    def camera_intrinsics(self, camera: str) -> np.ndarray:
        return self._require().camera_intrinsics(camera)

    def reset(self, seed: int | None, randomize_object: bool = True) -> ResetResult:
        result = self._require().reset(seed=seed, randomize_object=randomize_object)
        self._resets += 1
        return result

    def ground_truth(self) -> GroundTruth:
        return self._require().ground_truth()
