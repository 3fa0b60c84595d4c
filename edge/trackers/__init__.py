"""What every tracker kind shares: the catalog of bundled trackers and the default rule
(``catalog.py``), confidence calibration (``confidence.py``), and the per-frame LOST search
(``lost_search.py``) that the loop, ``track``, ``eval`` and the simulator all run."""
