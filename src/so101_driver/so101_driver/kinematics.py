"""Forward and inverse kinematics of the SO-101 TCP (``gripper_frame_link``), on pinocchio.

The SO-101 has five arm joints, so a full 6-D pose cannot be commanded. Its geometry gives a
natural 5-D task instead: shoulder_lift, elbow_flex and wrist_flex have parallel axes, so the
tilt of the approach axis inside the arm's vertical plane is a fixed linear combination of those
three angles (the *approach pitch*), and wrist_roll turns the jaws about the approach axis.
``ik`` reaches a TCP position while holding both the approach pitch and wrist_roll, which is the
"orientation held" behaviour of HIL-SERL's end-effector delta actions (a top-down grasp stays
top-down while the arm pans and reaches).
"""
import dataclasses
import math
import pathlib

import numpy as np
import pinocchio

from so101_driver.model_files import ARM_JOINT_NAMES, TCP_FRAME, official_model_files

_PAN, _LIFT, _ELBOW, _FLEX, _ROLL = range(5)


@dataclasses.dataclass(frozen=True)
class IkResult:
    """Outcome of one IK solve."""

    joint_positions: np.ndarray
    """The five arm joint angles (rad) of the best iterate, always within the joint limits."""
    converged: bool
    """True when the position error is below the tolerance with the orientation held."""
    position_error_m: float
    """Distance between the reached and the requested TCP position."""
    iterations: int


