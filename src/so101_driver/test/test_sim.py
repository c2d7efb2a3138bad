"""The ROS-free simulation: scene, reset, servos, torque, cameras, ground truth, meshes."""
import mujoco
import numpy as np
import pytest

from so101_driver.kinematics import So101Kinematics
from so101_driver.params import SimParams
from so101_driver.sim import meshes
from so101_driver.sim.backend import SimBackend
from so101_driver.sim.so101_sim import So101Sim


@pytest.fixture(scope='module')
def sim():
    simulation = So101Sim(SimParams())
    yield simulation
    simulation.close()


def test_official_servo_gains_and_contact_settings_are_applied(sim):
    model = sim.model
    np.testing.assert_allclose(model.actuator_gainprm[:, 0], 998.22)
    np.testing.assert_allclose(model.actuator_biasprm[:, 1:3], [[-998.22, -2.731]] * 6)
    np.testing.assert_allclose(model.actuator_forcerange, [[-3.35, 3.35]] * 6)
    assert np.all(model.actuator_dyntype == mujoco.mjtDyn.mjDYN_FILTEREXACT)
    np.testing.assert_allclose(model.actuator_dynprm[:, 0], 0.05)  # servo_time_constant_s
    for pad in ('fixed_jaw_pad', 'moving_jaw_pad'):
        assert model.geom(pad).contype[0] == 1 and model.geom(pad).conaffinity[0] == 1
    assert model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC
    assert model.vis.quality.shadowsize == 0 and model.vis.quality.offsamples == 0
    off = So101Sim(SimParams(jaw_pads=False))
    assert off.model.geom('fixed_jaw_pad').contype[0] == 2  # inert: matches nothing


def test_reset_is_reproducible_per_seed(sim):
    first = sim.reset(seed=11)
    sim.step(None, 0.3)
    again = sim.reset(seed=11)
    other = sim.reset(seed=12)
    np.testing.assert_array_equal(first.object_position_m, again.object_position_m)
    np.testing.assert_array_equal(first.joint_positions_rad, again.joint_positions_rad)
    np.testing.assert_array_equal(sim.reset(seed=11).joint_positions_rad,
                                  sim.joint_positions())
    assert np.linalg.norm(first.object_position_m - other.object_position_m) > 1e-4
    fresh = sim.reset(seed=None)
    assert 0 <= fresh.seed < 2**63 and sim.ground_truth().episode_seed == fresh.seed


def test_cube_starts_in_its_region_at_rest_on_the_table(sim):
    params = sim.params
    positions = []
    for seed in range(20):
        start = sim.reset(seed=seed)
        x, y, z = start.object_position_m
        assert params.cube_x_range_m[0] <= x <= params.cube_x_range_m[1]
        assert params.cube_y_range_m[0] <= y <= params.cube_y_range_m[1]
        assert z == pytest.approx(params.cube_size_m / 2)
        positions.append(start.object_position_m)
        home = np.array(params.home_joint_positions_rad)
        assert np.all(np.abs(start.joint_positions_rad - home) <= params.home_randomization_rad)
        assert start.joint_positions_rad[5] == home[5]
    assert np.ptp(np.array(positions)[:, 0]) > 0.05  # really randomised
    sim.reset(seed=3)
    sim.step(None, 0.5)
    truth = sim.ground_truth()
    assert abs(truth.object_height_m) < 1e-3 and not truth.success and not truth.object_grasped
    centred = sim.reset(seed=3, randomize_object=False)
    assert centred.object_position_m[0] == pytest.approx(np.mean(params.cube_x_range_m))


def test_time_runs_on_across_resets(sim):
    sim.reset(seed=1)
    sim.step(None, 0.2)
    before = sim.time_s
    sim.reset(seed=2)
    assert sim.time_s == pytest.approx(before)
    sim.step(None, 0.1)
    assert sim.time_s == pytest.approx(before + 0.1)


def test_servos_track_targets_within_their_range(sim):
    start = sim.reset(seed=5)
    goal = start.joint_positions_rad + np.array([0.3, 0.2, -0.2, 0.2, -0.5, 0.3])
    sim.step(goal, 1.0)
    np.testing.assert_allclose(sim.joint_positions(), goal, atol=5e-3)
    assert np.abs(sim.joint_velocities()).max() < 0.05
    applied = sim.set_targets(np.full(6, 10.0))
    np.testing.assert_allclose(applied, sim.upper_limits_rad)
    with pytest.raises(ValueError, match='finite'):
        sim.set_targets([0.0, np.nan, 0, 0, 0, 0])


def test_torque_off_lets_the_arm_fall_and_on_holds_again(sim):
    sim.reset(seed=5)
    sim.step(None, 0.2)
    held = sim.joint_positions()
    sim.set_torque(False)
    try:
        sim.step(None, 0.5)
        assert np.abs(sim.joint_positions() - held).max() > 0.05
        np.testing.assert_allclose(sim.joint_efforts(), 0.0)
    finally:
        sim.set_torque(True)
    sagged = sim.joint_positions()
    np.testing.assert_allclose(sim.targets(), sagged)  # holds where it fell, no jump back
    sim.step(None, 0.5)
    assert np.abs(sim.joint_positions() - sagged).max() < 5e-3
    assert np.abs(sim.joint_efforts()).max() > 0.01


