"""Grasping works physically: a scripted top-down grasp lifts the cube (ROS-free sim)."""
from so101_driver.params import SimParams
from so101_driver.sim.scripted import TopDownPicker, run_scripted_episode
from so101_driver.sim.so101_sim import So101Sim

EPISODES = range(100, 110)  # seeds: randomised cube pose and arm start


def _successes(params):
    with So101Sim(params) as sim:
        picker = TopDownPicker(params.cube_size_m)
        results = [run_scripted_episode(sim, seed, picker=picker) for seed in EPISODES]
    return results


def test_scripted_top_down_grasp_lifts_the_cube_in_9_of_10_episodes():
    results = _successes(SimParams())
    lifted = [r for r in results if r.success]
    assert len(lifted) >= 9, results
    assert all(r.final_object_height_m >= 0.05 for r in lifted)


def test_grasp_works_on_contact_parameters_alone_without_the_jaw_pads():
    results = _successes(SimParams(jaw_pads=False))
    assert sum(r.success for r in results) >= 9, results
