"""Writing the course: notebooks built from tagged cells, solutions and the exercise table."""
