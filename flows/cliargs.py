"""The `slidegate` command line's arguments (flows/cli.py runs the commands).

Every command takes `-v/--verbose`, `-q/--quiet` and `--json` before or after its name;
`slidegate --version` prints the version. Exit codes: flows/exitcodes.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import slidegate
from flows import exitcodes

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
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given before or after the command name, the one given counts
    noise = common.add_mutually_exclusive_group()
    noise.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="more log lines (cluster, flow engine) and the traceback of an error",
    )  # fmt: skip
    noise.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="warnings, errors and the end-of-run summary only",
    )  # fmt: skip
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS,
        help="release, demo, verify: the end-of-run summary as one JSON document on stdout "
        "(schema slidegate.run-summary/1, README 'Exit codes and --json'); other output on "
        "stderr",
    )  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="slidegate",
        description="Privacy-gated release of whole-slide image cohorts to OME-Zarr.",
        epilog=EPILOG + "\n\n" + exitcodes.help_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"slidegate {slidegate.__version__}")
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

    rel = sub.add_parser(
        "release", parents=[common], help="release a cohort described by a release spec"
    )
    rel.add_argument("spec", type=Path, help="release spec YAML")
    rel.add_argument(
        "--dry-run",
        action="store_true",
        help="stop before publishing: write the plan and reports to the work area",
    )
    run_options(rel)

    demo = sub.add_parser(
        "demo", parents=[common], help="synthesise a cohort and release it to a local folder"
    )
    demo.add_argument("--out", type=Path, default=Path("demo"), help="folder (default ./demo)")
    demo.add_argument("--slides", type=int, default=8)
    demo.add_argument("--patients", type=int, default=3)
    demo.add_argument("--seed", type=int, default=7)
    run_options(demo)

    syn = sub.add_parser(
        "synth", parents=[common], help="write a synthetic cohort with planted canary PHI"
    )
    syn.add_argument("out", type=Path)
    syn.add_argument("--slides", type=int, default=8)
    syn.add_argument("--patients", type=int, default=3)
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--corrupt", type=int, default=0, help="also add N truncated slides")

    ver = sub.add_parser(
        "verify", parents=[common], help="check a published release (manifest, checksums)"
    )
    ver.add_argument("release", help="TARGET/RELEASE, a folder or s3://bucket/prefix/release")
    ver.add_argument("--s3-endpoint-url")

    lst = sub.add_parser(
        "list", parents=[common], help="list the complete releases (with a manifest) in a target"
    )
    lst.add_argument("target", help="a folder or s3://bucket/prefix")
    lst.add_argument("--s3-endpoint-url")

    sv = sub.add_parser(
        "serve",
        parents=[common],
        help="local Prefect server + work pool + worker + scheduled deployments",
    )
    sv.add_argument("--collection", type=Path, help="collection spec of the scheduled export")
    sv.add_argument("--pool", default="slidegate-local", help="process work pool name")
    sv.add_argument("--stop", action="store_true", help="stop the worker and the local server")
    sv.add_argument("--work-dir", type=Path)
    sv.add_argument("--prefect-port", type=int, default=4200)

    for verb in ("approve", "reject"):
        ans = sub.add_parser(verb, parents=[common], help=f"{verb} a release waiting for a steward")
        ans.add_argument("run", help="flow run id (or name) of the paused release")
        ans.add_argument("--reason", default="", required=verb == "reject")
        ans.add_argument(
            "--as",
            dest="approver",
            default=None,
            help="who answers, recorded privately with the decision (default: your login name)",
        )
        ans.add_argument("--prefect-port", type=int, default=4200)

    ins = sub.add_parser(
        "inspect",
        parents=[common],
        help="show a slide's levels, images and fields with the policy action of each",
    )
    ins.add_argument("slide", type=Path, help="slide file (an MRXS slide: the .mrxs file)")
    ins.add_argument("--profile", default="open-access", help="profile (default open-access)")
    ins.add_argument("--policies-dir", type=Path, help="policy library (default: policies/)")

    rsk = sub.add_parser(
        "risk", parents=[common], help="run the cohort risk model alone and print its report"
    )
    rsk.add_argument("cohort", type=Path, help="cohort CSV (slide, patient, block, ...)")
    rsk.add_argument("--profile", default="open-access", help="profile (default open-access)")
    rsk.add_argument("--slides", type=Path, help="source folder: adds image linkage, taxonomy")
    rsk.add_argument("--population", type=Path, help="population counts CSV (journalist risk)")
    rsk.add_argument("--out", type=Path, help="also write risk.json, risk.md, risk.png here")
    rsk.add_argument("--policies-dir", type=Path, help="policy library (default: policies/)")

    reg = sub.add_parser(
        "registry", parents=[common], help="the steward registry: import a target's releases"
    )
    reg.add_argument("action", choices=["import"])
    reg.add_argument("target", help="a folder or s3://bucket/prefix whose releases to record")
    reg.add_argument("--registry-url")
    reg.add_argument("--s3-endpoint-url")

    srv = sub.add_parser(
        "server", parents=[common], help="the local Prefect server: start, stop or status"
    )
    srv.add_argument("action", choices=["start", "stop", "status"])
    srv.add_argument("--work-dir", type=Path)
    srv.add_argument("--prefect-port", type=int, default=4200)
    return parser
