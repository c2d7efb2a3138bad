"""demo_recorder_node: the actor's streams -> one rosbag2 (MCAP) directory per episode."""
import dataclasses
import functools
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, JointState

from hilserl_actor.errors import RecorderError
from hilserl_actor.nodes import conversions
from hilserl_actor.nodes.parameters import declare_from_dataclass, params_from_node, summary
from hilserl_actor.params import RecorderParams
from hilserl_actor.recording.config import settings_from_params
from hilserl_actor.recording.recorder import DemoRecorder
from hilserl_actor.recording.types import Incoming
from hilserl_learner import demo_format as fmt
from hilserl_learner.bag_io import installed_typestore
from hilserl_learner.errors import DemoWriteError
from hilserl_msgs.msg import (
    EndEffectorCommand,
    EpisodeEvent,
    EpisodeStats,
    InterventionState,
    JointCommand,
    Observation,
    SafetyEvent,
    SimGroundTruth,
    Transition,
)
from hilserl_msgs.srv import ManageGraph

MESSAGE_TYPES = {
    'hilserl_msgs/msg/Transition': Transition, 'hilserl_msgs/msg/Observation': Observation,
    'hilserl_msgs/msg/EpisodeStats': EpisodeStats, 'hilserl_msgs/msg/EpisodeEvent': EpisodeEvent,
    'hilserl_msgs/msg/InterventionState': InterventionState,
    'hilserl_msgs/msg/EndEffectorCommand': EndEffectorCommand,
    'hilserl_msgs/msg/JointCommand': JointCommand, 'hilserl_msgs/msg/SafetyEvent': SafetyEvent,
    'hilserl_msgs/msg/SimGroundTruth': SimGroundTruth, 'sensor_msgs/msg/JointState': JointState,
    'sensor_msgs/msg/Image': Image,
}
# The contract's QoS per stream (docs/architecture.md): transitions, stats, events and safety
# events are never dropped (keep all); the intervention state is latched; cameras best effort.
# The reader histories are deeper than the publishers' (compatible: depth is not matched), so
# a burst waits in the queue instead of overwriting messages the recorder has not taken yet.
QOS = {
    'reliable': QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE),
    'keep_all': QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                           reliability=ReliabilityPolicy.RELIABLE),
    'latched': QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL),
    'sensor': QoSProfile(depth=30, reliability=ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.VOLATILE),
}
# Topics the recorder reads fields of; every other topic is taken as CDR bytes (raw=True):
# nothing to deserialize and serialize again.
INSPECTED_TOPICS = (fmt.TRANSITIONS, fmt.OBSERVATION, fmt.EPISODE_STATS, fmt.EPISODE_EVENT)
TICK_PERIOD_S = 0.1
DIAGNOSTICS_PERIOD_S = 1.0
GRAPH_MANAGER_WAIT_S = 5.0
GRAPH_SHUTDOWN_TIMEOUT_S = 60.0


