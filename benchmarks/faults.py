"""The attack set of the security review, run in one command: one row per attack.

Run it from a checkout (it drives the regression tests in ``tests/``)::

    uv run python benchmarks/faults.py              # every attack; a markdown table
    uv run python benchmarks/faults.py -k shm       # attacks whose text or test matches

Each row of the review's table (``docs/reliability.md`` keeps the latest output) names the
test or tests that carry the attack out against a real server process. The script runs them
with pytest, in this process, and prints per row how many tries the attack made (what the
tests recorded with ``record_property("tries", n)``, or the number of test runs) and its
outcome: **held** when every test of the row passed, **DEFECT** when one failed (the
attack worked), or **skipped** with the reason (attacks that need root, for instance
``setpriv``, ``prlimit`` or a private mount namespace, skip elsewhere and run in CI).

Exit status: 0 if no row reads DEFECT, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

F = "tests/faults/"


@dataclasses.dataclass
class Row:
    """One attack of the review's table."""

    number: int
    attack: str
    tests: list[str]
    defect: str = ""
    """The review's defect id, when the attack once worked."""


ROWS: list[Row] = [
    Row(1, "Fuzz a live server from the first byte: random bytes, lying and huge prefixes, "
           "truncated frames, hostile msgpack and extension values, bit flips",
        [F + "test_fuzz.py::test_server_fresh_connections"]),
    Row(2, "Fuzz after the handshake and in long-lived sessions (env and attribute ops), with "
           "witness sessions over sockets and the link",
        [F + "test_fuzz.py::test_server_after_handshake",
         F + "test_fuzz.py::test_server_long_lived_session"]),
    Row(3, "Fuzz the decoder: random bytes, extension values, structured and mutated "
           "messages, deep nesting, zero-itemsize blow-ups",
        [F + "test_fuzz.py::test_decoder_random_bytes",
         F + "test_fuzz.py::test_decoder_extension_values",
         F + "test_fuzz.py::test_decoder_structured_values",
         F + "test_fuzz.py::test_decoder_mutated_messages",
         F + "test_fuzz.py::test_decoder_deep_nesting",
         F + "test_fuzz.py::test_decoder_refuses_zero_itemsize_blowup"]),
    Row(4, "Hostile values in every op; PING echoes not amplified",
        [F + "test_fuzz.py::test_session_answers_hostile_values",
         F + "test_fuzz.py::test_ping_echo_is_not_amplified"]),
    Row(5, "Hostile attribute requests, before and after the handshake",
        [F + "test_attribute_faults.py"]),
    Row(9, "A client shrinks the shared-memory region after the handshake",
        [F + "test_shared_memory.py::test_a_client_cannot_shrink_the_region_under_the_server"],
        "D1"),
    Row(10, "A prefix announcing a huge body before authentication, never sent; a large "
            "body sent slowly after it; a large header's staging buffer",
        [F + "test_preauth_limits.py::test_big_frames_before_auth_are_refused_without_allocating",
         F + "test_preauth_limits.py::"
             "test_large_body_after_hello_grows_only_as_its_bytes_arrive",
         F + "test_preauth_limits.py::test_staging_buffer_stays_small_after_a_large_header",
         F + "test_preauth_limits.py::test_large_body_is_received_intact_across_its_growth"],
        "D2"),
    Row(11, "Silent connections, a HELLO one byte every 0.5 s, a challenge never answered, "
            "TLS then silence, over the pending caps", [F + "test_handshake_deadline.py"], "D3"),
    Row(12, "Silent connections up to the descriptor limit (server under RLIMIT_NOFILE)",
        [F + "test_accept_limits.py::test_descriptor_limit_backs_off_instead_of_spinning"],
        "D4"),
    Row(13, "Silent connections up to the thread limit (server as another user, "
            "RLIMIT_NPROC)",
        [F + "test_accept_limits.py::test_thread_limit_refuses_one_connection_and_keeps_serving"],
        "D4"),
    Row(14, "One huge msgpack header (an array of nils) after HELLO",
        [F + "test_preauth_limits.py::test_huge_header_after_hello_is_refused_at_its_prefix"],
        "D5"),
    Row(15, "Sessions that each send one 50 MB PING, then close",
        [F + "test_session_memory.py"], "D6"),
    Row(16, "/dev/shm nearly full (private 8 MiB tmpfs, 512 KiB free), 768 KiB observations",
        [F + "test_shared_memory.py::test_a_full_dev_shm_does_not_kill_the_server",
         F + "test_shared_memory.py::"
             "test_a_region_that_cannot_be_reserved_falls_back_to_sockets",
         F + "test_shared_memory.py::test_the_region_is_sized_to_the_session"], "D7"),
    Row(17, "Another user (nobody) names a victim's region in its own HELLO",
        [F + "test_shared_memory.py::"
             "test_another_user_cannot_make_the_server_map_a_victims_region",
         F + "test_shared_memory.py::test_the_server_region_is_a_sealed_memfd"], "D8"),
    Row(18, "Server SIGKILLed while the client has a resume window and a short call timeout",
        [F + "test_resume_bounds.py"], "D9"),
    Row(19, "EnvServer and make_vec in a process that already holds 1,100 descriptors",
        [F + "test_high_fds.py",
         F + "test_accept_limits.py::test_server_with_descriptors_above_1023_accepts",
         F + "test_accept_limits.py::"
             "test_unexpected_accept_loop_failure_stops_the_server_loudly"], "D10"),
    Row(20, "A non-reading client with a full socket and a stalled env call, against the "
            "step-deadline watchdog", [F + "test_deadline_watchdog.py"], "D11"),
    Row(21, "PREDICT_BATCH of 100,000 lanes, and of the wrong shape, on a model endpoint",
        [F + "test_model_limits.py"], "D12"),
    Row(22, "Symlinks planted at the ready file's temporary name",
        [F + "test_ready_file.py"], "D13"),
    Row(23, "workers=N: kill -9 one worker, SIGSTOP another, then new clients",
        [F + "test_worker_supervision.py"], "D14"),
    Row(24, "Online token guessing: wrong proofs as fast as one client can",
        [F + "test_auth_backoff.py"], "D15"),
    Row(25, "kill -9 of the client and then the server while a handshake waits",
        [F + "test_shared_memory.py::"
             "test_nothing_is_left_in_dev_shm_when_both_sides_die_mid_handshake"], "D16"),
    Row(26, "rlmesh serve against the README's list of command-line options",
        [F + "test_cli_options.py"], "D17"),
    Row(27, "Every op before HELLO, garbage instead of HELLO, wrong protocol version",
        ["tests/client/test_errors.py::test_garbage_from_a_client_closes_only_that_connection",
         "tests/client/test_errors.py::"
         "test_wrong_protocol_version_is_refused_and_server_keeps_serving"]),
    Row(28, "Missing, wrong and replayed token proofs; the token never on the wire",
        ["tests/protocol/test_auth.py::"
         "test_missing_or_wrong_token_is_refused_and_the_env_stays_free",
         "tests/protocol/test_auth.py::test_the_token_never_crosses_the_wire"]),
    Row(29, "Resuming a session with a stolen key but no token",
        [F + "test_resume.py::test_a_stolen_key_without_the_token_resumes_nothing"]),
    Row(31, "Health probe without the token",
        ["tests/protocol/test_auth.py::test_probe_and_ping_without_the_token"]),
    Row(32, "Binding beyond loopback without a token",
        ["tests/protocol/test_auth.py::test_binding_beyond_loopback_without_a_token_warns"]),
    Row(36, "Leftover regions after failed handshakes and SIGKILLed clients",
        ["tests/transport/test_same_host.py::test_failed_handshakes_leave_no_region",
         "tests/transport/test_same_host.py::test_sigkilled_client_frees_session_and_region"]),
    Row(39, "max_sessions and idle_timeout for admitted sessions",
        ["tests/server/test_session_limits.py"]),
    Row(40, "kill -9 of the server mid-step (socket, link)",
        [F + "test_processes.py::test_server_sigkilled_mid_step_gives_connection_lost_at_once"]),
    Row(44, "kill -9 of the client mid-episode",
        [F + "test_processes.py::test_instance_is_free_at_once_after_its_client_is_sigkilled",
         F + "test_processes.py::"
             "test_factory_session_is_freed_at_once_after_its_client_is_sigkilled"]),
    Row(45, "A stalled server against the client's timeout",
        ["tests/client/test_errors.py::test_stalled_step_times_out",
         "tests/transport/test_shm_link.py::test_stalled_server_times_out_while_sleeping"]),
    Row(46, "TLS: connections that never start TLS, plain clients, untrusted certificates",
        ["tests/transport/test_tls.py::test_a_stalled_tls_handshake_does_not_block_the_server",
         "tests/transport/test_tls.py::test_plain_client_against_tls_server_fails_fast",
         "tests/transport/test_tls.py::test_untrusted_server_certificate_is_refused"]),
    Row(48, "Connections cut mid-episode with a resume window: every step applied once",
        [F + "test_resume.py::test_cut_between_requests_resumes_the_same_episode",
         F + "test_resume.py::test_cut_during_a_step_applies_it_exactly_once",
         F + "test_resume.py::test_resume_over_the_same_host_link"]),
]


