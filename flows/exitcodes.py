"""The exit codes of the `slidegate` command, in one place (README "Exit codes", `--help`).

Only flows/cli.py exits; everything else raises a project error (slidegate/errors.py) and this
module says which code that error, or a run's outcome, ends the command with.
"""

from __future__ import annotations

from collections.abc import Mapping

from slidegate.errors import PolicyError, PolicyViolation, SlidegateError, SpecError

OK = 0
#: the run failed: an unexpected error (a bug, a lost cluster, storage still failing after its
#: retries), `verify` found a damaged release, `risk` found the cohort above the limits
FAILURE = 1
#: the command line is wrong (argparse's own code), or the spec, a policy file, the cohort
#: table, the target or the credentials are: refused with one message, nothing published
USAGE = 2
SPEC = 2
#: the release ran and published nothing: withheld (risk, validation, the egress gate, no slide
#: approved, `on_bad_slide: fail`) or rejected by a steward; a dry run that approves no slide
WITHHELD = 3
#: published (or a dry run), but at least one slide was quarantined: a file that could not be
#: read or converted, or failed its audit; the summary names the reasons
QUARANTINED_SOME = 4
#: stopped by Ctrl-C (SIGINT) or SIGTERM; the same command resumes
INTERRUPTED = 130

#: (code, meaning) for `--help` and the README, in order
TABLE: tuple[tuple[int, str], ...] = (
    (OK, "released (risk-withheld slides are the policy working), already complete, dry run"),
    (FAILURE, "failed: unexpected error, storage down after retries; verify/risk: problems"),
    (USAGE, "usage, spec, policy, cohort, target or credentials error: one message"),
    (WITHHELD, "nothing published: withheld (risk, validation, egress gate) or rejected"),
    (QUARANTINED_SOME, "released (or dry run), but some slides were quarantined"),
    (INTERRUPTED, "interrupted (Ctrl-C): run the same command again to resume"),
)


def for_error(exc: BaseException) -> int:
    """The exit code of a command that ended with `exc`."""
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, SpecError | PolicyError):
        return SPEC
    if isinstance(exc, PolicyViolation):  # withheld, on_bad_slide: fail, egress gate
        return WITHHELD
    if isinstance(exc, SlidegateError):
        return FAILURE
    return FAILURE


def for_result(result: Mapping[str, object]) -> int:
    """The exit code of a release run that returned `result` (flows/release.py)."""
    counts = result.get("counts")
    counts = counts if isinstance(counts, Mapping) else {}
    if result.get("rejected"):
        return WITHHELD
    if not result.get("published") and not result.get("complete") and not counts.get("approved"):
        return WITHHELD  # a dry run that would publish nothing
    if counts.get("quarantined"):
        return QUARANTINED_SOME
    return OK


def help_text() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in TABLE)
