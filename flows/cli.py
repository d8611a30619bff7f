"""The `slidegate` command line: the edge where settings are built from flags + environment.

Heavy imports (prefect, dask, great_expectations) happen inside the commands, so `--help` is fast.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

from flows import exitcodes
from flows.cliargs import build_parser
from flows.runsummary import human_lines, summary
from flows.server import PrefectServer
from slidegate.errors import SlidegateError
from slidegate.settings import Settings


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # usage errors: argparse exits 2 (exitcodes.USAGE)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the resume hint
    _logging(args)
    try:
        return int(COMMANDS[args.command](args))
    except KeyboardInterrupt as exc:
        if not getattr(exc, "slidegate_reported", False):
            print("slidegate: interrupted; run the same command again to resume", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except SlidegateError as exc:
        if _flag(args, "verbose"):
            traceback.print_exc()
        print(f"slidegate: error: {exc}", file=sys.stderr)
        return exitcodes.for_error(exc)
    except Exception as exc:  # a bug: its message may quote a file's bytes, so only its type
        if _flag(args, "verbose"):
            traceback.print_exc()
        print(
            f"slidegate: internal error ({type(exc).__name__}); run with -v for the traceback",
            file=sys.stderr,
        )
        return exitcodes.FAILURE


def _flag(args: argparse.Namespace, name: str) -> bool:
    return bool(getattr(args, name, False))


def _logging(args: argparse.Namespace) -> None:
    """-q: warnings and errors only (Prefect's run logs too); -v: the cluster's INFO lines."""
    if _flag(args, "quiet"):
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # before prefect is imported
        for name in ("prefect", "slidegate", "distributed"):
            logging.getLogger(name).setLevel(logging.WARNING)
    elif _flag(args, "verbose"):
        logging.getLogger("distributed").setLevel(logging.INFO)


def _out(args: argparse.Namespace) -> TextIO:
    """Where lines for a person go: stderr when stdout carries the --json document."""
    return sys.stderr if _flag(args, "json") else sys.stdout


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


def cmd_release(
    args: argparse.Namespace, spec: Path | None = None, command: str = "release",
    planted_corrupt: int = 0,
) -> int:  # fmt: skip
    """`planted_corrupt`: slides made corrupt on purpose (the demo): their quarantine is expected
    and does not change the exit code."""
    from flows.clusters import with_spec_cluster
    from slidegate.stages.context import check_inputs

    out = _out(args)
    path = spec or args.spec
    info: dict[str, Any] = {"command": command, "release": None, "work": None, "ui": None}
    try:
        settings = with_spec_cluster(_settings(args), path)
        # every spec, cohort, canaries and policy check before a server, cluster or flow run
        resolved, _ = check_inputs(path, settings)
        release = resolved.spec.release
        info["release"] = release
        info["work"] = settings.work_dir.resolve() / "releases" / release
        new_registry = bool(getattr(args, "new_registry", False))
        if not getattr(args, "dry_run", False) and not settings.s3_credentials_block:
            from flows.registry import check_release

            # the target against the registry: unknown releases stop here; a complete release
            # from this spec is verified and reported (a retried nightly job succeeds)
            pre = check_release(resolved, settings, new_registry)
            if pre.complete:
                print(
                    f"release {release} is complete at {resolved.target} ({pre.objects} objects "
                    "verified); nothing to do",
                    file=out,
                )
                where = f"{resolved.target.rstrip('/')}/{release}"
                doc = summary(**info, outcome="complete", exit_code=exitcodes.OK, target=where)
                return _finish(args, doc, quiet_lines=True)
        result = _run(args, settings, path, new_registry, info, out)
    except BaseException as exc:
        code = exitcodes.for_error(exc)
        named = {exitcodes.WITHHELD: "withheld", exitcodes.INTERRUPTED: "interrupted"}
        doc = summary(**info, outcome=named.get(code, "error"), exit_code=code, error=exc)
        if info["release"] is not None and not isinstance(exc, KeyboardInterrupt):
            _finish(args, doc)  # counts and reasons, then main prints the error itself
        elif _flag(args, "json"):
            print(json.dumps(doc, sort_keys=True))
        raise
    counts = result.get("counts", {})
    tolerated = dict(counts, quarantined=max(0, counts.get("quarantined", 0) - planted_corrupt))
    code = exitcodes.for_result({**result, "counts": tolerated})
    target: str | None = None
    if result.get("complete") or result.get("published"):
        target = f"{result['target']}/{result['release']}"
        outcome = "complete" if result.get("complete") else "published"
    else:
        outcome = "rejected" if result.get("rejected") else "dry-run"
    doc = summary(**info, outcome=outcome, exit_code=code, target=target, counts=counts)
    return _finish(args, doc, result)


def _run(
    args: argparse.Namespace, settings: Settings, path: Path, new_registry: bool,
    info: dict[str, Any], out: TextIO,
) -> dict[str, Any]:  # fmt: skip
    server = _server(settings, args.prefect_port, out)
    info["ui"] = server.ui_url
    from flows.interrupt import Interruptible
    from flows.release import dask_runner, release_cohort

    if not _flag(args, "verbose"):
        logging.getLogger("distributed").setLevel(logging.WARNING)  # cluster chatter off
    keep = {server.pid} if server.pid else set()  # Ctrl-C stops the workers, not the server
    try:
        with Interruptible(str(info["release"]), getattr(args, "argv", []), keep):
            result: dict[str, Any] = release_cohort.with_options(task_runner=dask_runner(settings))(
                spec=str(path),
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
    return result


def _finish(
    args: argparse.Namespace, doc: dict[str, Any], result: dict[str, Any] | None = None,
    quiet_lines: bool = False,
) -> int:  # fmt: skip
    """Print the end-of-run summary (to stderr with --json, whose document goes to stdout)."""
    out = _out(args)
    if not quiet_lines:
        for line in human_lines(doc):
            print(line, file=out)
    if result is not None:
        if doc["outcome"] == "complete":
            print(f"release {doc['release']} is complete at {doc['target']} (verified)", file=out)
        elif doc["outcome"] == "published":
            print(f"published to {doc['target']}", file=out)
        elif doc["outcome"] == "rejected":
            print(
                f"rejected: nothing published; the reason is in {result['work']}/approval.json",
                file=out,
            )
        else:
            print(f"dry run: plan and reports in {result['work']}", file=out)
    if doc.get("ui"):
        print(f"Prefect UI: {doc['ui']}", file=out)
    if _flag(args, "json"):
        print(json.dumps(doc, sort_keys=True))
    return int(doc["exit_code"])


def cmd_demo(args: argparse.Namespace) -> int:
    from slidegate.synth import generate_cohort

    cohort = generate_cohort(
        args.out / "cohort", slides=args.slides, patients=args.patients, seed=args.seed, corrupt=1
    )
    release = f"demo-{args.seed}"
    spec = write_spec(cohort.root, release=release, target=str((args.out / "release").resolve()))
    out = args.out / "release" / release
    if (out / "manifest.json").exists():
        print(f"{out} already holds this demo release; delete {args.out} to run it again",
              file=_out(args))  # fmt: skip
        return exitcodes.OK
    print(
        f"synthetic cohort: {cohort.n_slides} slides and {cohort.n_corrupt} corrupt one "
        f"in {cohort.root} (quarantined on purpose)",
        file=_out(args),
    )
    if not args.registry_url and not os.environ.get("SLIDEGATE_REGISTRY_URL"):
        # the demo is a sandbox: a registry of its own, so no real release's ledger sees it
        args.registry_url = f"sqlite:///{(args.out / 'registry.sqlite').resolve()}"
    return cmd_release(args, spec=spec, command="demo", planted_corrupt=cohort.n_corrupt)


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
    out = _out(args)
    for p in problems:
        print(f"FAIL {p}", file=out)
    print(f"{args.release}: " + ("OK" if not problems else f"{len(problems)} problem(s)"), file=out)
    code = exitcodes.OK if not problems else exitcodes.FAILURE
    if _flag(args, "json"):  # problems name object paths, never contents
        doc = {"schema": "slidegate.verify/1", "release": args.release, "ok": not problems,
               "problems": problems, "exit_code": code}  # fmt: skip
        print(json.dumps(doc, sort_keys=True))
    return code


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


def _server(settings: Settings, port: int, out: TextIO | None = None) -> PrefectServer:
    from flows.server import ensure_server

    server = ensure_server(os.environ, settings.work_dir.resolve() / "prefect", port)
    if server.started:
        print(
            f"started a local Prefect server: UI at {server.ui_url} "
            "(stop it with `slidegate server stop`)",
            file=out or sys.stdout,
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
    approver = args.approver or getpass.getuser()
    run_id = answer_at(api, args.run, approve, args.reason, approver)
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
