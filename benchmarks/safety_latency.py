"""Latency the safety filter adds per command: the ROS-free core (IK included) and, with
--node, end to end through the installed safety_filter_node (command published -> joint target
received, across two processes).

    source scripts/ros_env.sh
    python benchmarks/safety_latency.py              # core only
    python benchmarks/safety_latency.py --node       # core + end to end

Target: core p99 <= 1 ms on 2 cores. Wall-clock percentiles include preemption by whatever
else runs on the machine (the load average is printed); CPU time (time.thread_time) is the
filter's own processing cost.
"""
import argparse
import os
import pathlib
import sys
import time

import numpy as np

from hilserl_safety.filter import CommandFilter, EeCommand, Gripper, JointCommand, Source
from hilserl_safety.limits import effective_limits, urdf_joint_limits
from hilserl_safety.params import SafetyFilterParams
from hilserl_safety.supervisor import SafetySupervisor

HOME = np.array([-6.1e-05, -0.15178, 0.51356, 1.20902, 0.0, 0.5])  # TCP (0.20, 0, 0.03), down
PERIOD_S = 0.1


def make_supervisor(**overrides):
    from so101_driver.kinematics import So101Kinematics
    from so101_driver.model_files import official_model_files

    params = SafetyFilterParams(**overrides)
    urdf = urdf_joint_limits(official_model_files().urdf, params.joint_names)
    supervisor = SafetySupervisor(CommandFilter(params, effective_limits(params, *urdf),
                                                So101Kinematics()))
    supervisor.activate(0.0)
    supervisor.on_joint_state(HOME, np.zeros(6), 0.0)
    return supervisor


def ee_stream(rng, count):
    """Policy-like actions: uniform in [-1, 1] * 2.5 cm, a tenth of them pushing 10 cm out."""
    for index in range(count):
        delta = rng.uniform(-1.0, 1.0, 3) * 0.025
        if index % 10 == 0:
            delta = rng.normal(size=3) * 0.1
        yield EeCommand(delta, int(rng.integers(0, 3)), 0.0, Source.HUMAN)


def percentiles(samples_s):
    ms = np.asarray(samples_s) * 1e3
    return (f'p50 {np.percentile(ms, 50):.3f} ms  p99 {np.percentile(ms, 99):.3f} ms  '
            f'max {ms.max():.3f} ms  mean {ms.mean():.3f} ms  (n={ms.size})')


def timed(function, *args):
    """(result, wall seconds, CPU seconds of this thread)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.thread_time() - cpu


def bench_core(count, **overrides):
    rng = np.random.default_rng(0)
    supervisor = make_supervisor(**overrides)
    now = 0.0
    ee, joint = [], []
    for command in ee_stream(rng, count + 200):
        now += PERIOD_S
        supervisor.on_joint_state(supervisor.target, np.zeros(6), now)
        output, wall, cpu = timed(supervisor.on_ee_command, command, now)
        ee.append((wall, cpu))
        assert output.target is not None
    leader = HOME.copy()
    for _ in range(count + 200):
        now += PERIOD_S
        leader = np.clip(leader + rng.normal(scale=0.05, size=6), -1.5, 1.5)
        supervisor.on_joint_state(supervisor.target, np.zeros(6), now)
        command = JointCommand(SafetyFilterParams().joint_names, tuple(leader), Source.HUMAN)
        _, wall, cpu = timed(supervisor.on_joint_command, command, now)
        joint.append((wall, cpu))
    ee, joint = np.array(ee[200:]), np.array(joint[200:])
    print(f'core, end-effector command (IK), wall: {percentiles(ee[:, 0])}')
    print(f'core, end-effector command (IK), CPU:  {percentiles(ee[:, 1])}')
    print(f'core, joint command, wall:             {percentiles(joint[:, 0])}')
    print(f'core, joint command, CPU:              {percentiles(joint[:, 1])}')
    return ee


def bench_node(count):
    """Publish EE commands to a real safety_filter_node process; time until its target."""
    root = pathlib.Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / 'tests'))
    import rclpy
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from hilserl_msgs.msg import EndEffectorCommand
    from hilserl_testing.client import RosTestClient
    from hilserl_testing.domains import DomainLease
    from hilserl_testing.processes import ProcessGroup

    lease = DomainLease()
    os.environ['ROS_DOMAIN_ID'] = str(lease.domain_id)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    group = ProcessGroup(pathlib.Path('/tmp/hilserl_safety_benchmark'))
    client = RosTestClient(lease.domain_id, 'safety_benchmark')
    try:
        group.start_node('hilserl_safety', 'safety_filter_node', name='safety_filter',
                         parameters={'command_timeout_s': 5.0}, log_level='error')
        client.bring_up('/safety_filter')
        received = []
        client.node.create_subscription(
            Float64MultiArray, '/forward_position_controller/commands',
            lambda msg: received.append((time.perf_counter(), np.array(msg.data))), 10)
        states = client.publisher(JointState, '/joint_states')
        commands = client.publisher(EndEffectorCommand, '/hilserl/ee_command')
        client.wait_for_subscribers(commands)
        names = list(SafetyFilterParams().joint_names)
        position = HOME.copy()
        latencies = []
        for command in ee_stream(np.random.default_rng(1), count + 20):
            states.publish(JointState(name=names, position=position.tolist(),
                                      effort=[0.0] * 6))
            client.spin_for(0.01)
            msg = EndEffectorCommand(source=Source.HUMAN, gripper_command=Gripper.STAY)
            msg.delta_m.x, msg.delta_m.y, msg.delta_m.z = command.delta_m.tolist()
            before = len(received)
            sent = time.perf_counter()
            commands.publish(msg)
            client.spin_until(lambda: len(received) > before, 5.0, 'target')  # noqa: B023
            latencies.append(received[-1][0] - sent)
            position = received[-1][1]
            client.spin_for(0.02)
        print(f'end to end (2 processes, DDS): {percentiles(latencies[20:])}')
    finally:
        client.close()
        group.stop_all()
        lease.release()
        rclpy.try_shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--count', type=int, default=5000, help='commands per measurement')
    parser.add_argument('--node', action='store_true', help='also measure end to end')
    parser.add_argument('--node-count', type=int, default=300)
    parser.add_argument('--wall-zone-m', type=float, default=SafetyFilterParams().wall_zone_m,
                        help='slow zone along the walls (0: none); HOME lies 2 cm above the '
                             'floor, inside the default 3 cm zone')
    args = parser.parse_args()
    load = ', '.join(f'{value:.2f}' for value in os.getloadavg())
    print(f'cpus: {os.cpu_count()}, load average {load}, python {sys.version.split()[0]}, '
          f'wall_zone_m {args.wall_zone_m}')
    ee = bench_core(args.count, wall_zone_m=args.wall_zone_m)
    for label, column in (('wall', 0), ('CPU', 1)):
        p99_ms = np.percentile(ee[:, column], 99) * 1e3
        verdict = 'met' if p99_ms <= 1.0 else 'NOT met'
        print(f'target p99 <= 1 ms ({label}, EE commands): {verdict} ({p99_ms:.3f} ms)')
    if args.node:
        bench_node(args.node_count)


if __name__ == '__main__':
    main()
