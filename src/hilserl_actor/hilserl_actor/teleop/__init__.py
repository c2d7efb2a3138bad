"""ROS-free teleoperation cores: gamepad mapping, keyboard, SDL -> Joy layout, shared session."""
