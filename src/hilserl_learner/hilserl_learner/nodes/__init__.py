"""Thin rclpy layer of the learner (the only place that imports ROS).

Before torch loads its OpenMP runtime, ask it to wait passively: with spinning workers
(OpenMP's default) a 2-thread learner sharing a busy machine with the simulator, the actor and
other nodes ran state-only updates 1.6x slower than with passive waiting in our measurements
(benchmarks/learner_throughput.py). A value set by the user wins.
"""
import os

os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
