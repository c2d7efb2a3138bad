"""The SO-101 driver as a ROS 2 lifecycle node (``so101_driver``), simulated or real.

Interface (see README.md for the parameters):

- publishes ``/joint_states`` (sensor_msgs/JointState, every control cycle),
  ``/robot_description`` (std_msgs/String, transient local), ``/diagnostics``;
  with the sim backend also ``/clock``, ``/so101_driver/ground_truth``
  (hilserl_msgs/SimGroundTruth) and ``/cameras/<name>/image_raw`` + ``camera_info``;
- subscribes ``/forward_position_controller/commands`` (std_msgs/Float64MultiArray) and
  ``/joint_trajectory_controller/joint_trajectory`` (trajectory_msgs/JointTrajectory) while
  active;
- serves ``~/enable_torque`` (std_srvs/SetBool) and ``~/reset_episode``
  (hilserl_msgs/ResetEpisode).

Names are relative (they move with a robot namespace), except /clock and /diagnostics.
State topics flow from configure to cleanup (the robot stays visible while inactive);
commands are taken only while active. Deactivate holds the arm where it is.

With the real backend, JointState.effort is the servo load in percent (-100..100; the
diagnostics say ``effort_unit``). A servo fault (overload, overheat, ... bits), a torque that
dropped by itself or a lost port holds every joint at its measured position and is latched
(diagnostics ERROR, commands refused) until ``~/enable_torque`` true acknowledges it; a lost
port needs cleanup + configure. A failed reading (silent servo, corrupted replies after the
retries) writes nothing, so the servos keep their last goal, and refuses commands until a
reading works again.
"""
import os
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock as ClockMessage
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray, String
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from hilserl_msgs.msg import SimGroundTruth
from hilserl_msgs.srv import ResetEpisode
from so101_driver.backend import make_backend
from so101_driver.description import robot_description
from so101_driver.driver_core import DriverCore
from so101_driver.driver_loop import DriverLoop
from so101_driver.errors import CommandError, DriverError
from so101_driver.model_files import JOINT_NAMES
from so101_driver.nodes import conversions, parameters
from so101_driver.nodes.process import run_lifecycle_node
from so101_driver.params import DriverParams, SimParams
from so101_driver.trajectory import TrajectoryCommand

NODE_NAME = 'so101_driver'
READ_ONLY = frozenset({'backend', 'port', 'baudrate', 'calibration_file', 'camera_names',
                       'image_width', 'image_height'})
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
THROTTLE_S = 2.0
SETTLE_TIMEOUT_S = 1.0
SETTLED_SPEED_RAD_S = 0.02
LOOP_STOP_TIMEOUT_S = 5.0


