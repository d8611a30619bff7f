"""The `slidegate` command line: the edge where settings are built from flags + environment.

Heavy imports (prefect, dask, great_expectations) happen inside the commands, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from flows.server import PrefectServer
from slidegate.errors import SlidegateError
from slidegate.settings import Settings

EPILOG = """examples:
  slidegate demo                          synthesise a small cohort and release it locally
  slidegate synth cohort/ --slides 8 --patients 3 --seed 1
  slidegate release cohort/release.yaml --dry-run
  slidegate release spec.yaml --dask-address tcp://10.0.0.5:8786

environment: SLIDEGATE_WORK_DIR (private work area, default ./.slidegate),
  SLIDEGATE_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or an AWS profile,
  or SLIDEGATE_S3_CREDENTIALS_BLOCK: a Prefect block, resolved by the release flow),
  PREFECT_API_URL (use an existing Prefect server instead of the local one),
  SLIDEGATE_REGISTRY_URL (steward registry: ledger, keys, release records; default SQLite in
  the per-user data folder), SLIDEGATE_REGISTRY_KEY (64 hex digits: seals keys at rest)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slidegate",
        description="Privacy-gated release of whole-slide image cohorts to OME-Zarr.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the traceback of an error too"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--work-dir", type=Path, help="private work area (keys, staging, reports)")
        p.add_argument("--dask-address", help="use an existing Dask scheduler (tcp://host:port)")
        p.add_argument(
            "--cluster", help="Dask cluster spec by name: deploy/dask/<NAME>.yaml (or a path)"
        )
        p.add_argument("--workers", type=int, help="LocalCluster worker processes (default 2)")
        p.add_argument(
            "--s3-endpoint-url", help="S3-compatible endpoint for s3:// sources and targets"
        )
        p.add_argument("--staging-url", help="private s3://bucket/prefix for audited slide outputs")
        p.add_argument(
            "--s3-credentials-block",
            help="S3 keys from a Prefect block: Secret NAME (JSON) or aws-credentials/NAME",
        )
        p.add_argument(
            "--registry-url",
            help="steward registry: sqlite:///PATH or postgresql://USER@HOST/DB "
            "(default: SQLite in the per-user data folder)",
        )
        p.add_argument(
            "--new-registry",
            action="store_true",
            help="the target holds releases this registry does not know: record them, go on",
        )
        p.add_argument(
            "--prefect-port",
            type=int,
            default=4200,
            help="port of the local Prefect server (default 4200)",
        )
        p.add_argument(
            "--stop-server",
            action="store_true",
            help="stop the local Prefect server at the end if this run started it",
        )

    rel = sub.add_parser("release", help="release a cohort described by a release spec")
    rel.add_argument("spec", type=Path, help="release spec YAML")
    rel.add_argument(
        "--dry-run",
        action="store_true",
        help="stop before publishing: write the plan and reports to the work area",
    )
    run_options(rel)

    demo = sub.add_parser("demo", help="synthesise a cohort and release it to a local folder")
    demo.add_argument("--out", type=Path, default=Path("demo"), help="folder (default ./demo)")
    demo.add_argument("--slides", type=int, default=8)
    demo.add_argument("--patients", type=int, default=3)
    demo.add_argument("--seed", type=int, default=7)
    run_options(demo)

    syn = sub.add_parser("synth", help="write a synthetic cohort with planted canary PHI")
    syn.add_argument("out", type=Path)
    syn.add_argument("--slides", type=int, default=8)
    syn.add_argument("--patients", type=int, default=3)
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--corrupt", type=int, default=0, help="also add N truncated slides")

    ver = sub.add_parser("verify", help="check a published release (manifest, checksums)")
    ver.add_argument("release", help="TARGET/RELEASE, a folder or s3://bucket/prefix/release")
    ver.add_argument("--s3-endpoint-url")

    lst = sub.add_parser("list", help="list the complete releases (with a manifest) in a target")
    lst.add_argument("target", help="a folder or s3://bucket/prefix")
    lst.add_argument("--s3-endpoint-url")

    sv = sub.add_parser(
        "serve", help="local Prefect server + work pool + worker + scheduled deployments"
    )
    sv.add_argument("--collection", type=Path, help="collection spec of the scheduled export")
    sv.add_argument("--pool", default="slidegate-local", help="process work pool name")
    sv.add_argument("--stop", action="store_true", help="stop the worker and the local server")
    sv.add_argument("--work-dir", type=Path)
    sv.add_argument("--prefect-port", type=int, default=4200)

    for verb in ("approve", "reject"):
        ans = sub.add_parser(verb, help=f"{verb} a release waiting for a steward")
        ans.add_argument("run", help="flow run id (or name) of the paused release")
        ans.add_argument("--reason", default="", required=verb == "reject")
        ans.add_argument("--prefect-port", type=int, default=4200)

    ins = sub.add_parser(
        "inspect", help="show a slide's levels, images and fields with the policy action of each"
    )
    ins.add_argument("slide", type=Path, help="slide file (an MRXS slide: the .mrxs file)")
    ins.add_argument("--profile", default="open-access", help="profile (default open-access)")
    ins.add_argument("--policies-dir", type=Path, help="policy library (default: policies/)")

    rsk = sub.add_parser("risk", help="run the cohort risk model alone and print its report")
    rsk.add_argument("cohort", type=Path, help="cohort CSV (slide, patient, block, ...)")
    rsk.add_argument("--profile", default="open-access", help="profile (default open-access)")
    rsk.add_argument("--slides", type=Path, help="source folder: adds image linkage, taxonomy")
    rsk.add_argument("--population", type=Path, help="population counts CSV (journalist risk)")
    rsk.add_argument("--out", type=Path, help="also write risk.json, risk.md, risk.png here")
    rsk.add_argument("--policies-dir", type=Path, help="policy library (default: policies/)")

    reg = sub.add_parser("registry", help="the steward registry: import a target's releases")
    reg.add_argument("action", choices=["import"])
    reg.add_argument("target", help="a folder or s3://bucket/prefix whose releases to record")
    reg.add_argument("--registry-url")
    reg.add_argument("--s3-endpoint-url")

    srv = sub.add_parser("server", help="the local Prefect server: start, stop or status")
    srv.add_argument("action", choices=["start", "stop", "status"])
    srv.add_argument("--work-dir", type=Path)
    srv.add_argument("--prefect-port", type=int, default=4200)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(COMMANDS[args.command](args))
    except SlidegateError as exc:
        if args.verbose:
            import traceback

            traceback.print_exc()
        print(f"slidegate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        os.environ,
        work_dir=getattr(args, "work_dir", None),
        dask_address=getattr(args, "dask_address", None),
        n_workers=getattr(args, "workers", None),
        s3_endpoint_url=getattr(args, "s3_endpoint_url", None),
        cluster=getattr(args, "cluster", None),
        s3_credentials_block=getattr(args, "s3_credentials_block", None),
        staging_url=getattr(args, "staging_url", None),
        registry_url=getattr(args, "registry_url", None),
    )


