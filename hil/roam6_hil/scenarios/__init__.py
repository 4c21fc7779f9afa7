"""Scenarios for `roam6 hil run NAME`: each module has add_arguments(parser) and run(args) -> exit code."""
