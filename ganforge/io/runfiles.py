"""The files of a run folder, named once, and the small readers/writers every part shares.

Kept free of heavy imports so `ganforge report` and friends start fast.
"""

from __future__ import annotations

import json
from pathlib import Path

RECIPE_FILE = "recipe.toml"
METRICS_FILE = "metrics.jsonl"
SAMPLES_DIR = "samples"
REPORT_FILE = "report.html"
STATUS_FILE = "status.json"


def read_metrics(path: Path) -> list[dict]:
    """The rows of a metrics.jsonl (a line cut by a kill is skipped)."""
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


from ganforge.core.files import write_atomic_text  # noqa: E402,F401 - the run files' writer
