"""Evaluation runner: the student answers a split, the environment's verifier scores every answer.

Both halves are spans of their own (``student.generate`` with its token counts, then
``<env>.score`` with how many answers the verifier accepted), so a trace shows where an
evaluation's time went and what it found. The student answers through transformers (batched,
on the GPU when there is one) or, with ``eval.backend: vllm``, through a vLLM engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from teachloop.environments.base import Environment, Task
from teachloop.evals.config import EvalConfig
from teachloop.evals.metrics import ItemResult
from teachloop.tracing.spans import Tracer
from teachloop.training.generation import TokenUsage, generate
from teachloop.training.student import compute_device, load_student, weights_dtype


def evaluate_student(
    student_dir: Path, env: Environment, tasks: Sequence[Task], settings: EvalConfig, tracer: Tracer
) -> list[ItemResult]:
    """Answer and score ``tasks`` with the student saved in ``student_dir``, on ``settings.backend``."""
    if settings.backend == "vllm":
        from teachloop.training.vllm_backend import generate_vllm

        inputs = {"prompts": len(tasks), "max_new_tokens": settings.max_new_tokens, "backend": "vllm"}
        with tracer.span("tool", "student.generate", inputs=inputs) as sp:
            usage = TokenUsage()
            completions = generate_vllm(
                student_dir,
                [env.prompt(t) for t in tasks],
                settings.max_new_tokens,
                weights_dtype(settings.dtype, "cuda"),
                usage,
            )
            sp.add_tokens(usage.prompt_tokens, usage.completion_tokens)
        return score_answers(env, tasks, completions, tracer)
    device = compute_device()
    dtype = weights_dtype(settings.dtype, device)
    inputs = {"path": str(student_dir), "dtype": dtype, "device": device}
    with tracer.span("tool", "student.load", inputs=inputs):
        model, tokenizer = load_student(student_dir, device=device, dtype=dtype)
    return answer_and_score(model, tokenizer, env, tasks, settings, tracer)


def answer_and_score(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    env: Environment,
    tasks: Sequence[Task],
    settings: EvalConfig,
    tracer: Tracer,
) -> list[ItemResult]:
    inputs = {
        "prompts": len(tasks),
        "max_new_tokens": settings.max_new_tokens,
        "batch_size": settings.batch_size,
        "kv_cache": settings.kv_cache,
        "prefix_cache": settings.prefix_cache,
    }
    with tracer.span("tool", "student.generate", inputs=inputs) as sp:
        usage = TokenUsage()
        completions = generate(
            model,
            tokenizer,
            [env.prompt(t) for t in tasks],
            max_new_tokens=settings.max_new_tokens,
            batch_size=settings.batch_size,
            usage=usage,
            kv_cache=settings.kv_cache,
            prefix_cache=settings.prefix_cache,
        )
        sp.add_tokens(usage.prompt_tokens, usage.completion_tokens)
        sp.outputs = {"completions": len(completions), "first": completions[0][0] if completions else None}
    return score_answers(env, tasks, completions, tracer)


def score_answers(
    env: Environment, tasks: Sequence[Task], completions: Sequence[Sequence[str]], tracer: Tracer
) -> list[ItemResult]:
    results = []
    with tracer.span("tool", f"{env.name}.score", inputs={"answers": len(tasks)}) as sp:
        for task, (completion,) in zip(tasks, completions, strict=True):
            score = env.score(task, completion)
            results.append(
                ItemResult(
                    task_id=task.id,
                    skill=task.skill,
                    question=task.question,
                    answer=task.answer,
                    completion=completion,
                    parsed_answer=score.parsed_answer,
                    reward=score.reward,
                    feedback=score.feedback,
                )
            )
        solved = Counter(r.skill for r in results if r.solved)
        sp.outputs = {
            "solved": sum(solved.values()),
            "unparsed": sum(r.parsed_answer is None for r in results),
            "solved_by_skill": {skill: solved[skill] for skill in sorted({r.skill for r in results})},
        }
    return results
