"""The ``edge-track`` command line."""
