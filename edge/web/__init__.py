"""A small local web console for headless devices: live view, target selection, state, telemetry."""
