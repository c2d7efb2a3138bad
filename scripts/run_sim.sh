#!/usr/bin/env bash
# The main job on a fresh machine: set up the workspace (scripts/setup.sh; idempotent, fast
# when nothing changed), then run the simulated HIL-SERL training graph with the launch-less
# runner. Extra arguments go to run_graph:
#   bash scripts/run_sim.sh                        the sim graph with its defaults
#   bash scripts/run_sim.sh human:=gamepad log_level:=debug
#   bash scripts/run_sim.sh --dry-run              print the node command lines only
#   bash scripts/run_sim.sh --allow-missing        start only the nodes that are installed
# Ctrl-C stops the graph: the lifecycle manager first brings the managed nodes down.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
set +u
# shellcheck disable=SC1091
source scripts/ros_env.sh
set -u
exec "$ROOT/install/hilserl_bringup/lib/hilserl_bringup/run_graph" sim "$@"
