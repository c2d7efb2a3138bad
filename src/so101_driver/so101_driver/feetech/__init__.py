"""Real SO-101 hardware: Feetech STS3215 bus protocol, calibration, backend and virtual bus.

ROS-free. The driver node uses ``FeetechBackend(FeetechBackendConfig(...))`` from
``so101_driver.feetech.backend`` / ``.config``; see the README section "Real robot (Feetech bus)".
"""
