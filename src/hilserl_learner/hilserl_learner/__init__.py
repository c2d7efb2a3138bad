"""hilserl_learner: see README.md."""
