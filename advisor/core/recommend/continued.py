"""Continued pretraining as a path: LoRA on the documents (`objective: causal_lm`, packed `seq_len` blocks, one
epoch, merged), then the instruction SFT of the LoRA path on the merged model (`base_model: continued`).

    corpus        the answers' documents: measured tokens of corpus_path, else corpus_tokens
    one-time      `estimate.pretrain.predict_continued_pretraining` on the SFT path's GPU + the SFT path's cost
    memory        the larger of the two jobs (each is the packed training job at its seq_len)
    serving       as LoRA's: one adapter on the continued base
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from advisor.core.errors import AdvisorError
from advisor.core.estimate.pretrain import predict_continued_pretraining
from advisor.core.models import CONTINUED, TrainStep
from advisor.core.recommend.inputs import Situation
from advisor.core.recommend.market import owned_power

__all__ = ["CPT_SEQ_LEN", "estimate_continued_pretraining"]

CPT_SEQ_LEN = 2048  # packed block length (the pretraining context of most catalog bases is longer)
CPT_EPOCHS = 1.0  # one pass over the corpus, as Gururangan et al. 2020 (DAPT) train
CPT_EVAL_FRACTION = 0.01
PLACEHOLDER_DOCS = "docs"


def estimate_continued_pretraining(sit: Situation, estimate_training: Callable) -> object:
    """The option's estimate: the SFT (LoRA) estimate with the continued-pretraining step before it."""
    sft = estimate_training(sit, "lora")
    est = dataclasses.replace(sft, name="continued_pretraining", assumptions=list(sft.assumptions))
    if sft.step is None or sft.gpu is None:
        return est
    cpt = TrainStep(method="lora", objective="causal_lm", base_model=sft.step.base_model,
                    data_path=sit.answers.corpus_path or PLACEHOLDER_DOCS, seq_len=CPT_SEQ_LEN, batch_size=1,
                    grad_accum=16, epochs=CPT_EPOCHS, eval_fraction=CPT_EVAL_FRACTION, merge=True,
                    n_gpus=sft.step.n_gpus, distributed=sft.step.distributed, learning_rate=1e-4)
    try:
        prediction = predict_continued_pretraining(cpt, sit.corpus_tokens, sit.n_documents, sft.gpu.name)
    except AdvisorError as exc:
        est.fits = False
        est.assumptions.append(f"continued pretraining not estimated: {exc.message}")
        return est
    owned = sft.step.prediction is not None and sft.step.prediction.gpu_owned
    cost = prediction.usd or 0.0
    if owned:
        power = owned_power(sft.gpu.name)
        cost = (prediction.hours or 0.0) * cpt.n_gpus * power[0] / 1000 * power[1] if power else 0.0
    est.one_time_usd = sft.one_time_usd + cost
    est.out_of_pocket_usd = sft.out_of_pocket_usd + (0.0 if owned else cost)
    est.fits = bool(sft.fits) and prediction.fits
    est.steps_before = [cpt.model_copy(update={"prediction": prediction.model_copy(update={"gpu_owned": owned})})]
    est.step = sft.step.model_copy(update={"base_model": CONTINUED})
    est.assumptions.insert(0, f"continued pretraining: {sit.corpus_tokens:,} corpus tokens → {prediction.n_examples:,} "
                           f"blocks of {CPT_SEQ_LEN} × {CPT_EPOCHS:g} epoch, LoRA r{cpt.lora_rank} merged: "
                           f"{prediction.hours or 0:,.1f} h, {cost:,.2f} USD on {cpt.n_gpus} × {sft.gpu.name} "
                           f"(peak {prediction.peak_bytes / 2**30:.1f} GiB); then the LoRA SFT below on the result")
    return est
