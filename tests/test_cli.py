"""The genesys-enrich command: run, plugins, demo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from genesys_enrich.hosts.cli import main
from genesys_enrich.testing import FakeCrm, FakeGenesys, customer_start_event, sample, seed_event


def write_jsonl(path: Path, events: list[object]) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def test_run_writes_one_outcome_line_per_event(
    tmp_path: Path, settings_file: Path, genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """--output gets a JSON line per event with the documented keys; exit 1 as one failed."""
    events = write_jsonl(
        tmp_path / "events.jsonl",
        [seed_event("CUST-1001"), seed_event("CUST-0000"), seed_event(interaction_id="bad")],
    )
    (tmp_path / "broken.jsonl").write_text('{"id": "x"}\nnot json\n')
    output = tmp_path / "outcomes.jsonl"
    code = main(
        [
            "run",
            str(events),
            str(tmp_path / "broken.jsonl"),
            "--settings",
            str(settings_file),
            "--output",
            str(output),
        ]
    )
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert code == 1
    assert [line["status"] for line in lines] == [
        "enriched",
        "skipped",
        "failed",
        "failed",
        "failed",
    ]
    for line in lines:
        assert {
            "event_id",
            "interaction_id",
            "status",
            "reason",
            "fields",
            "provenance",
            "retryable",
            "duration_ms",
        } <= line.keys()
    assert lines[0]["provenance"]["crmAccountId"] == "rest"
    assert "line 2 is not JSON" in lines[4]["reason"]
    assert len(genesys.writes) == 1
    assert "5 events: 1 enriched, 1 skipped, 3 failed" in capsys.readouterr().out


def test_dry_run_prints_the_patch_and_writes_nothing(
    tmp_path: Path, settings_file: Path, genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run shows each request it would send, with provenance, and Genesys sees nothing."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps(sample("customer-start-chat"), indent=2))
    code = main(["run", str(event), "--settings", str(settings_file), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "would write 4 fields" in out
    assert "PATCH /api/v2/conversations/2f7bf00a-0fc2-4d6a-9b56-92238191433e/participants/" in out
    assert '"loyaltyTier": "Silver"' in out
    assert "<- rest" in out
    assert genesys.requests == []


def test_dry_run_needs_no_genesys_credentials(
    tmp_path: Path,
    crm: FakeCrm,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A captured event can be debugged with only the CRM configured, from stdin."""
    monkeypatch.setenv("CRM_API_BASE_URL", crm.url)
    monkeypatch.setenv("CRM_API_KEY", "demo-crm-key")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps([seed_event()])))
    assert main(["run", "-", "--dry-run"]) == 0
    assert "would write 4 fields" in capsys.readouterr().out


