"""Checks on how the code under test hands numpy arrays to torch."""
import contextlib
from unittest import mock

import torch


@contextlib.contextmanager
def only_writable_arrays_to_torch():
    """Fail if ``torch.from_numpy`` gets a read-only array (as decoded from a message buffer):
    torch then warns, once per process, that writing to the tensor is undefined behaviour.
    The warning alone cannot be tested (an earlier test may have used up the "once")."""
    original = torch.from_numpy

    def checked(array):
        assert array.flags.writeable, 'torch.from_numpy was given a read-only array'
        return original(array)

    with mock.patch.object(torch, 'from_numpy', checked):
        yield
