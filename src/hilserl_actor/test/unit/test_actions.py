"""Action sources and the transition's action representation (ROS-free)."""
import numpy as np
import pytest

from hilserl_actor.actions import (
    ActionSelector,
    ActionSettings,
    GripperPenalty,
    HumanActionSource,
    HumanEeCommand,
    HumanJointCommand,
    InterventionTracker,
    Source,
    ZeroActionSource,
    ee_step_action,
    joint_step_action,
)
from hilserl_actor.params import DEFAULT_JOINT_NAMES
from hilserl_actor.teleop.types import Gripper
from so101_driver.kinematics import So101Kinematics

HOME = np.array([0.0, -0.6, 0.5, 1.42, 1.5708, 0.7])
SETTINGS = ActionSettings(action_scale_m=0.02, discrete_gripper=True,
                          human_command_timeout_s=0.3)


@pytest.fixture(scope='module')
def kinematics():
    return So101Kinematics()


def test_ee_action_is_normalised_clipped_and_sent_as_stored():
    step = ee_step_action([0.01, -0.05, 0.0], Gripper.CLOSE, SETTINGS, Source.HUMAN, True, 'x')
    assert step.action.tolist() == pytest.approx([0.5, -1.0, 0.0, 0.0])  # 0 = close
    assert step.delta_m.tolist() == pytest.approx([0.01, -0.02, 0.0])  # what is sent
    assert step.action.dtype == np.float32
    assert ee_step_action([0, 0, 0], Gripper.STAY, SETTINGS, Source.SCRIPT, False,
                          'z').action[-1] == 1.0
    assert ee_step_action([0, 0, 0], Gripper.OPEN, SETTINGS, Source.SCRIPT, False,
                          'z').action[-1] == 2.0
    no_gripper = ActionSettings(discrete_gripper=False)
    assert ee_step_action([0, 0, 0], Gripper.OPEN, no_gripper, Source.HUMAN, True,
                          'z').action.shape == (3,)
    with pytest.raises(ValueError):
        ee_step_action([np.nan, 0, 0], Gripper.STAY, SETTINGS, Source.HUMAN, True, 'x')


def test_leader_joint_command_becomes_an_ee_delta_action(kinematics):
    target = HOME.copy()
    target[1] += 0.05  # shoulder_lift forward: the TCP moves
    target[5] = 0.1    # gripper below the close threshold
    command = HumanJointCommand(DEFAULT_JOINT_NAMES, target, 0.0)
    step = joint_step_action(command, DEFAULT_JOINT_NAMES, HOME, kinematics, SETTINGS)
    expected = (kinematics.fk(target[:5]) - kinematics.fk(HOME[:5])) / 0.02
    assert step.action[:3] == pytest.approx(np.clip(expected, -1, 1), abs=1e-6)
    assert np.linalg.norm(expected) > 0.1
    assert step.gripper == Gripper.CLOSE and step.action[3] == 0.0
    assert step.joint_targets[0] == DEFAULT_JOINT_NAMES
    assert step.joint_targets[1] == pytest.approx(target) and step.delta_m is None
    assert step.is_intervention and step.source == Source.HUMAN
    # Only the gripper named, wide open: no motion, 'open'
    partial = HumanJointCommand(('gripper',), np.array([1.5]), 0.0)
    step = joint_step_action(partial, DEFAULT_JOINT_NAMES, HOME, kinematics, SETTINGS)
    assert step.action.tolist() == pytest.approx([0, 0, 0, 2.0])
    between = HumanJointCommand(('gripper',), np.array([0.6]), 0.0)
    assert joint_step_action(between, DEFAULT_JOINT_NAMES, HOME, kinematics,
                             SETTINGS).gripper == Gripper.STAY


def test_human_source_prefers_a_streaming_leader_arm(kinematics):
    human = HumanActionSource(SETTINGS, DEFAULT_JOINT_NAMES, kinematics)
    context = {'joints_rad': HOME}
    assert human.act(1.0, None, context) is None
    human.set_ee(HumanEeCommand(np.array([0.01, 0, 0]), Gripper.STAY, 1.0))
    assert human.act(1.2, None, context).origin == 'human_ee'
    assert human.act(1.31, None, context) is None  # stale
    human.set_joint(HumanJointCommand(DEFAULT_JOINT_NAMES, HOME, 1.4))
    human.set_ee(HumanEeCommand(np.array([0.01, 0, 0]), Gripper.STAY, 1.45))
    assert human.act(1.5, None, context).origin == 'human_joint'  # the leader drives
    assert human.act(1.72, None, context).origin == 'human_ee'  # the leader went quiet
    with pytest.raises(ValueError):
        human.set_ee(HumanEeCommand(np.array([np.inf, 0, 0]), Gripper.STAY, 2.0))
    with pytest.raises(ValueError):
        human.set_joint(HumanJointCommand(('elbow',), np.array([0.0]), 2.0))
    with pytest.raises(ValueError):
        human.set_joint(HumanJointCommand(('gripper', 'gripper'), np.zeros(2), 2.0))


def test_selector_demo_uses_human_else_zero(kinematics):
    human = HumanActionSource(SETTINGS, DEFAULT_JOINT_NAMES, kinematics)
    selector = ActionSelector('demo', human, ZeroActionSource(SETTINGS))
    zero = selector.select(0.0, None, False, {'joints_rad': HOME})
    assert zero.origin == 'zero' and not zero.is_intervention
    assert zero.action.tolist() == [0, 0, 0, 1.0] and zero.source == Source.SCRIPT
    human.set_ee(HumanEeCommand(np.array([0, 0, 0.01]), Gripper.OPEN, 0.0))
    assert selector.select(0.1, None, False, {'joints_rad': HOME}).is_intervention
    train = ActionSelector('train', human, ZeroActionSource(SETTINGS))
    assert train.select(0.1, None, False, {'joints_rad': HOME}).origin == 'zero'
    assert train.select(0.1, None, True, {'joints_rad': HOME}).origin == 'human_ee'


def test_intervention_state_goes_stale_and_sources_combine():
    tracker = InterventionTracker(timeout_s=3.0)
    assert not tracker.active(0.0)
    tracker.update(1, True, 0.0)   # gamepad
    tracker.update(4, False, 0.5)  # oracle
    assert tracker.active(2.9)
    assert not tracker.active(3.1), 'a latched state older than the timeout is stale'
    tracker.update(4, True, 3.0)
    assert tracker.active(3.1)


def test_gripper_penalty_only_on_a_change():
    penalty = GripperPenalty(-0.02)
    steps = [Gripper.STAY, Gripper.OPEN, Gripper.CLOSE, Gripper.CLOSE, Gripper.STAY,
             Gripper.OPEN, Gripper.OPEN]
    assert [penalty.step(g) for g in steps] == [0, 0, -0.02, 0, 0, -0.02, 0]
    penalty.step(Gripper.CLOSE)
    penalty.reset()
    assert penalty.step(Gripper.OPEN) == 0.0
    with pytest.raises(ValueError):
        GripperPenalty(0.5)
