"""The driver's control loop thread: read -> publish -> write at a fixed period (no ROS).

It advances a simulation backend by one period per cycle and paces it to
``real_time_factor``.
"""
from collections.abc import Callable
import threading
import time

from so101_driver.driver_core import CycleResult, DriverCore
from so101_driver.errors import DriverError


class DriverLoop:
    """Run ``core.cycle()`` periodically in a thread; advance and pace a simulation.

    Each cycle, under ``core.lock``: cycle -> ``on_cycle(result)`` (publish) -> ``advance(
    period)`` (simulation only); ``on_exit`` runs in the loop thread when it ends. Pacing: the
    real backend runs at ``period_s`` of wall time; a simulation runs ``real_time_factor``
    simulated seconds per wall second (0: no pacing). A loop that falls behind does not try to
    catch up in a burst.
    """

    MAX_LAG_S = 0.2

    def __init__(self, core: DriverCore, period_s: float,
                 on_cycle: Callable[[CycleResult], None],
                 on_error: Callable[[Exception], None],
                 advance: Callable[[float], None] | None = None,
                 real_time_factor: float = 1.0,
                 on_exit: Callable[[], None] | None = None):
        self.core = core
        self.period_s = period_s
        self.on_cycle = on_cycle
        self.on_error = on_error
        self.advance = advance
        self.real_time_factor = real_time_factor
        self.on_exit = on_exit
        self.overruns = 0
        self.rate_hz = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='so101_driver_loop', daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop the thread; True when it ended within ``timeout_s``."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        stopped = not self._thread.is_alive()
        if stopped:
            self._thread = None
        return stopped

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            if self.on_exit is not None:
                self.on_exit()  # e.g. free an OpenGL context in the thread that made it

    def _loop(self) -> None:
        wall_period = self.period_s / self.real_time_factor if self.real_time_factor else 0.0
        next_wall = time.monotonic()
        window_start, window_cycles = time.monotonic(), 0
        error_backoff_s = 0.0
        while not self._stop.is_set():
            try:
                with self.core.lock:
                    result = self.core.cycle()
                    self.on_cycle(result)
                    if self.advance is not None:
                        self.advance(self.period_s)
                error_backoff_s = 0.0
            except DriverError as error:
                self.on_error(error)
                error_backoff_s = min(1.0, max(self.period_s, 2 * error_backoff_s))
                self._stop.wait(error_backoff_s)
                next_wall = time.monotonic()
                continue
            except Exception as error:  # noqa: BLE001 - a bug must not kill the thread silently
                self.on_error(error)
                return
            window_cycles += 1
            now = time.monotonic()
            if now - window_start >= 1.0:
                self.rate_hz = window_cycles / (now - window_start)
                window_start, window_cycles = now, 0
            if wall_period <= 0.0:
                time.sleep(0)  # let other threads (ROS callbacks) run
                continue
            next_wall += wall_period
            delay = next_wall - now
            if delay < -self.MAX_LAG_S:
                self.overruns += 1
                next_wall = now
            elif delay > 0.0:
                self._stop.wait(delay)
