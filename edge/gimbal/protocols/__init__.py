"""Encoders and incremental parsers, stdlib only: no serial port, no sockets, no threads."""
