"""Transports (serial ports) and notifications (systemd) used by the outputs and the service."""
