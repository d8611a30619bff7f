"""What a task run is given: the release context pickled once in the flow and unpickled once
per worker process, opaque to Prefect's parameter walk; publish batches of K slides."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.utilities.collections import visit_collection

from flows.batches import batch_slides, publish_batches
from slidegate.models import SlideReport
from slidegate.settings import Settings
from slidegate.stages.context import ReleaseContext, prepare_release
from slidegate.synth import generate_cohort
from tasks import shipping
from tasks.shipping import Shared


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> ReleaseContext:
    from flows.cli import write_spec

    root = tmp_path_factory.mktemp("ship")
    cohort = generate_cohort(root / "c", slides=6, patients=3, seed=3, base_size=(256, 256))
    spec = write_spec(cohort.root, release="ship-1", target=str(root / "target"))
    settings = Settings(work_dir=root / "work", registry_url=f"sqlite:///{root / 'reg.sqlite'}")
    return prepare_release(spec, settings)


def test_the_context_is_pickled_once_and_revived_once_per_process(ctx: ReleaseContext) -> None:
    shared = Shared(ctx)
    one, two = pickle.dumps(shared), pickle.dumps(shared)
    assert one == two  # the same bytes, made once at construction
    a, b = pickle.loads(one), pickle.loads(two)
    s0, s1 = ctx.slides[0], ctx.slides[1]
    c0 = a.context([s0], [ctx.pseudonyms[s0.slide_id]])
    c1 = b.context([s1], [ctx.pseudonyms[s1.slide_id]])
    assert c0.policies is c1.policies  # one unpickled context behind both tasks
    assert c0.slides == (s0,) and c0.pseudonyms == {s0.slide_id: ctx.pseudonyms[s0.slide_id]}
    assert c1.slides == (s1,) and c1.settings == ctx.settings and c1.key_id == ctx.key_id
    # what travels per task does not grow with the cohort: no slide list, no pseudonym map
    assert all(s.slide_id.encode() not in one for s in ctx.slides)
    assert all(p.encode() not in one for p in ctx.pseudonyms.values())
    assert len(one) < len(pickle.dumps(ctx))
    with pytest.raises(ValueError):
        a.context([s0, s1], ["only-one"])


def test_a_damaged_payload_is_refused(ctx: ReleaseContext) -> None:
    data = bytearray(pickle.dumps(Shared(ctx)))
    i = data.rfind(b"policies")
    data[i] ^= 0x20
    shipping._CACHE.clear()
    with pytest.raises(ValueError, match="damaged"):
        pickle.loads(bytes(data))


def test_prefect_does_not_walk_into_it(ctx: ReleaseContext) -> None:
    seen: list[object] = []
    visit_collection(Shared(ctx), visit_fn=seen.append, return_data=False)
    assert len(seen) == 1  # the wrapper itself, not the policies, settings, slides inside
    seen.clear()
    visit_collection(ctx, visit_fn=seen.append, return_data=False)
    assert len(seen) > 50  # what it did before: every field of every model
    assert "Shared(release context" in repr(Shared(ctx)) and "/" not in repr(Shared(ctx))


def test_a_fresh_process_revives_it_without_the_flow(ctx: ReleaseContext, tmp_path: Path) -> None:
    blob = tmp_path / "task.pkl"
    blob.write_bytes(pickle.dumps([Shared(ctx), Shared(ctx)]))
    code = (
        "import pickle,sys; from tasks import shipping; a,b = pickle.loads(open(sys.argv[1],"
        "'rb').read()); print(shipping.revived(), a.digest == b.digest)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(blob)], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).parents[2])  # fmt: skip
    assert out.stdout.split() == ["1", "True"]


def _report(p: str, size: int) -> SlideReport:
    return SlideReport(slide_id=p, pseudonym=p, stage="audit", status="approved", size=size)


def test_publish_batches_by_count_and_bytes() -> None:
    small = [_report(f"s-{i}", 10) for i in range(35)]
    batches = publish_batches(small, size=16)
    assert [len(b) for b in batches] == [16, 16, 3]
    assert [r for b in batches for r in b] == small  # cohort order, each slide once
    mixed = [_report("a", 10), _report("big", 5000), _report("b", 10), _report("c", 10)]
    assert [[r.pseudonym for r in b] for b in publish_batches(mixed, 16, 1000)] == [
        ["a"],
        ["big"],
        ["b", "c"],
    ]
    assert publish_batches([], 16) == []


def test_batch_slides_are_the_reports_own(ctx: ReleaseContext) -> None:
    reports = [_report(ctx.pseudonyms[s.slide_id], 1) for s in reversed(ctx.slides[:3])]
    assert batch_slides(ctx, reports) == list(reversed(ctx.slides[:3]))


def test_by_reference_a_task_carries_the_digest_only(ctx: ReleaseContext) -> None:
    shared = Shared(ctx)
    ref = pickle.dumps(shared.by_reference())
    assert len(ref) < 300 < 10_000 < len(pickle.dumps(shared))
    shipping._CACHE.clear()
    shipping._PINNED.clear()
    orphan = pickle.loads(ref)  # the scheduler unpickles task arguments: no context needed
    with pytest.raises(RuntimeError, match="by reference"):
        orphan.context([], [])  # a worker without the plugin says so; it never guesses
    plugin = shipping.ContextPlugin(shared)
    plugin.setup(None)
    try:
        got = pickle.loads(ref).context([ctx.slides[0]], ["p-0"])
        assert got.policies == ctx.policies and got.release == ctx.release
    finally:
        plugin.teardown(None)
    shipping._CACHE.clear()
    with pytest.raises(RuntimeError):
        pickle.loads(ref).context([], [])


@pytest.mark.integration
def test_the_plugin_puts_the_context_on_real_workers(ctx: ReleaseContext) -> None:
    from distributed import Client, LocalCluster

    shared = Shared(ctx)
    plugin = shipping.ContextPlugin(shared)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,  # fmt: skip
        Client(cluster) as client,
    ):
        client.register_plugin(plugin, name=plugin.name)
        ref = shared.by_reference()
        got = client.submit(Shared.context, ref, [], [], pure=False).result(timeout=120)
        assert got.release == ctx.release and got.policies == ctx.policies
        cluster.scale(2)  # a worker that joins later gets it too
        client.wait_for_workers(2)
        done = client.run(shipping.revived)
        assert sorted(done.values()) == [1, 1]
        client.unregister_worker_plugin(plugin.name)
        assert sorted(client.run(shipping.pinned).values()) == [0, 0]
