"""Grading: what the hidden suites check and how submissions written to other conventions reach them."""
