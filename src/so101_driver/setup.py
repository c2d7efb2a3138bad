import pathlib

from setuptools import find_packages, setup

PACKAGE = 'so101_driver'


def share_tree(*folders):
    """data_files entries installing every file under folders into share/<package>/."""
    entries = {}
    for folder in folders:
        for path in sorted(pathlib.Path(folder).rglob('*')):
            if path.is_file() and '__pycache__' not in path.parts:
                entries.setdefault(f'share/{PACKAGE}/{path.parent}', []).append(str(path))
    return list(entries.items())


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml', 'README.md']),
        *share_tree('config', 'launch'),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='HIL-SERL SO-101 maintainers',
    maintainer_email='hilserl@example.org',
    description='See README.md',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'driver_node = so101_driver.nodes.driver_node:main',
            'camera_node = so101_driver.nodes.camera_node:main',
            'virtual_bus = so101_driver.feetech.virtual_bus:main',
            'calibrate = so101_driver.feetech.calibrate_cli:main',
        ],
    },
)
