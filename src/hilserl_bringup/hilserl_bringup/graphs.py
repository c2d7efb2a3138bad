"""Every graph of the stack, described once (ROS-free).

A graph is an ordered list of node specs plus the arguments a user can set on it
(``backend:=real``, ``use_sim_time:=false``, ...). Both the launch files
(``launch/<graph>.launch.py``, full ROS 2 installs) and the launch-less runner
(``run_graph <graph>``) resolve the same description with ``GraphSpec.resolve``, so the two
start the same processes with the same parameters.

Parameter files are package-relative (``config/<node>.yaml``) and applied in this order, the
later winning: the robot overlay (``config/robots/so101.yaml``, for nodes that need the
robot's joints and limits), the node's own files, the user's ``params_file``; then the
inline parameters (``use_sim_time`` and the graph's overrides such as the driver's
``backend``). The managed-node list is derived from the graph: the lifecycle manager's
``node_names`` are the resolved managed nodes in graph order.
"""
from collections.abc import Callable, Mapping
import dataclasses
import pathlib
from typing import Any

from hilserl_bringup.errors import GraphSpecError
from hilserl_bringup.params import NODE_NAME_PATTERN

ROBOT_OVERLAY = 'config/robots/so101.yaml'
BOOL_WORDS = {'true': 'true', '1': 'true', 'yes': 'true', 'on': 'true',
              'false': 'false', '0': 'false', 'no': 'false', 'off': 'false'}


class _Marker:
    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f'<{self.what}>'


MANAGED_NODE_NAMES = _Marker("the graph's managed node names, in order")
"""Inline parameter value: replaced by the resolved managed nodes (lifecycle manager)."""
ROBOT_DESCRIPTION = _Marker('the SO-101 URDF')
"""Inline parameter value: replaced by the URDF text (robot_state_publisher)."""


@dataclasses.dataclass(frozen=True)
class Arg:
    """Inline parameter value taken from a graph argument, converted to the argument's kind."""

    name: str


@dataclasses.dataclass(frozen=True)
class ArgumentSpec:
    """A graph argument (a DeclareLaunchArgument in the launch files, ``name:=value`` in both)."""

    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()
    """Allowed values; empty = any."""
    kind: str = 'str'
    """'str', 'bool' ('true'/'false', also 1/0, yes/no, on/off), 'int' (>= 0) or 'path'
    ('' = unset)."""

    def normalise(self, text: str) -> str:
        """The canonical text of a value; GraphSpecError naming the argument if invalid."""
        text = str(text).strip()
        if self.kind == 'int':
            if not text.isdigit():
                raise GraphSpecError(f'{self.name}:={text}: expected a whole number >= 0')
            text = str(int(text))
        if self.kind == 'bool' and text.lower() in BOOL_WORDS:
            text = BOOL_WORDS[text.lower()]
        elif self.kind == 'bool' and 'auto' not in self.choices:
            raise GraphSpecError(f'{self.name}:={text}: expected true or false')
        if self.choices and text not in self.choices:
            raise GraphSpecError(f'{self.name}:={text}: expected one of '
                                 f'{"|".join(self.choices)}')
        if self.kind == 'path' and text:
            path = pathlib.Path(text).expanduser().resolve()
            if not path.is_file():
                raise GraphSpecError(f'{self.name}:={text}: no such file')
            text = str(path)
        return text

    def convert(self, text: str) -> Any:
        """The typed value of a canonical text (bool for 'bool', int for 'int')."""
        if self.kind == 'int':
            return int(text)
        return text == 'true' if self.kind == 'bool' else text


@dataclasses.dataclass(frozen=True)
class When:
    """Condition: every listed argument has one of the listed values."""

    values: Mapping[str, tuple[str, ...]]

    def holds(self, arguments: Mapping[str, str]) -> bool:
        return all(arguments[name] in allowed for name, allowed in self.values.items())


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One node (process) of a graph."""

    package: str
    executable: str
    name: str
    namespace: str = ''
    parameter_files: tuple[str, ...] = ()
    """Files of hilserl_bringup's share directory, e.g. 'config/actor.yaml'."""
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Inline overrides, applied after every file; values may be Arg(...) or a marker."""
    remappings: tuple[tuple[str, str], ...] = ()
    arguments: tuple[str, ...] = ()
    """Extra command-line arguments before --ros-args; '{share_dir}' is substituted."""
    managed: bool = False
    """A lifecycle node that the graph's lifecycle manager brings up (in graph order)."""
    full_ros_only: bool = False
    """Exists only on full ROS 2 installs (robot_state_publisher, rviz2, joy_node): the
    launch files start it, the launch-less runner skips it with a note."""
    required: bool = True
    """When it exits, the whole graph stops (runner; on_exit=Shutdown in launch files)."""
    use_sim_time: bool = True
    """Receives the graph's use_sim_time (the lifecycle manager keeps wall time)."""
    robot_overlay: bool = False
    """Receives config/robots/so101.yaml (joint names, limits) before its own files."""
    when: tuple[When, ...] = ()
    """Started only if one of these conditions holds; empty = always."""
    stop_first: bool = False
    """The runner stops it (and waits for it) before the others: the lifecycle manager,
    which brings the managed nodes down in reverse order on SIGINT."""

    @property
    def qualified_name(self) -> str:
        return f'{self.namespace.rstrip("/")}/{self.name}' if self.namespace else self.name


