"""hilserl_bringup: see README.md."""
