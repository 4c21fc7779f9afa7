"""roam6 host tools (CPython): the `roam6` CLI, build/flash/deploy/provision, the home agent and CN."""
