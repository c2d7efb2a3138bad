"""So101Kinematics against the official model, and its IK round trip."""
import pathlib

import numpy as np
import pytest

from so101_driver.kinematics import So101Kinematics

SHARED_MODEL = pathlib.Path(__file__).resolve().parents[3].parent / 'shared' / 'assets' / 'so101'
REFERENCE_MJCF = SHARED_MODEL / 'so101_new_calib.xml'


@pytest.fixture(scope='module')
def kinematics():
    return So101Kinematics()


def test_fk_matches_the_official_mujoco_model_within_1_mm(kinematics):
    if not REFERENCE_MJCF.is_file():
        pytest.skip(f'official SO-101 reference model not found at {SHARED_MODEL} '
                    '(the shared assets folder is absent)')
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(REFERENCE_MJCF))
    data = mujoco.MjData(model)
    site = model.site('gripperframe').id
    qpos = [model.joint(name).qposadr[0] for name in kinematics.joint_names]
    rng = np.random.default_rng(0)
    configurations = rng.uniform(kinematics.lower_limits_rad, kinematics.upper_limits_rad,
                                 (1000, 5))
    errors = []
    for q in configurations:
        data.qpos[qpos] = q
        mujoco.mj_kinematics(model, data)
        errors.append(np.linalg.norm(kinematics.fk(q) - data.site_xpos[site]))
    assert max(errors) < 1e-3, f'max FK error {max(errors) * 1e3:.3f} mm'


def test_ik_round_trip_within_1_mm_inside_the_workspace(kinematics):
    # The useful workspace: away from the stretched-arm singularity (elbow_flex near its
    # lower limit) and with wrist_flex, which the held pitch fixes, inside its range.
    lower = np.array([-1.7, -1.5, -1.0, -1.5, -2.5])
    upper = np.array([1.7, 1.5, 1.6, 1.5, 2.5])
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(300):
        q = rng.uniform(lower, upper)
        target = kinematics.fk(q)
        seed = q + rng.uniform(-0.2, 0.2, 5)
        seed[4] = q[4]
        result = kinematics.ik(target, seed, approach_pitch=kinematics.approach_pitch(q))
        assert result.converged, (q, result)
        reached = kinematics.fk(result.joint_positions)
        worst = max(worst, float(np.linalg.norm(reached - target)))
        assert kinematics.approach_pitch(result.joint_positions) == pytest.approx(
            kinematics.approach_pitch(q))
        assert result.joint_positions[4] == q[4]
    assert worst < 1e-3


def test_ik_beyond_reach_reports_failure_with_the_error(kinematics):
    result = kinematics.ik(np.array([0.8, 0.0, 0.2]), np.zeros(5))
    assert not result.converged and result.position_error_m > 0.2
    assert np.all(result.joint_positions >= kinematics.lower_limits_rad)
    assert np.all(result.joint_positions <= kinematics.upper_limits_rad)