@dataclasses.dataclass(frozen=True)
class ResolvedNode:
    """A node spec with every argument applied: what a launcher starts."""

    package: str
    executable: str
    name: str
    namespace: str
    parameter_files: tuple[pathlib.Path, ...]
    parameters: dict[str, Any]
    remappings: tuple[tuple[str, str], ...]
    arguments: tuple[str, ...]
    log_level: str
    managed: bool
    full_ros_only: bool
    required: bool
    stop_first: bool

    @property
    def qualified_name(self) -> str:
        return f'{self.namespace.rstrip("/")}/{self.name}' if self.namespace else self.name

    def launch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of launch_ros.actions.Node / LifecycleNode for this node."""
        return {
            'package': self.package, 'executable': self.executable, 'name': self.name,
            'namespace': self.namespace,
            'parameters': [*(str(p) for p in self.parameter_files), dict(self.parameters)],
            'remappings': list(self.remappings), 'arguments': list(self.arguments),
            'ros_arguments': ['--log-level', self.log_level], 'output': 'screen',
        }


@dataclasses.dataclass(frozen=True)
class GraphSpec:
    """A named, ordered set of nodes and the arguments that shape it."""

    name: str
    description: str
    arguments: tuple[ArgumentSpec, ...]
    nodes: tuple[NodeSpec, ...]

    def __post_init__(self):
        problems = list(self._problems())
        if problems:
            raise GraphSpecError(f'graph {self.name}: ' + '; '.join(problems))

    def argument(self, name: str) -> ArgumentSpec:
        return next(a for a in self.arguments if a.name == name)

    def argument_values(self, overrides: Mapping[str, str] = {}) -> dict[str, str]:
        """Every argument's canonical value: defaults, then ``overrides`` (validated)."""
        known = {a.name for a in self.arguments}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise GraphSpecError(f'graph {self.name} has no argument {", ".join(unknown)} '
                                 f'(its arguments: {", ".join(sorted(known))})')
        values = {a.name: a.normalise(overrides.get(a.name, a.default)) for a in self.arguments}
        if values.get('use_sim_time') == 'auto':
            values['use_sim_time'] = 'true' if values.get('backend') == 'sim' else 'false'
        return values

    def selected_nodes(self, values: Mapping[str, str]) -> list[NodeSpec]:
        """The nodes whose conditions hold for the argument values, in graph order."""
        return [n for n in self.nodes if not n.when or any(w.holds(values) for w in n.when)]

    def resolve(self, overrides: Mapping[str, str], share_dir, *, exclude=(),
                robot_description: Callable[[], str] | None = None) -> list[ResolvedNode]:
        """Apply the arguments; drop nodes whose (package, executable) is in ``exclude``.

        The lifecycle manager's node_names are the remaining managed nodes; when none
        remains, the lifecycle manager is dropped too.
        """
        values = self.argument_values(overrides)
        share_dir = pathlib.Path(share_dir)
        nodes = [n for n in self.selected_nodes(values)
                 if (n.package, n.executable) not in set(exclude)]
        managed = [n.qualified_name for n in nodes if n.managed]
        if not managed:  # nothing left to manage (all excluded): no lifecycle manager either
            nodes = [n for n in nodes if MANAGED_NODE_NAMES not in n.parameters.values()]
        return [self._resolve_node(node, values, share_dir, managed, robot_description)
                for node in nodes]

    def _resolve_node(self, node: NodeSpec, values, share_dir, managed,
                      robot_description) -> ResolvedNode:
        templates = ((ROBOT_OVERLAY,) if node.robot_overlay else ()) + node.parameter_files
        files = [share_dir / t.format(**values) for t in templates]
        if values.get('params_file'):
            files.append(pathlib.Path(values['params_file']))
        parameters: dict[str, Any] = {}
        if node.use_sim_time and 'use_sim_time' in values:
            parameters['use_sim_time'] = values['use_sim_time'] == 'true'
        for key, value in node.parameters.items():
            if isinstance(value, Arg):
                value = self.argument(value.name).convert(values[value.name])
            elif value is MANAGED_NODE_NAMES:
                value = list(managed)
            elif value is ROBOT_DESCRIPTION:
                if robot_description is None:
                    raise GraphSpecError(f'{node.name}: needs the robot description')
                value = robot_description()
            parameters[key] = value
        arguments = tuple(a.format(share_dir=share_dir) for a in node.arguments)
        return ResolvedNode(node.package, node.executable, node.name, node.namespace,
                            tuple(files), parameters, node.remappings, arguments,
                            values.get('log_level', 'info'), node.managed,
                            node.full_ros_only, node.required, node.stop_first)

    def _problems(self):
        names = [a.name for a in self.arguments]
        if len(set(names)) != len(names):
            yield 'duplicate argument names'
        for argument in self.arguments:
            if argument.choices and argument.default not in argument.choices:
                yield f'argument {argument.name}: default {argument.default!r} not a choice'
        qualified = [n.qualified_name for n in self.nodes]
        for name in sorted({q for q in qualified if qualified.count(q) > 1}):
            yield f'node {name} appears more than once'
        for node in self.nodes:
            if not NODE_NAME_PATTERN.match(node.qualified_name):
                yield f'node {node.qualified_name!r}: invalid name'
            if node.managed and node.full_ros_only:
                yield f'node {node.name}: a full-ROS-only node cannot be managed'
            for condition in node.when:
                for arg, allowed in condition.values.items():
                    if arg not in names:
                        yield f'node {node.name}: condition on undeclared argument {arg}'
                    elif self.argument(arg).choices and set(allowed) - set(
                            self.argument(arg).choices + ('true', 'false')):
                        yield f'node {node.name}: condition {arg} in {allowed} never holds'
            for value in node.parameters.values():
                if isinstance(value, Arg) and value.name not in names:
                    yield f'node {node.name}: parameter from undeclared argument {value.name}'
        managers = [n for n in self.nodes if MANAGED_NODE_NAMES in n.parameters.values()]
        if any(n.managed for n in self.nodes) and not managers:
            yield 'managed nodes but no lifecycle manager'


