"""actor_node: the HIL-SERL control loop (demo mode now; train / eval with the actor issue)."""
import functools

from rclpy.clock import Clock, ClockType
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header

from hilserl_actor.actions import (
    ActionSelector,
    ActionSettings,
    HumanActionSource,
    Source,
    ZeroActionSource,
)
from hilserl_actor.episode import ActorInputs, ActorLoop, ResetOutcome, generate_run_id
from hilserl_actor.nodes import conversions
from hilserl_actor.nodes.parameters import declare_from_dataclass, params_from_node, summary
from hilserl_actor.observation_builder import ObservationBuilder
from hilserl_actor.params import ActorParams
from hilserl_actor.success import load_classifier_success
from hilserl_learner.preprocessing import CropError, load_crop_config
from hilserl_msgs.msg import (
    EndEffectorCommand,
    EpisodeEvent,
    EpisodeStats,
    InterventionState,
    JointCommand,
    SafetyEvent,
    SimGroundTruth,
)
from hilserl_msgs.msg import Observation as ObservationMsg
from hilserl_msgs.msg import Transition as TransitionMsg
from hilserl_msgs.srv import ResetEpisode
from so101_driver.kinematics import So101Kinematics
from so101_driver.nodes.process import run_lifecycle_node

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
KEEP_ALL = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                      reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
THROTTLE_S = 2.0
NOT_YET = ("mode {mode!r} comes with the actor issue (policy-driven training: weights client, "
           "interventions over the policy); only mode 'demo' is implemented")


