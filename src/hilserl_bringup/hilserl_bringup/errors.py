"""Typed exceptions of hilserl_bringup (lifecycle sequencing, graph descriptions, the runner)."""


class BringupError(Exception):
    """Base class of every hilserl_bringup error."""


class NodeUnreachableError(BringupError):
    """A managed node's lifecycle service is not available or did not answer in time."""

    def __init__(self, node: str, service: str, reason: str):
        super().__init__(f'{node}: {service} {reason}')
        self.node = node
        self.service = service
        self.reason = reason


class GraphSpecError(BringupError, ValueError):
    """A graph description or a graph argument is invalid (unknown name, bad value, ...)."""


class RunnerError(BringupError):
    """The launch-less runner cannot start a graph."""


class MissingExecutablesError(RunnerError):
    """Executables a graph needs are not installed (package not built or not written yet)."""

    def __init__(self, missing: list[str]):
        super().__init__('not installed: ' + ', '.join(missing))
        self.missing = list(missing)