@pytest.mark.parametrize('time_constant_s', [0.0, 0.05])
def test_the_servo_setpoint_lags_each_target_so_a_step_does_not_overshoot(time_constant_s):
    """A 0.2 rad target step (the safety filter's largest per 10 Hz period): the stiff,
    torque-limited position loop alone overshoots by a fifth or more; the setpoint lag of
    the default model settles without overshoot, with less time at the torque limit.
    """
    simulation = So101Sim(SimParams(camera_names=(), servo_time_constant_s=time_constant_s))
    for joint in (0, 1, 2):
        simulation.reset(seed=5)
        simulation.step(None, 0.2)
        goal = simulation.joint_positions()
        goal[joint] += 0.2
        simulation.set_targets(goal)
        overshoot, saturated_s = 0.0, 0.0
        for _ in range(250):
            simulation.step(None)
            overshoot = max(overshoot, simulation.joint_positions()[joint] - goal[joint])
            saturated_s += simulation.timestep_s * (abs(simulation.joint_efforts()[joint]) > 3.0)
        assert abs(simulation.joint_positions()[joint] - goal[joint]) < 2e-3
        if time_constant_s:
            assert overshoot < 0.005 and saturated_s < 0.15, (joint, overshoot, saturated_s)
        else:
            assert overshoot > 0.03, (joint, overshoot)  # what the lag is for
    simulation.close()


def test_tcp_pose_matches_the_kinematics(sim):
    kinematics = So101Kinematics()
    sim.reset(seed=7)
    sim.step(None, 0.3)
    position, quaternion = sim.tcp_pose()
    expected_position, expected_rotation = kinematics.fk_pose(sim.joint_positions())
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, quaternion)
    np.testing.assert_allclose(position, expected_position, atol=2e-4)
    np.testing.assert_allclose(rotation.reshape(3, 3), expected_rotation, atol=1e-3)


def test_cameras_render_the_scene_with_the_cube_in_view(sim):
    sim.reset(seed=0, randomize_object=False)
    for camera in ('front', 'wrist'):
        frame = sim.render(camera)
        assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
        red = (frame[..., 0] > 150) & (frame[..., 1] < 80) & (frame[..., 2] < 80)
        assert red.sum() > 4, f'the red cube is not visible in the {camera} camera'
        assert frame.std() > 10
    k = sim.camera_intrinsics('front')
    assert k[0, 2] == 64 and k[0, 0] == k[1, 1] > 0
    with pytest.raises(ValueError, match='unknown camera'):
        sim.render('side')


def test_success_when_the_cube_is_lifted(sim):
    sim.reset(seed=0)
    quaternion = sim.data.qpos[sim._cube_qpos + 3:sim._cube_qpos + 7].copy()
    sim.data.qpos[sim._cube_qpos + 2] = 0.0125 + 0.06
    sim.data.qpos[sim._cube_qpos + 3:sim._cube_qpos + 7] = quaternion
    mujoco.mj_forward(sim.model, sim.data)
    truth = sim.ground_truth()
    assert truth.object_height_m == pytest.approx(0.06, abs=1e-6) and truth.success


def test_sim_backend_reads_in_si_units_and_reports_health():
    backend = SimBackend(SimParams(camera_names=('wrist',)))
    backend.connect()
    try:
        sample = backend.read()
        assert sample.positions_rad.shape == (6,) and sample.effort_unit == 'N.m'
        backend.advance(0.1)
        assert backend.read().stamp_s == pytest.approx(sample.stamp_s + 0.1)
        health = backend.health()
        assert not health.faulted and health.counters['physics_steps'] == 50
        assert backend.camera_names == ('wrist',)
    finally:
        backend.close()


def test_render_meshes_are_coarsened_and_cached(tmp_path):
    from so101_driver.model_files import official_model_files

    stl = official_model_files().mesh_dir / 'sts3215_03a_v1.stl'
    full_vertices, full_faces = meshes.read_binary_stl(stl.read_bytes())
    vertices, faces = meshes.decimated_mesh(stl, 0.0015, 0.5, directory=tmp_path)
    assert len(faces) < 0.1 * len(full_faces) and faces.max() < len(vertices)
    assert np.abs(vertices).max() == pytest.approx(np.abs(full_vertices).max(), abs=0.003)
    cached = list(tmp_path.glob('*.npz'))
    assert len(cached) == 1
    again_vertices, again_faces = meshes.decimated_mesh(stl, 0.0015, 0.5, directory=tmp_path)
    np.testing.assert_array_equal(again_faces, faces)
    cached[0].write_bytes(b'damaged')
    repaired = meshes.decimated_mesh(stl, 0.0015, 0.5, directory=tmp_path)
    np.testing.assert_array_equal(repaired[1], faces)
    with pytest.raises(ValueError, match='binary STL'):
        meshes.read_binary_stl(b'solid ascii')
