"""Learner lifecycle node: SAC + RLPD on the transitions the actor streams.

Interface (node name ``learner``; see README.md):
- subscribes ``/hilserl/transitions`` (hilserl_msgs/Transition; reliable, KEEP_ALL: a burst
  queues instead of being dropped; gaps in step_index are counted as dropped);
- serves ``/hilserl/get_policy_weights`` (hilserl_msgs/GetPolicyWeights);
- publishes ``~/stats`` (hilserl_msgs/LearnerStats, ~1 Hz; remapped to /hilserl/learner_stats
  in graphs) and ``/diagnostics`` (diagnostic_msgs/DiagnosticArray);
- writes TensorBoard scalars and checkpoints under ``run_dir``.
Parameters: ``LearnerParams`` fields, ``sac.*`` (SACConfig), ``encoder.*`` (EncoderConfig).

configure builds the learner (resume, demos, BC warm start, first weights version); activate
subscribes and starts the training thread; deactivate stops both; cleanup writes a checkpoint
and releases everything; shutdown (and SIGINT) writes the final checkpoint.
"""
import array
import contextlib
import pathlib
import signal
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from hilserl_learner.checkpoint import TENSORBOARD, set_aside_earlier_run
from hilserl_learner.errors import InvalidTransitionError, LearnerError
from hilserl_learner.learner import Learner
from hilserl_learner.nodes import conversions
from hilserl_learner.nodes.ros_params import declare_dataclass, read_dataclass
from hilserl_learner.params import LearnerParams
from hilserl_learner.rl.encoders import EncoderConfig
from hilserl_learner.rl.sac_rlpd import SACConfig
from hilserl_learner.runtime import configure_process
from hilserl_msgs.msg import LearnerStats, Transition
from hilserl_msgs.srv import GetPolicyWeights

TRANSITIONS_TOPIC = '/hilserl/transitions'
WEIGHTS_SERVICE = '/hilserl/get_policy_weights'
# Every transition matters (the demo buffer gets the interventions): reliable and KEEP_ALL,
# so a burst waits in the queue instead of overwriting older samples.
TRANSITIONS_QOS = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_ALL,
                             reliability=ReliabilityPolicy.RELIABLE)
STATS_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
WAKE_PERIOD_S = 0.1