# --- arguments -------------------------------------------------------------------------
def _arg(name, default, description, choices=(), kind='str') -> ArgumentSpec:
    return ArgumentSpec(name, default, description, tuple(choices), kind)


def common_arguments(backend: str = 'sim', rviz: str | None = None) -> tuple[ArgumentSpec, ...]:
    """The arguments every graph declares (house style C.1), plus rviz where it applies."""
    arguments = (
        _arg('backend', backend, 'robot backend of the driver: sim (MuJoCo) or real (SO-101 '
             'on a serial port, or the virtual servo bus: so101_driver README); also chooses '
             'the human input, the camera nodes and config/backend/<backend>.yaml',
             ('sim', 'real')),
        _arg('use_sim_time', 'auto', 'use the simulation clock (/clock from the sim driver); '
             'auto = true with backend:=sim', ('auto', 'true', 'false'), 'bool'),
        _arg('params_file', '', 'YAML parameter file applied to every node after the '
             'package files (node-name keys or /**); empty = none', kind='path'),
        _arg('log_level', 'info', 'log level of every node',
             ('debug', 'info', 'warn', 'error', 'fatal')),
        _arg('autostart', 'true', 'configure and activate the managed nodes once they are up; '
             'false = wait for a ManageGraph STARTUP call', kind='bool'),
    )
    if rviz is not None:
        arguments += (_arg('rviz', rviz, 'start rviz2 (full ROS 2 installs only)',
                           kind='bool'),)
    return arguments


HUMAN = _arg('human', 'auto', 'who gives interventions and demos: oracle (scripted, sim only), '
             'gamepad (SDL2 gamepad_node), joy (joy_node, full ROS 2 installs only), '
             'leader_arm (SO-101 leader arm; the gamepad gives takeover and episode events); '
             'auto = oracle with backend:=sim, gamepad otherwise',
             ('auto', 'oracle', 'gamepad', 'joy', 'leader_arm'))
ACTOR_MODE = _arg('actor_mode', 'train', 'actor mode: train (policy with interventions, '
                  'transitions to the learner) or eval (policy only, no learning)',
                  ('train', 'eval'))

