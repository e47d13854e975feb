"""The core every layer uses: Arrow schemas, the config base, ids, shard units, workers' devices,
the task pool protocol. It imports nothing else of the project."""
