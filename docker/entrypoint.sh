#!/bin/bash
# Container entry point: source ROS and the workspace, then
#   ros2 launch hilserl_bringup "$LAUNCH_FILE" [name:=value ...]
# Anything that is not a name:=value argument runs as a command instead (e.g. bash).
set -e
# shellcheck disable=SC1090,SC1091
source "/opt/ros/${ROS_DISTRO}/setup.bash"
# shellcheck disable=SC1091
source /ws/install/setup.bash
if [ "$#" -gt 0 ] && [[ "$1" != *:=* ]]; then
  exec "$@"
fi
exec ros2 launch hilserl_bringup "${LAUNCH_FILE:-sim.launch.py}" "$@"
