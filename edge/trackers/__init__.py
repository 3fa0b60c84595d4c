"""The trackers behind one contract (``contract.py``: ``Tracker``, its declared ``Capabilities``,
``TrackerInfo``) and one state vocabulary (``state.py``): MixFormerV2 (``mixformer.py``, with its
``crop``, ``preprocess`` and ``geometry``), NanoTrack (``nanotrack.py``, its networks in
``nanotrack_model.py``, its files in ``nanotrack_files.py``) and VitTrack (``vittrack.py``); the
catalog of bundled trackers and the default rule (``catalog.py``), confidence calibration
(``confidence.py``), the per-frame LOST search (``lost_search.py``) that the loop, ``track``,
``eval`` and the simulator all run, and the overlay that draws a result on a frame (``overlay.py``)."""
