"""Training loops and their shared machinery (distributed set-up, checkpoints, logging)."""
