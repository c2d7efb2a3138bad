"""config/fastdds.xml between real processes: pub/sub works, and UDPv4 is kept beside SHM.

The 10 MB weight-fetch timing is a benchmark (benchmarks/weights_transport.py), not a test.
The UDP check runs in a private network namespace (only a loopback interface), so that
subnet discovery can be used without any packet leaving the machine.
"""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from hilserl_testing.processes import wait_until

pytestmark = pytest.mark.ros

HERE = pathlib.Path(__file__).resolve().parent
PEER = HERE / 'dds_peer.py'
PROFILE = HERE.parent / 'config' / 'fastdds.xml'
SINGLE_TRANSPORT = """<?xml version="1.0" encoding="UTF-8" ?>
<dds xmlns="http://www.eprosima.com"><profiles>
  <transport_descriptors><transport_descriptor>
    <transport_id>only</transport_id><type>{kind}</type>
  </transport_descriptor></transport_descriptors>
  <participant profile_name="only_{kind}" is_default_profile="true"><rtps>
    <userTransports><transport_id>only</transport_id></userTransports>
    <useBuiltinTransports>false</useBuiltinTransports>
  </rtps></participant>
</profiles></dds>
"""
# talker and listener in one private network namespace; exit code = the listener's
NETNS_PAIR = """
ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo || exit 90
export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET
FASTDDS_DEFAULT_PROFILES_FILE="$1" "$PYTHON" "$PEER" talker /netns_test &
talker=$!
FASTDDS_DEFAULT_PROFILES_FILE="$2" "$PYTHON" "$PEER" listener /netns_test 5 "$3"
code=$?
kill -INT $talker
wait $talker
exit $code
"""


def env_with(profile):
    return dict(os.environ, FASTDDS_DEFAULT_PROFILES_FILE=str(profile))


def single_transport_profile(tmp_path, kind):
    path = tmp_path / f'only_{kind}.xml'
    path.write_text(SINGLE_TRANSPORT.format(kind=kind))
    return path


def test_profile_peers_exchange_messages_on_localhost(ros_processes):
    ros_processes.start('talker', [sys.executable, PEER, 'talker', '/profile_test'],
                        env=env_with(PROFILE))
    listener = ros_processes.start('listener', [sys.executable, PEER, 'listener',
                                                '/profile_test', 5, 30], env=env_with(PROFILE))
    wait_until(lambda: not listener.is_running(), 60, 'listener exit')
    assert listener.process.returncode == 0, listener.output()


def netns_pair(tmp_path, talker_profile, listener_profile, timeout_s):
    script = tmp_path / 'netns_pair.sh'
    script.write_text(NETNS_PAIR)
    env = dict(os.environ, PYTHON=sys.executable, PEER=str(PEER))
    done = subprocess.run(['unshare', '-rn', 'sh', str(script), str(talker_profile),
                           str(listener_profile), str(timeout_s)], env=env,
                          capture_output=True, text=True, timeout=timeout_s + 60)
    return done.returncode, done.stdout + done.stderr


def test_profile_keeps_udp_for_other_hosts(tmp_path, ros_domain):
    if shutil.which('unshare') is None or shutil.which('ip') is None or subprocess.run(
            ['unshare', '-rn', 'ip', 'link', 'set', 'lo', 'up'], capture_output=True).returncode:
        pytest.skip('needs unshare -rn and ip (a private network namespace) for subnet '
                    'discovery without network traffic')
    udp_only = single_transport_profile(tmp_path, 'UDPv4')
    shm_only = single_transport_profile(tmp_path, 'SHM')
    code, output = netns_pair(tmp_path, udp_only, PROFILE, 30)
    assert code == 0, f'profile listener did not hear a UDP-only talker:\n{output}'
    code, output = netns_pair(tmp_path, PROFILE, udp_only, 30)
    assert code == 0, f'UDP-only listener did not hear a profile talker:\n{output}'
    # control: without UDP nothing is heard, so the checks above went over UDPv4
    code, output = netns_pair(tmp_path, udp_only, shm_only, 4)
    assert code == 1, output
