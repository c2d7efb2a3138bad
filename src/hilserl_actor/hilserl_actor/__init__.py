"""hilserl_actor: see README.md."""
