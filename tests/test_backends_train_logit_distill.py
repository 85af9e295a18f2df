"""Logit-level distillation: the step's refusals, the loss and its gradient against autograd on the formula, the
tokenizer check, the demo swap and links, and a tiny teacher distilled into a smaller student (killed and resumed)
whose held-out KL to the teacher falls, with the CPU tensor peak compared like with like."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import kill_when_ready
from pydantic import ValidationError

from advisor.core.errors import AdvisorError
from advisor.core.models import TrainStep

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "distillation"


def _step(**kw) -> TrainStep:
    fields = {"method": "full", "base_model": "tiny-demo-small", "data_path": str(EXAMPLE / "prompts.jsonl"),
              "distill_teacher": "tiny-demo"}
    return TrainStep(**{**fields, **kw})


@pytest.mark.parametrize("kw", [{"method": "dpo"}, {"objective": "causal_lm"}, {"method": "prompt_tuning"}])
def test_step_refuses_logit_distillation_where_no_supervised_student_trains(kw):
    with pytest.raises(ValidationError, match="logit-level distillation trains a supervised student"):
        _step(**kw)
    with pytest.raises(ValidationError):
        _step(distill_temperature=0)
    with pytest.raises(ValidationError):
        _step(distill_alpha=1.5)


def _reference(student, teacher, targets, alpha, temperature):
    """alpha·CE + (1 − alpha)·T²·KL(teacher ‖ student) per answer token, by autograd in float64."""
    import torch

    valid = targets != -100
    z_s, z_t = student.double()[valid], teacher.double()[valid]
    ce = torch.nn.functional.cross_entropy(z_s, targets[valid], reduction="sum")
    log_s, log_t = torch.log_softmax(z_s / temperature, -1), torch.log_softmax(z_t / temperature, -1)
    kl = (log_t.exp() * (log_t - log_s)).sum()
    return (alpha * ce + (1 - alpha) * temperature**2 * kl) / valid.sum()


@pytest.mark.parametrize(("alpha", "temperature", "rows"), [(0.5, 2.0, 1 << 20), (0.0, 1.0, 3), (0.7, 4.0, 5)])
def test_loss_and_gradient_equal_autograd_on_the_formula(monkeypatch, alpha, temperature, rows):
    torch = pytest.importorskip("torch")
    import backends.train.logit_distill as ld

    monkeypatch.setattr(ld, "chunk_rows", lambda vocab: rows)  # 3 and 5 rows: the loss folds 16 rows in chunks
    torch.manual_seed(0)
    student = torch.randn(2, 8, 11, requires_grad=True)
    teacher = torch.randn(2, 8, 11)
    targets = torch.randint(0, 11, (2, 8))
    targets[0, :3] = -100  # a prompt
    targets[1, -2:] = -100  # padding
    loss, ce, kl = ld.distill_loss(student, teacher, targets, alpha=alpha, temperature=temperature,
                                   n_tokens=(targets != -100).sum())
    (2.5 * loss).backward()  # a scaled loss: the saved gradient is scaled in backward
    reference_student = student.detach().clone().requires_grad_(True)
    reference = _reference(reference_student, teacher, targets, alpha, temperature)
    (2.5 * reference).backward()
    assert float(loss.detach()) == pytest.approx(float(reference.detach()), rel=1e-5)
    assert torch.allclose(student.grad, reference_student.grad, rtol=1e-4, atol=1e-6)
    assert float(student.grad[0, :3].abs().sum()) == 0.0  # no gradient where nothing is scored


def _tiny(tmp_path: Path, name: str, texts: list[str], model: str = "tiny-demo") -> Path:
    from backends.common.tiny import build_tiny_demo

    records = [{"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": t[::-1]}]}
               for t in texts]
    return build_tiny_demo(records, tmp_path / name, name=model)


def test_check_refuses_a_teacher_with_another_tokenizer_in_one_line(tmp_path):
    pytest.importorskip("transformers")
    from backends.train import inspect
    from backends.train.check import raise_for_errors

    teacher = _tiny(tmp_path, "teacher", ["zebra quartz fjord vexing", "nymph blitz jock waltz"] * 4)
    student = _tiny(tmp_path, "student", ["order 100 ships to Lyon", "parcel at the depot"] * 4, "tiny-demo-small")
    step = _step(base_model=str(student), distill_teacher=str(teacher))
    report = inspect(step, tmp_path / "run")
    errors = [f for f in report.findings if f.level == "error"]
    assert len(errors) == 1 and errors[0].topic == "distill"
    assert "tokenizer differs from the student's" in errors[0].message and "data_from: distill" in errors[0].hint
    with pytest.raises(AdvisorError) as exc:
        raise_for_errors(report, force=True)  # not a memory finding: --force does not let it through
    assert "\n" not in exc.value.message and "sequence-level" in exc.value.hint
    assert not (tmp_path / "run").exists()  # the check writes nothing


def test_train_run_refuses_a_teacher_with_another_tokenizer_with_one_error_line(tmp_path):
    pytest.importorskip("trl")
    import yaml
    from conftest import assert_user_error
    from typer.testing import CliRunner

    from advisor.app.cli import _register, app

    _register()
    teacher = _tiny(tmp_path, "teacher", ["zebra quartz fjord vexing", "nymph blitz jock waltz"] * 4)
    student = _tiny(tmp_path, "student", ["order 100 ships to Lyon", "parcel at the depot"] * 4, "tiny-demo-small")
    step = {"kind": "train", "method": "lora", "base_model": str(student), "distill_teacher": str(teacher),
            "data_path": str(EXAMPLE / "prompts.jsonl"), "seq_len": 64, "max_steps": 2}
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": "t", "steps": [step]}))
    result = CliRunner().invoke(app, ["train", "run", str(plan), "--out", str(tmp_path / "r")])
    assert_user_error(result, "tokenizer differs from the student's", "use sequence-level distillation")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.safetensors"))


def test_demo_makes_the_student_smaller_and_links_the_teacher_to_an_earlier_step(tmp_path):
    from backends.train import BACKEND

    demo, note = BACKEND.demo(_step(base_model="llama-3.2-1b", distill_teacher="llama-3.1-8b"))
    assert demo.base_model == "tiny-demo-small" and demo.distill_teacher == "tiny-demo"
    assert "llama-3.1-8b` → `tiny-demo`" in note
    kept, _ = BACKEND.demo(_step(base_model="llama-3.2-1b", distill_teacher="full"))
    assert kept.distill_teacher == "full"  # the earlier step's model: that step is swapped itself
    teacher_step = TrainStep(method="full", base_model="tiny-demo", data_path=str(EXAMPLE / "examples.jsonl"))
    folder = tmp_path / "1-train-full"
    student = _step(distill_teacher="full")
    assert BACKEND.link(student, [(teacher_step, folder)], for_check=True).distill_teacher == "tiny-demo"
    with pytest.raises(AdvisorError, match="holds no model yet"):
        BACKEND.link(student, [(teacher_step, folder)])
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text("{}")
    assert BACKEND.link(student, [(teacher_step, folder)]).distill_teacher == str(folder / "model")
    with pytest.raises(AdvisorError, match="no `lora` training step comes before"):
        BACKEND.link(_step(distill_teacher="lora"), [(teacher_step, folder)])


def test_example_plan_passes_the_check_before_its_teacher_exists(tmp_path):
    pytest.importorskip("trl")
    from advisor.app.runner import demo_plan
    from advisor.core.planning import load_plan
    from backends.base import RunContext
    from backends.train import BACKEND, inspect

    plan, notes = demo_plan(load_plan(EXAMPLE / "plan-logits.yaml"))
    assert any("`llama-3.2-1b` → `tiny-demo-small`" in note for note in notes)
    teacher_step, student = plan.steps
    linked = BACKEND.link(student, [(teacher_step, tmp_path / "1-train-full")], for_check=True)
    assert BACKEND.check(linked, RunContext(step_dir=tmp_path / "2-train-full")) == []
    report = inspect(linked, tmp_path / "2-train-full")
    assert any(f.topic == "distill" and f.level == "ok" and "temperature 2, alpha 0.5" in f.message
               for f in report.findings)
    assert report.predicted is not None and report.predicted.teacher_bytes > 0  # the teacher is in the estimate
    assert not (tmp_path / "2-train-full").exists()


# Live tensor peak on CPU, measured / predicted per phase (backends.train.tensor_peak; the prediction counts the
# teacher's weights, its logits and the loss's tensors). forward: the loss's tensors are counted one by one (within
# 2% here); optimizer: states only. backward is an upper bound: the recomputed block is counted beside the logits'
# gradient, which the LM head's backward has freed by then (0.82 with checkpointing, 1.02 without, measured).
TOLERANCE = {"forward": (0.97, 1.03), "backward": (0.78, 1.03), "optimizer": (0.99, 1.01)}


@pytest.mark.slow
def test_a_smaller_student_distilled_from_a_trained_teacher_moves_towards_it_and_resumes_after_kill(tmp_path):
    pytest.importorskip("trl")
    from backends.train import run
    from backends.train.report import report_step

    teacher_step = TrainStep(method="full", base_model="tiny-demo", data_path=str(EXAMPLE / "examples.jsonl"),
                             learning_rate=3e-3, batch_size=8, seq_len=128, max_steps=20, eval_fraction=0)
    run(teacher_step, tmp_path / "teacher")
    teacher = str(tmp_path / "teacher" / "model")
    student = _step(distill_teacher=teacher, learning_rate=3e-3, batch_size=8, seq_len=128, max_steps=12,
                    eval_fraction=0.15)
    out = tmp_path / "student"
    code = ("import sys; from advisor.core.models import TrainStep; from backends.train import run; "
            "run(TrainStep.model_validate_json(sys.argv[1]), sys.argv[2])")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    from backends.train.fit import is_complete_checkpoint

    kill_when_ready([sys.executable, "-c", code, student.model_dump_json(), str(out)],
                    lambda: is_complete_checkpoint(out / "model" / "checkpoint-4"), env=env, timeout=180)
    result = run(student, out, resume=True)
    assert result.fit.resumed_from_step is not None and result.fit.resumed_from_step >= 4
    d = result.logit_distill
    assert d is not None and d.temperature == 2.0 and d.alpha == 0.5 and d.n_heldout_tokens > 0
    assert d.kl_after < 0.8 * d.kl_before  # the student's distribution moved towards the teacher's
    assert d.student_loss_after < d.student_loss_before
    # Against the same student trained on the answers alone (alpha 1: cross-entropy only): closer to the teacher.
    control = run(student.model_copy(update={"distill_alpha": 1.0}), tmp_path / "control").logit_distill
    assert d.kl_after < control.kl_after
    assert result.predicted is not None and result.predicted.teacher_bytes == 4 * d.n_teacher_params  # fp32 on CPU
    peak = result.fit.measured.tensor_peak
    assert peak is not None and set(peak.ratios()) == set(TOLERANCE)
    for phase, (low, high) in TOLERANCE.items():
        assert low <= peak.ratios()[phase] <= high, f"{phase}: {peak.ratios()}"
    benefit = dict(report_step(student, result).benefit)
    assert "logit-level" in benefit["distillation"] and "temperature T = 2" in benefit["distillation"]
    assert "0.5·CE" in benefit["distillation"]
    saved = json.loads((out / "result.json").read_text())
    assert saved["logit_distill"]["kl_after"] == pytest.approx(d.kl_after)