class So101Kinematics:
    """TCP kinematics of the SO-101 arm (five arm joints; the gripper jaw does not move the TCP).

    Positions are in the robot base frame (``base_link``), metres; joint angles in rad, in the
    driver's joint order (shoulder_pan, shoulder_lift, elbow_flex, wrist_flex, wrist_roll).
    Methods accept 5 arm angles or 6 driver angles (the gripper angle is ignored).
    """

    def __init__(self, urdf_path: pathlib.Path | str | None = None, tcp_frame: str = TCP_FRAME):
        path = pathlib.Path(urdf_path) if urdf_path else official_model_files().urdf
        self._model = pinocchio.buildModelFromUrdf(str(path))
        self._data = self._model.createData()
        names = [self._model.names[i] for i in range(1, self._model.njoints)]
        if tuple(names[:5]) != ARM_JOINT_NAMES:
            raise ValueError(f'{path}: expected the arm joints {ARM_JOINT_NAMES} first, '
                             f'got {names}')
        if not self._model.existFrame(tcp_frame):
            raise ValueError(f'{path}: no frame named {tcp_frame}')
        self._tcp = self._model.getFrameId(tcp_frame)
        self._q = pinocchio.neutral(self._model)
        self.lower_limits_rad = np.array(self._model.lowerPositionLimit[:5])
        self.upper_limits_rad = np.array(self._model.upperPositionLimit[:5])
        self._pitch_signs = self._parallel_axis_signs()

    @property
    def joint_names(self) -> tuple[str, ...]:
        return ARM_JOINT_NAMES

    def _update(self, arm_positions) -> None:
        arm = np.asarray(arm_positions, dtype=float)
        if arm.shape not in ((5,), (6,)):
            raise ValueError(f'expected 5 or 6 joint angles, got shape {arm.shape}')
        self._q[:5] = arm[:5]
        pinocchio.forwardKinematics(self._model, self._data, self._q)
        pinocchio.updateFramePlacement(self._model, self._data, self._tcp)

    def _parallel_axis_signs(self) -> np.ndarray:
        """Signs that make lift, elbow and wrist_flex axes point the same way."""
        pinocchio.forwardKinematics(self._model, self._data, self._q)
        axes = [self._data.oMi[joint].rotation[:, 2] for joint in (2, 3, 4)]
        for axis in axes[1:]:
            if abs(abs(float(axis @ axes[0])) - 1.0) > 1e-6:
                raise ValueError('shoulder_lift, elbow_flex and wrist_flex axes are not parallel')
        return np.array([np.sign(axis @ axes[0]) for axis in axes])

    def fk(self, arm_positions) -> np.ndarray:
        """TCP position (3,) in the base frame."""
        self._update(arm_positions)
        return self._data.oMf[self._tcp].translation.copy()

    def fk_pose(self, arm_positions) -> tuple[np.ndarray, np.ndarray]:
        """TCP position (3,) and rotation matrix (3, 3) in the base frame."""
        self._update(arm_positions)
        placement = self._data.oMf[self._tcp]
        return placement.translation.copy(), placement.rotation.copy()

    def position_jacobian(self, arm_positions) -> np.ndarray:
        """d(TCP position)/d(arm joints), shape (3, 5), base frame."""
        self._update(arm_positions)
        jacobian = pinocchio.computeFrameJacobian(
            self._model, self._data, self._q, self._tcp, pinocchio.LOCAL_WORLD_ALIGNED)
        return jacobian[:3, :5]

    def approach_pitch(self, arm_positions) -> float:
        """Tilt of the approach axis in the arm plane: a signed sum of the three pitch joints."""
        arm = np.asarray(arm_positions, dtype=float)
        return float(self._pitch_signs @ arm[[_LIFT, _ELBOW, _FLEX]])

    def ik(self, target_position_m, seed_positions, approach_pitch: float | None = None,
           tolerance_m: float = 1e-5, max_iterations: int = 60, damping: float = 1e-3,
           lower_limits_rad=None, upper_limits_rad=None) -> IkResult:
        """Joint angles that put the TCP at ``target_position_m`` with the orientation held.

        wrist_roll keeps its seed value; the approach pitch keeps ``approach_pitch`` (default:
        the seed's), which fixes wrist_flex from shoulder_lift and elbow_flex. The remaining
        three joints solve the 3-D position by damped least squares, clamped to the limits.
        """
        target = np.asarray(target_position_m, dtype=float)
        if target.shape != (3,) or not np.all(np.isfinite(target)):
            raise ValueError(f'target position must be 3 finite numbers, got {target}')
        lower = self.lower_limits_rad if lower_limits_rad is None else np.asarray(lower_limits_rad)
        upper = self.upper_limits_rad if upper_limits_rad is None else np.asarray(upper_limits_rad)
        q = np.clip(np.asarray(seed_positions, dtype=float)[:5], lower, upper)
        pitch = self.approach_pitch(q) if approach_pitch is None else float(approach_pitch)
        # This loop is the safety filter's hot path: one pinocchio call per iteration (the
        # frame Jacobian also updates the TCP placement) and scalar arithmetic where numpy's
        # per-call overhead would dominate.
        s_lift, s_elbow, s_flex = (float(sign) for sign in self._pitch_signs)
        flex_low, flex_high = float(lower[_FLEX]), float(upper[_FLEX])
        regulariser = damping**2 * np.eye(3)
        reduced = np.empty((3, 3))
        best_q, best_error = q.copy(), np.inf
        for iteration in range(max_iterations + 1):
            flex = (pitch - s_lift * q[_LIFT] - s_elbow * q[_ELBOW]) / s_flex
            q[_FLEX] = min(max(flex, flex_low), flex_high)
            np.clip(q, lower, upper, out=q)
            self._q[:5] = q
            jacobian = pinocchio.computeFrameJacobian(
                self._model, self._data, self._q, self._tcp, pinocchio.LOCAL_WORLD_ALIGNED)
            error = target - self._data.oMf[self._tcp].translation
            error_norm = math.sqrt(float(error @ error))
            pitch_held = abs(flex - q[_FLEX]) < 1e-9
            if error_norm < best_error and pitch_held:
                best_q, best_error = q.copy(), error_norm
            if error_norm < tolerance_m and pitch_held:
                return IkResult(q, True, error_norm, iteration)
            if iteration == max_iterations:
                break
            reduced[:, 0] = jacobian[:3, _PAN]
            reduced[:, 1] = jacobian[:3, _LIFT] - s_lift / s_flex * jacobian[:3, _FLEX]
            reduced[:, 2] = jacobian[:3, _ELBOW] - s_elbow / s_flex * jacobian[:3, _FLEX]
            step = reduced.T @ np.linalg.solve(reduced @ reduced.T + regulariser, error)
            q[_PAN] += step[0]
            q[_LIFT] += step[1]
            q[_ELBOW] += step[2]
        if not np.isfinite(best_error):
            best_q, best_error = q, float(np.linalg.norm(target - self.fk(q)))
        return IkResult(best_q, False, best_error, max_iterations)
