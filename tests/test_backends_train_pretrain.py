"""Continued pretraining (`objective: causal_lm`): exact packing of a corpus, the step's fields and links, a tiny
run that lowers held-out perplexity, and the example (continued pretraining, SFT, RAG) resuming after kill -9."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import kill_when_ready

from advisor.core.errors import AdvisorError
from advisor.core.models import TrainStep
from backends.common.tiny import build_tokenizer
from backends.train import BACKEND
from backends.train.pretrain import corpus_records, load_corpus, pack_corpus, split_blocks

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "domain-pretraining"


def _corpus(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("Slack water lasts forty minutes at the north site.\n", encoding="utf-8")
    (docs / "sub" / "b.md").write_text("# Seals\n\nK-class seals are nitrile; V-class suit high flow.\n",
                                       encoding="utf-8")
    (docs / "c.html").write_text("<html><body><p>Rotor code R10 is the best balance grade.</p></body></html>",
                                 encoding="utf-8")
    (docs / "d.csv").write_text("part,note\nyaw bearing,re-greased\nslip ring,salt creep\n", encoding="utf-8")
    (docs / ".hidden.txt").write_text("not read", encoding="utf-8")
    return docs


def test_packing_is_exact(tmp_path):
    texts = load_corpus(_corpus(tmp_path))
    assert len(texts) == 4 and not any("not read" in t for t in texts)
    assert any("Rotor code R10" in t and "<p>" not in t for t in texts)  # HTML through the RAG loader
    tokenizer = build_tokenizer(corpus_records(texts))
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    stream = [i for doc in ids for i in [*doc, tokenizer.eos_token_id]]
    for seq_len in (8, 13, 32):
        packed = pack_corpus(texts, tokenizer, seq_len)
        assert packed.n_documents == 4
        assert packed.n_tokens == sum(len(d) for d in ids) + 4 == len(stream)
        assert len(packed.blocks) == len(stream) // seq_len
        assert packed.n_dropped_tokens == len(stream) % seq_len
        assert all(len(b) == seq_len for b in packed.blocks)
        assert [t for b in packed.blocks for t in b] == stream[: len(packed.blocks) * seq_len]
    # One EOS per document, every one where its document ends.
    assert stream.count(tokenizer.eos_token_id) == 4


def test_held_out_blocks_are_disjoint_and_counted():
    blocks = [[i] * 4 for i in range(20)]
    train, held = split_blocks(blocks, 0.15, seed=3)
    assert len(held) == 3 and len(train) == 17
    assert sorted(b[0] for b in train + held) == list(range(20))
    assert split_blocks(blocks, 0.15, seed=3) == (train, held)  # the seed fixes it
    assert split_blocks(blocks, 0.0, seed=3) == (blocks, [])
    with pytest.raises(AdvisorError, match="too few"):
        split_blocks(blocks[:1], 0.5, seed=0)


def test_empty_or_missing_corpus_is_one_error(tmp_path):
    with pytest.raises(AdvisorError, match="not a folder"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdvisorError, match="no readable text"):
        load_corpus(tmp_path / "empty")


def test_step_fields_are_checked():
    ok = TrainStep(method="lora", objective="causal_lm", base_model="tiny-demo", data_path="/docs")
    assert ok.objective == "causal_lm"
    for bad in ({"method": "dpo"}, {"method": "ia3"}, {"replay_fraction": 0.1}, {"base_model": "continued"}):
        with pytest.raises(ValueError):
            TrainStep(**{"method": "full", "objective": "causal_lm", "base_model": "tiny-demo", "data_path": "/d",
                         **bad})


def test_continued_base_points_at_the_pretrained_model(tmp_path):
    cpt = TrainStep(method="full", objective="causal_lm", base_model="llama-3.2-1b", data_path="/docs")
    sft = TrainStep(method="lora", base_model="continued", data_path="/sft.jsonl")
    folder = tmp_path / "1-train-full"
    # Before step 1 ran, the check sees its base; after, the model it wrote.
    assert BACKEND.link(sft, [(cpt, folder)], for_check=True).base_model == "llama-3.2-1b"
    with pytest.raises(AdvisorError, match="holds no model yet"):
        BACKEND.link(sft, [(cpt, folder)])
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text("{}")
    assert BACKEND.link(sft, [(cpt, folder)]).base_model == str(folder / "model")
    lora_cpt = cpt.model_copy(update={"method": "lora"})
    with pytest.raises(AdvisorError, match="merge: true"):
        BACKEND.link(sft, [(lora_cpt, folder)])
    with pytest.raises(AdvisorError, match="no `objective: causal_lm` step"):
        BACKEND.link(sft, [])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["full", "lora"])
def test_continued_pretraining_lowers_held_out_perplexity(method, tmp_path):
    from backends.train.run import run

    step = TrainStep(method=method, objective="causal_lm", base_model="tiny-demo", data_path=str(EXAMPLE / "corpus"),
                     learning_rate=3e-3, batch_size=8, seq_len=64, max_steps=25, eval_fraction=0.15,
                     merge=method == "lora")
    result = run(step, tmp_path / "run")
    assert result.status == "succeeded" and result.is_packed and result.data_format == "raw text (packed)"
    assert result.n_train_examples + result.n_eval_examples == 160 and result.n_eval_examples == 24
    nll = result.verdict.nll
    assert result.verdict.outcome == "IMPROVED" and nll.high < 0
    # Held-out perplexity falls by at least half (full) or a third (LoRA: the random embeddings stay frozen).
    assert math.exp(nll.mean_b) < math.exp(nll.mean_a) / (2 if method == "full" else 1.5)
    if method == "lora":
        merged = tmp_path / "run" / "merged"
        assert result.merge.is_match and (merged / "config.json").is_file() and (merged / "tokenizer.json").is_file()


@pytest.mark.slow
def test_example_pretrains_then_tunes_and_resumes_after_kill_during_pretraining(tmp_path):
    from backends.train.fit import is_complete_checkpoint

    plan = yaml.safe_load((EXAMPLE / "plan.yaml").read_text())
    for step in plan["steps"]:
        for key in ("data_path", "docs_dir"):
            if key in step:
                step[key] = str(EXAMPLE / step[key])
    plan["steps"][0]["max_steps"], plan["steps"][1]["max_steps"] = 30, 20
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(plan))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "advisor", "run", str(plan_path), "--yes", "--demo", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    checkpoints = out / "1-train-full" / "model"
    # A finished checkpoint to resume from (a half-written one is discarded, and training restarts).
    kill_when_ready(cmd, lambda: checkpoints.is_dir() and any(is_complete_checkpoint(p)
                                                              for p in checkpoints.glob("checkpoint-*")), env=env)
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    cpt, sft, rag = result["steps"]
    assert [s["kind"] for s in result["steps"]] == ["train", "train", "rag"]
    sessions = json.loads((out / "1-train-full" / "result.json").read_text())["fit"]
    assert sessions["resumed_from_step"] is not None  # continued from the killed attempt's checkpoint
    assert cpt["verdict"]["outcome"] == "IMPROVED" and cpt["benefit"]["eval_loss_after"] < cpt["benefit"]["eval_loss_before"]
    sft_result = json.loads((out / "2-train-lora" / "result.json").read_text())
    assert sft_result["base_model_path"] == str(out / "1-train-full" / "model")
    report = (out / "report.md").read_text()
    assert "base vs continued (held-out corpus blocks)" in report and "perplexity" in report


def test_estimate_counts_the_blocks_the_backend_packs():
    from advisor.core.estimate.pretrain import packed_blocks

    texts = load_corpus(EXAMPLE / "corpus")
    tokenizer = build_tokenizer(corpus_records(texts))
    packed = pack_corpus(texts, tokenizer, 64)
    train, held = split_blocks(packed.blocks, 0.15, seed=0)
    corpus_tokens = packed.n_tokens - packed.n_documents  # the documents' own tokens
    assert packed_blocks(corpus_tokens, packed.n_documents, 64, 0.15) == (len(train), len(held))
    assert packed_blocks(0, 0, 64, 0.15) == (0, 0)


def test_estimate_is_the_packed_sft_job_and_scales_with_corpus_tokens():
    from advisor.core.catalog import resolve_gpu, resolve_model
    from advisor.core.estimate.compute import estimate_training_compute
    from advisor.core.estimate.memory import estimate_memory
    from advisor.core.estimate.precision import choose_precision, device_of
    from advisor.core.estimate.pretrain import predict_continued_pretraining
    from advisor.core.estimate.translate import train_spec

    step = TrainStep(method="lora", objective="causal_lm", base_model="llama-3.1-8b", data_path="/docs",
                     seq_len=2048, batch_size=4, eval_fraction=0.01)
    gpu = resolve_gpu("h100")
    small = predict_continued_pretraining(step, 100_000_000, 5_000, "h100")
    large = predict_continued_pretraining(step, 200_000_000, 10_000, "h100")
    n_train = (100_000_000 + 5_000) // 2048 - round(0.01 * ((100_000_000 + 5_000) // 2048))
    assert small.n_examples == n_train and small.mean_example_tokens == 2048
    assert large.hours == pytest.approx(2 * small.hours, rel=1e-3) and large.usd > small.usd > 0
    # Memory: the same job as supervised fine-tuning packed to seq_len.
    sft = step.model_copy(update={"objective": "sft", "packing": True})
    compute, _ = choose_precision(sft.precision, device_of(gpu))
    assert small.peak_bytes == estimate_memory(train_spec(sft, resolve_model("llama-3.1-8b"), compute)).peak_bytes
    by_hand = estimate_training_compute(train_spec(sft, resolve_model("llama-3.1-8b"), compute), gpu, n_train, 2048)
    assert small.hours == pytest.approx(by_hand.hours) and by_hand.n_tokens == n_train * 2048


def test_demo_packs_short_blocks_and_keeps_a_continued_base():
    cpt = TrainStep(method="lora", objective="causal_lm", base_model="llama-3.1-8b", data_path="/docs", seq_len=2048,
                    grad_accum=16, eval_fraction=0.01, merge=True)
    demo, note = BACKEND.demo(cpt)
    assert (demo.base_model, demo.seq_len, demo.eval_fraction, demo.grad_accum) == ("tiny-demo", 64, 0.15, 1)
    assert "blocks of 64 tokens (not 2048)" in note
    sft = TrainStep(method="lora", base_model="continued", data_path="/sft.jsonl", grad_accum=4)
    demo, note = BACKEND.demo(sft)
    assert demo.base_model == "continued" and demo.max_steps == 60 and demo.grad_accum == 1 and note
