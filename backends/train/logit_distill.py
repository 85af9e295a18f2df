"""Logit-level distillation: a supervised student (full, LoRA, QLoRA, IA3) learns the teacher's token distribution.

    loss = alpha · CE(student, answer tokens) + (1 − alpha) · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))

averaged over the answer tokens (Hinton et al. 2015, arXiv:1503.02531 §2: the T² keeps the soft term's gradient
on the scale of the hard one as T changes). The teacher is frozen in eval mode, in the compute dtype, on the
student's device, and runs forward under no_grad on the same batch. It needs the student's tokenizer: the check
refuses any other, and points to sequence-level distillation (`data_from: distill`).

Why not TRL's trainers: TRL 1.16's `DistillationTrainer` is on-policy only (the student generates every
completion; no hard-label term), and `trl.experimental.gkd.GKDTrainer` does not apply its temperature to the
divergence and has no hard-label term either. So `SFTTrainer` (our tokenization, checkpoints and resume) gets this
loss as its `compute_loss`. Loss and gradient are computed together, one chunk of rows at a time, into a single
gradient buffer: what `advisor.core.estimate.logit_distill` counts. torch and transformers load inside functions.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from advisor.core.estimate.logit_distill import chunk_rows
from advisor.core.models import Model, TrainStep

__all__ = ["LogitDistillResult", "TeacherInfo", "build_distill_trainer", "distill_loss", "heldout_distill",
           "inspect_teacher", "load_teacher", "teacher_tokenizer_source", "tokenizer_mismatch"]

IGNORE = -100  # label of a position without a target (transformers' convention)
TEACHER_DIR = "teacher-model"  # where a `tiny-demo` teacher is built, inside the step's folder
# Held-out examples the before/after distances are measured on (one forward of each model per example).
MAX_HELDOUT = 64
SEQUENCE_LEVEL_HINT = ("logit-level distillation needs one tokenizer for both models; use sequence-level "
                       "distillation instead: a `kind: distill` step, then this student with `data_from: distill`")


class LogitDistillResult(Model):
    """The teacher, the loss's settings, and the held-out distances before and after training."""

    teacher: str = Field(description="As named in the plan (after linking: the folder an earlier step trained)")
    teacher_path: str = Field(description="Where the teacher was loaded from")
    n_teacher_params: int = Field(description="Parameters of the teacher")
    temperature: float = Field(description="Softmax temperature of the KL term")
    alpha: float = Field(description="Share of the hard-label loss")
    n_heldout_examples: int = Field(ge=0, description="Held-out examples measured")
    n_heldout_tokens: int = Field(ge=0, description="Answer tokens they hold (the positions measured)")
    teacher_loss: float = Field(description="Teacher's mean cross-entropy on the held-out answers (nats/token)")
    student_loss_before: float = Field(description="Student's mean cross-entropy before training")
    student_loss_after: float = Field(description="Student's mean cross-entropy after training")
    kl_before: float = Field(description="Mean KL(teacher ‖ student) at T = 1 per answer token, before (nats)")
    kl_after: float = Field(description="The same after training")


class TeacherInfo(Model):
    """The teacher as the check sees it, without loading weights."""

    label: str = Field(description="A path, a Hub id, or a demo name not built yet")
    config: dict = Field(description="Its config.json (the base's, for an adapter)")
    tokenizer_source: str | None = Field(description="Where its tokenizer loads from; None: built from the data")


def _adapter_base(folder: Path) -> str | None:
    config = folder / "adapter_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")


def teacher_tokenizer_source(teacher: str) -> str:
    """The folder (or id) whose tokenizer the teacher uses: the adapter folder when it holds one, else its base."""
    folder = Path(teacher)
    base = _adapter_base(folder)
    if base and not (folder / "tokenizer_config.json").is_file():
        return base
    return teacher