class _Collect:
    """A pytest plugin: each test's outcome, skip reason and recorded tries."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        entry = self.results.setdefault(report.nodeid, {"outcome": "passed", "tries": 0,
                                                        "why": ""})
        if report.when == "teardown":  # (its properties are the test's final ones)
            entry["tries"] += sum(int(value) for key, value in report.user_properties
                                  if key == "tries")
        if report.failed:
            entry["outcome"] = "failed"
        elif report.skipped and entry["outcome"] != "failed":
            entry["outcome"] = "skipped"
            longrepr = report.longrepr
            entry["why"] = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)
            entry["why"] = entry["why"].removeprefix("Skipped: ")


def _row_result(row: Row, results: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The row's tries and outcome from the results of its tests."""
    mine = [entry for nodeid, entry in results.items()
            if any(nodeid == test or nodeid.startswith(test + "::")
                   or nodeid.startswith(test + "[") for test in row.tests)]
    if not mine:
        return "0", "not run"
    recorded = sum(entry["tries"] for entry in mine)
    tries = f"{recorded:,}" if recorded else f"{len(mine)} test run{'s' * (len(mine) > 1)}"
    if any(entry["outcome"] == "failed" for entry in mine):
        return tries, f"**DEFECT** ({row.defect})" if row.defect else "**DEFECT**"
    skipped = [entry for entry in mine if entry["outcome"] == "skipped"]
    if skipped and len(skipped) == len(mine):
        return tries, f"skipped: {skipped[0]['why']}"
    held = f"held (was {row.defect})" if row.defect else "held"
    return tries, held + (f"; {len(skipped)} skipped: {skipped[0]['why']}" if skipped else "")


