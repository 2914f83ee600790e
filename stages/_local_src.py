"""Import trackfusion from the `src/` beside these scripts, never from an installed copy.

DVC hashes the files of the checkout it runs in (`dvc exp run --run-all` runs in a copy
under `.dvc/tmp/exps/`), while the editable install points at the workspace's `src/`:
without this, a queued experiment would run whatever the workspace holds at that moment.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