def cmd_synth(args: argparse.Namespace) -> int:
    from slidegate.synth import generate_cohort

    cohort = generate_cohort(
        args.out, slides=args.slides, patients=args.patients, seed=args.seed, corrupt=args.corrupt
    )
    spec = write_spec(cohort.root, release=f"synth-{args.seed}", target="release")
    print(f"wrote {cohort.n_slides} slides of {cohort.n_patients} patients to {cohort.root}")
    print(f"release spec: {spec}")
    return 0


def write_spec(
    root: Path, *, release: str, target: str, profile: str = "controlled-access"
) -> Path:
    """The demo's and synth's spec: controlled access (open access's EMA 0.09 threshold needs
    classes of 12+ patients; a 3-patient demo cohort would be withheld whole)."""
    spec = root / "release.yaml"
    spec.write_text(
        f"release: {release}\nsource: slides\ncohort: cohort.csv\nprofile: {profile}\n"
        f"target: {target}\ncanaries: canaries.json\n",
        encoding="utf-8",
    )
    return spec


def cmd_release(args: argparse.Namespace, spec: Path | None = None) -> int:
    from flows.clusters import with_spec_cluster
    from slidegate.stages.context import check_inputs

    settings = with_spec_cluster(_settings(args), spec or args.spec)
    # every spec, cohort, canaries and policy check before a server, cluster or flow run starts
    resolved, _ = check_inputs(spec or args.spec, settings)
    new_registry = bool(getattr(args, "new_registry", False))
    if not getattr(args, "dry_run", False) and not settings.s3_credentials_block:
        from flows.registry import check_release

        # the target against the registry: unknown releases stop here; a complete release
        # from this spec is verified and reported (a retried nightly job succeeds)
        pre = check_release(resolved, settings, new_registry)
        if pre.complete:
            print(
                f"release {resolved.spec.release} is complete at {resolved.target} "
                f"({pre.objects} objects verified); nothing to do"
            )
            return 0
    server = _server(settings, args.prefect_port)
    from flows.release import dask_runner, release_cohort

    logging.getLogger("distributed").setLevel(logging.WARNING)  # cluster chatter off the terminal

    try:
        result = release_cohort.with_options(task_runner=dask_runner(settings))(
            spec=str(spec or args.spec),
            dry_run=getattr(args, "dry_run", False),
            settings=settings,
            new_registry=new_registry,
        )
    finally:
        if args.stop_server and server.started:
            from prefect.logging.handlers import APILogWorker

            from flows.server import stop_server

            APILogWorker.drain_all(timeout=5)  # send the last log lines before the server stops
            stop_server(settings.work_dir.resolve() / "prefect")
    counts = result.get("counts", {})
    print(
        f"release {result['release']}: {counts.get('approved', 0)} approved, "
        f"{counts.get('withheld', 0)} withheld, {counts.get('quarantined', 0)} quarantined"
    )
    if result.get("complete"):
        print(f"release {result['release']} is complete at {result['target']} (verified)")
    elif result.get("published"):
        print(f"published to {result['target']}/{result['release']}")
    elif result.get("rejected"):
        print(f"rejected: nothing published; the reason is in {result['work']}/approval.json")
    else:
        print(f"dry run: plan and reports in {result['work']}")
    print(f"Prefect UI: {server.ui_url}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from slidegate.synth import generate_cohort

    cohort = generate_cohort(
        args.out / "cohort", slides=args.slides, patients=args.patients, seed=args.seed, corrupt=1
    )
    release = f"demo-{args.seed}"
    spec = write_spec(cohort.root, release=release, target=str((args.out / "release").resolve()))
    out = args.out / "release" / release
    if (out / "manifest.json").exists():
        print(f"{out} already holds this demo release; delete {args.out} to run it again")
        return 0
    print(
        f"synthetic cohort: {cohort.n_slides} slides and {cohort.n_corrupt} corrupt one "
        f"in {cohort.root}"
    )
    if not args.registry_url and not os.environ.get("SLIDEGATE_REGISTRY_URL"):
        # the demo is a sandbox: a registry of its own, so no real release's ledger sees it
        args.registry_url = f"sqlite:///{(args.out / 'registry.sqlite').resolve()}"
    return cmd_release(args, spec=spec)


def cmd_list(args: argparse.Namespace) -> int:
    from slidegate.publish.release import list_releases
    from slidegate.publish.stores import open_store

    store = open_store(args.target, _settings(args))
    for release in list_releases(store):
        print(release)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from slidegate.publish.release import verify_release
    from slidegate.publish.stores import open_store

    target, _, release = args.release.rstrip("/").rpartition("/")
    store = open_store(target, Settings.from_env(os.environ, s3_endpoint_url=args.s3_endpoint_url))
    problems = verify_release(store, release)
    for p in problems:
        print(f"FAIL {p}")
    print(f"{args.release}: " + ("OK" if not problems else f"{len(problems)} problem(s)"))
    return 0 if not problems else 1


def cmd_registry(args: argparse.Namespace) -> int:
    from flows.registry import import_target

    return import_target(args.target, _settings(args))


def cmd_server(args: argparse.Namespace) -> int:
    from flows.server import ensure_server, healthy, stop_server

    home = _settings(args).work_dir.resolve() / "prefect"
    api = f"http://127.0.0.1:{args.prefect_port}/api"
    if args.action == "start":
        server = ensure_server(dict(os.environ), home, args.prefect_port)
        print(f"Prefect server at {server.ui_url}")
    elif args.action == "stop":
        print("stopped" if stop_server(home) else "no server started by slidegate is running")
    else:
        print(f"{api}: " + ("healthy" if healthy(api) else "not running"))
    return 0


def _server(settings: Settings, port: int) -> PrefectServer:
    from flows.server import ensure_server

    server = ensure_server(os.environ, settings.work_dir.resolve() / "prefect", port)
    if server.started:
        print(
            f"started a local Prefect server: UI at {server.ui_url} "
            "(stop it with `slidegate server stop`)"
        )
    return server


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import demo_collection, serve, stop_worker

    settings = _settings(args)
    home = settings.work_dir.resolve() / "prefect"
    if args.stop:
        from flows.server import stop_server

        print("worker stopped" if stop_worker(home, args.pool) else "no worker running")
        print("server stopped" if stop_server(home) else "no server started by slidegate")
        return 0
    collection = args.collection or demo_collection(Path("demo"))
    served = serve(
        os.environ,
        work_dir=settings.work_dir,
        collection=collection,
        port=args.prefect_port,
        pool=args.pool,
    )
    print(f"Prefect UI: {served.server.ui_url}")
    print(f"work pool {served.pool}: worker pid {served.worker_pid}")
    print(f"deployments: export-collection/incremental-export (nightly, {collection}),")
    print("             release-cohort/on-demand (give `spec` per run)")
    print("stop with `slidegate serve --stop`")
    return 0


def cmd_answer(args: argparse.Namespace) -> int:
    from flows.approval import answer_at

    approve = args.command == "approve"
    api = os.environ.get("PREFECT_API_URL") or f"http://127.0.0.1:{args.prefect_port}/api"
    run_id = answer_at(api, args.run, approve, args.reason)
    print(f"flow run {run_id}: {'approved' if approve else 'rejected'}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from slidegate.bounded import Bound
    from slidegate.inspect import inspect_slide, render
    from slidegate.profile import load_policies

    settings = Settings.from_env(os.environ)
    policies = load_policies(args.policies_dir or settings.policies_dir, args.profile)
    print(render(inspect_slide(args.slide, policies, Bound.of(settings))))
    return 0


def cmd_risk(args: argparse.Namespace) -> int:
    from slidegate.bounded import Bound
    from slidegate.risk.standalone import run_standalone, write_outputs

    settings = Settings.from_env(os.environ)
    result = run_standalone(
        args.cohort,
        args.policies_dir or settings.policies_dir,
        profile=args.profile,
        slides_dir=args.slides,
        population_csv=args.population,
        bound=Bound.of(settings),
    )
    print(result.markdown())
    if args.out:
        write_outputs(result, args.out)
        print(f"reports written to {args.out}")
    return 0 if result.risk.passed else 1


COMMANDS = {
    "registry": cmd_registry,
    "risk": cmd_risk,
    "inspect": cmd_inspect,
    "serve": cmd_serve,
    "approve": cmd_answer,
    "reject": cmd_answer,
    "release": cmd_release,
    "demo": cmd_demo,
    "synth": cmd_synth,
    "verify": cmd_verify,
    "list": cmd_list,
    "server": cmd_server,
}

if __name__ == "__main__":
    sys.exit(main())
