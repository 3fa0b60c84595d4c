"""Measuring runs: NanoTrack's confidence fitted, and a run's numbers written into the tracker catalog."""
