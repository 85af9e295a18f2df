"""The closing report's rows for a training step: the plan's prediction beside what the run measured.

A pure comparison: the prediction was stored in the step before the run (`TrainStep.prediction`, for the
plan's GPU) and by the run itself for the device it found (`TrainResult.predicted`); nothing is estimated here.
The verdict (base vs trained, `TrainResult.verdict`) comes first.
"""

from __future__ import annotations

from advisor.core.models import TrainStep
from advisor.core.units import fmt
from backends.base import ReportRow, StepReport
from backends.common.verdict import verdict_benefit, verdict_rows
from backends.train.results import TrainResult
from backends.train.tensor_peak import PHASES, TensorPeak

__all__ = ["report_step"]


def _phases(phases: dict[str, int]) -> str:
    return " / ".join(f"{name} {fmt(phases[name], 'bytes')}" for name in PHASES if name in phases)


def _tensor_peak_rows(peak: TensorPeak | None) -> list[ReportRow]:
    """CPU: the estimate's allocated peak beside the live tensor peak of one measured step (like with like)."""
    if peak is None:
        return []
    predicted = peak.predicted_phases_bytes
    ratio = f"; {peak.peak_bytes / peak.predicted_peak_bytes:.2f}× predicted" if peak.predicted_peak_bytes else ""
    return [ReportRow(
        quantity=f"live tensor peak on cpu, optimizer step {peak.optimizer_step} "
                 f"({peak.batch_rows} × {peak.seq_len} tokens; torch dispatch)",
        predicted=f"{fmt(peak.predicted_peak_bytes, 'bytes')} ({_phases(predicted)})" if predicted else "–",
        measured=f"{fmt(peak.peak_bytes, 'bytes')} ({_phases(peak.phases_bytes)}{ratio})",
    )]


def _distill_rows(result: TrainResult) -> list[tuple[str, str]]:
    """Logit-level distillation: the loss's settings, and how far the student moved towards its teacher."""
    d = result.logit_distill
    if d is None:
        return []
    on = f"({d.n_heldout_examples} held-out, {d.n_heldout_tokens} answer tokens)"
    return [
        ("distillation", f"logit-level from {d.teacher} ({d.n_teacher_params:,} parameters, frozen): loss = "
                         f"{d.alpha:g}·CE + {1 - d.alpha:g}·T²·KL(teacher ‖ student), temperature T = {d.temperature:g}"),
        (f"held-out loss, teacher {on}", fmt(d.teacher_loss)),
        ("held-out loss, student before → after", f"{fmt(d.student_loss_before)} → {fmt(d.student_loss_after)}"),
        ("held-out KL(teacher ‖ student) at T = 1, before → after",
         f"{fmt(d.kl_before)} → {fmt(d.kl_after)} nats/token"),
    ]


def report_step(step: TrainStep, result: TrainResult) -> StepReport:
    """Rows and data for one training step."""
    plan = step.prediction
    measured = result.fit.measured
    memory = result.memory
    wall = measured.wall_seconds
    price = plan.price_per_hour_usd if plan else None
    cost_at_plan_price = wall / 3600 * price * (plan.n_gpus if plan else 1) if price is not None else None
    device = result.device.name
    on_cpu = result.device.kind == "cpu"
    memory_what = ("process memory rise on cpu (Python, data and libraries too; the estimate counts tensors)"
                   if on_cpu else f"peak memory on {device} ({memory.quantity})")
    plan_gpu = plan.gpu if plan else None
    verdict = result.verdict
    compare = [
        *verdict_rows(verdict),
        ReportRow(quantity=f"peak memory, plan model on {plan_gpu or 'its GPU'}",
                  predicted=fmt(plan.peak_bytes if plan else None, "bytes"), measured="– (runs on that GPU only)"),
        *_tensor_peak_rows(measured.tensor_peak),
        ReportRow(quantity=memory_what, predicted=fmt(memory.predicted_bytes, "bytes"),
                  measured=fmt(memory.measured_bytes, "bytes")),
        ReportRow(quantity="training time", predicted=f"{fmt(plan.hours if plan else None, 'h')} on {plan_gpu}",
                  measured=f"{fmt(wall, 's')} on {device}"),
        ReportRow(quantity="training cost", predicted=fmt(plan.usd if plan else None, "usd"),
                  measured=f"{fmt(cost_at_plan_price, 'usd')} (measured time at the plan GPU's price)"),
        ReportRow(quantity="throughput", predicted="–",
                  measured=f"{measured.tokens_per_second:,.0f} tokens/s" if measured.tokens_per_second else "–"),
    ]
    fit = result.fit
    loss = "validation loss (the distillation loss)" if result.logit_distill is not None else "validation loss"
    benefit = [*verdict_benefit(verdict),
               (f"{loss} before training", fmt(fit.eval_loss_before)),
               (f"{loss} after training", fmt(fit.eval_loss_after)),
               ("optimizer steps", fmt(fit.global_step))]
    if result.replay is not None:
        benefit.append(("replay against forgetting", f"{result.replay.n_added} examples from {result.replay.source} "
                        f"(replay_fraction {result.replay.fraction:g}) in the {result.n_train_examples} trained on"))
    benefit += _distill_rows(result)
    accuracy = result.task_accuracy
    if accuracy is not None:
        for name, scores in (("before", accuracy.base), ("after", accuracy.trained)):
            benefit.append((f"exact match / token F1 {name} training ({accuracy.n_examples} held-out)",
                            f"{fmt(scores.exact_match)} / {fmt(scores.token_f1)}"))
    data = {
        "verdict": verdict.model_dump(mode="json") if verdict is not None else None,
        "method": step.method, "model": result.base_model, "is_demo_model": result.is_demo_model, "device": device,
        "precision": result.precision, "precision_reason": result.precision_reason,
        "predicted": {
            "plan_peak_bytes": plan.peak_bytes if plan else None, "plan_gpu": plan_gpu,
            "plan_precision": plan.precision if plan else None, "plan_hours": plan.hours if plan else None,
            "plan_one_time_usd": plan.usd if plan else None, "run_memory_bytes": memory.predicted_bytes,
        },
        "measured": {
            "memory_bytes": memory.measured_bytes, "memory_quantity": memory.quantity,
            "tensor_peak": measured.tensor_peak.model_dump(mode="json") if measured.tensor_peak else None,
            "measured_to_predicted": memory.measured_to_predicted, "wall_seconds": wall,
            "tokens_per_second": measured.tokens_per_second, "n_tokens": measured.n_tokens,
            "cost_usd_at_plan_gpu_price": cost_at_plan_price,
        },
        "replay": result.replay.model_dump(mode="json") if result.replay is not None else None,
        "logit_distill": result.logit_distill.model_dump(mode="json") if result.logit_distill is not None else None,
        "benefit": {"eval_loss_before": fit.eval_loss_before, "eval_loss_after": fit.eval_loss_after,
                    "steps": fit.global_step,
                    "task_accuracy": accuracy.model_dump(mode="json") if accuracy is not None else None},
    }
    return StepReport(compare=compare, benefit=benefit, data=data,
                      headline=verdict.headline() if verdict is not None else None)
