"""Stage: build a raw corpus (SPEC section 3) from your own edited timelines.

    python stages/ingest.py --timelines DIR --features DIR --out DIR [--params params.yaml] [--report FILE]

The same as ``trackfusion ingest``; all logic is in :mod:`trackfusion.data.ingest`.
"""
from __future__ import annotations

import sys

import _stage  # noqa: F401  (first: the src/ DVC hashed, one-line errors)
from trackfusion.data.ingest import main

if __name__ == "__main__":
    sys.exit(main())