def resolve_teacher(step: TrainStep, run_dir: Path, train_records: list[dict]) -> str:
    """The teacher's folder or id; a demo name is built into `run_dir/teacher-model` from the training records."""
    from backends.common.tiny import DEMO_MODELS, build_tiny_demo, is_demo_model

    teacher = step.distill_teacher
    if teacher in DEMO_MODELS:  # random weights: shows the pipeline, nothing more
        folder = run_dir / TEACHER_DIR
        if not (is_demo_model(folder) and (folder / "config.json").is_file()):
            if folder.is_dir():  # a build killed part-way (this run folder's own)
                import shutil

                shutil.rmtree(folder)
            build_tiny_demo(train_records, folder, seed=step.seed, name=teacher)
        return str(folder.resolve())
    return teacher


def inspect_teacher(step: TrainStep, run_dir: Path, train_records: list[dict]) -> TeacherInfo:
    """Config and tokenizer source of the teacher, loading no weights and writing nothing.

    Raises:
        AdvisorError: a path that does not exist or an id that cannot be reached.
    """
    from advisor.core.errors import AdvisorError
    from backends.common.tiny import DEMO_MODELS, build_tokenizer, tiny_config
    from backends.train.model import read_hf_config

    teacher = step.distill_teacher
    if teacher in DEMO_MODELS:
        built = run_dir / TEACHER_DIR
        if (built / "config.json").is_file():
            return TeacherInfo(label=str(built), config=read_hf_config(str(built)), tokenizer_source=str(built))
        config = tiny_config(build_tokenizer(train_records), teacher).to_dict()
        return TeacherInfo(label=teacher, config=config, tokenizer_source=None)
    folder = Path(teacher)
    if folder.exists() and not folder.is_dir():
        raise AdvisorError(f"distill_teacher `{teacher}` is a file, not a model folder",
                           "point `distill_teacher` at a folder written by `save_pretrained`")
    if folder.is_dir() and not ((folder / "config.json").is_file() or (folder / "adapter_config.json").is_file()):
        raise AdvisorError(f"distill_teacher `{teacher}` has no config.json or adapter_config.json",
                           "point `distill_teacher` at a folder written by `save_pretrained`")
    if not folder.exists() and not (teacher.count("/") == 1 and not teacher.startswith((".", "/", "~"))):
        raise AdvisorError(f"distill_teacher `{teacher}` is neither a folder nor a Hugging Face id",
                           "a folder, a Hub id, `tiny-demo`, or the method of an earlier training step")
    base = _adapter_base(folder) or teacher
    return TeacherInfo(label=teacher, config=read_hf_config(base), tokenizer_source=teacher_tokenizer_source(teacher))


def tokenizer_mismatch(teacher_tokenizer, student_tokenizer, teacher_config: dict, student_config: dict) -> str | None:
    """Why the two models cannot be distilled logit to logit (vocabulary, special tokens, logits width), or None."""
    t_vocab, s_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if t_vocab != s_vocab:
        differ = len(set(t_vocab.items()) ^ set(s_vocab.items()))
        return (f"the teacher's tokenizer differs from the student's ({len(t_vocab)} vs {len(s_vocab)} tokens, "
                f"{differ} token-id pairs not shared)")
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if getattr(teacher_tokenizer, name) != getattr(student_tokenizer, name):
            return (f"the teacher's {name} is {getattr(teacher_tokenizer, name)}, the student's "
                    f"{getattr(student_tokenizer, name)}")
    t_width, s_width = teacher_config.get("vocab_size"), student_config.get("vocab_size")
    if t_width != s_width:
        return f"the teacher's logits are {t_width} wide, the student's {s_width} (config vocab_size)"
    return None


