"""The payload walk's errors: a rule id and a byte offset, never a byte of the payload."""

from __future__ import annotations

from slidegate.errors import SlidegateError


class PayloadError(SlidegateError):
    """A compressed payload holds something other than coding data (`check_*`), or cannot be
    walked at all (`Unparsable`, raised by `clean_*` too). `rule` is a stable id such as
    `jpeg.com` or `j2k.after-eoc`; `offset` is where in the payload it was found."""

    category = "payload"

    def __init__(self, rule: str, offset: int) -> None:
        super().__init__(
            f"payload rule {rule} at byte {offset}: the compressed payload is not coding data "
            "only; it is cleaned (segment removed) or, when it cannot be parsed, not copied",
            reason=f"payload: {rule}",
        )
        self.rule = rule
        self.offset = offset


class Unparsable(PayloadError):
    """The payload cannot be walked (truncated, unknown marker, bad segment length, bytes
    where a marker must be): it cannot be cleaned losslessly; re-encode it or quarantine."""