class DemoRecorderNode(LifecycleNode):
    """Demo recorder (lifecycle node ``demo_recorder``): one rosbag2 MCAP per episode.

    Subscribes (QoS as published, docs/architecture.md):
      /hilserl/transitions, /hilserl/observation, /hilserl/episode_stats,
      /hilserl/episode_event, /hilserl/intervention, /hilserl/ee_command,
      /hilserl/human/ee_command, /hilserl/joint_command, /hilserl/human/joint_command,
      /hilserl/safety_events, /joint_states, /so101_driver/ground_truth, and with
      record_raw_images /cameras/<name>/image_raw (only frames the policy images came from).
    Publishes:
      /diagnostics (diagnostic_msgs/DiagnosticArray, 1 Hz): status ``demo_recorder``, OK /
        WARN (an episode was lost to an error) / ERROR (disk below min_free_disk_mb).
    Writes: <output_dir>/episode_<NNNN>/ (rosbag2, MCAP) per episode, session.yaml.
    Parameters: hilserl_actor.params.RecorderParams (min_free_disk_mb can change at runtime).
    configure repairs episodes a killed recorder left; activate subscribes; deactivate,
    shutdown and SIGINT/SIGTERM finalize the episode being recorded (label interrupted).
    With max_episodes, or after an END_SESSION event, the session ends and the process exits
    with code 0.
    """

    def __init__(self, **kwargs):
        super().__init__('demo_recorder', **kwargs)
        declare_from_dataclass(self, RecorderParams)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.recorder: DemoRecorder | None = None
        self._params: RecorderParams | None = None
        self._subscriptions, self._timers = [], []
        self._diagnostics = None
        self._graph_manager = None  # ManageGraph client, made at configure, kept until exit

    @property
    def session_done(self) -> bool:
        return self.recorder is not None and self.recorder.done

    # --- transitions -----------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            params = params_from_node(self, RecorderParams)
            settings = settings_from_params(params)
            recorder = DemoRecorder(settings, installed_typestore())
            notices = recorder.start()
        except (ValueError, RecorderError, DemoWriteError, OSError) as error:
            self.get_logger().error(f'configure failed: {error}')
            return TransitionCallbackReturn.FAILURE
        self.recorder, self._params = recorder, params
        self._log(notices)
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        if params.graph_manager and self._graph_manager is None:
            # Made now, not when the session ends: by then both directions of the service are
            # matched (Fast DDS drops a response whose reader the server has not matched yet).
            self._graph_manager = self.create_client(
                ManageGraph, f"{params.graph_manager.rstrip('/')}/manage_graph")
        self.get_logger().info(
            f'configured: episodes go to {settings.output_dir} '
            f'({recorder.free_mb:.0f} MB free); {summary(params)}')
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        topics = list(fmt.RECORDED_TOPICS) + [
            fmt.raw_image_topic(name) for name in self.recorder.settings.raw_camera_names]
        for spec in topics:
            raw = spec.name not in INSPECTED_TOPICS and spec.msgtype != fmt.IMAGE_TYPE
            self._subscriptions.append(self.create_subscription(
                MESSAGE_TYPES[spec.msgtype], spec.name,
                functools.partial(self._on_message, spec), QOS[spec.qos], raw=raw))
        self._timers = [self.create_timer(TICK_PERIOD_S, self._on_tick),
                        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)]
        self.get_logger().info(f'active: recording {len(topics)} topics; an episode starts '
                               'with its first transition')
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_inputs()
        self._log(self.recorder.finish('deactivated'))
        self.get_logger().info('inactive: recording stopped')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info('cleaned up')
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.finish('shutdown')
        return super().on_shutdown(state)

    def shut_the_graph_down(self, executor) -> None:
        """Ask ``graph_manager`` for SHUTDOWN and wait for its answer, spinning ``executor``
        meanwhile: the manager drives this node too (down to finalized) while it waits.
        """
        client = self._graph_manager
        if client is None:
            return
        service = client.srv_name
        if not client.wait_for_service(timeout_sec=GRAPH_MANAGER_WAIT_S):
            self.get_logger().warning(f'session complete, but {service} is not available: '
                                      'exiting without an orderly graph shutdown')
            return
        self.get_logger().info(f'session complete: asking {service} for SHUTDOWN')
        future = client.call_async(ManageGraph.Request(command=ManageGraph.Request.SHUTDOWN))
        deadline = time.monotonic() + GRAPH_SHUTDOWN_TIMEOUT_S
        while rclpy.ok() and not future.done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=TICK_PERIOD_S)
        if not future.done():
            client.remove_pending_request(future)
            self.get_logger().warning(f'{service} did not answer SHUTDOWN within '
                                      f'{GRAPH_SHUTDOWN_TIMEOUT_S:g} s')
        elif future.exception() is not None or not future.result().success:
            reason = future.exception() or future.result().message
            self.get_logger().warning(f'graph SHUTDOWN incomplete: {reason}')

    def finish(self, reason: str) -> None:
        """Finalize the episode being recorded and release everything (idempotent)."""
        self._stop_inputs()
        if self.recorder is not None:
            self._log(self.recorder.finish(reason))
        self._release()

    def _stop_inputs(self) -> None:
        for subscription in self._subscriptions:
            self.destroy_subscription(subscription)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subscriptions, self._timers = [], []

    def _release(self) -> None:
        if self._diagnostics is not None:
            self.destroy_publisher(self._diagnostics)
        self._diagnostics, self.recorder = None, None

    # --- callbacks -------------------------------------------------------------------------
    def _on_message(self, spec: fmt.TopicSpec, message, info) -> None:
        """Every subscription's callback (with the message info: its source timestamp)."""
        recorder = self.recorder
        if recorder is None:
            return
        data = message if isinstance(message, bytes) else bytes(serialize_message(message))
        item = Incoming(spec, time.time_ns(), data,
                        sent_ns=int(info.get('source_timestamp') or 0))
        if spec.name == fmt.TRANSITIONS:
            notices = recorder.on_transition(item, conversions.transition_info(message))
        elif spec.name == fmt.OBSERVATION:
            notices = recorder.on_message(item, conversions.observation_frames(message))
        elif spec.name == fmt.EPISODE_STATS:
            notices = recorder.on_stats(item, conversions.stats_info(message))
        elif spec.name == fmt.EPISODE_EVENT:
            notices = recorder.on_event(item, conversions.event_name(message))
        elif spec.name == fmt.INTERVENTION:
            notices = recorder.on_message(item, latched=True)
        elif spec.msgtype == fmt.IMAGE_TYPE:
            ref = conversions.frame_ref(message)
            notices = recorder.on_raw_frame(item, ref) if ref is not None else []
        else:
            notices = recorder.on_message(item)
        self._log(notices)

    def _on_tick(self) -> None:
        if self.recorder is not None:
            self._log(self.recorder.tick())

    def _on_set_parameters(self, parameters) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name != 'min_free_disk_mb':
                continue
            try:
                params = dataclasses.replace(self._params or RecorderParams(),
                                             min_free_disk_mb=parameter.value)
            except ValueError as error:
                return SetParametersResult(successful=False, reason=str(error))
            if self.recorder is not None:
                self._params = params
                self._log(self.recorder.set_min_free_disk_mb(params.min_free_disk_mb))
                self.get_logger().info(f'min_free_disk_mb = {params.min_free_disk_mb:g}')
        return SetParametersResult(successful=True)

    def _publish_diagnostics(self) -> None:
        if self.recorder is None or self._diagnostics is None:
            return
        values = self.recorder.status()
        status = DiagnosticStatus(name='demo_recorder', hardware_id='hilserl_actor')
        if values['state'] == 'disk_full':
            status.level, status.message = DiagnosticStatus.ERROR, values['last_error']
        elif values['last_error']:
            status.level, status.message = DiagnosticStatus.WARN, values['last_error']
        else:
            status.level, status.message = DiagnosticStatus.OK, values['state']
        status.values = [KeyValue(key=key, value=str(value)) for key, value in values.items()]
        message = DiagnosticArray(status=[status])
        message.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(message)

    def _log(self, notices) -> None:
        logger = self.get_logger()
        for notice in notices:  # one call site per severity (rclpy requires it)
            if notice.level == 'error':
                logger.error(notice.text)
            elif notice.level == 'warn':
                logger.warning(notice.text)
            else:
                logger.info(notice.text)


def main(args=None):
    rclpy.init(args=args)
    node = None
    try:
        node = DemoRecorderNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        if (node.get_parameter('autostart').value is True
                and node.trigger_configure() == TransitionCallbackReturn.SUCCESS):
            node.trigger_activate()
        while rclpy.ok() and not node.session_done:
            executor.spin_once(timeout_sec=TICK_PERIOD_S)
        if node.session_done:
            node.shut_the_graph_down(executor)
            node.get_logger().info('session complete: exiting')
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except rclpy_implementation.RCLError:
        if rclpy.ok():
            raise
        # SIGINT/SIGTERM shut the context down while the executor built its wait set
    finally:
        if node is not None:
            node.finish('stopped')
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
