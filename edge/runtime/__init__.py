"""The device loop and its wiring: source -> tracker -> controller -> outputs, as a service."""
