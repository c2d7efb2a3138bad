"""oracle_node: a scripted stand-in for the human in simulation (demos and interventions)."""
import numpy as np
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from hilserl_actor.nodes import conversions
from hilserl_actor.nodes.parameters import declare_from_dataclass, params_from_node, summary
from hilserl_actor.nodes.teleop_outputs import (
    COMMAND_QOS,
    HUMAN_COMMAND_TOPIC,
    INTERVENTION_QOS,
    INTERVENTION_TOPIC,
)
from hilserl_actor.oracle import (
    InterventionDecider,
    PickConfig,
    PickController,
    Scene,
    TakeoverConfig,
    task_distance,
)
from hilserl_actor.params import OracleParams
from hilserl_msgs.msg import (
    EndEffectorCommand,
    EpisodeStats,
    InterventionState,
    JointCommand,
    SimGroundTruth,
)
from so101_driver.nodes.process import run_lifecycle_node

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
KEEP_ALL = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                      reliability=ReliabilityPolicy.RELIABLE)
THROTTLE_S = 2.0


class OracleNode(LifecycleNode):
    """Scripted oracle (lifecycle node ``oracle``); simulation only.

    Subscribes (while active): /so101_driver/ground_truth (hilserl_msgs/SimGroundTruth,
      reliable 10), /joint_states (sensor_msgs/JointState, reliable 10: the gripper angle),
      /hilserl/episode_stats (EpisodeStats, reliable keep all: episode ends),
      /hilserl/ee_command (EndEffectorCommand, reliable 10: the policy's commands, mode
      intervene).
    Publishes: /hilserl/human/ee_command (EndEffectorCommand, SOURCE_SCRIPT, reliable 10, at
      control_rate_hz while it holds the arm), /hilserl/intervention (InterventionState,
      SOURCE_ORACLE, reliable transient local 1, on change and every intervention_period_s).
    mode demo: it holds the arm all the time and picks the cube in every episode. mode
    intervene: it takes over briefly when the policy drifts or stalls (InterventionDecider).
    Parameters: hilserl_actor.params.OracleParams (read-only; applied at configure).
    """

    def __init__(self, **kwargs):
        super().__init__('oracle', **kwargs)
        declare_from_dataclass(self, OracleParams)
        self._inputs_subs = []
        self._loop_timers = []
        self._command_publisher = None
        self._intervention_publisher = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._truth = None
        self._truth_received_s = -1e9
        self._gripper_rad = None
        self._gripper_received_s = -1e9
        self._last_trigger_s = -1e9
        self._active = False
        self._count = 0
        self._seed = None

    # --- transitions -------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            params = params_from_node(self, OracleParams)
            controller = PickController(PickConfig(
                cube_size_m=params.cube_size_m, hover_height_m=params.hover_height_m,
                lift_height_m=params.lift_height_m, max_step_m=params.max_step_m,
                careful_step_m=params.careful_step_m, noise_std_m=params.noise_std_m),
                seed=params.seed)
            decider = InterventionDecider(TakeoverConfig(
                params.drift_window_steps, params.drift_threshold_m, params.heading_steps,
                params.heading_cosine, params.stall_steps, params.progress_epsilon_m,
                params.takeover_steps, params.cooldown_steps,
                params.takeover_probability_start, params.takeover_probability_end,
                params.takeover_decay_episodes), seed=params.seed + 1)
        except ValueError as error:
            self.get_logger().error(f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        self._params, self._controller, self._decider = params, controller, decider
        self._command_publisher = self.create_lifecycle_publisher(
            EndEffectorCommand, HUMAN_COMMAND_TOPIC, COMMAND_QOS)
        self._intervention_publisher = self.create_lifecycle_publisher(
            InterventionState, INTERVENTION_TOPIC, INTERVENTION_QOS)
        self.get_logger().info(f'configured: {summary(params)}')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        params = self._params
        self._reset_state()
        subscribe = self.create_subscription
        self._inputs_subs = [
            subscribe(SimGroundTruth, '/so101_driver/ground_truth', self._on_truth, RELIABLE),
            subscribe(JointState, '/joint_states', self._on_joint_state, RELIABLE),
            subscribe(EpisodeStats, '/hilserl/episode_stats', self._on_episode_end, KEEP_ALL),
            subscribe(EndEffectorCommand, '/hilserl/ee_command', self._on_arm_command,
                      RELIABLE),
            subscribe(JointCommand, '/hilserl/joint_command', self._on_arm_command, RELIABLE),
        ]
        self._loop_timers = [
            self.create_timer(1.0 / params.control_rate_hz, self._on_tick),
            self.create_timer(params.intervention_period_s, self._publish_state)]
        self._publish_state()
        self.get_logger().info(f'active: mode {params.mode}')
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self._release()
        return super().on_shutdown(state)

    def _stop(self) -> None:
        for subscription in self._inputs_subs:
            self.destroy_subscription(subscription)
        for timer in self._loop_timers:
            self.destroy_timer(timer)
        if self._loop_timers:
            self._set_active(False)
        self._inputs_subs, self._loop_timers = [], []

    def _release(self) -> None:
        for publisher in (self._command_publisher, self._intervention_publisher):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._command_publisher = self._intervention_publisher = None

    def release_on_exit(self) -> None:
        if self._loop_timers and self.context.ok():
            self._stop()

    # --- inputs ------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_truth(self, message: SimGroundTruth) -> None:
        self._truth, self._truth_received_s = message, self._now()
        if self._seed is not None and message.episode_seed != self._seed:
            self._controller.reset()  # a new episode (reset): forget the grasp attempt
        self._seed = message.episode_seed

    def _on_joint_state(self, message: JointState) -> None:
        if 'gripper' in message.name and len(message.position) == len(message.name):
            self._gripper_rad = float(message.position[list(message.name).index('gripper')])
            self._gripper_received_s = self._now()

    def _on_episode_end(self, message: EpisodeStats) -> None:
        self._controller.reset()
        self._decider.new_episode()
        if self._params.mode == 'intervene':
            self._set_active(False)

    def _on_arm_command(self, message) -> None:
        """The actor sent this step's command (to the safety filter): plan the next one now,
        phase-locked to the actor's steps, knowing the command that is about to move the arm.
        """
        now = self._now()
        self._last_trigger_s = now
        pending = policy = None
        if isinstance(message, EndEffectorCommand):
            pending = np.array([message.delta_m.x, message.delta_m.y, message.delta_m.z])
            if message.source == EndEffectorCommand.SOURCE_POLICY:
                policy = pending
        self._step(now, pending, policy, decide=True)

    # --- control -----------------------------------------------------------------------
    def _scene(self, now_s: float) -> Scene | None:
        timeout = self._params.ground_truth_timeout_s
        if (self._truth is None or self._gripper_rad is None
                or now_s - self._truth_received_s > timeout
                or now_s - self._gripper_received_s > timeout):
            return None
        truth = conversions.ground_truth_reading(self._truth, now_s)
        return Scene(truth.object_position_m, truth.tcp_position_m,
                     conversions.tcp_quaternion(self._truth), truth.object_grasped,
                     self._gripper_rad, truth.success, truth.object_quaternion_wxyz)

    def _on_tick(self) -> None:
        """Fallback while no actor commands flow (before an episode): keep a fresh command."""
        now = self._now()
        if now - self._last_trigger_s > 1.5 / self._params.control_rate_hz:
            self._step(now, None, None, decide=False)

    def _step(self, now: float, pending, policy_delta, decide: bool) -> None:
        scene = self._scene(now)
        if scene is None:
            self.get_logger().warning('no fresh ground truth / joint states: not commanding',
                                      throttle_duration_sec=THROTTLE_S)
            self._set_active(False)
            return
        command = self._controller.act(scene, pending)
        if self._params.mode == 'intervene':
            if not decide:
                return
            decision = self._decider.step(task_distance(self._controller, scene),
                                          policy_delta, command.delta_m)
            if decision.reason:
                self.get_logger().info(f'trigger: {decision.reason}')
            if not decision.intervene:
                self._set_active(False)
                return
        self._set_active(True)
        message = EndEffectorCommand(source=EndEffectorCommand.SOURCE_SCRIPT,
                                     gripper_command=int(command.gripper))
        message.header.stamp = self.get_clock().now().to_msg()
        message.header.frame_id = self._params.frame_id
        message.delta_m.x, message.delta_m.y, message.delta_m.z = (
            float(v) for v in command.delta_m)
        self._command_publisher.publish(message)

    def _set_active(self, active: bool) -> None:
        if active == self._active:
            return
        self._active = active
        if active:
            self._count += 1
        self._publish_state()

    def _publish_state(self) -> None:
        if self._intervention_publisher is None:
            return
        message = InterventionState(source=InterventionState.SOURCE_ORACLE, active=self._active,
                                    intervention_count=self._count)
        message.header.stamp = self.get_clock().now().to_msg()
        self._intervention_publisher.publish(message)


def main(args=None):
    run_lifecycle_node(OracleNode, args, on_exit='release_on_exit')


if __name__ == '__main__':
    main()