def load_teacher(teacher: str, precision: str):
    """The teacher, frozen and in eval mode, in the compute dtype (an adapter merged into its base)."""
    from backends.common.hub import unreachable
    from backends.train.builders import torch_dtype

    dtype = torch_dtype(precision)
    try:
        if (Path(teacher) / "adapter_config.json").is_file():
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(teacher, dtype=dtype,
                                                             trust_remote_code=False).merge_and_unload()
        else:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(teacher, dtype=dtype, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise unreachable(teacher, exc) from None
    model.requires_grad_(False)
    return model.eval()


def _fold_chunk(z_s, z_t, targets, alpha: float, temperature: float, gradient):
    """(CE sum, KL sum) of one chunk of rows, writing the loss's gradient (unscaled by 1/n) into `gradient`.

    fp32 inside; at most three chunk-sized fp32 tensors are alive at once (`LOSS_CHUNK_TENSORS`).
    """
    import torch

    valid = targets != IGNORE
    index = targets.clamp(min=0).unsqueeze(1)
    scaled = z_s.to(torch.float32, copy=True).div_(temperature)
    student_t = torch.log_softmax(scaled, dim=-1)
    del scaled
    scaled = z_t.to(torch.float32, copy=True).div_(temperature)
    teacher_t = torch.log_softmax(scaled, dim=-1)
    del scaled
    teacher_p = teacher_t.exp()
    kl = (teacher_t.sub_(student_t).mul_(teacher_p).sum(-1) * valid).sum()  # Σ p_t (log p_t − log p_s)
    del teacher_t
    grad = None
    if gradient is not None:  # d(T²·KL)/dz_s = T·(p_s − p_t)
        grad = student_t.exp_().sub_(teacher_p).mul_((1 - alpha) * temperature)
    del student_t, teacher_p
    log_p = torch.log_softmax(z_s.to(torch.float32, copy=True), dim=-1)
    ce = -(log_p.gather(1, index).squeeze(1) * valid).sum()
    if grad is not None:  # d CE / dz_s = p − onehot(target)
        probs = log_p.exp_()
        probs.scatter_add_(1, index, -valid.to(probs.dtype).unsqueeze(1))
        grad.add_(probs.mul_(alpha)).mul_(valid.unsqueeze(1))
        gradient.copy_(grad)
    return ce, kl


def _loss_function():
    import torch

    class DistillLoss(torch.autograd.Function):
        """Forward: the loss; the gradient w.r.t. the student's logits is computed at the same time and saved."""

        @staticmethod
        def forward(ctx, student_logits, teacher_logits, targets, alpha, temperature, n_tokens):
            vocab = student_logits.shape[-1]
            z_s, z_t = student_logits.reshape(-1, vocab), teacher_logits.reshape(-1, vocab)
            flat = targets.reshape(-1)
            buffer = torch.empty_like(student_logits) if student_logits.requires_grad else None
            rows = chunk_rows(vocab)
            ce = kl = torch.zeros((), dtype=torch.float32, device=student_logits.device)
            for start in range(0, z_s.shape[0], rows):
                part = slice(start, start + rows)
                target = buffer.view(-1, vocab)[part] if buffer is not None else None
                ce_part, kl_part = _fold_chunk(z_s[part], z_t[part], flat[part], alpha, temperature, target)
                ce, kl = ce + ce_part, kl + kl_part
            n = torch.as_tensor(n_tokens, dtype=torch.float32, device=ce.device).clamp(min=1)
            if buffer is not None:
                buffer.div_(n.to(buffer.dtype))
            ctx.gradient = buffer
            ctx.mark_non_differentiable(ce, kl)
            loss = (alpha * ce + (1 - alpha) * temperature**2 * kl) / n
            return loss, ce, kl

        @staticmethod
        def backward(ctx, grad_loss, _ce, _kl):
            gradient, ctx.gradient = ctx.gradient, None  # used once: the graph is not retained
            if not bool(grad_loss == 1):
                gradient.mul_(grad_loss.to(gradient.dtype))
            return gradient, None, None, None, None, None

    return DistillLoss


_FUNCTION = None


def distill_loss(student_logits, teacher_logits, targets, *, alpha: float, temperature: float, n_tokens):
    """(loss, CE sum, KL sum): the distillation loss over positions whose `targets` are not -100.

    Args:
        student_logits: (batch, seq, vocab), position i scoring token i + 1.
        teacher_logits: The same shape, from the frozen teacher (no gradient).
        targets: (batch, seq) next-token ids, -100 where nothing is scored.
        alpha: Share of the hard-label cross-entropy.
        temperature: Softmax temperature of the KL term.
        n_tokens: What the sums are divided by (the answer tokens of the whole optimizer step).
    """
    global _FUNCTION
    if _FUNCTION is None:
        _FUNCTION = _loss_function()
    return _FUNCTION.apply(student_logits, teacher_logits, targets, alpha, temperature, n_tokens)


def _forward_inputs(inputs: dict) -> dict:
    return {k: inputs[k] for k in ("input_ids", "attention_mask", "position_ids") if k in inputs}


def _trainer_class():
    import torch
    from trl import SFTTrainer

    class LogitDistillTrainer(SFTTrainer):
        """SFTTrainer whose loss is the distillation loss against `teacher_model` (frozen, eval mode)."""

        def __init__(self, *args, teacher_model, alpha: float, temperature: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.teacher_model = self.accelerator.prepare_model(teacher_model, evaluation_mode=True)
            self.distill_alpha, self.distill_temperature = alpha, temperature

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            mode = "train" if self.model.training else "eval"
            forward = {**_forward_inputs(inputs), "use_cache": False}
            with torch.no_grad():  # first, so its working set is gone before the student's forward
                teacher_logits = self.teacher_model(**forward).logits
            outputs = model(**forward)
            targets = torch.nn.functional.pad(inputs["labels"][:, 1:], (0, 1), value=IGNORE)
            n_valid = (targets != IGNORE).sum()
            loss, ce, kl = distill_loss(outputs.logits, teacher_logits, targets, alpha=self.distill_alpha,
                                        temperature=self.distill_temperature,
                                        n_tokens=n_valid if num_items_in_batch is None else num_items_in_batch)
            del teacher_logits
            if (self.args.average_tokens_across_devices and num_items_in_batch is not None
                    and self.accelerator.num_processes > 1):  # as SFTTrainer: DDP averages the gradients
                loss = loss * self.accelerator.num_processes
            count = max(int(n_valid), 1)
            self._metrics[mode]["distill_ce"].append(float(ce) / count)
            self._metrics[mode]["distill_kl"].append(float(kl) / count)
            if not return_outputs:
                del outputs
                return loss
            return loss, outputs

    return LogitDistillTrainer


def build_distill_trainer(step: TrainStep, base: str, tokenizer, train_records: list[dict],
                          eval_records: list[dict], output_dir: Path, precision: str, *, use_cpu: bool, teacher: str):
    """The student for `step.method` with the teacher loaded beside it, in the distillation trainer."""
    from backends.train.sft import build_sft_trainer

    return build_sft_trainer(step, base, tokenizer, train_records, eval_records, output_dir, precision,
                             use_cpu=use_cpu, trainer_class=_trainer_class(),
                             teacher_model=load_teacher(teacher, precision), alpha=step.distill_alpha,
                             temperature=step.distill_temperature)


def heldout_distill(student, teacher, batches: list[dict], precision: str) -> dict:
    """Mean CE of student and teacher and mean KL(teacher ‖ student) at T = 1 over the answer tokens of `batches`.

    Returns:
        `student_loss`, `teacher_loss`, `kl` (nats per answer token) and `n_tokens`.
    """
    import torch

    from backends.train.builders import torch_dtype

    was_training = student.training
    student.eval()
    device = next(student.parameters()).device
    sums = {"student_loss": 0.0, "teacher_loss": 0.0, "kl": 0.0}
    n_tokens = 0
    with torch.no_grad(), torch.autocast(device.type, dtype=torch_dtype(precision), enabled=precision != "fp32"):
        for batch in batches:
            ids = batch["input_ids"].to(device)
            targets = torch.nn.functional.pad(batch["labels"][:, 1:], (0, 1), value=IGNORE).to(device).reshape(-1)
            valid = targets != IGNORE
            if not bool(valid.any()):
                continue
            z_s = student(input_ids=ids, use_cache=False).logits.float()
            z_s = z_s.reshape(-1, z_s.shape[-1])[valid]
            z_t = teacher(input_ids=ids, use_cache=False).logits.float().reshape(-1, z_s.shape[-1])[valid]
            log_s, log_t = torch.log_softmax(z_s, -1), torch.log_softmax(z_t, -1)
            index = targets[valid].unsqueeze(1)
            sums["student_loss"] += float(-log_s.gather(1, index).sum())
            sums["teacher_loss"] += float(-log_t.gather(1, index).sum())
            sums["kl"] += float((log_t.exp() * (log_t - log_s)).sum())
            n_tokens += int(valid.sum())
    student.train(was_training)
    return {**{k: v / max(n_tokens, 1) for k, v in sums.items()}, "n_tokens": n_tokens}
