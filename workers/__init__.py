"""Worker processes, one per task queue: ``safety worker --queue <name>``."""
