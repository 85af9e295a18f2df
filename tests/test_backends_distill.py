"""Distillation: the estimate's arithmetic by hand, the step's links and demo swap, the API teacher against a
local fake of the OpenAI API (answers kept across an interrupted attempt), and the example end to end with a
kill -9 in the distill step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import kill_when_ready

from advisor.core.catalog import resolve_gpu, resolve_model
from advisor.core.errors import AdvisorError
from advisor.core.estimate import params as P
from advisor.core.estimate.distill import break_even_requests, serving_monthly, teacher_cost
from advisor.core.estimate.serving import BANDWIDTH_EFFICIENCY, MAX_BATCH, MEMORY_FOR_WEIGHTS, PREFILL_MFU
from advisor.core.models import ApiPriceSpec, DistillStep, TrainStep
from advisor.core.planning import load_plan, predict_missing

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "distillation"
API = ApiPriceSpec(name="fake", provider="test", input_per_mtok_usd=1.0, output_per_mtok_usd=4.0, source="test",
                   as_of="2026-01-01")


def test_api_teacher_cost_is_tokens_times_price():
    cost = teacher_cost(1000, 100_000, 50_000, api=API)
    assert cost.usd == pytest.approx((100_000 * 1.0 + 50_000 * 4.0) / 1e6)  # 0.30 USD
    assert cost.seconds is None and cost.gpu_hours is None


def test_self_hosted_teacher_hours_follow_the_serving_formula_by_hand():
    model, gpu = resolve_model("llama-3.1-8b"), resolve_gpu("l4")
    n, prompt, answer = 1000, 200, 100  # per prompt
    inv = P.count_params(model)
    weights = inv.n_params * 2
    kv_seq = 2 * model.n_layers * model.n_kv_heads * model.head_dim * (prompt + answer) * 2
    assert weights + kv_seq < gpu.memory_bytes * MEMORY_FOR_WEIGHTS  # one L4 holds it
    batch = min(MAX_BATCH, int((gpu.memory_bytes * MEMORY_FOR_WEIGHTS - weights) // kv_seq))
    flops = gpu.bf16_tflops * 1e12
    bandwidth = gpu.bandwidth_gb_per_s * 1e9 * BANDWIDTH_EFFICIENCY
    step = max((weights + batch * kv_seq * (prompt + answer / 2) / (prompt + answer)) / bandwidth,
               2 * inv.n_active_params * batch / (flops * PREFILL_MFU))
    busy = n * (prompt * 2 * inv.n_active_params / (flops * PREFILL_MFU) + answer * step / batch)
    cost = teacher_cost(n, n * prompt, n * answer, model=model, gpu=gpu)
    assert cost.seconds == pytest.approx(busy, rel=1e-9)
    assert cost.gpu_hours == pytest.approx(busy / 3600, rel=1e-9)
    assert cost.usd == pytest.approx(busy / 3600 * 0.78, rel=1e-9)


def test_break_even_of_an_api_teacher_against_an_edge_student():
    one_time, months = 120.0, 12.0
    per_request = (100 * 1.0 + 50 * 4.0) / 1e6  # 3e-4 USD

    def saving(volume):
        return (serving_monthly(volume, 100, 50, api=API)
                - serving_monthly(volume, 100, 50, model=resolve_model("llama-3.2-1b"), edge=True))

    volume = break_even_requests(one_time, months, saving)
    assert volume == pytest.approx(one_time / months / per_request, rel=1e-3)  # 33,333 requests/month
    assert break_even_requests(one_time, months, lambda v: 0.0) is None  # never cheaper: no break-even
    assert break_even_requests(one_time, months, lambda v: 500.0) == 0.0  # a fixed saving repays at any volume


def test_example_plan_is_predicted_before_it_runs():
    plan, _ = predict_missing(load_plan(EXAMPLE / "plan.yaml"))
    p = plan.steps[1].prediction
    assert p is not None and p.teacher == "llama-3.1-8b" and p.student == "llama-3.2-1b" and p.gpu == "l4"
    lines = (EXAMPLE / "prompts.jsonl").read_text().splitlines()
    assert p.n_prompts == len(lines) == 64
    assert p.teacher_seconds > 0 and p.teacher_usd > 0 and p.student_usd > 0
    assert p.one_time_usd == pytest.approx(p.teacher_usd + p.student_usd)
    assert p.student_monthly_usd == 0.0 and p.teacher_monthly_usd > 0  # edge student, always-on teacher
    assert p.break_even_requests_per_month == 0.0


def test_step_fields_are_checked():
    with pytest.raises(ValueError, match="output_file"):
        DistillStep(teacher="tiny-demo", prompts_path="/x.jsonl", output_file="../out.jsonl")
    with pytest.raises(ValueError, match="api_base_url"):
        DistillStep(teacher="m", prompts_path="/x.jsonl", api_base_url="ftp://host")
    with pytest.raises(ValueError, match="data_from"):
        TrainStep(method="dpo", base_model="tiny-demo", data_path="/x.jsonl", data_from="distill")


def test_links_point_teacher_and_student_at_earlier_steps(tmp_path):
    from backends import backend_for

    teacher = TrainStep(method="full", base_model="tiny-demo", data_path="/d.jsonl")
    distill = DistillStep(teacher="full", prompts_path="/p.jsonl")
    student = TrainStep(method="full", base_model="tiny-demo-small", data_path="/p.jsonl", data_from="distill")
    earlier = [(teacher, tmp_path / "1-train-full")]
    linked = backend_for("distill").link(distill, earlier)
    assert linked.teacher == str(tmp_path / "1-train-full" / "model")
    assert backend_for("distill").link(distill, earlier, for_check=True).teacher == "full"  # not trained yet
    both = [*earlier, (distill, tmp_path / "2-distill")]
    assert backend_for("train").link(student, both).data_path == str(tmp_path / "2-distill" / "teacher.jsonl")
    assert backend_for("train").link(student, both, for_check=True).data_path == "/p.jsonl"  # no answers yet
    with pytest.raises(AdvisorError, match="no distill step"):
        backend_for("train").link(student, earlier)
    with pytest.raises(AdvisorError, match="no `lora` training step"):
        backend_for("distill").link(distill.model_copy(update={"teacher": "lora"}), earlier)


def test_demo_swaps_an_api_teacher_and_makes_the_student_smaller():
    from backends import backend_for

    api = DistillStep(teacher="gpt-5-mini", prompts_path="/p.jsonl", api_base_url="https://api.example.com/v1")
    swapped, note = backend_for("distill").demo(api)
    assert swapped.teacher == "tiny-demo" and swapped.api_base_url is None and "gpt-5-mini" in note
    assert backend_for("distill").demo(DistillStep(teacher="full", prompts_path="/p.jsonl")) == (
        DistillStep(teacher="full", prompts_path="/p.jsonl"), None)
    student = TrainStep(method="full", base_model="llama-3.2-1b", data_path="/p.jsonl", data_from="distill")
    assert backend_for("train").demo(student)[0].base_model == "tiny-demo-small"


def test_small_demo_model_is_smaller_than_the_demo_model():
    from backends.common.tiny import build_tokenizer, tiny_config

    tokenizer = build_tokenizer([{"messages": [{"role": "user", "content": "hello there"}]}])
    big, small = tiny_config(tokenizer, "tiny-demo"), tiny_config(tokenizer, "tiny-demo-small")
    assert small.num_hidden_layers < big.num_hidden_layers and small.hidden_size < big.hidden_size


class _FakeApi(BaseHTTPRequestHandler):
    """OpenAI-style `/v1/chat/completions`: answers `echo: <last user message>`; status 500 when told to."""

    asked: list[str] = []
    fail = False

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.fail or self.path != "/v1/chat/completions":
            self.send_response(500)
            self.end_headers()
            return
        question = body["messages"][-1]["content"]
        type(self).asked.append(question)
        reply = {"choices": [{"message": {"role": "assistant", "content": f"echo: {question}"}}],
                 "usage": {"prompt_tokens": len(question.split()), "completion_tokens": len(question.split()) + 1}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeApi.asked, _FakeApi.fail = [], False
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_api_teacher_answers_and_a_resumed_attempt_keeps_what_was_written(fake_api, tmp_path):
    from backends.distill.run import run

    step = DistillStep(teacher="fake-model", prompts_path=str(EXAMPLE / "prompts.jsonl"), api_base_url=fake_api,
                       batch_size=5, max_prompts=12)
    first = run(step, tmp_path)
    assert first.teacher_kind == "api" and first.n_answers == 12 and first.n_resumed == 0
    answers = (tmp_path / "teacher.jsonl").read_text().splitlines()
    questions = [json.loads(line)["messages"][0]["content"] for line in (EXAMPLE / "prompts.jsonl").read_text()
                 .splitlines()[:12]]
    assert [json.loads(a)["messages"][-1]["content"] for a in answers] == [f"echo: {q}" for q in questions]
    assert first.answer_tokens == sum(len(q.split()) + 1 for q in questions)  # the API's usage, summed
    # An attempt killed after 7 answers, mid-way through writing the 8th line:
    (tmp_path / "teacher.jsonl").write_text("\n".join(answers[:7]) + "\n" + answers[7][:20])
    _FakeApi.asked = []
    second = run(step, tmp_path, resume=True)
    assert _FakeApi.asked == questions[7:]  # only the prompts not answered were asked again
    assert second.n_resumed == 7 and second.n_answers == 12
    assert (tmp_path / "teacher.jsonl").read_text().splitlines()[:7] == answers[:7]
    assert second.answer_tokens == first.answer_tokens
    # The prompts file edited between attempts: nothing kept is trusted, every prompt is answered afresh.
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps({"prompt": f"q{i}"}) + "\n" for i in range(3)))
    _FakeApi.asked = []
    third = run(step.model_copy(update={"prompts_path": str(edited)}), tmp_path, resume=True)
    assert _FakeApi.asked == ["q0", "q1", "q2"] and third.n_resumed == 0 and third.n_answers == 3


def test_api_failure_is_one_line_and_keeps_nothing_half_written(fake_api, tmp_path):
    from backends.distill.run import run

    _FakeApi.fail = True
    step = DistillStep(teacher="m", prompts_path=str(EXAMPLE / "prompts.jsonl"), api_base_url=fake_api)
    with pytest.raises(AdvisorError, match="HTTP 500") as exc:
        run(step, tmp_path)
    assert "\n" not in exc.value.message
    assert not (tmp_path / "teacher.jsonl").exists() or not (tmp_path / "teacher.jsonl").read_text()


@pytest.mark.slow
def test_example_distils_and_resumes_after_kill_in_the_distill_step(tmp_path):
    plan = yaml.safe_load((EXAMPLE / "plan.yaml").read_text())
    for step in plan["steps"]:
        for key in ("data_path", "prompts_path"):
            if key in step:
                step[key] = str(EXAMPLE / step[key])
    plan["steps"][1]["batch_size"] = 1  # one line per batch: time to interrupt it part-way
    for i in (0, 2):
        plan["steps"][i]["max_steps"] = 30  # half the example's steps: enough for the student to follow
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump(plan))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "advisor", "run", str(plan_path), "--yes", "--demo", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    answers = out / "2-distill" / "teacher.jsonl"
    kill_when_ready(cmd, lambda: answers.is_file() and answers.read_text().count("\n") >= 3, env=env)
    kept = answers.read_text().splitlines()
    kept = kept[:-1] if kept and not answers.read_text().endswith("\n") else kept
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "[1/3] train full: done earlier, skipped" in rerun.stderr
    lines = answers.read_text().splitlines()
    assert lines[: len(kept)] == kept  # what the killed attempt wrote was kept, not redone
    indices = [json.loads(line)["teacher"]["index"] for line in lines]
    assert len(set(indices)) == len(indices)
    result = json.loads((out / "result.json").read_text())
    distill, student = result["steps"][1], result["steps"][2]
    m = distill["measured"]
    assert m["n_resumed"] >= len(kept) >= 3 and m["n_answers"] + m["n_empty"] == 64 == len(lines) + m["n_empty"]
    assert m["answer_tokens"] > 0 and m["wall_seconds"] > 0
    assert distill["predicted"]["n_prompts"] == 64 and distill["predicted"]["teacher_seconds"] > 0
    # The student's held-out references are the teacher's answers: it moves towards the teacher.
    accuracy = student["benefit"]["task_accuracy"]
    assert accuracy["trained"]["mean_nll"] < accuracy["base"]["mean_nll"]
    assert accuracy["trained"]["token_f1"] > accuracy["base"]["token_f1"]
    report = (out / "report.md").read_text()
    assert "tokens generated" in report and "break-even volume" in report and "tiny-demo-small" in report


def test_prompts_without_answers_are_answered_and_predicted_at_the_cap(fake_api, tmp_path):
    from advisor.core.distilling import measure_prompts
    from advisor.core.errors import InvalidInputError
    from backends import backend_for
    from backends.base import RunContext
    from backends.distill.run import load_prompts, run

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Where is order 7?"}) + "\n" + json.dumps(
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "And order 8?"}]}) + "\n")
    step = DistillStep(teacher="m", prompts_path=str(prompts), api_base_url=fake_api, max_new_tokens=40)
    assert backend_for("distill").check(step, RunContext(step_dir=tmp_path / "x")) == []
    result = run(step, tmp_path / "out")
    lines = [json.loads(line) for line in (tmp_path / "out" / "teacher.jsonl").read_text().splitlines()]
    assert [line["messages"] for line in lines] == [
        [{"role": "user", "content": "Where is order 7?"}, {"role": "assistant", "content": "echo: Where is order 7?"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "And order 8?"},
         {"role": "assistant", "content": "echo: And order 8?"}]]
    assert result.n_answers == 2
    assert measure_prompts(prompts, None, 40) == (2, round(17 / 4) + round(22 / 4), 80)  # no reference: the cap
    student = TrainStep(method="full", base_model="tiny-demo-small", data_path=str(prompts), data_from="distill")
    assert backend_for("train").check(student, RunContext(step_dir=tmp_path / "s")) == []  # checked on the answers
    prompts.write_text(json.dumps({"prompt": " "}) + "\n")
    with pytest.raises(InvalidInputError, match="prompts.jsonl:1: empty `prompt`"):
        load_prompts(step)


def test_api_teacher_against_a_served_student_breaks_even_where_the_bills_cross():
    from advisor.core.catalog import resolve_api_model
    from advisor.core.distilling import predict_distill

    distill = DistillStep(teacher="gpt-5-mini", prompts_path=str(EXAMPLE / "prompts.jsonl"),
                          api_base_url="https://api.example.com/v1", gpu="l4", requests_per_day=1000)
    student = TrainStep(method="lora", base_model="llama-3.2-1b", data_path=str(EXAMPLE / "prompts.jsonl"),
                        data_from="distill")
    p = predict_distill(distill, [distill, student], 0)
    api = resolve_api_model("gpt-5-mini")
    assert p.teacher_kind == "api" and p.teacher_seconds is None
    assert p.teacher_usd == pytest.approx((p.prompt_tokens * api.input_per_mtok_usd
                                           + p.answer_tokens * api.output_per_mtok_usd) / 1e6)
    per_request = (p.prompt_tokens * api.input_per_mtok_usd + p.answer_tokens * api.output_per_mtok_usd) / 1e6 / 64
    replica = 0.78 * 730  # one always-on L4 serves the 1B student at this volume
    assert p.student_monthly_usd == pytest.approx(replica)
    assert p.teacher_monthly_usd == pytest.approx(1000 * 30 * per_request, rel=1e-3)
    assert p.break_even_requests_per_month == pytest.approx((replica + p.one_time_usd / 12) / per_request, rel=1e-3)
