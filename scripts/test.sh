#!/usr/bin/env bash
# Set up the workspace if needed (scripts/setup.sh is idempotent), then run the whole test
# suite: ruff, unit tests and cross-process ROS tests. Extra arguments go to pytest, e.g.
#   scripts/test.sh -k safety -x
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
set +u
# shellcheck disable=SC1091
source scripts/ros_env.sh
set -u
export HILSERL_REQUIRE_ROS=1 PYTHONUNBUFFERED=1
echo "[test] ruff check"
ruff check .
echo "[test] pytest"
exec python -m pytest "$@"
