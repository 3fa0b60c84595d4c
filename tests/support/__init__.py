"""Helpers the tests share: child processes and signals, fake clocks, the service's systemd socket
and log records, and waiting with a hang guard. Importable as ``support.*`` (tests/ is on the path)."""
