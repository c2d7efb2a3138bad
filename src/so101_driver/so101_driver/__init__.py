"""so101_driver: see README.md."""
