"""Settings of experiment tracking (tracing/tracking.py): which tracker a run logs to, and where."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from teachloop.foundation.settings import Settings

Backend = Literal["none", "mlflow", "tensorboard", "wandb"]


class TrackingConfig(Settings):
    backend: Backend = Field(
        "none",
        description="none, mlflow (needs teachloop[tracking]), tensorboard (needs teachloop[tracking]) or "
        "wandb (pip install wandb; not exercised by teachloop's tests)",
    )
    experiment: str = Field("teachloop", min_length=1, description="MLflow experiment / wandb project")
    mlflow_uri: str | None = Field(
        None,
        description="MLflow tracking URI (a server, or sqlite:///PATH); default: sqlite:///mlruns/mlflow.db "
        "in the working directory, artifacts beside it",
    )
    tensorboard_dir: Path | None = Field(
        None, description="TensorBoard log directory; default: RUN_DIR/tensorboard"
    )
    wandb_mode: Literal["offline", "online"] = Field(
        "offline", description="wandb only: offline writes RUN_DIR/wandb (wandb sync uploads it later)"
    )
