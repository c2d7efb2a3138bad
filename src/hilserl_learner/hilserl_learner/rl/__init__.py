"""ROS-free SAC + RLPD core: encoders, networks, buffers, mixer, losses and update."""
