"""The house rule: only a package's thin ROS layer (its nodes/ folder) may import ROS.

Everything else is a ROS-free core (numpy/torch/dataclasses) that unit-tests without rclpy.
"""
import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / 'src'
ROS_MODULES = {'rclpy', 'rosidl_runtime_py', 'rosidl_parser', 'launch', 'launch_ros',
               'launch_testing', 'message_filters', 'tf2_ros', 'cv_bridge', 'rosbag2_py',
               'builtin_interfaces', 'rosgraph_msgs'}
THIN_LAYER = 'nodes'


def is_ros_module(name: str) -> bool:
    top = name.split('.')[0]
    return top in ROS_MODULES or top.endswith(('_msgs', '_srvs', '_interfaces'))


def package_modules():
    for package_dir in sorted(p for p in SRC.iterdir() if (p / 'package.xml').is_file()):
        python_dir = package_dir / package_dir.name
        if python_dir.is_dir():
            yield from sorted(python_dir.rglob('*.py'))


def ros_imports(path: pathlib.Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if is_ros_module(alias.name)]
        elif (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and is_ros_module(node.module)):
            found.append(node.module)
    return found


def test_every_python_package_is_checked():
    modules = list(package_modules())
    assert len(modules) >= 5, 'the layering test found no package modules: is SRC right?'


@pytest.mark.parametrize('path', list(package_modules()),
                         ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_thin_ros_layer_imports_ros(path):
    inside_thin_layer = THIN_LAYER in path.relative_to(SRC).parts[2:-1]
    if inside_thin_layer:
        return
    assert ros_imports(path) == [], (
        f'{path.relative_to(SRC)} imports ROS; move that code into nodes/ '
        '(nodes/conversions.py maps messages to core types)')


def test_the_check_detects_ros_imports(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('import rclpy\nfrom sensor_msgs.msg import Image\n'
                   'from std_srvs.srv import Trigger\nimport numpy\nfrom .nodes import x\n')
    assert ros_imports(bad) == ['rclpy', 'sensor_msgs.msg', 'std_srvs.srv']
