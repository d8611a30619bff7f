"""Kept values are checked against their rule's value pattern: a free-text secret in a field
the policy keeps (an SVS written with tifffile) is dropped and reported by rule id, while real
scanner values still fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from slidegate.convert.ome_zarr import ConvertOptions, write_ome_zarr
from slidegate.deid import load_deid_policy, plan_deid, summarize
from slidegate.deid.values import value_fits
from slidegate.errors import PolicyError
from slidegate.formats import read_facts
from tests.leaksearch import find_leaks

SECRET = "Roe Jane 1970"


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("20", "number"), ("-0.000424", "number"), ("1E-06", "number"), (" 0.4990 ", "number"),
        ("0.000499\\0.000499", "numbers"), ("0\\-1\\0\\-1\\0\\0", "numbers"),
        ('"0.000243" "0.000243"', "numbers"), ("[0.5, 0.5]", "numbers"),
        ("AT2", "token"), ("WideFOV", "token"),
        ("DAPI 2 (387)", "channel"), ("Cy3", "channel"), ("Opal 520", "channel"),
        ("CD8", "channel"), ("Ki67", "channel"), ("PD-L1", "channel"), ("channel 3", "channel"),
        ("DERIVED\\PRIMARY\\VOLUME\\NONE", ["DERIVED", "PRIMARY", "VOLUME", "NONE"]),
    ],
)  # fmt: skip
def test_real_scanner_values_fit(value: str, kind: str | list[str]) -> None:
    assert value_fits(value, kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (SECRET, "number"), ("0.5 Jane", "number"), ("0.5\\Roe", "numbers"),
        ("Roe Jane", "token"), ("Jane Roe", "channel"), ("ROE, JANE", "channel"),
        ("1970-01-01", "channel"), ("", "number"), ("1" * 300, "numbers"),
        ("ORIGINAL\\ROE", ["ORIGINAL", "PRIMARY"]),
    ],
)  # fmt: skip
def test_identifying_values_do_not_fit(value: str, kind: str | list[str]) -> None:
    assert not value_fits(value, kind)  # type: ignore[arg-type]


def test_a_keep_rule_without_a_value_pattern_is_refused(tmp_path: Path) -> None:
    policy = tmp_path / "svs.yaml"
    policy.write_text("format: svs\nfields:\n  aperio.AppMag: {action: keep, class: technical}\n")
    with pytest.raises(PolicyError, match="needs 'value'"):
        load_deid_policy(policy)


def test_secret_in_a_kept_svs_field_is_dropped_by_rule(tmp_path: Path, policies_dir: Path) -> None:
    desc = (
        "Aperio Image Library v12.0.15 \r\n512x512 [0,0 512x512] (256x256) JPEG/RGB Q=80"
        f"|AppMag = {SECRET}|MPP = 0.5|ICC Profile = {SECRET}|Gamma = 2.2"
    )
    src = tmp_path / "s.svs"
    base = np.random.default_rng(1).integers(0, 255, (512, 512, 3), dtype=np.uint8)
    with tifffile.TiffWriter(src) as tif:
        tif.write(base, tile=(256, 256), photometric="rgb", compression="jpeg", description=desc)
    facts = read_facts(src, "s.svs")
    plan = plan_deid(facts, load_deid_policy(policies_dir / "deid" / "svs.yaml"), "p-1")
    rules = {f.rule: f.action for f in plan.fields}
    assert rules["fields.aperio.AppMag.value"] == "drop"
    assert rules["fields.aperio.ICC Profile.value"] == "drop"
    assert rules["fields.aperio.MPP"] == "keep" and rules["fields.aperio.Gamma"] == "keep"
    assert summarize(plan)["value_refused.technical"] == 2
    assert all(SECRET not in f.rule for f in plan.fields)
    out = tmp_path / "o.ome.zarr"
    write_ome_zarr(src, plan, out, ConvertOptions())
    assert find_leaks(out, {"secret": SECRET, "given": "Jane"}) == []
