"""One error hierarchy. Messages say what went wrong, which slide/file/rule, and what to do.

Never put a PHI value (a metadata value, label text, a patient id) into a message.
`reason` is a short, path-free and value-free text that may be published in a release report.
"""

from __future__ import annotations


class SlidegateError(Exception):
    """Base of every error slidegate raises on purpose."""

    #: short category for reports, e.g. "corrupt", "unsupported", "policy"
    category: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        #: safe to publish: no path, no value
        self.reason = reason or self.category


class SpecError(SlidegateError):
    """The release spec or the cohort table is wrong; raised before any work starts."""

    category = "spec"


class PolicyError(SlidegateError):
    """A policy file is invalid (unknown key, bad value); raised at load time."""

    category = "policy"


class PolicyViolation(SlidegateError):
    """An output breaks a policy (leak found, blocking expectation failed, risk too high)."""

    category = "policy-violation"


class EgressBlocked(PolicyViolation):
    """The egress gate refused an object: a needle (PHI, a canary, a source name) is in its key
    or its bytes, or a slide object was not admitted by the audit. The message names the object
    (matching parts of the key shown as [REDACTED]) and the rule ids, never the value."""

    category = "egress"

    def __init__(self, key: str, rules: frozenset[str] | set[str] | tuple[str, ...]) -> None:
        self.key = key
        self.rules = tuple(sorted(rules))
        listed = ", ".join(self.rules)
        super().__init__(
            f"egress gate blocked {key}: {listed} (value [REDACTED]); nothing was written "
            "there. See the README privacy section: remove the value from the source or the "
            "policy's kept fields",
            reason=f"egress: {listed}",
        )


class UnsupportedSlideError(SlidegateError):
    """The file is not a slide format slidegate can de-identify."""

    category = "unsupported"


class CorruptSlideError(SlidegateError):
    """The file claims a supported format but cannot be read (truncated, bad offsets...)."""

    category = "corrupt"


class TransientIOError(SlidegateError):
    """A storage or network operation failed in a way that may succeed on retry."""

    category = "transient-io"


class SlideLimitError(SlidegateError):
    """A slide's read or conversion went past its time or memory bound (`slide_timeout_s`,
    `slide_memory_mb`) and was stopped; the slide is quarantined and the release goes on."""

    category = "limit"