class DriverNode(LifecycleNode):
    """Lifecycle node around ``DriverCore`` (interface in the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._parameter_errors = parameters.declare(self, DriverParams, READ_ONLY)
        self._parameter_errors += parameters.declare(self, SimParams, READ_ONLY)
        parameters.reject_while_configured(self, lambda: self._core is not None)
        self.params: DriverParams | None = None
        self._backend = None
        self._core: DriverCore | None = None
        self._loop: DriverLoop | None = None
        self._entities = []
        self._command_subscriptions = []
        self._outputs = {}
        self._loop_error = ''
        self._next_camera_s = 0.0
        self._diagnostics_timer = None
        # Exists from start-up, so that a failed configure is reported on /diagnostics too.
        self._diagnostics = self.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE)

    @property
    def autostart(self) -> bool:
        return bool(self.get_parameter('autostart').value)

    # --- lifecycle -----------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            if self._parameter_errors:
                raise ValueError('; '.join(self._parameter_errors))
            params = parameters.build(self, DriverParams)
            sim_params = parameters.build(self, SimParams)
        except (TypeError, ValueError) as error:
            return self._configure_failed(f'bad parameter: {error}')
        backend = None
        try:
            description = robot_description()
            backend = make_backend(params, sim_params)
            backend.connect()
        except (DriverError, OSError, ValueError) as error:
            if backend is not None:
                backend.close()
            return self._configure_failed(f'{params.backend} backend: {error}')
        try:
            core = DriverCore(backend, params)
            core.start()
        except DriverError as error:
            backend.close()
            return self._configure_failed(f'first reading of the arm: {error}')
        self.params, self._backend, self._core = params, backend, core
        self._create_interfaces(description)
        self._start_loop()
        self.get_logger().info(
            f'configured: backend {params.backend}, {params.control_rate_hz:g} Hz, command '
            f'timeout {params.command_timeout_s:g} s'
            + (f', real_time_factor {params.real_time_factor:g}, cameras '
               f'{list(sim_params.camera_names)} at {params.camera_rate_hz:g} Hz '
               f'({sim_params.image_width}x{sim_params.image_height})'
               if self._is_sim else
               f', port {params.port} at {params.baudrate} baud, calibration '
               f'{backend.config.calibration_file}, read_retries {params.read_retries}'))
        for note in getattr(backend, 'notes', ()):
            self.get_logger().info(f'servo set-up: {note}')
        if core.fault:
            self.get_logger().error(f'the servos report a fault at start-up, holding: '
                                    f'{core.fault}')
        return TransitionCallbackReturn.SUCCESS

    def _configure_failed(self, reason: str) -> TransitionCallbackReturn:
        message = f'configure failed: {reason}'
        self.get_logger().error(message)
        self._diagnostics.publish(self._diagnostic_array('error', message, {}))
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state) -> TransitionCallbackReturn:
        self._command_subscriptions = [
            self.create_subscription(Float64MultiArray, 'forward_position_controller/commands',
                                     self._on_position_command, RELIABLE),
            self.create_subscription(JointTrajectory,
                                     'joint_trajectory_controller/joint_trajectory',
                                     self._on_trajectory, RELIABLE),
        ]
        self._core.activate()
        self.get_logger().info('active: taking commands')
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._destroy_subscriptions()
        self._core.deactivate()
        self.get_logger().info('inactive: holding the arm where it is')
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self.release()
        self.get_logger().info('cleaned up')
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state) -> TransitionCallbackReturn:
        self.get_logger().error('error transition: releasing the backend')
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Stop the loop, release the backend and every ROS entity. Idempotent."""
        self._destroy_subscriptions()
        if self._loop is not None:
            if not self._loop.stop(LOOP_STOP_TIMEOUT_S):
                self.get_logger().error('the control loop did not stop in time')
            self._loop = None
        if self._core is not None:
            if self.params.disable_torque_on_cleanup:
                try:
                    self._core.set_torque(False)
                except DriverError as error:
                    self.get_logger().error(f'could not disable the torque: {error}')
            self._core = None
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        for destroy, entity in self._entities:
            destroy(entity)
        self._entities, self._outputs = [], {}

    # --- set-up helpers ------------------------------------------------------------------
    @property
    def _is_sim(self) -> bool:
        return self.params is not None and self.params.backend == 'sim'

    def _publisher(self, key, msg_type, topic, qos):
        publisher = self.create_publisher(msg_type, topic, qos)
        self._outputs[key] = publisher
        self._entities.append((self.destroy_publisher, publisher))
        return publisher

    def _service(self, srv_type, name, callback) -> None:
        self._entities.append((self.destroy_service,
                               self.create_service(srv_type, name, callback)))

    def _create_interfaces(self, description: str) -> None:
        self._publisher('joint_states', JointState, 'joint_states', RELIABLE)
        self._publisher('description', String, 'robot_description', LATCHED).publish(
            String(data=description))
        self._service(SetBool, '~/enable_torque', self._on_enable_torque)
        self._service(ResetEpisode, '~/reset_episode', self._on_reset_episode)
        if self._is_sim:
            self._publisher('clock', ClockMessage, '/clock', CLOCK_QOS)
            if self.params.publish_ground_truth:
                self._publisher('ground_truth', SimGroundTruth, '~/ground_truth', RELIABLE)
            for camera in self._backend.camera_names:
                self._publisher(('image', camera), Image, f'cameras/{camera}/image_raw',
                                qos_profile_sensor_data)
                self._publisher(('info', camera), CameraInfo, f'cameras/{camera}/camera_info',
                                qos_profile_sensor_data)
        self._diagnostics_timer = self.create_timer(
            self.params.diagnostics_period_s, self._publish_diagnostics,
            clock=Clock(clock_type=ClockType.STEADY_TIME))

    def _start_loop(self) -> None:
        sim = self._is_sim
        self._loop_error = ''
        self._next_camera_s = self._core.last_sample.stamp_s
        self._loop = DriverLoop(
            self._core, 1.0 / self.params.control_rate_hz, self._on_cycle, self._on_loop_error,
            advance=self._backend.advance if sim else None,
            real_time_factor=self.params.real_time_factor if sim else 1.0,
            on_exit=self._backend.release_renderer if sim else None)
        self._loop.start()

    def _destroy_subscriptions(self) -> None:
        for subscription in self._command_subscriptions:
            self.destroy_subscription(subscription)
        self._command_subscriptions = []

    # --- control loop (loop thread, under the core lock) ---------------------------------
    def _stamp(self, sample):
        if self._is_sim:
            return conversions.time_from_seconds(sample.stamp_s)
        return self.get_clock().now().to_msg()

    def _on_cycle(self, result) -> None:
        stamp = self._stamp(result.sample)
        self._loop_error = ''
        self._outputs['joint_states'].publish(
            conversions.joint_state(result.sample, JOINT_NAMES, stamp))
        for event in result.events:
            self._log_event(event)
        if not self._is_sim:
            return
        self._outputs['clock'].publish(conversions.clock_message(result.sample.stamp_s))
        if 'ground_truth' in self._outputs:
            self._outputs['ground_truth'].publish(
                conversions.ground_truth(self._backend.ground_truth(), stamp))
        rate = self.params.camera_rate_hz
        if rate > 0.0 and result.sample.stamp_s + 1e-9 >= self._next_camera_s:
            self._next_camera_s = max(self._next_camera_s + 1.0 / rate,
                                      result.sample.stamp_s)
            self._publish_cameras(stamp)

    def _log_event(self, event: str) -> None:
        logger = self.get_logger()
        if event == 'hold:command_timeout':
            logger.warning(f'no position command for {self.params.command_timeout_s:g} s: '
                           'holding the current position', throttle_duration_sec=THROTTLE_S)
        elif event == 'hold:fault':
            logger.error(f'fault, holding every joint where it is: {self._core.fault}')
        elif event == 'read_recovered':
            logger.info('reading the arm works again; holding the last goal')
        elif event.startswith('fault_cleared:'):
            logger.info(f'fault acknowledged: {event.partition(":")[2]}')

    def _publish_cameras(self, stamp) -> None:
        backend = self._backend
        width, height = backend.params.image_width, backend.params.image_height
        for camera in backend.camera_names:
            frame_id = f'{camera}_camera'
            self._outputs[('image', camera)].publish(
                conversions.image(backend.render(camera), stamp, frame_id))
            self._outputs[('info', camera)].publish(conversions.camera_info(
                width, height, stamp, frame_id, backend.camera_intrinsics(camera)))

    def _on_loop_error(self, error: Exception) -> None:
        if not self.context.ok():
            return  # shutting down (SIGINT): publishing fails, the loop is being stopped
        self._loop_error = f'{type(error).__name__}: {error}'
        self.get_logger().error(f'control cycle failed: {self._loop_error}',
                                throttle_duration_sec=THROTTLE_S)

    # --- commands and services (executor thread) -----------------------------------------
    def _on_position_command(self, message) -> None:
        try:
            self._core.submit_positions(conversions.position_command(message))
        except CommandError as error:
            self.get_logger().error(f'rejected position command: {error}',
                                    throttle_duration_sec=THROTTLE_S)

    def _on_trajectory(self, message) -> None:
        try:
            trajectory = self._core.submit_trajectory(conversions.trajectory_command(message))
        except CommandError as error:
            self.get_logger().error(f'rejected trajectory: {error}',
                                    throttle_duration_sec=THROTTLE_S)
            return
        self.get_logger().info(f'following a trajectory of {trajectory.duration_s:.2f} s')

    def _on_enable_torque(self, request, response):
        try:
            self._core.set_torque(request.data)
        except DriverError as error:
            response.success, response.message = False, f'torque change failed: {error}'
            self.get_logger().error(response.message)
            return response
        for event in self._core.take_events():
            self._log_event(event)
        response.success = True
        response.message = 'torque enabled' if request.data else 'torque disabled'
        self.get_logger().info(response.message)
        return response

    def _on_reset_episode(self, request, response):
        if self._is_sim:
            seed = int(request.seed) if request.use_seed else None
            try:
                with self._core.lock:
                    result = self._backend.reset(seed, request.randomize_object)
                    self._core.hold_at(result.joint_positions_rad)
            except (ValueError, DriverError) as error:
                response.success, response.message = False, f'reset failed: {error}'
                return response
            self.get_logger().info(f'episode reset, seed {result.seed}')
            return conversions.fill_reset_response(response, result, 'simulation reset')
        return self._move_home(response)

    def _move_home(self, response):
        """Real robot: an interpolated move to the home pose, waited for (bounded)."""
        home = np.asarray(self.params.home_joint_positions_rad, dtype=float)
        command = TrajectoryCommand(JOINT_NAMES, [self.params.reset_duration_s], [home])
        try:
            self._core.submit_trajectory(command)
        except CommandError as error:
            response.success, response.message = False, f'cannot move home: {error}'
            return response
        deadline = time.monotonic() + self.params.reset_duration_s + 2.0
        while self._core.trajectory_running() and time.monotonic() < deadline:
            time.sleep(0.02)
        outcome = self._core.trajectory_outcome
        settle_deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while outcome == 'done' and time.monotonic() < settle_deadline and np.abs(
                self._core.last_sample.velocities_rad_s).max() > SETTLED_SPEED_RAD_S:
            time.sleep(0.02)  # the servos lag the commanded path: answer with the arm at rest
        response.success = outcome == 'done'
        response.message = 'moved home' if response.success else (
            f'move home {outcome}' if outcome != 'running' else 'move home timed out')
        response.joint_positions = [float(v) for v in self._core.last_sample.positions_rad]
        return response

    # --- diagnostics (executor thread, wall-clock timer) ---------------------------------
    def _publish_diagnostics(self) -> None:
        core, loop = self._core, self._loop
        if core is None:
            return
        try:
            level, message, values = core.report(loop is not None and loop.running,
                                                 self._loop_error, loop.rate_hz if loop else 0.0)
        except Exception as error:  # noqa: BLE001 - a backend bug must not end the node
            level, message, values = 'error', f'health check crashed: {error!r}', {}
            with core.lock:
                core.set_fault(message)
            self.get_logger().error(message, throttle_duration_sec=THROTTLE_S)
        if core.fault:
            self.get_logger().error(f'backend fault, holding the arm: {core.fault}',
                                    throttle_duration_sec=THROTTLE_S)
        values.update(backend=self.params.backend,
                      loop_overruns=loop.overruns if loop else 0)
        self._diagnostics.publish(self._diagnostic_array(level, message, values))

    def _diagnostic_array(self, level: str, message: str, values: dict) -> DiagnosticArray:
        backend = self.get_parameter('backend').value
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [conversions.diagnostic_status(
            f'{self.get_name()}: SO-101 driver', f'so101_{backend}', level, message, values)]
        return array


def main(args=None) -> None:
    # Offscreen rendering without a display (a robot computer, CI): EGL unless the user chose.
    os.environ.setdefault('MUJOCO_GL', 'egl')
    os.environ.setdefault('PYOPENGL_PLATFORM', os.environ['MUJOCO_GL'])
    run_lifecycle_node(DriverNode, args)


if __name__ == '__main__':
    main()