def main(argv: list[str] | None = None) -> int:
    """Run the attacks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-k", default="", help="only rows whose text, defect or test has this")
    args = parser.parse_args(argv)
    import pytest

    needle = args.k.lower()
    rows = [row for row in ROWS if not needle or needle in
            " ".join([row.attack, row.defect, *row.tests]).lower()]
    os.chdir(ROOT)
    collect = _Collect()
    tests = sorted({test for row in rows for test in row.tests})
    by_file: dict[str, list[str]] = {}
    for test in tests:
        by_file.setdefault(test.split("::")[0], []).append(test)
    for file_tests in by_file.values():  # (one file that cannot be collected stops only itself)
        pytest.main(["-q", "-p", "no:cacheprovider", "--no-header", "-rN", *file_tests],
                    plugins=[collect])
    print("\n| # | attack | tries | outcome |\n|---|---|---|---|")
    defects = 0
    for row in rows:
        tries, outcome = _row_result(row, collect.results)
        defects += outcome.startswith("**DEFECT")
        print(f"| {row.number} | {row.attack} | {tries} | {outcome} |")
    held = sum(1 for row in rows if _row_result(row, collect.results)[1].startswith("held"))
    print(f"\n{len(rows)} attacks: {held} held, {defects} defects, "
          f"{len(rows) - held - defects} skipped or not run "
          f"(as {'root' if os.geteuid() == 0 else 'an unprivileged user'}).")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
