"""The egress gate: the one writer to a release target (DESIGN: nothing leaves unproven).

`matcher` searches bytes for needles in every encoding; `needles` builds a release's needle
set; `gate.Gate` checks every key and every byte before a Store write.
"""