class ActorNode(LifecycleNode):
    """The HIL-SERL actor (lifecycle node ``actor``).

    Subscribes (while active):
      /joint_states (sensor_msgs/JointState, reliable 10), /cameras/<name>/image_raw
        (sensor_msgs/Image rgb8|bgr8, sensor data), /so101_driver/ground_truth
        (hilserl_msgs/SimGroundTruth, reliable 10; unless ground_truth is off),
        /hilserl/human/ee_command (EndEffectorCommand, reliable 10),
        /hilserl/human/joint_command (JointCommand, reliable 10),
        /hilserl/intervention (InterventionState, reliable transient local 1),
        /hilserl/episode_event (EpisodeEvent, reliable keep all),
        /hilserl/safety_events (SafetyEvent, reliable keep all).
    Publishes:
      /hilserl/ee_command (EndEffectorCommand, reliable 10) and /hilserl/joint_command
        (JointCommand, reliable 10): the step's action to the safety filter, and after a reset
        the reset pose (SOURCE_SCRIPT) for reset_sync_steps periods;
      /hilserl/actor_heartbeat (std_msgs/Header, reliable 10, control_rate_hz, wall clock);
      /hilserl/observation (Observation, reliable 10): each step's observation, frame_id = the
        run id, images[i].header = the raw frame's header;
      /hilserl/transitions (Transition, reliable keep all): one per step, frame_id = run id;
      /hilserl/episode_stats (EpisodeStats, reliable keep all): one per episode, after its
        last transition.
    Client: /so101_driver/reset_episode (hilserl_msgs/ResetEpisode).
    Parameters: hilserl_actor.params.ActorParams (read-only; applied at configure).
    """

    def __init__(self, **kwargs):
        super().__init__('actor', **kwargs)
        declare_from_dataclass(self, ActorParams)
        self._loop: ActorLoop | None = None
        self._inputs = ActorInputs()
        self._human: HumanActionSource | None = None
        self._outputs = {}
        self._inputs_subs = []
        self._loop_timers = []
        self._reset_client = None
        self._reset_future = None
        self._observation_messages = []

    # --- transitions -------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            params = params_from_node(self, ActorParams)
            if params.mode != 'demo':
                raise ValueError(NOT_YET.format(mode=params.mode))
            crop = load_crop_config(params.crop_config_file)
            kinematics = So101Kinematics()
            builder = ObservationBuilder(params.joint_names, params.camera_names, crop,
                                         params.privileged_fields, kinematics)
            builder.spec()
            success = None
            if params.reward_classifier_path:
                success = load_classifier_success(
                    params.reward_classifier_path, params.reward_classifier_threshold, builder,
                    params.reward_classifier_consecutive_steps)
                import torch  # loaded by the classifier; batch-1 inference: one thread is fastest
                torch.set_num_threads(1)
        except (ValueError, CropError, OSError, RuntimeError) as error:
            self.get_logger().error(f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        settings = ActionSettings(params.action_scale_m, params.discrete_gripper,
                                  params.human_command_timeout_s,
                                  params.joint_gripper_close_below_rad,
                                  params.joint_gripper_open_above_rad)
        self._human = HumanActionSource(settings, params.joint_names, kinematics)
        selector = ActionSelector(params.mode, self._human, ZeroActionSource(settings))
        run_id = params.run_id or generate_run_id()
        self._loop = ActorLoop(params, builder, selector, run_id, success)
        self._params = params
        create = self.create_lifecycle_publisher
        self._outputs = {
            'ee': create(EndEffectorCommand, '/hilserl/ee_command', RELIABLE),
            'joint': create(JointCommand, '/hilserl/joint_command', RELIABLE),
            'heartbeat': create(Header, '/hilserl/actor_heartbeat', RELIABLE),
            'observation': create(ObservationMsg, '/hilserl/observation', RELIABLE),
            'transition': create(TransitionMsg, '/hilserl/transitions', KEEP_ALL),
            'stats': create(EpisodeStats, '/hilserl/episode_stats', KEEP_ALL),
        }
        self._reset_client = self.create_client(ResetEpisode, '/so101_driver/reset_episode')
        self.get_logger().info(
            f'configured: run id {run_id}, state {list(builder.state_names)}, cameras '
            f'{list(params.camera_names)} cropped by '
            f'{params.crop_config_file or "the default (full frame, 128x128)"}; '
            f'{summary(params)}')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        params = self._params
        self._inputs = ActorInputs()
        subscribe = self.create_subscription
        self._inputs_subs = [
            subscribe(JointState, '/joint_states', self._on_joint_state, RELIABLE),
            subscribe(EndEffectorCommand, '/hilserl/human/ee_command', self._on_human_ee,
                      RELIABLE),
            subscribe(JointCommand, '/hilserl/human/joint_command', self._on_human_joint,
                      RELIABLE),
            subscribe(InterventionState, '/hilserl/intervention', self._on_intervention,
                      LATCHED),
            subscribe(EpisodeEvent, '/hilserl/episode_event', self._on_event, KEEP_ALL),
            subscribe(SafetyEvent, '/hilserl/safety_events', self._on_safety_event, KEEP_ALL),
        ]
        for name in params.camera_names:
            self._inputs_subs.append(subscribe(
                Image, f'/cameras/{name}/image_raw', functools.partial(self._on_image, name),
                qos_profile_sensor_data))
        if params.ground_truth != 'off':
            self._inputs_subs.append(subscribe(SimGroundTruth, '/so101_driver/ground_truth',
                                               self._on_ground_truth, RELIABLE))
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        period = 1.0 / params.control_rate_hz
        self._loop_timers = [self.create_timer(period, self._on_tick),
                             self.create_timer(period, self._on_heartbeat, clock=steady)]
        self._loop.activate(self._now())
        self.get_logger().info(f'active: mode {params.mode}, {params.control_rate_hz:g} Hz')
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self.get_logger().info('inactive: episodes stopped')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info('cleaned up')
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self._release()
        return super().on_shutdown(state)

    def _stop(self) -> None:
        """End a running episode (its last transition and stats are published), stop."""
        if self._loop is not None and self._loop_timers:
            self._publish(self._loop.deactivate(self._now(), self._inputs))
        for subscription in self._inputs_subs:
            self.destroy_subscription(subscription)
        for timer in self._loop_timers:
            self.destroy_timer(timer)
        self._inputs_subs, self._loop_timers = [], []
        self._reset_future = None

    def _release(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        if self._reset_client is not None:
            self.destroy_client(self._reset_client)
            self._reset_client = None
        self._loop = None

    def stop_on_exit(self) -> None:
        """The process is ending while active: close the running episode and flush."""
        if self._loop_timers and self.context.ok():
            self._stop()
            for key in ('transition', 'stats'):
                self._outputs[key].wait_for_all_acked(Duration(seconds=1.0))

    # --- inputs ------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _reject(self, what: str, error: Exception) -> None:
        self.get_logger().warning(f'{what} rejected: {error}', throttle_duration_sec=THROTTLE_S)

    def _on_joint_state(self, message: JointState) -> None:
        try:
            self._inputs.joints = conversions.joint_reading(
                message, self._params.joint_names, self._now())
        except ValueError as error:
            self._reject('joint state', error)

    def _on_image(self, camera: str, message: Image) -> None:
        try:
            self._inputs.frames[camera] = conversions.camera_frame(message, self._now())
        except ValueError as error:
            self._reject(f'camera {camera} frame', error)

    def _on_ground_truth(self, message: SimGroundTruth) -> None:
        self._inputs.truth = conversions.ground_truth_reading(message, self._now())
        self._inputs.truth_seen = True

    def _on_human_ee(self, message: EndEffectorCommand) -> None:
        try:
            self._human.set_ee(conversions.human_ee_command(message, self._now()))
        except ValueError as error:
            self._reject('human EE command', error)

    def _on_human_joint(self, message: JointCommand) -> None:
        try:
            self._human.set_joint(conversions.human_joint_command(message, self._now()))
        except ValueError as error:
            self._reject('human joint command', error)

    def _on_intervention(self, message: InterventionState) -> None:
        self._loop.interventions.update(message.source, message.active, self._now())

    def _on_event(self, message: EpisodeEvent) -> None:
        try:
            event = conversions.episode_event_type(message)
        except ValueError as error:
            self._reject('episode event', error)
            return
        self.get_logger().info(f'episode event {event.name} from {message.source or "?"}'
                               + (f' ({message.reason})' if message.reason else ''))
        self._log(self._loop.on_event(event, self._now()))

    def _on_safety_event(self, message: SafetyEvent) -> None:
        if message.severity in (SafetyEvent.SEVERITY_TRIP, SafetyEvent.SEVERITY_ESTOP):
            self._log(self._loop.on_safety_trip(
                f'{message.limit_name}: {message.message}'))

    # --- loop --------------------------------------------------------------------------
    def _on_heartbeat(self) -> None:
        header = Header(frame_id=self._loop.run_id)
        header.stamp = self.get_clock().now().to_msg()
        self._outputs['heartbeat'].publish(header)

    def _on_tick(self) -> None:
        self._publish(self._loop.tick(self._now(), self._inputs))

    def _publish(self, out) -> None:
        self._log(out.logs)
        stamp = self.get_clock().now().to_msg()
        frame_id = self._params.frame_id
        if out.reset is not None:
            self._request_reset(out.reset)
        if out.sync_joints_rad is not None:
            self._outputs['joint'].publish(conversions.joint_command_message(
                self._params.joint_names, out.sync_joints_rad, Source.SCRIPT, stamp, frame_id))
        if out.action is not None:
            action = out.action
            if action.joint_targets is not None:
                self._outputs['joint'].publish(conversions.joint_command_message(
                    *action.joint_targets, action.source, stamp, frame_id))
            else:
                self._outputs['ee'].publish(
                    conversions.ee_command_message(action, stamp, frame_id))
        if out.observation is not None:
            self._outputs['observation'].publish(self._observation_message(out.observation))
        if out.transition is not None:
            record = out.transition
            self._outputs['transition'].publish(conversions.transition_message(
                record, self._observation_message(record.observation),
                self._observation_message(record.next_observation), stamp))
        if out.stats is not None:
            self._outputs['stats'].publish(conversions.episode_stats_message(out.stats,
                                                                                stamp))

    def _observation_message(self, built):
        """The message of a built observation, converted once (an observation is published,
        then sent twice in transitions: as next_observation, then as observation).
        """
        for known, message in self._observation_messages:
            if known is built:
                return message
        builder = self._loop.builder
        message = conversions.observation_message(built, builder.state_names,
                                                  builder.privileged_names, self._loop.run_id)
        self._observation_messages = [*self._observation_messages[-2:], (built, message)]
        return message

    def _log(self, lines) -> None:
        logger = self.get_logger()
        for level, text in lines:
            if level == 'error':
                logger.error(text)
            elif level == 'warn':
                logger.warning(text, throttle_duration_sec=THROTTLE_S)
            else:
                logger.info(text)

    def _request_reset(self, request) -> None:
        client = self._reset_client
        if not client.service_is_ready():
            self._log(self._loop.on_reset_result(request.token, ResetOutcome(
                False, f'service {client.srv_name} is not available'), self._now()))
            return
        future = client.call_async(conversions.reset_request(request))
        self._reset_future = future
        future.add_done_callback(functools.partial(self._on_reset_done, request.token))

    def _on_reset_done(self, token: int, future) -> None:
        if self._loop is None or future is not self._reset_future:
            return
        self._reset_future = None
        try:
            outcome = conversions.reset_outcome(future.result())
        except Exception as error:  # noqa: BLE001 - a failed call is reported, then retried
            outcome = ResetOutcome(False, f'the reset call failed: {error!r}')
        self._log(self._loop.on_reset_result(token, outcome, self._now()))


def main(args=None):
    run_lifecycle_node(ActorNode, args, on_exit='stop_on_exit')


if __name__ == '__main__':
    main()
