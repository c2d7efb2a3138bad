"""Thin rclpy lifecycle nodes over the ROS-free core; the only modules that import rclpy."""
