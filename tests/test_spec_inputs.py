"""Hostile and mistaken release specs: each is refused with one message, no traceback, fast,
before a Prefect server, a cluster or a flow run exists (issue 16 item 3)."""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from pathlib import Path

import pytest

from flows import cli
from slidegate import safeyaml
from slidegate.errors import PolicyError, SpecError
from slidegate.policy import load_yaml_model
from slidegate.spec import ReleaseSpec

HEADER = "slide,patient,block,specimen,age,sex,diagnosis,site,collection_date\n"
ROW = "a.svs,P1,B1,S1,61,F,C18.7,colon,2019-03-01\n"


def billion_laughs(key: str = "release") -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append(f"{key}: *j")
    return "\n".join(lines) + "\n"


def write(
    tmp_path: Path, spec: str | bytes | None = None, header: str = HEADER, **fields: str
) -> Path:
    (tmp_path / "slides").mkdir(exist_ok=True)
    (tmp_path / "slides" / "a.svs").write_bytes(b"x")
    (tmp_path / "cohort.csv").write_text(header + ROW if header == HEADER else header)
    path = tmp_path / "spec.yaml"
    if spec is None:
        base = {
            "release": "r1",
            "source": "slides",
            "cohort": "cohort.csv",
            "profile": "restricted",
            "target": "out",
        }
        base.update(fields)
        spec = "".join(f"{k}: {v}\n" for k, v in base.items())
    if isinstance(spec, bytes):
        path.write_bytes(spec)
    else:
        path.write_text(spec)
    return path


