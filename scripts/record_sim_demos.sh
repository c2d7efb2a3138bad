#!/usr/bin/env bash
# Record simulated demonstrations with the scripted oracle, one rosbag2 (MCAP) per episode:
# sets up the workspace (scripts/setup.sh; fast when nothing changed), then runs the
# record_demos graph (sim driver, safety filter, actor in demo mode, oracle, demo recorder)
# until EPISODES episodes are finished (success or failure; re-records do not count).
#   bash scripts/record_sim_demos.sh                       15 episodes into bags/sim_demos
#   bash scripts/record_sim_demos.sh 30 bags/pick_run2     30 episodes into bags/pick_run2
#   bash scripts/record_sim_demos.sh 15 bags/sim_demos log_level:=debug   more graph arguments
# Existing episodes in the output directory are kept (numbering continues). Ctrl-C stops
# early; the episode being recorded is kept, labelled interrupted. Then load them (after
# source scripts/ros_env.sh; ros2 run hilserl_learner load_demos on a full ROS 2 install):
#   install/hilserl_learner/lib/hilserl_learner/load_demos bags/sim_demos --output bags/sim_demo_buffer
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EPISODES=${1:-15}
OUTPUT=${2:-bags/sim_demos}
shift $(( $# < 2 ? $# : 2 ))
case "$EPISODES" in
  ''|*[!0-9]*) echo "record_sim_demos.sh: EPISODES must be a whole number, got '$EPISODES'" >&2; exit 2 ;;
esac
cd "$ROOT"
bash scripts/setup.sh
set +u
# shellcheck disable=SC1091
source scripts/ros_env.sh
set -u
mkdir -p "$OUTPUT"
OUTPUT=$(cd "$OUTPUT" && pwd)
"$ROOT/install/hilserl_bringup/lib/hilserl_bringup/run_graph" record_demos backend:=sim \
  human:=oracle rviz:=false episodes:="$EPISODES" output_dir:="$OUTPUT" "$@"
echo "[record_sim_demos] episodes in $OUTPUT (index: $OUTPUT/session.yaml); load them with:"
echo "  source scripts/ros_env.sh && install/hilserl_learner/lib/hilserl_learner/load_demos $OUTPUT --output ${OUTPUT}_buffer"
