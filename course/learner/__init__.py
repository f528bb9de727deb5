"""The learner's tools: the self-check and visible checks notebooks call, and the workspace of notebooks."""
