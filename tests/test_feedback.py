"""DataEnvGym's three feedback levels: what the teacher sees, and a usable plan from each."""

from __future__ import annotations

from teachloop.agents.diagnoser import diagnose
from teachloop.agents.feedback import feedback_view, skill_tree
from teachloop.agents.planner import plan_round
from teachloop.environments.base import Skill
from teachloop.environments.ifeval import load_environment as load_ifeval
from teachloop.environments.reasoning_gym import default_environment
from teachloop.evals.metrics import ItemResult, summarize

SKILLS = [Skill(name=n) for n in ("fmt:title", "fmt:json", "case:upper")]


def _results(accuracy: dict[str, float], n: int = 10) -> list[ItemResult]:
    return [
        ItemResult(
            task_id=f"{skill}{i}",
            skill=skill,
            question=f"{skill} q{i}",
            answer="1",
            completion="1" if i < round(acc * n) else "wrong",
            parsed_answer=None,
            reward=1.0 if i < round(acc * n) else 0.0,
            feedback="correct" if i < round(acc * n) else "expected '1'",
        )
        for skill, acc in accuracy.items()
        for i in range(n)
    ]


ROUND0 = _results({"fmt:title": 0.2, "fmt:json": 0.6, "case:upper": 0.9})
ROUND1 = _results({"fmt:title": 0.5, "fmt:json": 0.6, "case:upper": 0.9})


def test_open_ended_shows_errors_without_skills_and_plans_uniformly() -> None:
    view = feedback_view("open_ended", summarize(1, "dev", ROUND1), ROUND1)
    assert view.skills == {} and view.groups == []
    assert len(view.failures) == 10 and all(f.skill is None for f in view.failures)
    assert view.failures[0].feedback == "expected '1'"
    report = diagnose(view, feedback_view("open_ended", summarize(0, "dev", ROUND0), []))
    assert report.skills == [] and report.level == "open_ended"
    assert report.accuracy == 2.0 / 3 and len(report.evidence) == 10 and "no skill tags" in report.summary
    plan = plan_round(report, SKILLS, budget=30, policy="deficit", min_share=0.1)
    assert {a.skill: a.n for a in plan.allocations} == {"fmt:title": 10, "fmt:json": 10, "case:upper": 10}
    assert "open-ended" in plan.allocations[0].reason


def test_skill_list_is_per_skill() -> None:
    report = diagnose(feedback_view("skill_list", summarize(1, "dev", ROUND1), ROUND1))
    assert [w.skill for w in report.skills] == ["fmt:title", "fmt:json", "case:upper"]
    assert report.groups == [] and report.evidence == []
    assert report.skills[0].evidence[0].feedback == "expected '1'"


def test_skill_tree_groups_skills_and_tracks_group_change() -> None:
    tree = skill_tree(load_ifeval(skills="startend:quotation,startend:end_checker,punctuation:no_comma"))
    assert tree == {
        "startend": ["startend:quotation", "startend:end_checker"],
        "punctuation": ["punctuation:no_comma"],
    }
    assert skill_tree(default_environment())["arithmetic"] == ["chain_sum"]
    tree = {"fmt": ["fmt:title", "fmt:json"], "case": ["case:upper"]}
    before = feedback_view("skill_tree", summarize(0, "dev", ROUND0), ROUND0, tree)
    view = feedback_view("skill_tree", summarize(1, "dev", ROUND1), ROUND1, tree)
    assert [(g.name, g.accuracy, g.n) for g in view.groups] == [("fmt", 0.55, 20), ("case", 0.9, 10)]
    report = diagnose(view, before)
    assert report.groups[0].group == "fmt" and abs((report.groups[0].change or 0) - 0.15) < 1e-9
    assert "weakest group: fmt 55%" in report.summary
    plan = plan_round(report, SKILLS, budget=30, policy="deficit", min_share=0.1)
    n = {a.skill: a.n for a in plan.allocations}
    assert n["fmt:title"] > n["fmt:json"] > n["case:upper"]