def test_json_list_files_and_directories_are_read(
    tmp_path: Path, settings_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A JSON list counts as many events, and a directory contributes its JSON files."""
    folder = tmp_path / "captured"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps([seed_event(), seed_event()]))
    write_jsonl(folder / "b.jsonl", [customer_start_event(external_contact_id="uwu")])
    assert main(["run", str(folder), "--settings", str(settings_file), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "3 events: 3 enriched"


def test_missing_credentials_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Settings errors are one line on stderr and exit code 2, not a traceback."""
    events = write_jsonl(tmp_path / "e.jsonl", [seed_event()])
    code = main(["run", str(events)])
    err = capsys.readouterr().err
    assert code == 2
    assert "GENESYS_CLIENT_ID" in err
    assert "Traceback" not in err


def test_bad_setting_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong value in the settings file is reported by key and where to set it."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[pipeline]\nsource_timeout_seconds = -1\n")
    assert main(["plugins", "--settings", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "pipeline.source_timeout_seconds" in err
    assert "GENESYS_ENRICH_PIPELINE__SOURCE_TIMEOUT_SECONDS" in err


@pytest.mark.slow
def test_plugins_lists_the_built_ins_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`plugins --json` names each plugin, its distribution, version, hooks and status."""
    assert main(["plugins", "--json"]) == 0
    listing = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    rest = listing["rest"]
    assert rest["distribution"] == "genesys-enrich-crm-rest"
    assert rest["version"]
    assert rest["status"] == "loaded"
    assert rest["enabled"] is True
    assert rest["hooks"] == ["register_crm_sources"]
    assert rest["sources"] == ["rest"]
    assert listing["fields"]["mappers"] == ["fields"]


def test_plugins_table_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    """The default listing is a table with the enabled and hooks columns."""
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "name",
        "distribution",
        "status",
        "enabled",
        "hooks",
        "provides",
        "error",
    ]
    [rest] = [line.split() for line in out.splitlines() if line.startswith("rest ")]
    assert rest[3:6] == ["loaded", "yes", "crm_sources"]
    assert "source:rest" in rest


@pytest.mark.slow
def test_demo_runs_on_a_fresh_checkout() -> None:
    """`genesys-enrich demo` runs every sample, reads the writes back, and exits 0."""
    executable = shutil.which("genesys-enrich", path=str(Path(sys.executable).parent))
    assert executable, "the console script is installed with the package"
    result = subprocess.run(  # noqa: S603 - our own console script
        [executable, "demo"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ENRICHED  known customer (seed shape)" in out
    assert "SKIPPED   unknown customer" in out
    assert "FAILED    malformed" in out
    assert "crmAccountId" in out
    assert "<- rest" in out
    assert "GET /api/v2/interactions/8f7e6d5c-4b3a-2109-8765-4321fedcba09 -> " in out
    assert "token requests: 1" in out


@pytest.mark.slow
def test_the_demo_runs_without_the_test_kit() -> None:
    """The demo's fakes are the core's own: it runs where the test kit cannot be imported."""
    code = (
        "import sys; sys.modules['genesys_enrich.testing'] = None;"  # importing it now fails
        "from genesys_enrich.hosts.cli import main; sys.exit(main(['demo']))"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "ENRICHED  known customer (seed shape)" in result.stdout


def test_a_bad_concurrency_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--concurrency 0 exits 2 with argparse's message, before reading anything."""
    with pytest.raises(SystemExit) as exit_:
        main(["run", "events.jsonl", "--concurrency", "0"])
    assert exit_.value.code == 2
    assert "must be a whole number of at least 1, got '0'" in capsys.readouterr().err


def test_an_unwritable_output_is_a_usage_error(
    tmp_path: Path, settings_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --output that cannot be created exits 2 naming the file, not with a traceback."""
    events = write_jsonl(tmp_path / "e.jsonl", [seed_event()])
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["run", str(events), "--settings", str(settings_file), "--output", f"{blocker}/o"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"cannot write the output file {blocker}/o" in err
    assert "Traceback" not in err


def test_new_plugin_ignores_a_broken_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scaffolding reads no settings, so a broken ./settings.toml does not stand in its way."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "settings.toml").write_text("[pipeline\n")
    assert main(["new-plugin", "acme_crm", "--dir", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "genesys-enrich-crm-acme-crm" / "pyproject.toml").is_file()


@pytest.mark.slow
def test_a_closed_pipe_ends_the_listing_quietly() -> None:
    """Piping the listing into a reader that has gone (`| head`) prints no BrokenPipeError."""
    executable = shutil.which("genesys-enrich", path=str(Path(sys.executable).parent))
    assert executable
    result = subprocess.run(  # noqa: S602 - a fixed pipeline of our own command
        f"{executable} plugins | true", shell=True, capture_output=True, text=True, check=False
    )
    assert "BrokenPipeError" not in result.stderr


def test_hostile_input_files_each_get_an_outcome_and_the_rest_still_runs(
    tmp_path: Path, settings_file: Path
) -> None:
    """Bad bytes, absurd nesting and a directory named like a file fail on their own, with no
    traceback, and the good events around them are still enriched."""
    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "a-latin1.jsonl").write_bytes(
        json.dumps(seed_event()).encode() + b"\n" + b'{"id": "caf\xe9"}\n'
    )
    (folder / "b-deep.json").write_text("[" * 100_000)
    (folder / "c-named-like-a-file.json").mkdir()
    (folder / "d-good.json").write_text(json.dumps(seed_event()))
    output = tmp_path / "outcomes.jsonl"
    code = main(
        ["run", str(folder), "--settings", str(settings_file), "--output", str(output), "--quiet"]
    )
    statuses = [json.loads(line)["status"] for line in output.read_text().splitlines()]
    assert code == 1
    assert statuses == ["enriched", "failed", "failed", "enriched"]


def test_a_dead_letter_file_given_as_input_is_refused_before_anything_runs(
    tmp_path: Path,
    settings_file: Path,
    genesys: FakeGenesys,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Running the default dead-letter file, or a folder holding it, exits 2 pointing at replay,
    instead of appending to the file it reads for ever."""
    write_jsonl(Path("dead-letter.jsonl"), [seed_event("CUST-1001")])
    before = Path("dead-letter.jsonl").read_text()
    folder = tmp_path / "captured"
    folder.mkdir()
    write_jsonl(folder / "events.jsonl", [seed_event("CUST-1001")])
    settings = ["--settings", str(settings_file)]
    as_file = main(["run", "dead-letter.jsonl", *settings])
    as_file_err = capsys.readouterr().err
    in_folder = main(["run", str(folder), "--dead-letter", str(folder / "dl.jsonl"), *settings])
    in_folder_err = capsys.readouterr().err
    assert (as_file, in_folder) == (2, 2)
    assert "genesys-enrich replay dead-letter.jsonl" in as_file_err
    assert f"also an input ({folder})" in in_folder_err
    assert Path("dead-letter.jsonl").read_text() == before
    assert genesys.writes == []


def test_a_mistyped_input_path_is_a_usage_error_naming_it(
    tmp_path: Path, settings_file: Path, genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that does not exist exits 2 before any event runs, naming the path, and leaves no
    dead letter behind."""
    events = write_jsonl(tmp_path / "events.jsonl", [seed_event("CUST-1001")])
    typo = tmp_path / "evnets.jsonl"
    code = main(["run", str(events), str(typo), "--settings", str(settings_file)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"no such file or directory: {typo}" in err
    assert "Traceback" not in err
    assert genesys.writes == []
    assert not Path("dead-letter.jsonl").exists()


def test_a_bad_first_line_fails_alone_and_the_rest_still_runs(
    tmp_path: Path,
    settings_file: Path,
    genesys: FakeGenesys,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A JSONL file or stdin whose first line is not JSON loses only that line: the good lines are
    enriched and the dead letter holds the bad line alone, ready for replay."""
    good = json.dumps(seed_event("CUST-1001"))
    lines = f"{{not json\n{good}\n{good}\n"
    (tmp_path / "events.jsonl").write_text(lines)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(lines))
    output = tmp_path / "outcomes.jsonl"
    args = ["--settings", str(settings_file), "--output", str(output), "--quiet"]
    code = main(["run", str(tmp_path / "events.jsonl"), "-", *args])
    statuses = [json.loads(line)["status"] for line in output.read_text().splitlines()]
    letters = [
        json.loads(line) for line in (tmp_path / "dead-letter.jsonl").read_text().splitlines()
    ]
    assert code == 1
    assert statuses == ["failed", "enriched", "enriched"] * 2
    assert [(letter["origin"], letter["text"]) for letter in letters] == [
        (f"{tmp_path / 'events.jsonl'}:1", "{not json"),
        ("stdin:1", "{not json"),
    ]
    assert len(genesys.writes) == 4
    assert capsys.readouterr().out.splitlines()[0] == "6 events: 4 enriched, 2 failed"


def test_a_start_up_error_leaves_the_previous_output_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing credentials exit 2 without emptying the outcomes an earlier run wrote to --output."""
    events = write_jsonl(tmp_path / "e.jsonl", [seed_event()])
    output = tmp_path / "outcomes.jsonl"
    output.write_text('{"status": "enriched"}\n')
    assert main(["run", str(events), "--output", str(output)]) == 2
    assert "GENESYS_CLIENT_ID" in capsys.readouterr().err
    assert output.read_text() == '{"status": "enriched"}\n'


def test_a_dry_run_writes_no_file_at_all(
    tmp_path: Path, settings_file: Path, genesys: FakeGenesys, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run with failing events leaves the working directory and the input's folder as
    they were: no dead-letter file, and nothing written to Genesys."""
    events = write_jsonl(
        tmp_path / "events.jsonl", [seed_event("CUST-1001"), seed_event(interaction_id="bad")]
    )
    before = sorted(tmp_path.iterdir())
    code = main(["run", str(events), "--settings", str(settings_file), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 1
    assert list(Path().iterdir()) == []
    assert sorted(tmp_path.iterdir()) == before
    assert genesys.requests == []
    assert "1 failed (0 retryable); a dry run keeps no dead letters" in out


def test_output_dash_sends_the_outcomes_to_stdout_and_the_summary_to_stderr(
    tmp_path: Path, settings_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--output -` makes stdout one JSON outcome per line, ready for a pipe, and creates no
    file named '-'."""
    events = write_jsonl(
        tmp_path / "events.jsonl", [seed_event("CUST-1001"), seed_event("CUST-0000")]
    )
    code = main(["run", str(events), "--settings", str(settings_file), "--output", "-", "--json"])
    captured = capsys.readouterr()
    outcomes = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 0
    assert [outcome["status"] for outcome in outcomes] == ["enriched", "skipped"]
    assert json.loads(captured.err.splitlines()[-1])["events"] == 2
    assert not Path("-").exists()
    assert not (tmp_path / "-").exists()


def test_replay_output_dash_sends_the_outcomes_to_stdout(
    tmp_path: Path, settings_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`replay --output -` does the same, and the dead-letter file stays where it was."""
    events = write_jsonl(tmp_path / "events.jsonl", [seed_event(interaction_id="bad")])
    dead = tmp_path / "dead.jsonl"
    common = ["--settings", str(settings_file), "--quiet"]
    assert main(["run", str(events), "--dead-letter", str(dead), *common]) == 1
    capsys.readouterr()
    assert main(["replay", str(dead), "--output", "-", *common]) == 1
    captured = capsys.readouterr()
    [outcome] = [json.loads(line) for line in captured.out.splitlines()]
    assert outcome["status"] == "failed"
    assert "1 event: 1 failed" in captured.err
    assert len(dead.read_text().splitlines()) == 1


def test_version_prints_the_installed_distribution_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"genesys-enrich {version('genesys-enrich')}\n"


def test_global_options_come_before_or_after_the_command(
    tmp_path: Path, settings_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--settings, -q and -v work before the command as after it; one given after the command
    wins over one given before."""
    events = write_jsonl(tmp_path / "events.jsonl", [seed_event("CUST-1001")])
    before = main(["--settings", str(settings_file), "-q", "run", str(events), "--dry-run"])
    out_before = capsys.readouterr().out
    after = main(["run", str(events), "--dry-run", "--settings", str(settings_file), "-q"])
    out_after = capsys.readouterr().out
    assert (before, after) == (0, 0)
    assert out_before.splitlines()[0] == out_after.splitlines()[0] == "1 event: 1 enriched"
    assert "would write" not in out_before + out_after  # quiet: no per-event block

    missing = str(tmp_path / "missing.toml")
    overridden = main(["--settings", missing, "run", str(events), "--settings", str(settings_file)])
    assert overridden == 0
    assert "missing.toml" not in capsys.readouterr().err

    assert main(["-v", "--settings", str(settings_file), "run", str(events)]) == 0
    assert capsys.readouterr().out.startswith("ENRICHED ")  # -v: a block per event
