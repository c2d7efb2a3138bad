import pathlib

from setuptools import find_packages, setup

PACKAGE = 'hilserl_learner'


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
            'learner_node = hilserl_learner.nodes.learner_node:main',
            'load_demos = hilserl_learner.load_demos:main',
            'train_reward_classifier = hilserl_learner.train_reward_classifier:main',
        ],
    },
)
