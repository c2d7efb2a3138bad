"""Parameters of the lifecycle manager: a frozen dataclass, validated without ROS."""
import dataclasses
import re

FAILURE_POLICIES = ('reset', 'pause', 'ignore')
"""What the lifecycle manager does to the rest of the graph when a managed node fails."""

_NAME_TOKEN = r'[A-Za-z_][A-Za-z0-9_]*'
NODE_NAME_PATTERN = re.compile(rf'^/?{_NAME_TOKEN}(/{_NAME_TOKEN})*$')
"""A node name, relative (``safety_filter``, ``robot/safety_filter``) or absolute."""


def _number(default, low: float, high: float, **metadata):
    return dataclasses.field(default=default, metadata={'range': (low, high), **metadata})


@dataclasses.dataclass(frozen=True)
class LifecycleManagerParams:
    """Configuration of ``lifecycle_manager`` (see README.md, Interface)."""

    node_names: tuple[str, ...] = dataclasses.field(default=(), metadata={'read_only': True})
    """Managed lifecycle nodes in bring-up order (relative names resolve in the manager's
    namespace). Brought up in this order and down in reverse."""
    autostart: bool = True
    """Configure and activate the whole graph (STARTUP) once every node's services exist."""
    service_timeout_s: float = _number(30.0, 0.1, 3600.0)
    """How long to wait for a node's lifecycle services to appear before a command fails."""
    transition_timeout_s: float = _number(30.0, 0.1, 3600.0)
    """How long one change_state call may take (configure may load weights or open ports)."""
    state_query_timeout_s: float = _number(5.0, 0.05, 600.0)
    """How long the monitor waits for a get_state answer before it declares a node dead."""
    monitor_period_s: float = _number(1.0, 0.0, 3600.0)
    """Period of the health check (get_state of every node) and of /diagnostics; 0 = off."""
    on_node_failure: str = 'reset'
    """When a node dies or leaves its state unexpectedly: 'reset' (deactivate + clean up the
    rest, in reverse order), 'pause' (deactivate the rest) or 'ignore' (report only)."""
    shutdown_graph_on_exit: bool = True
    """On SIGINT/SIGTERM, bring the graph down (deactivate, cleanup, shutdown in reverse
    order) before the manager exits, so the arm is held safely before its driver stops."""

    def __post_init__(self):
        object.__setattr__(self, 'node_names', tuple(self.node_names))
        if not self.node_names:
            raise ValueError('node_names: at least one managed node is required')
        for name in self.node_names:
            if not isinstance(name, str) or not NODE_NAME_PATTERN.match(name):
                raise ValueError(f'node_names: {name!r} is not a valid node name')
        duplicates = sorted({n for n in self.node_names if self.node_names.count(n) > 1})
        if duplicates:
            raise ValueError(f'node_names: listed more than once: {", ".join(duplicates)}')
        for field in dataclasses.fields(self):
            if 'range' in field.metadata:
                low, high = field.metadata['range']
                value = getattr(self, field.name)
                if not low <= value <= high:  # also rejects NaN
                    raise ValueError(f'{field.name}: {value} is outside [{low}, {high}]')
        if self.on_node_failure not in FAILURE_POLICIES:
            raise ValueError(f'on_node_failure: {self.on_node_failure!r} is not one of '
                             f'{", ".join(FAILURE_POLICIES)}')
