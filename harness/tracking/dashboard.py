"""What `harness ui` opens: an experiment's runs table in MLflow's model-training mode, the study's columns shown.

How MLflow 3.17's UI decides what a page shows (read from its bundle, ``mlflow/server/js/build``):

- **Mode.** The sidebar's GenAI / Model training switch follows the URL parameter ``workflowType``
  (``genai`` | ``machine_learning``), else the browser's last choice, else GenAI. It decides the experiment's
  navigation; the experiment tag ``mlflow.experimentKind`` is not read while that switch exists (we still set it
  to ``custom_model_development``: MLflow's own name for what the experiment is, read by clients without it).
- **Columns.** A runs table shows Dataset / Duration / Source / Models and no metric or param until a user picks
  columns (kept in the browser only). A *saved view* is an experiment tag ``mlflow.sharedViewState.<id>`` holding
  ``{"name", "createdAt", "updatedAt", "state"}``, ``state`` being the JSON of the table's settings (selected
  columns, sort, widths); ``#/experiments/<id>/runs?viewStateShareKey=<id>`` opens it, and the page's "Views"
  menu lists it.
- **Assistant.** The UI opens its Assistant panel by itself on a browser's first visit to a server whose host
  name is ``localhost``, ``127.0.0.1`` or ``::1``; nothing on the server turns that off. A browser names the IPv6
  loopback ``[::1]``, which the UI does not count as local: served there, the page opens without the Assistant
  (``ui_host``).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from harness.tracking import names

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
VIEW_ID = "study"
VIEW_NAME = "Study"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_ID}"

# The runs table's columns, in order: the primary metric, the structure metrics, then what varies across a study.
STUDY_COLUMNS = (
    ("metrics", names.VAL_LOSS),
    ("metrics", names.VAL_LDDT),
    ("metrics", names.VAL_CONTACT_PRECISION),
    ("params", "model.c_z"),
    ("params", "model.n_pairformer_blocks"),
    ("params", "model.n_diffusion_blocks"),
    ("params", "train.lr"),
    ("tags", names.TAG_STUDY_BUDGETS),
    ("params", "seed"),
)
# px, so nothing is cut short: a float64 in full ("3.3123954251030754"), the depth params' long names.
COLUMN_WIDTHS = {"metrics": 150, "model.n_pairformer_blocks": 180, "model.n_diffusion_blocks": 180}


def column_id(kind: str, key: str) -> str:
    """The UI's id of a runs-table column: ``metrics.`val/loss```, ``params.`model.c_z```."""
    return f"{kind}.`{key}`"


def view_state() -> dict[str, Any]:
    """The runs table of the study view: its columns in order, sorted by the primary metric, best first."""
    columns = [column_id(kind, key) for kind, key in STUDY_COLUMNS]
    return {
        "orderByKey": column_id("metrics", names.VAL_LOSS),
        "orderByAsc": True,
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": {column_id(kind, key): width for kind, key in STUDY_COLUMNS
                         if (width := COLUMN_WIDTHS.get(key, COLUMN_WIDTHS.get(kind)))},
    }


def dashboard_tags(now_ms: int | None = None) -> dict[str, str]:
    """The experiment tags that make `harness ui` open the study view in model-training mode."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    view = {"name": VIEW_NAME, "createdAt": now_ms, "updatedAt": now_ms, "state": json.dumps(view_state())}
    return {EXPERIMENT_KIND_TAG: MODEL_TRAINING, VIEW_TAG: json.dumps(view)}


def ensure_dashboard(client: Any, experiment_id: str) -> list[str]:
    """Set the dashboard tags an experiment lacks (one created before them); keep those it has, so a view a user
    saved over ours, or a kind set on purpose, stays. Returns the keys set."""
    have = client.get_experiment(experiment_id).tags
    missing = {k: v for k, v in dashboard_tags().items() if k not in have}
    for key, value in missing.items():
        client.set_experiment_tag(experiment_id, key, value)
    return sorted(missing)


def runs_page_url(base_url: str, experiment_id: str) -> str:
    """The experiment's runs table in model-training mode with the study view (the bare ``#/experiments/<id>``
    opens the GenAI overview in a fresh browser)."""
    return (f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
            f"?viewStateShareKey={VIEW_ID}&workflowType=machine_learning")


def ui_host() -> str:
    """``::1`` where this host has an IPv6 loopback (the UI opens without its Assistant, see above), else
    ``127.0.0.1``."""
    if not socket.has_ipv6:
        return "127.0.0.1"
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return "127.0.0.1"
    return "::1"
