"""The `exchange` command: one entry point that runs every part of the cluster."""
