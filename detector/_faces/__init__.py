"""The private faces of the runtime: how people and programs reach the core (``detector._detector`` and the modules
beside it). Input files (``reading``, ``places``), output formats (``formatting``) and the HTML report (``report``),
``mtdetect serve`` (``serve``), ``mtdetect score-corpus`` and its Ray engine (``corpus_jobs``, ``ray_engine``). The
public faces (``detector.cli``, ``detector.subtitles``, ``detector.documents``, ``detector.localisation``,
``detector.datatrove_filter``) use them; the core never imports a face (tests/test_boundaries.py)."""
