"""Time a GetPolicyWeights fetch between two processes, with and without the Fast DDS profile.

    python benchmarks/weights_transport.py [--size-mb 10] [--calls 20] [--rounds 2]
                                          [--profile src/hilserl_bringup/config/fastdds.xml]

For each round and configuration (Fast DDS defaults, then FASTDDS_DEFAULT_PROFILES_FILE set to
the profile) it starts a weights server process and a client process, both with that
environment, and times ``call_async`` -> response for ``--calls`` calls after one warm-up
call whose payload is checked (sha256). Prints p50 / p90 / min / max per configuration.
Run it from a shell with the workspace sourced (source scripts/ros_env.sh); it keeps
ROS_AUTOMATIC_DISCOVERY_RANGE as given (LOCALHOST there) and leases its own domain id.
"""
import argparse
import array
import hashlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_PROFILE = ROOT / 'src' / 'hilserl_bringup' / 'config' / 'fastdds.xml'
SERVICE = '/hilserl/get_policy_weights'


def payload(size: int) -> bytes:
    import numpy as np

    return np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()


def serve(size: int) -> None:
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from hilserl_msgs.srv import GetPolicyWeights

    data = payload(size)
    cached = array.array('B', data)
    checksum = hashlib.sha256(data).hexdigest()

    def handle(request, response):
        response.ready, response.version, response.format = True, 1, 'benchmark-blob'
        response.checksum = checksum
        if request.current_version != 1:
            response.weights = cached
        return response

    rclpy.init()
    node = rclpy.create_node('weights_benchmark_server')
    node.create_service(GetPolicyWeights, SERVICE, handle)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def client(size: int, calls: int) -> None:
    import rclpy

    from hilserl_msgs.srv import GetPolicyWeights

    rclpy.init()
    node = rclpy.create_node('weights_benchmark_client')
    cli = node.create_client(GetPolicyWeights, SERVICE)
    if not cli.wait_for_service(timeout_sec=30.0):
        raise SystemExit('weights server did not appear within 30 s')

    def fetch():
        started = time.perf_counter()
        future = cli.call_async(GetPolicyWeights.Request(current_version=0))
        rclpy.spin_until_future_complete(node, future, timeout_sec=30.0)
        if not future.done():
            raise SystemExit('no response within 30 s')
        return future.result(), (time.perf_counter() - started) * 1e3

    first, _ = fetch()
    data = bytes(first.weights)
    ok = len(data) == size and hashlib.sha256(data).hexdigest() == first.checksum
    times_ms = [fetch()[1] for _ in range(calls)]
    print(json.dumps({'ok': ok, 'ms': times_ms}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def measure(size: int, calls: int, profile: pathlib.Path | None, env: dict) -> dict:
    env = dict(env)
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    if profile is not None:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(profile)
    me = [sys.executable, __file__]
    server = subprocess.Popen([*me, '--serve', str(size)], env=env)
    try:
        done = subprocess.run([*me, '--client', str(size), '--calls', str(calls)], env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    if done.returncode != 0:
        raise SystemExit(f'client failed ({done.returncode}): {done.stderr[-2000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def percentile(values, q):
    return statistics.quantiles(values, n=100, method='inclusive')[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mb', type=float, default=10.0)
    parser.add_argument('--calls', type=int, default=20)
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--profile', type=pathlib.Path, default=DEFAULT_PROFILE)
    parser.add_argument('--serve', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--client', type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return serve(args.serve)
    if args.client is not None:
        return client(args.client, args.calls)

    sys.path.insert(0, str(ROOT / 'tests'))
    from hilserl_testing.domains import DomainLease

    lease = DomainLease()
    env = dict(os.environ, ROS_DOMAIN_ID=str(lease.domain_id))
    size = int(args.size_mb * 1024 * 1024)
    print(f'GetPolicyWeights, {size} byte payload, {args.calls} calls per run, '
          f'ROS_AUTOMATIC_DISCOVERY_RANGE={env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "(unset)")}')
    results = {'Fast DDS defaults': [], f'profile {args.profile.name}': []}
    for _ in range(args.rounds):
        for label, profile in zip(results, (None, args.profile.resolve())):
            run = measure(size, args.calls, profile, env)
            if not run['ok']:
                raise SystemExit(f'{label}: payload corrupted')
            results[label] += run['ms']
    for label, times in results.items():
        print(f'{label:>28}: p50 {percentile(times, 50):7.1f} ms   p90 '
              f'{percentile(times, 90):7.1f} ms   min {min(times):6.1f}   max {max(times):6.1f}'
              f'   (n={len(times)})')
    lease.release()


if __name__ == '__main__':
    main()
