"""``benchmarks/step_breakdown.py``'s pure parts: the instrumenting clock and the pieces."""

from __future__ import annotations

import statistics

import pytest

from benchmarks import step_breakdown as sb


def test_nested_transport_calls_are_timed_once_by_the_outermost() -> None:
    class Inner:
        def send(self) -> str:
            return "inner"

    class Outer:
        def __init__(self) -> None:
            self.inner = Inner()

        def send(self) -> str:
            return "outer+" + self.inner.send()

    clock = sb.Clock()
    clock.wrap(Inner, "send", "send", outermost=True)
    clock.wrap(Outer, "send", "send", outermost=True)
    assert Outer().send() == "outer+inner"
    # One interval, the outer one: the inner call added nothing to it.
    assert clock.current["send"] == clock.current["send_t1"] - clock.current["send_t0"]
    clock.current.clear()
    assert Inner().send() == "inner"  # alone, the inner one is timed
    assert clock.current["send"] == clock.current["send_t1"] - clock.current["send_t0"]


def records(i: int) -> tuple[dict[str, int], dict[str, int]]:
    """A made-up step ``i``: client and server records on one clock (ns)."""
    t = 1_000_000 * i
    client = {"total": 40_000 + i, "encode": 2_000, "send": 3_000, "send_t0": t + 2_000,
              "recv": 30_000 + i, "recv_t1": t + 36_000 + i, "decode": 2_500}
    server = {"ready": t + 9_000, "decode": 1_500, "env_step": 5_000 + 2 * i, "encode": 1_200,
              "send_t0": t + 21_000, "send": 4_000, "busy": 17_000}
    return client, server


def test_each_piece_is_the_median_over_the_steps_of_its_definition() -> None:
    pairs = [records(i) for i in range(9)]
    run = {"kind": "tcp", "client": [c for c, _ in pairs], "server": [s for _, s in pairs]}
    out = sb.breakdown(run)

    def median_us(values: list[float]) -> float:
        return statistics.median(values) / 1000

    assert out["client: RemoteEnv.step, whole call"] == median_us([c["total"] for c, _ in pairs])
    assert out["crossing: request: client send starts -> server has it"] == median_us(
        [s["ready"] - c["send_t0"] for c, s in pairs])
    assert out["crossing: reply: server send starts -> client has it"] == median_us(
        [c["recv_t1"] - s["send_t0"] for c, s in pairs])
    assert out["server: check the action, dispatch"] == median_us(
        [s["send_t0"] - s["ready"] - s["decode"] - s["env_step"] - s["encode"] for _, s in pairs])
    assert out["client: other client Python"] == median_us(
        [c["total"] - c["encode"] - c["send"] - c["recv"] - c["decode"] for c, _ in pairs])
    assert out["server: env.step (CartPole)"] == median_us([s["env_step"] for _, s in pairs])


def test_in_process_has_no_server_pieces_and_a_mismatch_is_refused() -> None:
    client = [{"total": 5_000, "env_step": 4_000 + i} for i in range(5)]
    out = sb.breakdown({"kind": "inprocess", "client": client, "server": []})
    assert out["server: decode the request"] is None
    assert out["server: env.step (CartPole)"] == statistics.median(
        c["env_step"] for c in client) / 1000
    c, s = records(0)
    with pytest.raises(RuntimeError, match="1 client steps, 2 server"):
        sb.breakdown({"kind": "link", "client": [c], "server": [s, s]})
