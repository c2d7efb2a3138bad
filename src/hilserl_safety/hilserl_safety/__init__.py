"""hilserl_safety: see README.md."""
