"""Machine-wide leases of ROS_DOMAIN_ID values, so concurrent test runs never share a domain."""
import fcntl
import os
import pathlib
import random

LEASE_DIR = pathlib.Path(os.environ.get('HILSERL_DOMAIN_LEASE_DIR', '/tmp/hilserl-ros-domains'))
# 0 is the default domain of interactive shells; ids above 101 collide with ephemeral ports.
LEASABLE_IDS = range(1, 101)


class DomainLease:
    """Holds an exclusive lock on one domain id until ``release`` (or process exit)."""

    def __init__(self):
        LEASE_DIR.mkdir(parents=True, exist_ok=True)
        candidates = list(LEASABLE_IDS)
        random.shuffle(candidates)
        for domain_id in candidates:
            handle = open(LEASE_DIR / f'{domain_id}.lock', 'w')  # noqa: SIM115 - held on purpose
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self.domain_id = domain_id
            self._handle = handle
            return
        raise RuntimeError(f'all ROS domain ids {LEASABLE_IDS} are leased (see {LEASE_DIR})')

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
