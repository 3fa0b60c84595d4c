"""Scoring trackers on benchmark sequences (OTB / LaSOT / GOT-10k layouts), pytracking conventions."""