# --- nodes -----------------------------------------------------------------------------
ORACLE_HUMAN = (When({'human': ('oracle',)}), When({'human': ('auto',), 'backend': ('sim',)}))
GAMEPAD_HUMAN = (When({'human': ('gamepad',)}),
                 When({'human': ('auto',), 'backend': ('real',)}))
JOY_HUMAN = (When({'human': ('joy',)}),)
LEADER_HUMAN = (When({'human': ('leader_arm',)}),)
TELEOP_HUMAN = GAMEPAD_HUMAN + JOY_HUMAN + LEADER_HUMAN
REAL_ROBOT = (When({'backend': ('real',)}),)

DRIVER = NodeSpec('so101_driver', 'driver_node', 'so101_driver',
                  parameter_files=('config/so101_driver.yaml',),
                  parameters={'backend': Arg('backend')}, managed=True, robot_overlay=True)
CAMERAS = tuple(NodeSpec('so101_driver', 'camera_node', f'camera_{name}',
                         parameter_files=('config/cameras.yaml',), managed=True, when=REAL_ROBOT)
                for name in ('front', 'wrist'))
# Backend-specific values (effort unit, privileged state) come after the node's own file.
BACKEND_OVERLAY = 'config/backend/{backend}.yaml'
SAFETY = NodeSpec('hilserl_safety', 'safety_filter_node', 'safety_filter',
                  parameter_files=('config/safety_filter.yaml', BACKEND_OVERLAY), managed=True,
                  robot_overlay=True)
LEARNER = NodeSpec('hilserl_learner', 'learner_node', 'learner',
                   parameter_files=('config/learner.yaml', BACKEND_OVERLAY),
                   remappings=(('~/stats', '/hilserl/learner_stats'),), managed=True)
LEADER_ARM = NodeSpec('hilserl_actor', 'leader_arm_node', 'leader_arm',
                      parameter_files=('config/leader_arm.yaml',), managed=True,
                      when=LEADER_HUMAN)
TELEOP = NodeSpec('hilserl_actor', 'teleop_node', 'teleop',
                  parameter_files=('config/teleop.yaml',), managed=True, when=TELEOP_HUMAN)
GAMEPAD = NodeSpec('hilserl_actor', 'gamepad_node', 'gamepad',
                   parameter_files=('config/gamepad.yaml',), when=GAMEPAD_HUMAN + LEADER_HUMAN)
JOY = NodeSpec('joy', 'joy_node', 'joy_node', parameter_files=('config/joy.yaml',),
               full_ros_only=True, when=JOY_HUMAN)
DEMO_RECORDER = NodeSpec('hilserl_actor', 'demo_recorder_node', 'demo_recorder',
                         parameter_files=('config/demo_recorder.yaml',),
                         parameters={'output_dir': Arg('output_dir'), 'task': Arg('task'),
                                     'max_episodes': Arg('episodes'),
                                     'crop_config': Arg('crop_config'),
                                     # asked for an orderly SHUTDOWN when the session is done
                                     'graph_manager': 'lifecycle_manager'},
                         managed=True)
RECORDING = (
    _arg('output_dir', 'demos', 'directory of the episode bags (episode_NNNN/, session.yaml); '
         'relative to the working directory; existing episodes are kept'),
    _arg('task', 'pick_lift_cube', 'task name stored with every episode'),
    _arg('episodes', '0', 'stop the graph after this many finished (success or failure) '
         'episodes; 0 = until Ctrl-C', kind='int'),
    _arg('crop_config', '', 'ROI crop config file the actor uses (stored with every episode); '
         "'' = none", kind='path'),
)
ROBOT_STATE_PUBLISHER = NodeSpec(
    'robot_state_publisher', 'robot_state_publisher', 'robot_state_publisher',
    parameters={'robot_description': ROBOT_DESCRIPTION},
    # The driver owns /robot_description; keep robot_state_publisher's copy off that topic.
    remappings=(('robot_description', 'robot_state_publisher/robot_description'),),
    full_ros_only=True, required=False)
RVIZ = NodeSpec('rviz2', 'rviz2', 'rviz2', arguments=('-d', '{share_dir}/rviz/so101.rviz'),
                full_ros_only=True, required=False, when=(When({'rviz': ('true',)}),))


def actor(mode) -> NodeSpec:
    """The actor node in ``mode`` ('demo', or Arg('actor_mode'))."""
    return NodeSpec('hilserl_actor', 'actor_node', 'actor', parameter_files=('config/actor.yaml',),
                    parameters={'mode': mode}, managed=True, robot_overlay=True)


