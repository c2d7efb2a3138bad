"""pytest fixtures of the ROS test harness (imported by the workspace conftest.py)."""
import os

import pytest

from hilserl_testing.domains import DomainLease
from hilserl_testing.processes import ProcessGroup


@pytest.fixture(scope='module')
def ros_domain():
    """A DDS domain id of this test module's own; child processes inherit it."""
    lease = DomainLease()
    previous = os.environ.get('ROS_DOMAIN_ID')
    os.environ['ROS_DOMAIN_ID'] = str(lease.domain_id)
    try:
        yield lease.domain_id
    finally:
        if previous is None:
            os.environ.pop('ROS_DOMAIN_ID', None)
        else:
            os.environ['ROS_DOMAIN_ID'] = previous
        lease.release()


@pytest.fixture(scope='module')
def ros_client(ros_domain):
    """An rclpy client node in the module's domain."""
    from hilserl_testing.client import RosTestClient

    client = RosTestClient(ros_domain, name='test_client')
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def ros_processes(ros_domain, tmp_path, request):
    """Start node processes; all are stopped after the test, and their logs shown on failure."""
    group = ProcessGroup(tmp_path / 'process_logs')
    yield group
    group.stop_all()
    report = getattr(request.node, 'rep_call', None)
    if report is not None and report.failed:
        print('\n' + group.logs())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item so fixtures can tell a failed test."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f'rep_{report.when}', report)
