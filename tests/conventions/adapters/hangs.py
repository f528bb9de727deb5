"""An adapter that never finishes."""
while True:
    pass
