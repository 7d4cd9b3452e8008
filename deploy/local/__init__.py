"""The local stack: every process of the system on one machine, without Docker."""
