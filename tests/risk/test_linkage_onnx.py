"""A steward's ONNX feature extractor, configured in the risk policy YAML: the test builds its own
small model (onnx helper API, no download) and the attack on it meets the same acceptance as the
built-in descriptor on the synthetic serial-section cohorts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from slidegate.errors import PolicyError
from slidegate.risk.extractors import features_for, similarity_for
from slidegate.risk.linkage import pi_max_attack
from slidegate.risk.onnx import file_sha256, registered_views
from slidegate.risk.policy import load_risk_policy

from .serial_sections import block, cohort, section

N, SIDE, DIM, ROTATIONS = 50, 64, 64, 16


def build_model(path: Path) -> Path:
    """ink = 1 - x; 4x4 average pool; flatten; centre each row; a fixed random projection to
    DIM values (a random-feature embedding of the registered tissue)."""
    flat = 3 * (SIDE // 4) ** 2
    w = (np.random.default_rng(0).normal(size=(flat, DIM)) / np.sqrt(flat)).astype(np.float32)
    nodes = [
        helper.make_node("Sub", ["one", "x"], ["ink"]),
        helper.make_node("AveragePool", ["ink"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["flat", "mean"], ["centred"]),
        helper.make_node("MatMul", ["centred", "w"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "test-extractor",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", DIM])],
        initializer=[
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
            numpy_helper.from_array(w, "w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_policy(folder: Path, model: Path, sha256: str, extra: str = "") -> Path:
    policy = folder / "risk.yaml"
    policy.write_text(
        "image_linkage:\n"
        "  priors: {same_block: 0.6, other_block: 0.15, other_specimen: 0.05}\n"
        "  extractor:\n"
        f"    model: {model.name}\n"
        f"    sha256: {sha256}\n"
        f"    input_size: {SIDE}\n"
        f"    rotations: {ROTATIONS}\n" + extra,
        encoding="utf-8",
    )
    return policy


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    model = build_model(folder / "extractor.onnx")
    return write_policy(folder, model, file_sha256(model))


def test_the_policy_names_the_model_strictly(policy_file: Path, tmp_path: Path) -> None:
    link = load_risk_policy(policy_file).image_linkage
    assert link is not None and link.extractor is not None
    assert Path(link.extractor.model).is_absolute() and Path(link.extractor.model).is_file()
    model = build_model(tmp_path / "m.onnx")
    with pytest.raises(PolicyError, match="sha256"):
        load_risk_policy(write_policy(tmp_path, model, "0" * 64))
    with pytest.raises(PolicyError, match="does not exist"):
        load_risk_policy(write_policy(tmp_path, tmp_path / "gone.onnx", file_sha256(model)))
    with pytest.raises(PolicyError, match="layers"):  # unknown field: the strict model refuses
        load_risk_policy(write_policy(tmp_path, model, file_sha256(model), "    layers: 3\n"))


def test_views_are_the_registered_tissue_in_every_orientation() -> None:
    img = section(block(3), 10, seed=0)
    views = registered_views(img, SIDE, ROTATIONS)
    assert views.shape == (2 * ROTATIONS, 3, SIDE, SIDE) and views.dtype == np.float32
    assert views.min() >= 0.0 and views.max() <= 1.0
    # view 0 mirrored left-right is the first mirrored view; a half turn is a 180 degree turn
    np.testing.assert_allclose(views[ROTATIONS], views[0][:, :, ::-1], atol=0.02)
    np.testing.assert_allclose(views[ROTATIONS // 2], views[0][:, ::-1, ::-1], atol=0.02)
    # the tissue is in the middle of the window whatever its place on the glass
    ink = 1 - views[0].mean(axis=0)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    assert abs((ink * yy).sum() / ink.sum() - SIDE / 2) < 2
    assert abs((ink * xx).sum() / ink.sum() - SIDE / 2) < 2


def test_onnx_extractor_links_serial_sections_in_any_placement(policy_file: Path) -> None:
    link = load_risk_policy(policy_file).image_linkage
    assert link is not None
    images, owner = cohort(N, 3, serial=True, seed=1)
    feats = {s: features_for(img, link) for s, img in images.items()}
    size = next(iter(feats.values())).nbytes
    assert size == 2 * ROTATIONS * DIM * 4 <= 16384  # kilobytes per slide
    result = pi_max_attack(feats, owner, 20, 0, similarity=similarity_for(link))
    other_images, other_owner = cohort(N, 3, serial=False, seed=2)
    other = pi_max_attack(
        {s: features_for(img, link) for s, img in other_images.items()},
        other_owner,
        20,
        0,
        similarity=similarity_for(link),
    )
    print(
        f"\nONNX extractor, serial sections n={N}: V_pi {result.v_pi:.3f} +/- "
        f"{result.v_pi_std:.3f} (chance {result.chance:.4f}); unrelated tissues: V_pi "
        f"{other.v_pi:.3f} +/- {other.v_pi_std:.3f}"
    )
    assert result.v_pi >= 0.5
    assert other.v_pi <= 2 * other.chance


def test_the_worker_signs_its_output_with_the_policys_model(
    policy_file: Path, tmp_path: Path
) -> None:
    import zarr

    from slidegate.models import SlideReport
    from slidegate.risk.pipeline import signatures

    link = load_risk_policy(policy_file).image_linkage
    img = section(block(11), 12, seed=5)
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    for i, step in enumerate((1, 2)):
        data = np.moveaxis(img, -1, 0)[:, ::step, ::step]
        arr = group.create_array(str(i), shape=data.shape, dtype=data.dtype, chunks=data.shape)
        arr[...] = data
    report = SlideReport(
        slide_id="s",
        pseudonym="s",
        stage="audit",
        status="ok",
        output_path=str(tmp_path / "s.zarr"),
    )
    signed, unreadable = signatures({"s": report}, linkage=link)
    assert not unreadable
    feats = np.asarray(signed["s"].features, np.float32)
    assert feats.shape == (2 * ROTATIONS * DIM,)
    # the same embedding the extractor gives for the level the worker read (stride 2)
    np.testing.assert_allclose(feats, features_for(img[::2, ::2], link), atol=1e-5)
    builtin = np.asarray(signatures({"s": report})[0]["s"].features)
    assert builtin.shape != feats.shape  # no policy extractor: the built-in descriptor


def test_a_release_signs_and_scores_every_slide_with_the_policys_model(
    policies_dir: Path, tmp_path: Path
) -> None:
    """The slide stage (on its worker) signs with the model the policies folder names, and the
    cohort stage scores those embeddings: no image is read at the cohort stage."""
    import shutil

    from slidegate.settings import Settings
    from slidegate.stages.cohort import decide_cohort
    from slidegate.stages.context import prepare_release
    from slidegate.stages.slide import audit, deidentify, inventory
    from slidegate.synth import generate_cohort

    from .conftest import write_spec

    copy = tmp_path / "policies"
    shutil.copytree(policies_dir, copy)
    model = build_model(copy / "risk" / "extractor.onnx")
    path = copy / "risk" / "controlled.yaml"
    text = path.read_text(encoding="utf-8")
    line = "  priors: {same_block: 0.6, other_block: 0.15, other_specimen: 0.05}\n"
    assert line in text
    extractor = (
        f"  extractor: {{model: extractor.onnx, sha256: {file_sha256(model)}, "
        f"input_size: {SIDE}, rotations: {ROTATIONS}}}\n"
    )
    path.write_text(text.replace(line, line + extractor), encoding="utf-8")
    cohort = generate_cohort(tmp_path / "c", slides=4, patients=2, seed=3, base_size=(512, 512))
    spec = write_spec(cohort.root, "onnx", "controlled-access")
    ctx = prepare_release(spec, Settings(work_dir=tmp_path / "w", policies_dir=copy))
    reports = [audit(ctx, deidentify(ctx, inventory(ctx, s))) for s in ctx.slides]
    ok = [r for r in reports if r.status == "ok"]
    # each slide's task computed the model's embeddings: 2 x 16 views x 64 values
    assert len(ok) == 4
    assert all(r.signature and len(r.signature.features) == 2 * ROTATIONS * DIM for r in ok)
    outcome = decide_cohort(ctx, reports)
    link = ctx.policies.risk.image_linkage
    assert link is not None and link.extractor is not None
    assert Path(link.extractor.model) == (copy / "risk" / "extractor.onnx").resolve()
    import json

    data = json.loads((ctx.reports_dir / "risk.json").read_text())
    assert data["inputs"]["image_linkage"]["extractor"]["sha256"] == file_sha256(model)
    assert data["inputs"]["slides_with_features"] == 4
    assert data["linkage_before"] is not None and data["linkage_before"]["patients"] == 2
    assert outcome.slides and all(s.status in ("approved", "withheld") for s in outcome.slides)
