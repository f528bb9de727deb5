"""Where grades go: class batches, nbgrader, Gradescope."""
