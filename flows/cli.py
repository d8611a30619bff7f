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
  SLIDEGATE_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or an AWS profile),
  PREFECT_API_URL (use an existing Prefect server instead of the local one)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slidegate",
        description="Privacy-gated release of whole-slide image cohorts to OME-Zarr.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--work-dir", type=Path, help="private work area (keys, staging, reports)")
        p.add_argument("--dask-address", help="use an existing Dask scheduler (tcp://host:port)")
        p.add_argument("--workers", type=int, help="LocalCluster worker processes (default 2)")
        p.add_argument("--s3-endpoint-url", help="S3-compatible endpoint for s3:// targets")
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


def write_spec(root: Path, *, release: str, target: str, profile: str = "open-access") -> Path:
    spec = root / "release.yaml"
    spec.write_text(
        f"release: {release}\nsource: slides\ncohort: cohort.csv\nprofile: {profile}\n"
        f"target: {target}\ncanaries: canaries.json\n",
        encoding="utf-8",
    )
    return spec


def cmd_release(args: argparse.Namespace, spec: Path | None = None) -> int:
    settings = _settings(args)
    server = _server(settings, args.prefect_port)
    from flows.release import dask_runner, release_cohort

    logging.getLogger("distributed").setLevel(logging.WARNING)  # cluster chatter off the terminal

    try:
        result = release_cohort.with_options(task_runner=dask_runner(settings))(
            spec=str(spec or args.spec),
            dry_run=getattr(args, "dry_run", False),
            settings=settings,
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
    if result.get("published"):
        print(f"published to {result['target']}/{result['release']}")
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
    return cmd_release(args, spec=spec)


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


COMMANDS = {
    "release": cmd_release,
    "demo": cmd_demo,
    "synth": cmd_synth,
    "verify": cmd_verify,
    "server": cmd_server,
}

if __name__ == "__main__":
    sys.exit(main())
