"""The estimator's prediction for the run's own settings, through the core translator (`train_spec`).

Returns nothing (with the reason) when the architecture is one the estimator does not model (e.g. GPT-2):
a missing prediction is reported as missing, never made up.
"""

from __future__ import annotations

from advisor.core.models import MemoryEstimate, TrainStep

__all__ = ["predict_memory"]


def predict_memory(step: TrainStep, hf_config: dict, model_name: str, precision: str, *, seq_len: int | None = None,
                   batch_size: int | None = None, for_eval: bool = False,
                   device: str = "cuda", teacher_config: dict | None = None) -> tuple[MemoryEstimate | None, str]:
    """Ask the estimator for peak memory per device for this step.

    Args:
        step: The plan step.
        hf_config: The base model's `config.json` as a dict.
        model_name: Name or path of the base model (recorded as the spec's source).
        precision: The resolved precision.
        seq_len: Tokens per sequence as run; None: the plan's.
        batch_size: Micro-batch as run; None: the plan's.
        for_eval: Predict the evaluation pass instead of a training step.
        device: `cuda` or `cpu`, where the run happens.
        teacher_config: Logit-level distillation: the teacher's `config.json` (its weights, logits and forward
            are counted, `advisor.core.estimate.logit_distill`); None: no teacher.

    Returns:
        (estimate, note): the estimate, or None with the reason it is missing.
    """
    from advisor.core.catalog import model_spec_from_hf_config
    from advisor.core.errors import AdvisorError
    from advisor.core.estimate.memory import estimate_memory
    from advisor.core.estimate.translate import train_spec

    try:
        model_spec = model_spec_from_hf_config(hf_config, model_name, model_name)
        spec = train_spec(step, model_spec, precision, seq_len=seq_len, batch_size=batch_size, for_eval=for_eval,
                          device=device)
        if teacher_config is not None and not for_eval:
            from advisor.core.estimate.logit_distill import estimate_distill_memory

            teacher = model_spec_from_hf_config(teacher_config, "teacher", "teacher")
            return estimate_distill_memory(spec, teacher), ("advisor.core.estimate.logit_distill."
                                                            "estimate_distill_memory for the settings of this run")
        return estimate_memory(spec), "advisor.core.estimate.memory.estimate_memory for the settings of this run"
    except AdvisorError as exc:  # an architecture the catalog reader does not know, or a field it lacks
        return None, f"no prediction: the estimator cannot describe `{model_name}` ({exc.message})".replace("\n", " ")
    except (ValueError, KeyError) as exc:  # pydantic.ValidationError is a ValueError
        return None, f"no prediction: the estimator cannot describe `{model_name}` ({exc})".replace("\n", " ")
