#!/usr/bin/env python3
"""Point the ROS 2 PyPI wheels' CMake exports at this environment's Python and numpy headers.

The ros-* wheels are built in a manylinux container, and each message package's
``<pkg>__rosidl_generator_py`` export still names that container's include directories
(/opt/python/cp3XY-cp3XY/...). CMake refuses to configure a project that links a target
with a missing include directory, and rosidl links those targets for every message
dependency of an interface package such as hilserl_msgs. This rewrites the paths in
<prefix>/share/*/cmake/*.cmake. It is idempotent; run it after every pip install that adds
or reinstalls ros-* packages.
"""
import argparse
import pathlib
import re
import sys
import sysconfig

CONTAINER_PYTHON_INCLUDE = re.compile(r'/opt/python/cp3\d+-cp3\d+t?/include/python3\.\d+t?')
CONTAINER_NUMPY_INCLUDE = re.compile(
    r'/opt/python/cp3\d+-cp3\d+t?/lib/python3\.\d+t?/site-packages/numpy/_?core/include')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--prefix', default=sys.prefix,
                        help='prefix holding the ros-* wheels (default: this interpreter)')
    parser.add_argument('--check', action='store_true',
                        help='change nothing; exit 1 when some file still needs the fix')
    args = parser.parse_args()

    import numpy

    python_include = sysconfig.get_paths()['include']
    numpy_include = numpy.get_include()
    if not pathlib.Path(python_include, 'Python.h').is_file():
        print(f'error: Python.h not found in {python_include}: install the Python development '
              'headers (Debian/Ubuntu: python3-dev)', file=sys.stderr)
        return 2

    pending = 0
    for path in sorted(pathlib.Path(args.prefix, 'share').glob('*/cmake/*.cmake')):
        text = path.read_text()
        if '/opt/python/' not in text:
            continue
        fixed = CONTAINER_NUMPY_INCLUDE.sub(numpy_include,
                                            CONTAINER_PYTHON_INCLUDE.sub(python_include, text))
        if fixed != text:
            pending += 1
            if not args.check:
                path.write_text(fixed)
    action = 'need the fix' if args.check else 'fixed'
    print(f'{pending} CMake export file(s) {action} (python: {python_include}, '
          f'numpy: {numpy_include})')
    return 1 if args.check and pending else 0


if __name__ == '__main__':
    sys.exit(main())
