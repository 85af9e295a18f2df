"""What a serve step leaves behind in `result.json`: the files it wrote, the exports and the serving estimate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from advisor.core.models import Model, ServedModel, ServePrediction

__all__ = ["Export", "RESULT_FILE", "ServeResult"]

RESULT_FILE = "result.json"


class Export(Model):
    """One exported form of a trained model."""

    name: str = Field(description="The served model it is a form of")
    form: Literal["adapter", "merged-16bit", "gguf"]
    path: str = Field(description="Relative to the step's folder, or absolute outside it (the adapter as trained)")
    size_bytes: int = Field(ge=0, description="On disk")
    n_params: int | None = Field(None, description="Parameters read back from the file's headers")
    gguf_architecture: str | None = Field(None, description="GGUF: `general.architecture` as the gguf package reads it")


class ServeResult(Model):
    """One serve step, as written to `result.json`."""

    models: list[ServedModel] = Field(description="What is served")
    files: dict[str, str] = Field(description="What each file is → its path relative to the step's folder")
    vllm_argv: list[list[str]] = Field(description="`vllm serve` arguments, one list per server")
    sglang_argv: list[list[str]] = Field(description="`python -m sglang.launch_server` arguments, one per server")
    exports: list[Export]
    base_params_config: int = Field(description="Base parameters counted from its config.json (the estimator)")
    base_params_files: int = Field(description="Base parameters read from its safetensors headers")
    serving: ServePrediction = Field(description="Memory per replica for the models served here (no GPU named)")
    is_demo_model: bool = Field(description="The base is the offline demonstration model")
    notes: list[str] = Field(default_factory=list, description="What was not written, and why")
