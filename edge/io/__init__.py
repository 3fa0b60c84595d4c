"""What the runtime reads and writes outside itself: files (checked paths, atomic writes, safe YAML,
recorded video), the terminal's progress line, serial-port backoff, optional libraries and systemd
notifications."""
