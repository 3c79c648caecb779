"""Footnote's search engine: ingest, chunk, embed, store and search articles (no Discord here).

Process-wide defaults are set here, before torch or faiss load: nothing is fetched from a model hub, and
idle OpenMP threads sleep instead of spinning (torch and faiss each bring an OpenMP runtime; spinning
threads starve each other on small machines, multiplying latency).
"""

import os

for _name, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                      "HF_HUB_DISABLE_PROGRESS_BARS": "1", "OMP_WAIT_POLICY": "PASSIVE"}.items():
    os.environ.setdefault(_name, _value)