def oracle(mode: str) -> NodeSpec:
    """The scripted oracle (simulation) in ``mode``.

    'demo' drives every episode; 'intervene' takes over from the policy when it drifts or stalls.
    """
    return NodeSpec('hilserl_actor', 'oracle_node', 'oracle',
                    parameter_files=('config/oracle.yaml',), parameters={'mode': mode},
                    managed=True, robot_overlay=True, when=ORACLE_HUMAN)


def human_input(oracle_mode: str) -> tuple[NodeSpec, ...]:
    """Who stands in for the human (chosen by the human argument)."""
    return (oracle(oracle_mode), LEADER_ARM, TELEOP, GAMEPAD, JOY)


def lifecycle_manager(name: str = 'lifecycle_manager') -> NodeSpec:
    """The graph's lifecycle manager; its node_names are the graph's managed nodes."""
    return NodeSpec('hilserl_bringup', 'lifecycle_manager', name,
                    parameter_files=('config/lifecycle_manager.yaml',),
                    parameters={'node_names': MANAGED_NODE_NAMES, 'autostart': Arg('autostart')},
                    use_sim_time=False, stop_first=True)


# --- graphs ----------------------------------------------------------------------------
# Managed nodes come up in list order: driver (joint states, /clock), cameras, safety filter
# (needs joint states), learner (serves weights before the actor asks), actor, then the
# human input and the recorder. Down transitions run in reverse: human input and actor stop
# commanding first, the driver holds the arm last.
GRAPHS: dict[str, GraphSpec] = {g.name: g for g in (
    # Until the actor's policy mode lands (the actor issue), the main job runs the whole
    # training graph with the actor in demo mode: the oracle (or a person) drives every
    # episode and the learner trains SAC + RLPD on the streamed transitions and serves
    # weight versions that no actor loads yet.
    GraphSpec('sim', 'main job: HIL-SERL training on the simulated SO-101 (MuJoCo), with the '
              'scripted oracle standing in for the human (for now: the oracle drives every '
              'episode, the learner trains on the stream)',
              common_arguments('sim', rviz='true') + (HUMAN,),
              (DRIVER, *CAMERAS, SAFETY, LEARNER, actor('demo'), *human_input('demo'),
               lifecycle_manager(), ROBOT_STATE_PUBLISHER, RVIZ)),
    GraphSpec('real', 'HIL-SERL training on the real SO-101: cameras, safety filter, actor, '
              'learner and gamepad/joystick teleoperation',
              common_arguments('real', rviz='true') + (HUMAN, ACTOR_MODE),
              (DRIVER, *CAMERAS, SAFETY, LEARNER, actor(Arg('actor_mode')),
               *human_input('intervene'), lifecycle_manager(), ROBOT_STATE_PUBLISHER, RVIZ)),
    GraphSpec('record_demos', 'record demonstrations (one MCAP bag per episode) from the '
              'oracle in simulation or a human with a gamepad/joystick',
              common_arguments('sim', rviz='true') + (HUMAN,) + RECORDING,
              (DRIVER, *CAMERAS, SAFETY, actor('demo'), *human_input('demo'), DEMO_RECORDER,
               lifecycle_manager(), ROBOT_STATE_PUBLISHER, RVIZ)),
    GraphSpec('learner_only', 'the learner alone (GPU box / learner container); pairs with '
              'actor_only over DDS',
              common_arguments('sim'),
              (LEARNER, lifecycle_manager('lifecycle_manager_learner'))),
    GraphSpec('actor_only', 'robot side without the learner (robot PC / actor container): '
              'driver, cameras, safety filter, actor and human input; pairs with learner_only',
              common_arguments('sim', rviz='false') + (HUMAN, ACTOR_MODE),
              (DRIVER, *CAMERAS, SAFETY, actor(Arg('actor_mode')), *human_input('intervene'),
               lifecycle_manager(), ROBOT_STATE_PUBLISHER, RVIZ)),
    GraphSpec('driver_only', 'bring-up check: driver (and cameras on the real robot) and the '
              'safety filter',
              common_arguments('sim', rviz='true'),
              (DRIVER, *CAMERAS, SAFETY, lifecycle_manager(), ROBOT_STATE_PUBLISHER, RVIZ)),
)}


def graph(name: str) -> GraphSpec:
    """The graph called ``name``; GraphSpecError listing the known graphs otherwise."""
    try:
        return GRAPHS[name]
    except KeyError:
        raise GraphSpecError(f'no graph {name!r}; graphs: {", ".join(GRAPHS)}') from None
