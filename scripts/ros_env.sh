# Source this file (bash) to use the workspace built by scripts/setup.sh in this shell:
#   source scripts/ros_env.sh                 the venv's ROS 2 + this workspace's packages
#   source scripts/ros_env.sh --no-workspace  the venv's ROS 2 only (used by the build)
# On a machine with ROS 2 installed from apt, source /opt/ros/<distro>/setup.bash and
# install/setup.bash instead (see README.md).
_hilserl_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ ! -x "$_hilserl_root/.venv/bin/python" ]; then
  echo "ros_env.sh: $_hilserl_root/.venv is missing: run scripts/setup.sh first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_hilserl_root/.venv/bin/activate"
# The venv is the ROS underlay (scripts/setup.sh gives it colcon local_setup files).
# shellcheck disable=SC1091
source "$VIRTUAL_ENV/local_setup.bash"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# Keep DDS discovery on this host unless the user asks for more (multi-machine setups).
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-0}
# Fast DDS: a 64 MiB shared-memory segment for the 1-10 MB policy-weight fetches (10 MB: about
# 100 -> 30-50 ms p50 here, benchmarks/weights_transport.py); UDPv4 kept for multi-host graphs.
# Tested with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (src/hilserl_bringup/test/
# test_fastdds_profile_ros.py). A profile the user exported wins; =none turns it off. Not
# used where /dev/shm is small (containers default to 64 MB; segments are 64 MiB each).
if [ "${FASTDDS_DEFAULT_PROFILES_FILE:-}" = none ]; then
  unset FASTDDS_DEFAULT_PROFILES_FILE
elif [ -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}" ] \
     && [ -f "$_hilserl_root/src/hilserl_bringup/config/fastdds.xml" ] \
     && [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')" -ge 1048576 ] 2>/dev/null; then
  export FASTDDS_DEFAULT_PROFILES_FILE="$_hilserl_root/src/hilserl_bringup/config/fastdds.xml"
fi
# MuJoCo offscreen rendering without a display.
export MUJOCO_GL=${MUJOCO_GL:-egl}
export PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-$MUJOCO_GL}
if [ "${1:-}" != "--no-workspace" ]; then
  if [ -f "$_hilserl_root/install/setup.bash" ]; then
    # shellcheck disable=SC1091
    source "$_hilserl_root/install/setup.bash"
  else
    echo "ros_env.sh: $_hilserl_root/install is missing: run scripts/setup.sh first" >&2
  fi
fi
unset _hilserl_root
