"""The closed-loop simulator: a virtual pan-tilt camera driven by the real loop."""
