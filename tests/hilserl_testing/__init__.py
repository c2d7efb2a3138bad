"""Shared harness for the workspace's ROS tests: isolated DDS domains, node processes, clients.

Cross-process tests start the real node executables that colcon installed (the same graph the
launch files start), talk to them only through topics, services and lifecycle states, and check
their exit codes. Every test module gets a DDS domain id of its own, leased machine-wide, so
parallel test runs (and parallel checkouts) cannot cross-talk.
"""