MISTAKES: dict[str, tuple[dict[str, object], str]] = {
    "yaml bomb in release": ({"spec": billion_laughs()}, "aliases|anchors"),
    "duplicate key": (
        {
            "spec": "release: r1\nrelease: r2\nsource: slides\ncohort: cohort.csv\n"
            "profile: restricted\ntarget: out\n"
        },
        "given twice",
    ),
    "binary spec": ({"spec": b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe"}, "binary|UTF-8"),
    "canaries not json": (
        {"canaries": "canaries.json", "_canaries": "not json {"},
        "not UTF-8 JSON",
    ),
    "canaries wrong shape": (
        {"canaries": "canaries.json", "_canaries": json.dumps({"canaries": {"a": 1}})},
        "must hold a list",
    ),
    "canaries entries wrong": (
        {"canaries": "canaries.json", "_canaries": json.dumps({"canaries": [1, 2]})},
        "entry 1",
    ),
    "unsupported target scheme": ({"target": "ftp://host/x"}, "unsupported target scheme"),
    "target is a file": ({"target": "afile", "_file": "afile"}, "not a folder"),
    "release manifest.json": ({"release": "manifest.json"}, "reserved"),
    "release CON": ({"release": "CON"}, "reserved"),
    "release con.txt": ({"release": "con.txt"}, "reserved"),
    "profile path": ({"profile": "../profiles/open-access"}, "not a path"),
    "unknown cohort column": (
        {"_header": HEADER.strip() + ",mrn\n" + ROW.strip() + ",123\n"},
        r"\['mrn'\] with no rule",
    ),
    "missing patient column": (
        {
            "_header": "slide,block,specimen,age,sex,diagnosis,site,collection_date\n"
            "a.svs,B1,S1,61,F,C18.7,colon,2019-03-01\n"
        },
        r"lacks column\(s\) \['patient'\]",
    ),
    "spec is a folder": ({"_specdir": "1"}, "not a regular file"),
    # more mistakes of a new user, each with its own message (issue 16 item 4)
    "yaml bomb in source": ({"spec": billion_laughs("source")}, "aliases|anchors"),
    "source missing": ({"source": "nope"}, "source folder .* does not exist"),
    "cohort missing": ({"cohort": "nope.csv"}, "cohort table .* does not exist"),
    "cohort binary": ({"_header": "\x89PNG\x00\xff"}, "not a readable UTF-8 CSV|no|column"),
    "cohort slide missing": (
        {"_header": HEADER + ROW.replace("a.svs", "ghost.svs")},
        "ghost.svs does not exist",
    ),
    "canaries missing": ({"canaries": "nope.json"}, "canaries file .* does not exist"),
    "profile unknown": ({"profile": "nosuch"}, "profile 'nosuch' not found"),
    "empty spec": ({"spec": ""}, "mapping at top level"),
    "release with a slash": ({"release": "a/b"}, "release id must be"),
    "tab in spec": ({"spec": "release: r1\n\tsource: x\n"}, r"line 2, column 1: .*\\t"),
    "number too long": ({"release": "9" * 5000}, "number too long"),
}


def _build(tmp_path: Path, case: dict[str, object]) -> Path:
    fields = {k: str(v) for k, v in case.items() if not k.startswith("_") and k != "spec"}
    header = str(case.get("_header", HEADER))
    spec = write(tmp_path, case.get("spec"), header=header, **fields)  # type: ignore[arg-type]
    if "_canaries" in case:
        (tmp_path / "canaries.json").write_text(str(case["_canaries"]))
    if "_file" in case:
        (tmp_path / str(case["_file"])).write_text("not a folder")
    if "_specdir" in case:
        spec.unlink()
        spec.mkdir()
    return spec


@pytest.fixture(scope="module", autouse=True)
def _warm_imports() -> None:
    """The 2 s budget is the checks' own; module imports (pandas, pydantic) are paid once."""
    import slidegate.stages.context  # noqa: F401


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_spec_mistake_is_one_message_before_any_server(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    case, expected = MISTAKES[name]
    spec = _build(tmp_path, case)
    started: list[str] = []
    monkeypatch.setattr(cli, "_server", lambda *a, **k: started.append("server"))
    monkeypatch.setenv("SLIDEGATE_WORK_DIR", str(tmp_path / "work"))
    t0 = time.monotonic()
    code = cli.main(["release", str(spec)])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 2, err
    assert started == []  # refused before the Prefect server (and so before any flow run)
    assert "Traceback" not in err
    assert err.startswith("slidegate: error: ") and err.count("\n") == 1, err
    import re

    assert re.search(expected, err), err
    assert elapsed < 2.0
    assert not (tmp_path / "work").exists()  # no key, no work area


def test_yaml_bomb_in_a_policy_file_refused_fast(tmp_path: Path) -> None:
    """Policies are user files too: a bomb in the profile is refused by the same loader."""
    import shutil

    from slidegate.profile import load_policies
    from slidegate.settings import DEFAULT_POLICIES_DIR

    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    (policies / "profiles" / "restricted.yaml").write_text(billion_laughs("name"))
    tracemalloc.start()
    t0 = time.monotonic()
    with pytest.raises(PolicyError, match=r"alias|anchor"):
        load_policies(policies, "restricted")
    elapsed = time.monotonic() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 5 * 1024 * 1024


def test_yaml_bomb_through_the_cli_in_its_own_process(tmp_path: Path) -> None:
    """The whole command in a fresh process: refused, exit 2, no traceback, the process' peak
    memory that of its imports (the bomb's expansion would be gigabytes)."""
    import subprocess
    import sys

    spec = write(tmp_path, billion_laughs())
    log = tmp_path / "stderr.txt"
    # A small launcher starts the CLI and reads its peak RSS with wait4. Started straight from
    # pytest, the CLI's peak would include pytest's own pages from before exec (Linux counts
    # the pre-exec address space in ru_maxrss), which is the size of the test session.
    launcher = (
        "import os, subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=sys.stderr)\n"
        "_pid, status, usage = os.wait4(p.pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)\n"
    )
    with log.open("w") as fh:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                launcher,
                sys.executable,
                "-m",
                "flows.cli",
                "release",
                str(spec),
            ],
            stdout=subprocess.PIPE,
            stderr=fh,
            text=True,
            env={**os.environ, "SLIDEGATE_WORK_DIR": str(tmp_path / "work")},
            check=True,
        ).stdout
    code, maxrss_kib = (int(v) for v in out.split())
    err = log.read_text()
    assert code == 2, err
    assert "Traceback" not in err and "anchors" in err
    assert maxrss_kib < 1024 * 1024  # under 1 GiB (imports: ~300 MB)
    assert not (tmp_path / "work").exists()


def test_verbose_shows_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _build(tmp_path, {"release": "CON"})
    monkeypatch.setattr(cli, "_server", lambda *a, **k: pytest.fail("server started"))
    assert cli.main(["-v", "release", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "reserved" in err


def test_yaml_bomb_refused_fast_with_bounded_memory(tmp_path: Path) -> None:
    spec = write(tmp_path, billion_laughs())
    tracemalloc.start()
    t0 = time.monotonic()
    with pytest.raises(PolicyError, match=r"alias|anchor"):
        load_yaml_model(spec, ReleaseSpec)
    elapsed = time.monotonic() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5 * 1024 * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\na: 2\n", "given twice"),
        ("a: &x 1\nb: *x\n", "anchors"),
        ("base: {a: 1}\nc:\n  <<: {a: 2}\n", "merge"),
        ("a: " + "[" * 200 + "]" * 200 + "\n", "too deep"),
    ],
)
def test_strict_loader_refuses(text: str, expected: str) -> None:
    with pytest.raises(safeyaml.UnsafeYamlError, match=expected):
        safeyaml.loads(text)


def test_oversized_yaml_refused_without_reading_it_all(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as fh:
        fh.write(b"release: r1\n" + b"#" * (safeyaml.MAX_YAML_BYTES + 10))
    with pytest.raises(safeyaml.UnsafeYamlError, match="larger than"):
        safeyaml.read_text(big)


def test_fifo_spec_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    with pytest.raises(PolicyError, match="not a regular file"):
        load_yaml_model(fifo, ReleaseSpec)


def test_every_shipped_policy_loads_strictly(policies_dir: Path) -> None:
    for path in sorted(policies_dir.rglob("*.yaml")):
        assert isinstance(safeyaml.load_file(path), dict), path


def test_good_spec_still_passes_the_checks(tmp_path: Path) -> None:
    from slidegate.settings import Settings
    from slidegate.stages.context import check_inputs

    spec = write(tmp_path, canaries="canaries.json")
    (tmp_path / "canaries.json").write_text(
        json.dumps({"canaries": [{"field": "f", "value": "v"}]})
    )
    resolved, policies = check_inputs(spec, Settings(work_dir=tmp_path / "work"))
    assert resolved.spec.release == "r1" and policies.name == "restricted"
    assert not (tmp_path / "work").exists()
    with pytest.raises(SpecError):
        check_inputs(write(tmp_path, target="s3:///nobucket"), Settings())
