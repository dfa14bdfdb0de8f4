"""The verdict harness's pure parts: ratios, statuses, the report and its JSON round trip.

No benchmark runs here: trials are made up, and every expectation is computed from them.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from benchmarks import bench_anchors as anchors
from benchmarks import bench_core as core
from benchmarks import verdicts

GOAL = 1.8


def trial(rate: float, round_index: int) -> core.Trial:
    return core.Trial(round_index, ops=int(rate), seconds=1.0, client_cpu=0.5)


def rounds_of(pairs: list[tuple[float, float]]) -> core.RoundTrials:
    """One block per round holding a (num, den) pair with the given rates."""
    return [[{"num": trial(num, r), "den": trial(den, r)}] for r, (num, den) in enumerate(pairs)]


PAIRS = [(190.0, 100.0), (170.0, 100.0), (240.0, 120.0), (150.0, 100.0), (300.0, 160.0),
         (185.0, 100.0), (200.0, 110.0), (160.0, 80.0)]


def ratios(pairs: list[tuple[float, float]], goal: float | None = GOAL) -> list[dict[str, Any]]:
    return core.compute_ratios(rounds_of(pairs), [("num", "den", goal, "num / den")])


def test_a_ratio_is_the_median_of_its_per_round_ratios_with_its_spread() -> None:
    [q] = ratios(PAIRS)
    per_round = [int(n) / int(d) for n, d in PAIRS]
    assert q["ratio"] == pytest.approx(statistics.median(per_round))
    q1, _, q3 = statistics.quantiles(per_round, n=4, method="inclusive")
    assert (q["q1"], q["q3"]) == (pytest.approx(q1), pytest.approx(q3))
    assert (q["min"], q["max"]) == (min(per_round), max(per_round))
    assert q["rounds_at_target"] == sum(v >= GOAL for v in per_round)


@pytest.mark.parametrize(("goal", "count", "expected"), [
    (None, 8, "info"), (0.5, 8, "meets goal"), (5.0, 8, "below goal"),
    (0.5, verdicts.MIN_ROUNDS - 1, "too few rounds"), (0.5, verdicts.MIN_ROUNDS, "meets goal"),
])
def test_the_verdict_needs_a_goal_and_enough_rounds(goal: float | None, count: int,
                                                     expected: str) -> None:
    [q] = ratios(PAIRS[:count], goal)
    assert verdicts.verdict_status(q) == expected


def test_the_verdict_table_shows_goal_median_spread_and_rounds() -> None:
    [q] = ratios(PAIRS)
    table = verdicts.verdict_table([q]).splitlines()
    assert len(table) == 3
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells == [
        "num / den", f">= {GOAL:.2f}", f"{q['ratio']:.3f}", f"{q['q1']:.3f}-{q['q3']:.3f}",
        f"{q['min']:.3f}-{q['max']:.3f}", f"{q['rounds_at_target']}/{len(PAIRS)}",
        f"**{verdicts.verdict_status(q)}**"]


def payload() -> dict[str, Any]:
    results = []
    for key, rates in (("num", [n for n, _ in PAIRS]), ("den", [d for _, d in PAIRS])):
        result = core.Result(key, f"variant {key}", extra={"num_envs": 8})
        result.trials = [trial(rate, r) for r, rate in enumerate(rates)]
        results.append(result.to_json())
    return {"meta": {"date": "2026-11-30T03:00:00+00:00", "placement": "unpinned",
                     "cpu_count": 2, "rounds": len(PAIRS), "trial_seconds": 0.3,
                     "command": "uv run python benchmarks/verdicts.py"},
            "verdicts": ratios(PAIRS), "context": ratios(PAIRS, None), "results": results,
            "missing": {"envpool_sync": "EnvPool is not importable"}}


def test_the_report_comes_from_the_json_payload_alone(tmp_path: Path) -> None:
    data = payload()
    path = tmp_path / "verdicts.json"
    core.write_json(str(path), data)
    report = verdicts.render(verdicts.load(str(path)))
    assert report == verdicts.render(data)
    assert verdicts.verdict_table(data["verdicts"]) in report
    assert f"{len(PAIRS)} interleaved rounds" in report
    assert "Left out: `envpool_sync`" in report
    [num_row] = [line for line in report.splitlines() if line.startswith("| variant num |")]
    median = statistics.median(float(int(n)) for n, _ in PAIRS)
    assert f"| {median:,.0f} |" in num_row
    # --from-json prints the same report
    assert verdicts.main(["--from-json", str(path)]) == 0


def test_the_report_names_the_hosts_congestion_control_when_the_run_recorded_it() -> None:
    data = payload()
    assert "congestion control" not in verdicts.render(data)  # (older payloads: none)
    data["meta"]["tcp_congestion_control"] = "bbr"
    assert "host TCP congestion control bbr, " in verdicts.render(data)


def test_the_report_says_how_fast_the_host_ran_python_and_flags_a_degraded_one() -> None:
    data = payload()
    assert "bare Python loop" not in verdicts.render(data)  # (older payloads: none)
    data["meta"]["bare_loop_ns"] = [41.5, 43.0]
    data["meta"]["python"] = "3.11.7"
    normal = verdicts.render(data)
    assert "took 41.5 ns per iteration before the run and 43 after (Python 3.11.7)" in normal
    assert "degraded" not in normal
    data["meta"]["bare_loop_ns"] = [verdicts.DEGRADED * verdicts.HOST_LOOP_NS + 1, 150.0]
    assert "**a degraded host, so these ratios are readings, not verdicts.**" in \
        verdicts.render(data)
    data["meta"]["bare_loop_ns"] = [150.0, 42.0]  # (one normal reading: no flag)
    assert "degraded" not in verdicts.render(data)
    data["meta"].update(bare_loop_ns=[150.0, 150.0], python="3.13.1")  # (not comparable)
    other = verdicts.render(data)
    assert "degraded" not in other and "reference reading was taken with Python 3.11" in other


def test_the_bare_loop_reads_a_positive_speed() -> None:
    ns = verdicts.bare_loop_ns(iterations=20_000, repeat=2)
    assert 0 < ns < 10_000


def test_a_file_that_is_not_a_payload_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"meta": {}}))
    with pytest.raises(ValueError, match=r"not a verdicts\.py JSON payload"):
        verdicts.load(str(path))


def test_every_verdict_pair_runs_back_to_back_in_one_block() -> None:
    blocks = {frozenset(b) for b in verdicts.ROUND_BLOCKS}
    for num, den, goal, _ in verdicts.VERDICTS:
        assert goal is not None
        assert frozenset((num, den)) in blocks, (num, den)
        assert num in verdicts.BUILDERS and den in verdicts.BUILDERS
    assert next(iter(verdicts.BUILDERS)) == "async_gym"  # the forking one is built first


def test_missing_variants_drop_out_of_blocks_and_ratios() -> None:
    built = {"a": object(), "b": object(), "c": object()}
    blocks, specs = anchors.runnable(
        [("a", "b"), ("x", "c"), ("x",)],
        [("a", "b", 1.0, "a/b"), ("c", "x", None, "c/x")], built)  # type: ignore[arg-type]
    assert blocks == [("a", "b"), ("c",)]
    assert specs == [("a", "b", 1.0, "a/b")]


def test_an_unavailable_builder_is_reported_and_the_others_still_build() -> None:
    logged: list[str] = []

    def ok(build: anchors.Build) -> core.Variant:
        return core.Variant("ok", "ok", lambda n: None)

    def absent(build: anchors.Build) -> core.Variant:
        raise anchors.Unavailable("not on this machine")

    builders = {"ok": ok, "absent": absent}
    built, missing = anchors.build_variants(None, builders, logged.append)  # type: ignore[arg-type]
    assert list(built) == ["ok"]
    assert missing == {"absent": "not on this machine"}
    assert any("absent" in line for line in logged)


def test_without_envpool_the_reason_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "envpool", None)
    with pytest.raises(anchors.Unavailable, match="uv run --with envpool"):
        anchors.load_envpool()


class FakePool:
    """Answers ``recv`` with the 4 env ids not sent last, like a pool of 8 with batch 4."""

    def __init__(self) -> None:
        self.sent: list[tuple[list[int], list[int]]] = []
        self.resets = 0
        self.next_ids = [0, 1, 2, 3]

    def async_reset(self) -> None:
        self.resets += 1

    def recv(self) -> tuple[Any, ...]:
        return None, None, None, None, {"env_id": list(self.next_ids)}

    def send(self, actions: Any, env_id: list[int]) -> None:
        self.sent.append((list(actions), list(env_id)))
        self.next_ids = [i for i in range(8) if i not in env_id]


def test_the_async_envpool_stepper_sends_each_batch_to_the_envs_it_received() -> None:
    actions = core.make_actions(gym.vector.utils.batch_space(gym.spaces.Discrete(2), 8))
    pool = FakePool()
    stepper = anchors.EnvPoolAsyncStepper(pool, 4, actions)
    stepper(core.BATCH)
    assert pool.resets == 1
    assert len(pool.sent) == core.BATCH // 4
    for i, (sent, ids) in enumerate(pool.sent):
        assert sent == list(actions[i][:4])
        assert ids == ([0, 1, 2, 3] if i % 2 == 0 else [4, 5, 6, 7])
    with pytest.raises(ValueError, match="does not divide"):
        anchors.EnvPoolAsyncStepper(pool, 5, actions)


def test_the_report_names_files_without_their_directories() -> None:
    shown = verdicts.shown_command(
        "uv run python benchmarks/verdicts.py --rounds 7 --json /somewhere/deep/out.json")
    assert shown == "uv run python benchmarks/verdicts.py --rounds 7 --json out.json"


@pytest.mark.parametrize(("rounds", "builds", "shares"), [
    (9, 1, [9]), (9, 3, [3, 3, 3]), (8, 3, [3, 3, 2]), (2, 5, [1, 1])])
def test_builds_share_the_rounds_as_evenly_as_they_go(rounds: int, builds: int,
                                                      shares: list[int]) -> None:
    assert verdicts.split_rounds(rounds, builds) == shares
    assert sum(shares) == rounds


def test_each_build_starts_its_variants_afresh_and_the_rounds_run_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[anchors.Build] = []  # (the build each variant was made in, in order)
    started: list[tuple[str, int]] = []

    def builder(key: str, rate: float) -> anchors.Builder:
        def build(b: anchors.Build) -> core.Variant:
            opened.append(b)
            return core.Variant(key, f"variant {key}", lambda n: time.sleep(n / rate))
        return build

    def trial_of(run: Any, seconds: float, round_index: int, server_pid: Any = None
                 ) -> core.Trial:
        started.append((run.__qualname__, round_index))
        return real_trial(run, seconds, round_index, server_pid)

    real_trial = core.time_trial
    monkeypatch.setattr(core, "time_trial", trial_of)
    monkeypatch.setattr(verdicts, "BUILDERS", {"num": builder("num", 4e5),
                                               "den": builder("den", 2e5)})
    monkeypatch.setattr(verdicts, "ROUND_BLOCKS", [("num", "den")])
    monkeypatch.setattr(verdicts, "VERDICTS", [("num", "den", 1.5, "num / den")])
    monkeypatch.setattr(verdicts, "CONTEXT", [])
    args = verdicts._parser().parse_args(["--rounds", "5", "--builds", "2",
                                          "--trial-seconds", "0.01", "--warmup", "0"])
    assert core.resolve_run_arguments(args, verdicts.VERDICT_RUN, "verdicts")
    data = verdicts.run(args, ["--rounds", "5", "--builds", "2"])
    # two builds of both variants, each in its own build
    assert len(opened) == 4 and opened[0] is opened[1] and opened[2] is opened[3]
    assert opened[0] is not opened[2]
    # rounds 0-2 in the first build, 3-4 in the second: numbered on, two trials each
    assert sorted({r for _, r in started}) == [0, 1, 2, 3, 4]
    assert len(started) == 10
    [verdict] = data["verdicts"]
    assert verdict["rounds"] == 5 and data["meta"]["builds"] == 2
    assert [r["trials"] for r in data["results"]] == [5, 5]
    assert "shared among 2 builds" in verdicts.render(data)
