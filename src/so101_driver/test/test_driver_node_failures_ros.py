"""The driver node refuses bad configurations with the reason and keeps running."""
import pytest

pytestmark = pytest.mark.ros

NODE = '/so101_driver'


@pytest.mark.parametrize('parameters, reason', [
    ({'control_rate_hz': -5.0}, 'control_rate_hz'),
    ({'command_timeout_s': 'soon'}, 'command_timeout_s'),
    ({'backend': 'real', 'port': '/dev/does-not-exist-so101'}, 'real backend'),
])
def test_bad_configuration_fails_configure_with_the_reason(ros_client, ros_processes,
                                                           parameters, reason):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    diagnostics = ros_client.subscribe(DiagnosticArray, '/diagnostics')
    ros_processes.start_node('so101_driver', 'driver_node', parameters=parameters)
    assert ros_client.lifecycle_state(NODE, timeout_s=20) == 'unconfigured'
    assert not ros_client.lifecycle_transition(NODE, 'configure', timeout_s=30)
    assert ros_client.lifecycle_state(NODE) == 'unconfigured'
    status = ros_client.spin_until(
        lambda: next((m.status[0] for m in diagnostics.messages
                      if 'configure failed' in m.status[0].message), None), 5,
        'the configure failure on /diagnostics')
    assert status.level == DiagnosticStatus.ERROR and reason in status.message
    diagnostics.clear()
    assert ros_processes.stop_all() == {'driver_node': 0}
