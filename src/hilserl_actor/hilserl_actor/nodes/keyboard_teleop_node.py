"""keyboard_teleop: terminal keys -> the same outputs as teleop_node, for users without a pad."""
import os
import select
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from hilserl_actor.errors import TerminalError
from hilserl_actor.nodes.parameters import declare_from_dataclass, params_from_node, summary
from hilserl_actor.nodes.teleop_outputs import TeleopPublishers
from hilserl_actor.params import KeyboardTeleopParams
from hilserl_actor.teleop import terminal
from hilserl_actor.teleop.keyboard import HELP_KEYS, KeyboardTeleop, KeyDecoder
from hilserl_actor.teleop.session import SessionSettings, TeleopSession
from hilserl_actor.teleop.types import InputDevice, TeleopOutputs
from so101_driver.nodes.process import exit_requested, init_with_exit_signals


class KeyboardTeleopNode(Node):
    """Keyboard teleoperation (plain node ``keyboard_teleop``; it needs a terminal).

    Publishes the same topics as teleop_node, with InterventionState.source SOURCE_KEYBOARD and
    EpisodeEvent.source 'keyboard': /hilserl/human/ee_command, /hilserl/intervention
    (transient local), /hilserl/episode_event, /hilserl/estop.
    Parameters: see hilserl_actor.params.KeyboardTeleopParams. Keys: see the README (h shows
    them). Space toggles takeover; commands are published at control_rate_hz while it is on.
    """

    def __init__(self, **kwargs):
        super().__init__('keyboard_teleop', **kwargs)
        declare_from_dataclass(self, KeyboardTeleopParams)
        self.params = params_from_node(self, KeyboardTeleopParams)  # ValueError: main reports
        params = self.params
        session = TeleopSession(SessionSettings(
            InputDevice.KEYBOARD, params.control_rate_hz, params.max_ee_speed_m_s,
            params.always_active, params.event_debounce_s, params.initial_speed_scale,
            params.speed_scale_step))
        self.core = KeyboardTeleop(session, params.key_hold_s)
        self.outputs = TeleopPublishers(self, 'keyboard', params.frame_id, lifecycle=False)
        self.outputs.publish_intervention(session.intervention)
        self.get_logger().info(f'started: {summary(params)}')

    def run(self, fd: int, screen: terminal.Screen) -> None:
        """Read keys from ``fd`` and publish until shutdown (the terminal is in cbreak mode)."""
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(self)
        decoder = KeyDecoder()
        period = 1.0 / self.params.control_rate_hz
        next_tick = next_period = time.monotonic()
        note = ''
        screen.show_help()
        while self.context.ok() and not exit_requested():
            now = time.monotonic()
            wake = min(next_tick, decoder.deadline_s or next_tick)
            readable, _, _ = select.select([fd], [], [], max(0.0, wake - now))
            now = time.monotonic()
            keys = []
            if readable:
                data = os.read(fd, 1024)
                if not data:
                    self.get_logger().warning('the terminal closed: stopping')
                    break
                keys = decoder.feed(data, now)
            keys += decoder.flush(now)
            for key in keys:
                if key in HELP_KEYS:
                    screen.show_help()
                    continue
                outputs = self.core.on_key(key, now)
                if outputs is not None:
                    note = terminal.describe(outputs) or note
                    self._publish(outputs)
            if now >= next_tick:
                self._publish(self.core.tick(now))
                next_tick = max(next_tick + period, now - period)
                session = self.core.session
                screen.show_status(session.active, session.speed_scale, session.max_step_m,
                                   self.core.motion(now), self.core.gripper(now), note)
            if now >= next_period:
                self.outputs.publish_intervention(self.core.session.intervention)
                next_period = now + self.params.intervention_period_s
            executor.spin_once(timeout_sec=0.0)
        executor.remove_node(self)

    def _publish(self, outputs: TeleopOutputs) -> None:
        if outputs.estop:
            self.get_logger().warning('e-stop key: latch requested on /hilserl/estop')
        for event in outputs.events:
            self.get_logger().info(f'episode event {event.event.name} ({event.reason})')
        self.outputs.publish(outputs)

    def release(self) -> None:
        """End the intervention before exiting (best effort: the context may be shut down)."""
        if self.context.ok():
            self.outputs.publish(self.core.release())
            self.outputs.flush()


def main(args=None):
    init_with_exit_signals(args)
    node = None
    status = 0
    fd = sys.stdin.fileno()
    screen = terminal.Screen(sys.stdout)
    try:
        node = KeyboardTeleopNode()
        with terminal.CbreakTerminal(fd):
            node.run(fd, screen)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, TerminalError) as error:
        rclpy.logging.get_logger('keyboard_teleop').error(f'cannot run: {error}')
        status = 1
    finally:
        if node is not None:
            node.release()
            node.destroy_node()
        rclpy.try_shutdown()
        if status == 0:
            screen.close()
    return status


if __name__ == '__main__':
    raise SystemExit(main())
