from teachloop.evals.metrics import EvalSummary
from teachloop.loop.config import build_config
from teachloop.loop.nodes.evaluate import stop_reason
from teachloop.loop.state import LoopState, SampleCounts


def _state(round_: int, dev_accuracies: list[float], selected: int = 0) -> LoopState:
    evals = []
    for r, acc in enumerate(dev_accuracies):
        metrics = {
            "skill": "all",
            "n": 10,
            "solved": round(acc * 10),
            "accuracy": acc,
            "ci_low": 0.0,
            "ci_high": 1.0,
            "mean_reward": acc,
        }
        evals.append(
            EvalSummary.model_validate({"round": r, "split": "dev", "overall": metrics, "skills": {}})
        )
    counts = SampleCounts(
        round=1, planned=selected, generated=selected, usable=selected, selected=selected, replayed=0
    )
    return {"round": round_, "evals": evals, "samples": [counts]}


def test_stops_after_the_configured_rounds() -> None:
    cfg = build_config({"rounds": 2})
    assert stop_reason(_state(1, [0.0, 0.2]), cfg, 0) is None
    assert stop_reason(_state(2, [0.0, 0.2, 0.3]), cfg, 0) == "completed 2 round(s)"


def test_stops_at_target_plateau_time_and_data_budgets() -> None:
    assert "target" in (
        stop_reason(_state(1, [0.1, 0.9]), build_config({"rounds": 9, "stop": {"target_accuracy": 0.8}}), 0)
        or ""
    )
    plateau = build_config({"rounds": 9, "stop": {"patience": 2}})
    assert stop_reason(_state(3, [0.1, 0.5, 0.5, 0.4]), plateau, 0) == "no dev gain for 2 round(s)"
    assert stop_reason(_state(3, [0.1, 0.5, 0.4, 0.6]), plateau, 0) is None
    timed = build_config({"rounds": 9, "stop": {"max_minutes": 1}})
    assert stop_reason(_state(1, [0.1, 0.2]), timed, 59) is None
    assert "time budget" in (stop_reason(_state(1, [0.1, 0.2]), timed, 60) or "")
    data = build_config({"rounds": 9, "stop": {"max_samples": 100}})
    assert stop_reason(_state(1, [0.1, 0.2], selected=99), data, 0) is None
    assert "data budget" in (stop_reason(_state(1, [0.1, 0.2], selected=100), data, 0) or "")