class LearnerNode(LifecycleNode):
    """SAC + RLPD learner (see the module docstring for its interface)."""

    def __init__(self, **kwargs):
        super().__init__('learner', **kwargs)
        declare_dataclass(self, LearnerParams)
        declare_dataclass(self, SACConfig, 'sac.')
        declare_dataclass(self, EncoderConfig, 'encoder.')
        self.learner: Learner | None = None
        self._reset_handles()

    def _reset_handles(self):
        self._subscription = self._timer = self._service = None
        self._stats_publisher = self._diagnostics_publisher = self._tensorboard = None
        self._thread, self._stop = None, threading.Event()
        self._payload_cache = (0, array.array('B'))
        self._last_stats = (time.monotonic(), 0, 0)
        self._training_error = ''

    # --- lifecycle ---------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            params = read_dataclass(self, LearnerParams)
            sac = read_dataclass(self, SACConfig, 'sac.')
            encoder = read_dataclass(self, EncoderConfig, 'encoder.')
            configure_process(params.threads())
            self.learner = Learner(params, sac, encoder)
            self._prepare(params)
        except (ValueError, LearnerError, OSError) as error:
            self.get_logger().error(f'configure failed: {error}')
            self.learner = None
            return TransitionCallbackReturn.FAILURE
        self._create_interfaces()
        self.get_logger().info(
            f'configured: {params}, {sac}, {encoder}; buffers online {params.online_capacity} / '
            f'demo {params.demo_capacity} transitions; torch threads {params.threads()}'
            f"{' + actor step thread' if self.learner.actor_step_threaded else ''}; "
            f'policy version {self.learner.weights_for(0)[0].version}')
        if (params.camera_names and encoder.freeze_trunk and encoder.cache_trunk_features
                and sac.drq_pad):
            self.get_logger().warning(
                'DrQ random shifts do not apply to the cameras: their frozen trunk features are '
                'cached per frame (encoder.cache_trunk_features). Set it false to shift the '
                'pixels every update, at the cost of running the trunk on every batch.')
        return TransitionCallbackReturn.SUCCESS

    def _prepare(self, params: LearnerParams) -> None:
        learner = self.learner
        if params.resume:
            self.get_logger().info(f'resumed from {learner.resume()}')
        elif (earlier := set_aside_earlier_run(params.run_dir)) is not None:
            self.get_logger().warning(
                f'{params.run_dir} held checkpoints or TensorBoard logs of an earlier run; '
                f'this run starts fresh (resume: false), so they were moved to {earlier}')
        if params.demo_dataset and not params.resume:
            count = learner.load_demo_dataset(params.demo_dataset)
            self.get_logger().info(f'loaded {count} demo transitions from {params.demo_dataset}')
        if params.bc_steps and not params.resume:
            info = learner.bc_warm_start(params.bc_steps)
            self.get_logger().info(f'BC warm start: {params.bc_steps} steps, {info}')
        if learner.weights_for(0)[0] is None:
            learner.publish_weights()

    def _create_interfaces(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        run_dir = pathlib.Path(self.learner.params.run_dir)
        self._tensorboard = SummaryWriter(str(run_dir / TENSORBOARD))
        self._service = self.create_service(
            GetPolicyWeights, WEIGHTS_SERVICE, self._on_get_weights,
            callback_group=MutuallyExclusiveCallbackGroup())
        self._stats_publisher = self.create_publisher(LearnerStats, '~/stats', STATS_QOS)
        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, '/diagnostics', 10)

    def on_activate(self, state) -> TransitionCallbackReturn:
        self._subscription = self.create_subscription(
            Transition, TRANSITIONS_TOPIC, self._on_transition, TRANSITIONS_QOS,
            callback_group=MutuallyExclusiveCallbackGroup())
        self._stop.clear()
        self._thread = threading.Thread(target=self._train, name='training', daemon=True)
        self._thread.start()
        self._last_stats = (time.monotonic(), self.learner.counters['updates'],
                            self.learner.counters['received'])
        self._timer = self.create_timer(self.learner.params.stats_period_s, self._on_stats_timer,
                                        callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info('active: training starts after '
                               f'{self.learner.params.learning_starts} online transitions')
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_training()
        self.get_logger().info('inactive: training stopped')
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._finish()
        self.get_logger().info('cleaned up')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._finish()
        return TransitionCallbackReturn.SUCCESS

    def finish(self) -> None:
        """Stop training and write the final checkpoint (idempotent; used on SIGINT)."""
        self._finish()

    def _stop_training(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        _destroy((self._subscription, self.destroy_subscription),
                 (self._timer, self.destroy_timer))
        self._subscription = self._timer = self._thread = None

    def _finish(self) -> None:
        self._stop_training()
        if self.learner is not None:
            try:
                path = self.learner.checkpoint_now()
                self.get_logger().info(f'final checkpoint: {path}')
            except Exception as error:  # noqa: BLE001 - e.g. torch.save on a full disk
                self.get_logger().error(
                    f'final checkpoint failed: {type(error).__name__}: {error}')
            finally:
                self.learner.close()
                self.learner = None
        _destroy((self._service, self.destroy_service),
                 (self._stats_publisher, self.destroy_publisher),
                 (self._diagnostics_publisher, self.destroy_publisher))
        if self._tensorboard is not None:
            self._tensorboard.close()
        self._reset_handles()

    # --- callbacks ---------------------------------------------------------------------------
    def _train(self) -> None:
        try:
            self.learner.training_loop(self._stop)
        except Exception as error:  # noqa: BLE001 - report any training failure, then stop
            self._training_error = f'{type(error).__name__}: {error}'
            self.get_logger().error(f'training stopped: {self._training_error}')

    def _on_transition(self, msg: Transition) -> None:
        learner = self.learner
        if learner is None:
            return
        try:
            transition = conversions.transition_from_msg(msg)
        except InvalidTransitionError as error:
            with learner.lock:
                learner.counters['rejected'] += 1
                learner.rejections[error.reason] += 1
                learner.last_rejection = str(error)
            accepted = False
        else:
            accepted = learner.add_transition(transition)
        if not accepted:
            self.get_logger().error(f'rejected transition (episode {msg.episode_id} step '
                                    f'{msg.step_index}): {learner.last_rejection}',
                                    throttle_duration_sec=5.0)

    def _on_get_weights(self, request, response):
        learner = self.learner
        weights, send = learner.weights_for(request.current_version) if learner else (None, 0)
        response.ready = weights is not None
        if weights is None:
            return response
        response.version, response.format = weights.version, 'hilserl-actor-torch-v1'
        response.checksum, response.config_json = weights.checksum, weights.config_json
        if send:
            if self._payload_cache[0] != weights.version:
                self._payload_cache = (weights.version, array.array('B', weights.blob))
            response.weights = self._payload_cache[1]
        return response

    def _on_stats_timer(self) -> None:
        learner = self.learner
        if learner is None:
            return
        stats = learner.stats()
        if stats['last_checkpoint_error']:
            self.get_logger().error(f"checkpoint write failed ({stats['checkpoints_failed']} "
                                    f"so far): {stats['last_checkpoint_error']}",
                                    throttle_duration_sec=60.0)
        now = time.monotonic()
        then, updates, received = self._last_stats
        elapsed = max(now - then, 1e-6)
        updates_per_s = (stats['updates'] - updates) / elapsed
        transitions_per_s = (stats['transitions_received'] - received) / elapsed
        self._last_stats = (now, stats['updates'], stats['transitions_received'])
        msg = conversions.stats_to_msg(stats, updates_per_s, transitions_per_s)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.training = msg.training and not self._training_error
        self._stats_publisher.publish(msg)
        self._publish_diagnostics(stats, msg)
        self._log_tensorboard(stats, updates_per_s, transitions_per_s)

    def _publish_diagnostics(self, stats: dict, msg: LearnerStats) -> None:
        status = DiagnosticStatus(name='learner', hardware_id='hilserl_learner')
        if self._training_error:
            status.level, status.message = DiagnosticStatus.ERROR, self._training_error
        elif stats['last_checkpoint_error']:
            status.level = DiagnosticStatus.ERROR
            status.message = (f"the last checkpoint write failed ({stats['checkpoints_failed']} "
                              f"so far): {stats['last_checkpoint_error']}")
        elif stats['transitions_rejected'] or stats['transitions_dropped']:
            status.level = DiagnosticStatus.WARN
            status.message = (f"{stats['transitions_rejected']} rejected, "
                              f"{stats['transitions_dropped']} dropped transitions")
        elif stats['nonfinite_steps']:
            status.level = DiagnosticStatus.WARN
            status.message = (f"{stats['nonfinite_steps']} gradient steps skipped: NaN or inf "
                              'loss or gradient')
        else:
            status.level, status.message = DiagnosticStatus.OK, 'ok'
        status.values = [KeyValue(key=k, value=str(getattr(msg, k))) for k in (
            'policy_version', 'updates', 'updates_per_s', 'online_buffer_size',
            'demo_buffer_size', 'transitions_received', 'training')]
        array_msg = DiagnosticArray(status=[status])
        array_msg.header.stamp = msg.header.stamp
        self._diagnostics_publisher.publish(array_msg)

    def _log_tensorboard(self, stats: dict, updates_per_s: float,
                         transitions_per_s: float) -> None:
        step = stats['updates']
        scalars = dict(stats['losses'], updates_per_s=updates_per_s,
                       transitions_per_s=transitions_per_s)
        for key in ('online_buffer_size', 'demo_buffer_size', 'buffer_bytes',
                    'transitions_received', 'transitions_rejected', 'transitions_dropped',
                    'policy_version'):
            scalars[key] = stats[key]
        for name, value in scalars.items():
            self._tensorboard.add_scalar(f'learner/{name}', value, step)


def _destroy(*pairs) -> None:
    """Destroy ROS handles; after the context shut down (SIGINT) they may be gone already."""
    for handle, destroy in pairs:
        if handle is not None:
            with contextlib.suppress(Exception):  # nothing left to release
                destroy(handle)


_exit_signal: list[str] = []


def _request_exit(signum, frame):
    if _exit_signal:  # a second signal forces the exit while the final checkpoint is written
        raise KeyboardInterrupt(signal.Signals(signum).name)
    _exit_signal.append(signal.Signals(signum).name)


def main(args=None):
    """Spin until SIGINT/SIGTERM/SIGHUP, then stop training and write the final checkpoint.

    Our own signal handlers (not rclpy's): they only record the request, which the spin loop
    sees within ``WAKE_PERIOD_S``. rclpy's raise KeyboardInterrupt wherever the main thread
    is and shut the context down under a running executor, which can end the process with
    "the given context is not valid" instead of a clean exit.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _request_exit)
    node = executor = None
    try:
        node = LearnerNode()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        if (node.get_parameter('autostart').value
                and node.trigger_configure() == TransitionCallbackReturn.SUCCESS):
            node.trigger_activate()
        while rclpy.ok() and not _exit_signal:
            executor.spin_once(timeout_sec=WAKE_PERIOD_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.finish()
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()

