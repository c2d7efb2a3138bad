"""One OpenCV camera as a ROS 2 lifecycle node (``camera``; launch files name it
``camera_<name>``).

Interface (parameters: ``CameraParams``, README.md):

- publishes ``/cameras/<camera_name>/image_raw`` (sensor_msgs/Image, rgb8, sensor-data QoS)
  and ``/cameras/<camera_name>/camera_info`` (sensor_msgs/CameraInfo, size only: uncalibrated)
  while active, and ``/diagnostics`` (ERROR while the camera is lost) from configure on.

Topic names are relative (they move with a robot namespace), except /diagnostics.
Configure opens the camera (and fails with the reason when it cannot); activate starts the
capture thread; a camera that disappears is reopened every ``reconnect_interval_s``.
"""
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from so101_driver.camera import CameraStream, OpenCvCamera
from so101_driver.errors import CameraError
from so101_driver.nodes import conversions, parameters
from so101_driver.nodes.process import run_lifecycle_node
from so101_driver.params import CameraParams

NODE_NAME = 'camera'
READ_ONLY = frozenset({'camera_name', 'device', 'width', 'height', 'frame_id'})
THROTTLE_S = 5.0
DIAGNOSTICS_PERIOD_S = 1.0


class CameraNode(LifecycleNode):
    """Lifecycle node around ``CameraStream`` (interface in the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        self._parameter_errors = parameters.declare(self, CameraParams, READ_ONLY)
        parameters.reject_while_configured(self, lambda: self._camera is not None)
        self.params: CameraParams | None = None
        self._camera: OpenCvCamera | None = None
        self._stream: CameraStream | None = None
        self._image_publisher = None
        self._info_publisher = None
        self._timer = None
        # Exists from start-up, so that a failed configure is reported on /diagnostics too.
        self._diagnostics_publisher = self.create_publisher(
            DiagnosticArray, '/diagnostics',
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))

    @property
    def autostart(self) -> bool:
        return bool(self.get_parameter('autostart').value)

    def on_configure(self, state) -> TransitionCallbackReturn:
        try:
            if self._parameter_errors:
                raise ValueError('; '.join(self._parameter_errors))
            params = parameters.build(self, CameraParams)
        except (TypeError, ValueError) as error:
            return self._configure_failed(f'bad parameter: {error}', None)
        camera = OpenCvCamera(params)
        try:
            camera.open()
            if camera.read() is None:
                raise CameraError(f'camera {params.camera_name}: {params.device!r} has no '
                                  'frames')
        except CameraError as error:
            camera.release()
            return self._configure_failed(str(error), params)
        self.params, self._camera = params, camera
        prefix = f'cameras/{params.camera_name}'
        self._image_publisher = self.create_lifecycle_publisher(
            Image, f'{prefix}/image_raw', qos_profile_sensor_data)
        self._info_publisher = self.create_lifecycle_publisher(
            CameraInfo, f'{prefix}/camera_info', qos_profile_sensor_data)
        self._timer = self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f'configured: camera {params.camera_name} from {params.device!r} '
            f'({"video file, looping" if camera.is_file else "live"}), {params.width}x'
            f'{params.height} at most {params.fps:g} fps -> {prefix}/image_raw')
        return TransitionCallbackReturn.SUCCESS

    def _configure_failed(self, reason: str, params) -> TransitionCallbackReturn:
        message = f'configure failed: {reason}'
        self.get_logger().error(message)
        name = params.camera_name if params else self.get_parameter('camera_name').value
        device = params.device if params else str(self.get_parameter('device').value)
        self._diagnostics_publisher.publish(self._diagnostic_array(name, device, 'error',
                                                                   message, {}))
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state) -> TransitionCallbackReturn:
        result = super().on_activate(state)
        self._stream = CameraStream(self._camera, self._on_frame, self._on_camera_event)
        self._stream.start()
        self.get_logger().info('active: publishing images')
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_stream()
        self.get_logger().info('inactive')
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self) -> None:
        """Stop capturing and release the camera and the ROS entities. Idempotent."""
        self._stop_stream()
        if self._camera is not None:
            self._camera.release()
            self._camera = None
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        for publisher in (self._image_publisher, self._info_publisher):
            if publisher is not None:
                self.destroy_publisher(publisher)
        self._image_publisher = self._info_publisher = None

    def _stop_stream(self) -> None:
        if self._stream is not None:
            if not self._stream.stop():
                self.get_logger().error('the capture thread did not stop in time')
            self._stream = None

    # --- capture thread ------------------------------------------------------------------
    def _on_frame(self, frame) -> None:
        stamp = self.get_clock().now().to_msg()
        frame_id = self.params.resolved_frame_id
        self._image_publisher.publish(conversions.image(frame, stamp, frame_id))
        self._info_publisher.publish(conversions.camera_info(
            frame.shape[1], frame.shape[0], stamp, frame_id))

    def _on_camera_event(self, kind: str, message: str) -> None:
        logger = self.get_logger()
        if kind in ('opened', 'reconnected'):
            logger.info(message)
        elif kind == 'lost':
            logger.error(f'{message}; reconnecting every {self.params.reconnect_interval_s:g} s')
        else:
            logger.error(f'{message}; retrying every {self.params.reconnect_interval_s:g} s',
                         throttle_duration_sec=THROTTLE_S)

    # --- diagnostics ---------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        params = self.params
        if params is None:
            return
        status = self._stream.status() if self._stream is not None else None
        values = {'device': params.device, 'camera_name': params.camera_name,
                  'requested_fps': params.fps}
        if status is None:
            level, message = 'ok', 'inactive'
        else:
            values.update({'connected': status.connected, 'frames': status.frames,
                           'fps': f'{status.fps:.1f}', 'reconnects': status.reconnects,
                           'last_error': status.last_error})
            if not status.connected:
                level = 'error'
                message = f'camera lost: {status.last_error or "no frames"}'
            elif status.fps < 0.5 * params.fps:
                level, message = 'warn', f'low frame rate {status.fps:.1f} fps'
            else:
                level, message = 'ok', 'streaming'
        self._diagnostics_publisher.publish(self._diagnostic_array(
            params.camera_name, params.device, level, message, values))

    def _diagnostic_array(self, name: str, device: str, level: str, message: str,
                          values: dict) -> DiagnosticArray:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [conversions.diagnostic_status(
            f'{self.get_name()}: camera {name}', device, level, message, values)]
        return array


def main(args=None) -> None:
    run_lifecycle_node(CameraNode, args)


if __name__ == '__main__':
    main()
