"""Names inside a cache folder, shared by the code that writes one (``prepare.py``) and the code that reads it
(``cache.py``, whose module docstring describes the layout)."""

CACHE_VERSION = 2
MANIFEST = "manifest.json"
PLAN = "plan.json"
REJECTS = "rejects.json"
SHARDS = "shards"
