"""hilserl_msgs across real processes: large transitions and weight blobs arrive intact."""
import hashlib
import pathlib
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

PEERS = pathlib.Path(__file__).parent / 'peers' / 'interface_peers.py'


def test_transition_with_two_images_arrives_intact(ros_client, ros_processes):
    from hilserl_msgs.msg import Transition
    from hilserl_testing.client import KEEP_ALL

    spec = _peers()
    count = 20
    log = ros_client.subscribe(Transition, '/hilserl/transitions', KEEP_ALL)
    ros_processes.start('transition_publisher', [sys.executable, PEERS, 'transitions', count])
    ros_client.spin_until(lambda: len(log) >= count, 30, f'{count} transitions')

    assert [m.step_index for m in log.messages] == list(range(count))
    for message in log.messages:
        step = message.step_index
        for obs, obs_step in ((message.observation, step), (message.next_observation, step + 1)):
            assert list(obs.camera_names) == ['front', 'wrist']
            for image, expected in zip(obs.images, spec.frames(obs_step), strict=True):
                assert (image.height, image.width, image.encoding) == (128, 128, 'rgb8')
                received = np.frombuffer(image.data, np.uint8).reshape(128, 128, 3)
                np.testing.assert_array_equal(received, expected)
            np.testing.assert_allclose(obs.state, [obs_step + i / 10 for i in range(6)], rtol=1e-6)
            np.testing.assert_allclose(obs.privileged_state, [0.2, -0.1, 0.015], rtol=1e-6)
        assert message.episode_id == 7
        assert message.is_intervention == (step % 2 == 1)
        assert message.terminated == (step == count - 1) and not message.truncated
        np.testing.assert_allclose(message.action, [0.1 * step, -0.5, 1.0, 1.0], rtol=1e-6)
    assert ros_processes.stop_all() == {'transition_publisher': 0}


def test_policy_weights_blob_of_10_mb_and_empty_when_current(ros_client, ros_processes):
    from hilserl_msgs.srv import GetPolicyWeights

    size = 10 * 1024 * 1024
    ros_processes.start('weights_server', [sys.executable, PEERS, 'weights', size])
    expected = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()

    started = time.monotonic()
    fresh = ros_client.call(GetPolicyWeights, '/hilserl/get_policy_weights',
                            GetPolicyWeights.Request(current_version=0), timeout_s=30)
    fetch_s = time.monotonic() - started
    assert fresh.ready and fresh.version == 3 and fresh.format == 'test-blob-v1'
    payload = bytes(fresh.weights)
    assert len(payload) == size
    assert payload == expected
    assert hashlib.sha256(payload).hexdigest() == fresh.checksum

    current = ros_client.call(GetPolicyWeights, '/hilserl/get_policy_weights',
                              GetPolicyWeights.Request(current_version=3), timeout_s=10)
    assert current.ready and current.version == 3 and len(current.weights) == 0
    assert current.checksum == fresh.checksum
    print(f'10 MB GetPolicyWeights fetch: {fetch_s * 1e3:.0f} ms (first call, with discovery)')
    assert ros_processes.stop_all() == {'weights_server': 0}


def _peers():
    import importlib.util

    spec = importlib.util.spec_from_file_location('interface_peers', PEERS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
