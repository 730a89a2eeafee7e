"""The ``musicapi`` command, run in the sandbox (an embedded FakeMusicAPI) in real time.

These are sync tests: click runs ``anyio.run`` itself. Most set ``MUSICAPI_SANDBOX_DURATION=0``
so a sandbox task is finished at its first poll; the subprocess tests keep the default
(a few seconds), as a newcomer would see it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result

from musicapi_async._cli import INSTALL_HINT, build_cli
from musicapi_async.testing import FakeMusicAPI
from tests._full_disk import no_room_for_a_journal

#: Each CLI invocation has its own sandbox: these tasks finish at once.
FAST = {"MUSICAPI_SANDBOX_DURATION": "0", "MUSICAPI_KEY": None, "NO_COLOR": None}


def invoke(args: list[str], env: Mapping[str, str | None] | None = None) -> Result:
    """Run ``musicapi ARGS`` in process, stdout and stderr kept apart."""
    runner = CliRunner()
    return runner.invoke(build_cli(), args, env={**FAST, **(env or {})}, catch_exceptions=False)


def fake_and_key(**options: Any) -> tuple[FakeMusicAPI, list[str]]:
    """A fake without a rate limit (run it with ``use_fake``), and the options that point a
    command at it: its key, and a budget that never waits in real time."""
    fake = FakeMusicAPI(rate_limit=None, **options)
    return fake, ["--rate", "100/1", "--api-key", str(fake.default_key)]


def assert_wav(path: Path) -> None:
    with wave.open(str(path), "rb") as audio:
        assert audio.getnframes() > 0
        assert audio.getframerate() > 0


def test_sandbox_generate_saves_playable_wavs_and_prints_their_paths(tmp_path: Path) -> None:
    result = invoke(["--sandbox", "generate", "lofi", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert len(paths) == 2  # a Sonic task makes two clips
    assert sorted(paths) == sorted(tmp_path.glob("*.wav"))
    for path in paths:
        assert_wav(path)
    assert "SANDBOX" in result.stderr
    assert "succeeded" in result.stderr
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_sandbox_is_also_switched_on_by_the_environment(tmp_path: Path) -> None:
    result = invoke(["generate", "lofi", "-o", str(tmp_path)], env={"MUSICAPI_SANDBOX": "1"})
    assert result.exit_code == 0, result.stderr
    assert "SANDBOX" in result.stderr
    assert len(list(tmp_path.glob("*.wav"))) == 2


def test_json_output_has_the_task_its_clips_and_the_saved_paths(tmp_path: Path) -> None:
    result = invoke(["--sandbox", "--json", "generate", "surf rock", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    [task] = payload["tasks"]
    assert task["status"] == "succeeded"
    assert task["task_id"]
    assert len(task["clips"]) == 2
    for clip in task["clips"]:
        assert clip["state"] == "succeeded"
        assert_wav(Path(clip["path"]))


def test_custom_mode_sends_the_lyrics_file(tmp_path: Path) -> None:
    lyrics = tmp_path / "song.txt"
    lyrics.write_text("[Verse]\nRate limits in the morning light\n", encoding="utf-8")
    result = invoke(
        [
            "--sandbox",
            "--json",
            "generate",
            "--lyrics",
            str(lyrics),
            "--title",
            "Three Seconds",
            "--tags",
            "indie pop",
            "-o",
            str(tmp_path / "out"),
        ]
    )
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["errors"] == []  # always there: a script need not check for the key
    [task] = payload["tasks"]
    assert {clip["title"] for clip in task["clips"]} == {"Three Seconds"}
    assert {clip["tags"] for clip in task["clips"]} == {"indie pop"}
    assert len(list((tmp_path / "out").glob("Three Seconds - *.wav"))) == 2


def test_no_wait_prints_the_task_id_and_no_download_the_audio_urls(tmp_path: Path) -> None:
    result = invoke(["--sandbox", "generate", "lofi", "--no-wait", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.split()) == 1
    result = invoke(["--sandbox", "generate", "lofi", "--no-download"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(line.split("\t")[2].startswith("https://") for line in lines)
    assert not list(tmp_path.iterdir())


def test_extend_and_cover_wait_and_download(tmp_path: Path) -> None:
    result = invoke(["--sandbox", "extend", "some-clip", "--at", "30", "-o", str(tmp_path / "e")])
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "e").glob("*.wav"))) == 2
    result = invoke(["--sandbox", "cover", "some-clip", "--prompt", "jazz", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert len(list(tmp_path.glob("*.wav"))) == 2


@pytest.mark.parametrize("command", ["extend", "cover"])
def test_extend_and_cover_sing_lyrics_in_the_style_of_the_prompt(
    tmp_path: Path, command: str
) -> None:
    """--lyrics with --prompt: custom mode, the prompt the style (as for generate), where
    the SDK asked for a custom_mode these commands have no option for. Empty lyrics are
    refused before anything is sent, as by generate."""
    from musicapi_async.testing import FakeMusicAPI, use_fake

    fake = FakeMusicAPI(rate_limit=None, sonic_duration=1.0)
    key = ["--rate", "100/1", "--api-key", str(fake.default_key)]
    lyrics, empty = tmp_path / "lyrics.txt", tmp_path / "empty.txt"
    lyrics.write_text("[Verse]\nla la la\n", encoding="utf-8")
    empty.write_text("  \n", encoding="utf-8")
    at = ["--at", "30"] if command == "extend" else []
    with use_fake(fake):
        sung = invoke([*key, command, "clip", *at, "--lyrics", str(lyrics), "--prompt", "jazz",
                       "--no-wait"])  # fmt: skip
        refused = invoke([*key, command, "clip", *at, "--lyrics", str(empty), "--no-wait"])
    assert sung.exit_code == 0, sung.stderr
    body = fake.requests_to("/sonic/create")[0].json
    assert (body["custom_mode"], body["prompt"], body["tags"]) == (
        True,
        "[Verse]\nla la la\n",
        "jazz",
    )
    assert "gpt_description_prompt" not in body
    assert refused.exit_code == 2
    assert "is empty" in refused.stderr
    assert len(fake.requests_to("/sonic/create")) == 1


def test_credits_in_the_sandbox() -> None:
    result = invoke(["--sandbox", "--json", "credits"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"credits": 1000, "extra_credits": 0, "total": 1000}
    plain = invoke(["--sandbox", "credits"])
    assert plain.exit_code == 0
    assert "total\t1000" in plain.stdout


def test_status_and_wait_of_a_task_the_sandbox_does_not_know_exit_1() -> None:
    for command in (["status", "no-such-task"], ["wait", "no-such-task"]):
        result = invoke(["--sandbox", *command])
        assert result.exit_code == 1, command
        assert "not found" in result.stderr
        assert "sandbox tasks live only as long as the command" in result.stderr
        assert result.stdout == ""


def test_a_failed_task_exits_1_with_its_reason(tmp_path: Path) -> None:
    result = invoke(
        ["--sandbox", "generate", "lofi", "-o", str(tmp_path)],
        env={"MUSICAPI_SANDBOX_OUTCOME": "failed"},
    )
    assert result.exit_code == 1
    assert "failed" in result.stderr
    assert "refunds" in result.stderr
    assert not list(tmp_path.iterdir())


def test_a_partly_failed_task_saves_the_good_clip_and_exits_0(tmp_path: Path) -> None:
    result = invoke(
        ["--sandbox", "generate", "lofi", "-o", str(tmp_path)],
        env={"MUSICAPI_SANDBOX_OUTCOME": "partial"},
    )
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert "1 clip(s) failed" in result.stderr


def test_download_of_an_unknown_task_exits_1(tmp_path: Path) -> None:
    result = invoke(["--sandbox", "download", "no-such-task", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "not found" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--sandbox", "generate"],  # no prompt and no lyrics
        ["--sandbox", "extend", "clip"],  # no --at
        ["--sandbox", "status"],  # no task
        ["--sandbox", "frobnicate"],
        ["--sandbox", "generate", "x", "--lyrics", "/no/such/file"],
        ["--sandbox", "wait", "task", " "],  # an empty id
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = invoke(args)
    assert result.exit_code == 2
    assert result.stdout == ""


def test_a_bad_sandbox_outcome_is_a_usage_error() -> None:
    result = invoke(["--sandbox", "credits"], env={"MUSICAPI_SANDBOX_OUTCOME": "exploded"})
    assert result.exit_code == 2
    assert "MUSICAPI_SANDBOX_OUTCOME" in result.stderr


def test_without_a_key_or_sandbox_it_says_how_to_get_going() -> None:
    result = invoke(["credits"])
    assert result.exit_code == 2
    assert "MUSICAPI_KEY" in result.stderr
    assert "--sandbox" in result.stderr


def test_no_color_means_no_escape_codes_even_on_a_forced_terminal(tmp_path: Path) -> None:
    # FORCE_COLOR makes rich treat stderr as a colour terminal: the control case.
    coloured = invoke(
        ["--sandbox", "generate", "lofi", "-o", str(tmp_path / "a")], env={"FORCE_COLOR": "1"}
    )
    assert coloured.exit_code == 0, coloured.stderr
    assert "\x1b[" in coloured.stderr
    plain = invoke(
        ["--sandbox", "generate", "lofi", "-o", str(tmp_path / "b")],
        env={"FORCE_COLOR": "1", "NO_COLOR": "1"},
    )
    assert plain.exit_code == 0, plain.stderr
    assert "\x1b" not in plain.stderr
    assert "succeeded" in plain.stderr


def test_the_install_hint_names_the_extra_from_a_checkout_not_pypi() -> None:
    """The package is not on PyPI (README): a hint to install it from there would fail,
    or install whatever someone registered under the name."""
    assert "pip install -e '.[cli]'" in INSTALL_HINT
    assert "pip install 'musicapi-async" not in INSTALL_HINT


def test_without_click_the_command_prints_the_install_hint_and_exits_2() -> None:
    # A child interpreter where importing click fails, as it does without the extra.
    code = (
        "import sys; sys.modules['click'] = None; "
        "from musicapi_async._cli import main; main(['--sandbox', 'credits'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "pip install -e '.[cli]'" in done.stderr
    assert done.stdout == ""


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSICAPI_")}
    env.update(extra)
    return env


def test_the_readme_command_works_from_a_fresh_process(tmp_path: Path) -> None:
    """Issue item 1: ``musicapi --sandbox generate "lofi hip hop for studying" -o songs/``."""
    out = tmp_path / "songs"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "musicapi_async._cli",
            "--sandbox",
            "generate",
            "lofi hip hop for studying",
            "-o",
            f"{out}/",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_child_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "sandbox" in done.stderr.lower()
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == 2
    assert sorted(Path(line) for line in done.stdout.splitlines()) == wavs
    for path in wavs:
        assert_wav(path)


def test_ctrl_c_stops_and_prints_the_running_task_ids(tmp_path: Path) -> None:
    # The child restores Python's SIGINT handler, which a shell may have set to ignore.
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from musicapi_async._cli import main; main(sys.argv[1:])"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, "--sandbox", "generate", "lofi", "-o", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(MUSICAPI_SANDBOX_DURATION="600"),
    )
    try:
        assert child.stderr is not None
        seen = []
        for line in child.stderr:
            seen.append(line)
            if "submitted" in line or "pending" in line:
                break
        task_id = seen[-1].split()[2]
        child.send_signal(signal.SIGINT)
        stdout, rest = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest
    assert task_id in rest
    assert stdout == ""
    assert not list(tmp_path.iterdir())


def test_ctrl_c_while_waiting_on_the_service_suggests_a_wait_that_saves_too(
    tmp_path: Path,
) -> None:
    """Not the sandbox: the task lives on, and ``musicapi wait`` must save where ``generate``
    would have (``-o``), or the resumed run would only print URLs."""
    import threading

    from musicapi_async.testing import FakeMusicAPI, use_fake

    fake = FakeMusicAPI(rate_limit=None, sonic_duration=600.0)
    out = tmp_path / "my songs"
    key = ["--rate", "100/1", "--api-key", str(fake.default_key)]
    # SIGINT to this process once the command waits on its task (in real time).
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    with use_fake(fake):
        timer.start()
        try:
            result = invoke([*key, "generate", "lofi", "-o", str(out)])
        finally:
            timer.cancel()
    assert result.exit_code == 130, result.stderr
    task_id = fake.last_task.task_id
    assert f"resume with: musicapi wait {task_id} -o {shlex.quote(str(out))}" in result.stderr


def _ctrl_c_at(*seconds: float) -> list[threading.Timer]:
    """SIGINT to this process after each of ``seconds`` (real time), for in-process runs."""
    return [threading.Timer(t, os.kill, (os.getpid(), signal.SIGINT)) for t in seconds]


@pytest.mark.parametrize("command", ["generate", "extend", "cover"])
def test_ctrl_c_during_a_create_on_the_wire_keeps_the_paid_task_and_names_it(
    tmp_path: Path, command: str
) -> None:
    """The create's answer is the only record of a paid task's id: Ctrl-C while it is on
    the wire lets it arrive, then names the task and the command that picks it up."""
    from musicapi_async.testing import FakeMusicAPI, use_fake

    fake = FakeMusicAPI(rate_limit=None, sonic_duration=600.0, latency={"/sonic/*": 2.0})
    out = tmp_path / "songs"
    key = ["--rate", "100/1", "--api-key", str(fake.default_key)]
    args = {
        "generate": ["generate", "lofi"],
        "extend": ["extend", "some-clip", "--at", "30"],
        "cover": ["cover", "some-clip", "--prompt", "jazz"],
    }[command]
    timers = _ctrl_c_at(0.5)
    with use_fake(fake):
        for timer in timers:
            timer.start()
        try:
            result = invoke([*key, *args, "-o", str(out)])
        finally:
            for timer in timers:
                timer.cancel()
    assert result.exit_code == 130, result.stderr
    assert len(fake.tasks) == 1
    task_id = fake.last_task.task_id
    assert "waiting for the answer to the create request already sent" in result.stderr
    assert f"still running: {task_id}" in result.stderr
    assert f"resume with: musicapi wait {task_id} -o {shlex.quote(str(out))}" in result.stderr
    assert not fake.requests_to(f"/sonic/task/{task_id}")  # interrupted: no wait, no poll


def test_a_second_ctrl_c_abandons_the_create_and_warns_it_may_exist(tmp_path: Path) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=600.0, latency={"/sonic/create": 4.0})
    timers = _ctrl_c_at(0.5, 1.5)
    with use_fake(fake):
        for timer in timers:
            timer.start()
        try:
            result = invoke([*key, "generate", "lofi", "-o", str(tmp_path / "songs")])
        finally:
            for timer in timers:
                timer.cancel()
    assert result.exit_code == 130, result.stderr
    assert len(fake.tasks) == 1  # it was created: the warning is not idle talk
    assert "may have started (and charged for) a task" in result.stderr
    assert "musicapi wait" not in result.stderr


@pytest.mark.parametrize("command", ["generate", "wait", "download", "batch"])
def test_a_command_without_a_key_creates_no_output_directory(tmp_path: Path, command: str) -> None:
    out = tmp_path / "songs"
    args = {
        "generate": ["generate", "lofi"],
        "wait": ["wait", "some-task-id"],
        "download": ["download", "some-task-id"],
        "batch": ["batch", str(write_batch(tmp_path, '{"prompt": "lofi"}'))],
    }[command]
    result = invoke([*args, "-o", str(out)])
    assert result.exit_code == 2, result.stderr
    assert "no MusicAPI key" in result.stderr
    assert not out.exists()


def test_a_subcommands_help_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUSICAPI_KEY", raising=False)
    monkeypatch.delenv("MUSICAPI_SANDBOX", raising=False)
    result = CliRunner().invoke(build_cli(), ["cover", "--help"])
    assert result.exit_code == 0, result.output
    assert "CLIP_ID" in result.output


# --- musicapi batch ---------------------------------------------------------------------------


def write_batch(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_batch_on_a_full_disk_names_the_created_task_and_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicapi_async.testing import use_fake
    from tests._full_disk import full_disk

    fake, key = fake_and_key(sonic_duration=600.0)
    batch = write_batch(tmp_path, '{"prompt": "lofi"}', '{"prompt": "surf"}')
    out = tmp_path / "my songs"
    full_disk(monkeypatch, lambda sql, parameters: "created" in parameters)
    with use_fake(fake):
        result = invoke([*key, "batch", str(batch), "-o", str(out)])
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr
    (task_id,) = fake.tasks  # the second job was not sent
    text = " ".join(result.stderr.split())
    assert "disk is full" in text
    assert f"musicapi wait {task_id} -o {shlex.quote(str(out))}" in text
    assert re.search(rf"add --adopt [0-9a-f]{{12}}={task_id} to the command below", text)
    assert "adopt={" not in text  # the Python spelling is the library's
    assert "resume with: musicapi --rate 100/1 batch" in text


def test_batch_saves_every_job_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    batch = write_batch(
        tmp_path,
        '{"prompt": "lofi hip hop"}',
        '{"id": "shanty", "lyrics": "[Verse] heave ho", "title": "Ho", "tags": "sea shanty"}',
    )
    out = tmp_path / "out"
    result = invoke(["--sandbox", "batch", str(batch), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [fields[1] for fields in lines] == ["downloaded", "downloaded"]
    assert lines[1][0] == "shanty"
    for fields in lines:
        assert len(fields) == 5  # id, state, task id, two files
        for path in fields[3:]:
            assert_wav(Path(path))
    assert "job shanty" in result.stderr  # a progress line per job
    assert "2 job(s): 2 downloaded" in result.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == [fields[0] for fields in lines]

    again = invoke(["--sandbox", "batch", str(batch), "-o", str(out)])
    assert again.exit_code == 0, again.stderr
    assert again.stdout == result.stdout


def test_batch_json_has_the_jobs_their_tasks_and_paths(tmp_path: Path) -> None:
    batch = write_batch(tmp_path, '{"prompt": "surf rock"}')
    result = invoke(["--sandbox", "batch", str(batch), "-o", str(tmp_path / "o"), "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["complete"] is True
    assert payload["results"] == str(tmp_path / "o" / "results.jsonl")
    [job] = payload["jobs"]
    assert job["state"] == "downloaded"
    assert job["status"] == "succeeded"
    assert len(job["paths"]) == 2
    for path in job["paths"]:
        assert_wav(Path(path))
    # The global --json works too.
    again = invoke(["--sandbox", "--json", "batch", str(batch), "-o", str(tmp_path / "o")])
    assert json.loads(again.stdout)["jobs"][0]["task_id"] == job["task_id"]


def test_batch_with_bad_lines_exits_2_naming_them_and_sends_nothing(tmp_path: Path) -> None:
    batch = write_batch(tmp_path, '{"prompt": "fine"}', "{oops", '{"prompt": "x", "titel": "t"}')
    out = tmp_path / "out"
    result = invoke(["--sandbox", "batch", str(batch), "-o", str(out)])
    assert result.exit_code == 2
    assert "line 2: not valid JSON" in result.stderr
    assert "line 3: unknown field 'titel' (did you mean 'title'?)" in result.stderr
    assert "nothing was sent" in result.stderr
    assert result.stdout == ""
    assert not out.exists()


def test_batch_failed_tasks_exit_1_and_are_listed(tmp_path: Path) -> None:
    batch = write_batch(tmp_path, '{"id": "a", "prompt": "lofi"}')
    out = tmp_path / "out"
    result = invoke(
        ["--sandbox", "batch", str(batch), "-o", str(out)],
        env={"MUSICAPI_SANDBOX_OUTCOME": "failed"},
    )
    assert result.exit_code == 1
    assert "job a failed" in result.stderr
    assert result.stdout.startswith("a\tfailed\t")
    [row] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert row["state"] == "failed"


def test_batch_into_the_directory_of_another_batch_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = write_batch(tmp_path, '{"prompt": "one"}')
    assert invoke(["--sandbox", "batch", str(first), "-o", str(out)]).exit_code == 0
    other = tmp_path / "other.jsonl"
    other.write_text('{"prompt": "two"}\n', encoding="utf-8")
    result = invoke(["--sandbox", "batch", str(other), "-o", str(out)])
    assert result.exit_code == 2
    assert "another batch" in result.stderr


@pytest.mark.parametrize("rate", ["0/3", "abc", "1/0", "1/-3", "1"])
def test_a_bad_rate_is_a_usage_error(rate: str) -> None:
    result = invoke(["--rate", rate, "--sandbox", "credits"])
    assert result.exit_code == 2
    assert "--rate" in result.stderr


def test_a_bad_rate_in_the_environment_is_named_and_does_not_stop_the_sandbox() -> None:
    """MUSICAPI_RATE is the real service's budget: a bad one is blamed by its name, and the
    sandbox, which has its own budget, runs regardless."""
    bad = {"MUSICAPI_RATE": "bogus", "MUSICAPI_KEY": "test-key"}
    result = invoke(["credits"], env=bad)
    assert result.exit_code == 2
    assert "MUSICAPI_RATE='bogus'" in result.stderr
    assert "--rate" not in result.stderr
    result = invoke(["--sandbox", "credits"], env=bad)
    assert result.exit_code == 0, result.stderr


def test_the_rate_reaches_the_clients_bucket() -> None:
    from musicapi_async import TokenBucket
    from musicapi_async._cli import Settings, open_session

    settings = Settings(
        sandbox=False,
        api_key="test-key",
        json=False,
        rate=(2.0, 3.0),
        expected_duration=4.0,
        min_poll_gap=0.5,
    )

    async def main() -> None:
        async with open_session(settings) as session:
            bucket = session.client.limiter
            assert isinstance(bucket, TokenBucket)
            assert (bucket.rate, bucket.per) == (2.0, 3.0)

    anyio.run(main)


@pytest.mark.parametrize("name", ["MUSICAPI_EXPECTED_DURATION", "MUSICAPI_MIN_POLL_GAP"])
def test_bad_scheduler_settings_are_usage_errors(name: str) -> None:
    result = invoke(["credits"], env={name: "soon", "MUSICAPI_KEY": "test-key"})
    assert result.exit_code == 2
    assert name in result.stderr
    # They tune the scheduler for the real service: the sandbox has its own and ignores them.
    assert invoke(["--sandbox", "credits"], env={name: "soon"}).exit_code == 0


def test_batch_notes_the_failed_clip_of_a_partly_failed_task(tmp_path: Path) -> None:
    batch = write_batch(tmp_path, '{"id": "a", "prompt": "lofi"}')
    result = invoke(
        ["--sandbox", "batch", str(batch), "-o", str(tmp_path / "out")],
        env={"MUSICAPI_SANDBOX_OUTCOME": "partial"},
    )
    assert result.exit_code == 0, result.stderr
    assert "job a: 1 clip(s) failed" in result.stderr
    assert len(result.stdout.split("\t")) == 4  # id, state, task id, the one file


def test_batch_resume_hint_is_the_real_command_quoted_with_every_option(tmp_path: Path) -> None:
    folder = tmp_path / "my prompts"
    folder.mkdir()
    batch = write_batch(folder, '{"prompt": "lofi"}')
    out = tmp_path / "out dir"
    result = invoke(
        [
            *("--sandbox", "--rate", "2/3", "--api-key", "sk-not-printed"),
            *("batch", str(batch), "-o", str(out), "--mv", "sonic-v4-5", "--no-download"),
            *("--timeout", "0", "--resubmit-uncertain"),
        ],
        env={"MUSICAPI_SANDBOX_DURATION": "600"},  # still running when the wait ends
    )
    assert result.exit_code == 1, result.stderr
    expected = shlex.join(
        [
            *("musicapi", "--sandbox", "--rate", "2/3", "batch", str(batch), "-o", str(out)),
            *("--mv", "sonic-v4-5", "--no-download", "--timeout", "0.0"),
        ]
    )
    assert f"resume with: {expected}" in result.stderr
    assert "sk-not-printed" not in result.stderr
    assert shlex.split(expected)[5] == str(batch)  # the path with a space is one word


def test_batch_rerun_with_another_mv_exits_2_naming_the_option(tmp_path: Path) -> None:
    batch = write_batch(tmp_path, '{"prompt": "lofi"}')
    out = tmp_path / "out"
    first = invoke(["--sandbox", "batch", str(batch), "-o", str(out), "--mv", "sonic-v4-5"])
    assert first.exit_code == 0, first.stderr
    again = invoke(["--sandbox", "batch", str(batch), "-o", str(out)])
    assert again.exit_code == 2
    assert "rerun with --mv sonic-v4-5" in again.stderr
    assert "read_batch_jobs" not in again.stderr  # the CLI's way only


def test_batch_plain_output_keeps_one_line_per_job_whatever_the_error(tmp_path: Path) -> None:
    from musicapi_async._batch import BatchJobResult, BatchJobState, BatchReport
    from musicapi_async._cli import print_batch

    job = BatchJobResult(
        job_id="a", state=BatchJobState.UNCERTAIN, complete=False, error="first\nsecond\tthird"
    )
    report = BatchReport(
        jobs=(job,), out_dir=tmp_path, results_path=tmp_path, journal_path=tmp_path
    )
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        print_batch(report, as_json=False)
    assert stdout.getvalue() == "a\tuncertain\t-\tfirst second third\n"


# --- a cold user's review: -o, several ids, --json, next steps --------------------------------


def _unusable_dirs(tmp_path: Path) -> list[str]:
    afile = tmp_path / "afile"
    afile.write_text("not a directory", encoding="utf-8")
    dirs = [str(afile / "sub")]
    if Path("/proc/1").is_dir():
        dirs.append("/proc/1/xx")  # a directory nobody may create in
    return dirs


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "hi"],
        ["extend", "clip", "--at", "3"],
        ["cover", "clip"],
        ["wait", "some-task"],
        ["download", "some-task"],
        ["batch", "BATCH"],
    ],
)
def test_an_unusable_output_directory_exits_2_naming_it_before_any_request(
    tmp_path: Path, command: list[str]
) -> None:
    batch = write_batch(tmp_path, '{"prompt": "lofi"}')
    for out in _unusable_dirs(tmp_path):
        args = [str(batch) if word == "BATCH" else word for word in command]
        result = invoke(["--sandbox", *args, "-o", out])
        assert result.exit_code == 2, result.stderr
        assert f"cannot save files in {out} (-o)" in result.stderr
        assert "SANDBOX" not in result.stderr  # refused before the client even opened
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


def test_the_output_directory_is_created_with_its_parents_and_left_clean(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    result = invoke(["--sandbox", "generate", "hi", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert len(list(out.glob("*.wav"))) == 2
    assert not list(out.glob(".*"))  # the writability probe is gone


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_said_in_a_line_not_a_traceback(tmp_path: Path) -> None:
    """Results redirected to a full disk: the songs are saved, and the failed write is one
    line on stderr with exit 1, not a traceback."""
    out = tmp_path / "songs"
    command = [sys.executable, "-m", "musicapi_async", "--sandbox", "--json", "generate", "x"]
    with Path("/dev/full").open("w") as full:
        done = subprocess.run(
            [*command, "-o", str(out)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
            env=_child_env(MUSICAPI_SANDBOX_DURATION="0"),
        )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "could not write the output: No space left on device" in done.stderr
    assert len(list(out.glob("*.wav"))) == 2


def test_a_save_failing_after_the_create_says_how_to_fetch_the_result_later(
    tmp_path: Path,
) -> None:
    """A full disk, imitated by a file-size limit smaller than a clip (the probe is empty)."""
    code = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024)); "
        "from musicapi_async._cli import main; main(sys.argv[1:])"
    )
    out = tmp_path / "songs"
    done = subprocess.run(
        [sys.executable, "-c", code, "--sandbox", "generate", "lofi", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_child_env(MUSICAPI_SANDBOX_DURATION="0", PYTHONDONTWRITEBYTECODE="1"),
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    saved = re.search(r"could not save the audio of task (\S+) in", done.stderr)
    assert saved is not None, done.stderr
    assert f"fetch it later with: musicapi download {saved.group(1)}" in done.stderr
    assert f"-o {out}" in done.stderr


def test_several_task_ids_report_each_and_exit_1_if_any_failed(tmp_path: Path) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    with use_fake(fake):
        created = invoke([*key, "generate", "lofi", "--no-wait"])
        assert created.exit_code == 0, created.stderr
        good = created.stdout.strip()

        status = invoke([*key, "status", good, "no-such-task"])
        assert status.exit_code == 1
        assert status.stdout.startswith(f"{good}\tsucceeded")
        assert "no-such-task" in status.stderr
        assert "not found" in status.stderr
        as_json = invoke([*key, "status", good, "no-such-task", "--json"])
        payload = json.loads(as_json.stdout)
        assert [task["task_id"] for task in payload["tasks"]] == [good]
        assert [error["task_id"] for error in payload["errors"]] == ["no-such-task"]

        waited = invoke([*key, "wait", "no-such-task", good, "-o", str(tmp_path / "w")])
        assert waited.exit_code == 1
        assert len(waited.stdout.splitlines()) == 2  # the good task's two files
        assert len(list((tmp_path / "w").glob("*.wav"))) == 2
        assert "not found" in waited.stderr

        fetched = invoke([*key, "download", "no-such-task", good, "-o", str(tmp_path / "d")])
        assert fetched.exit_code == 1
        assert len(fetched.stdout.splitlines()) == 2
        assert "not found" in fetched.stderr


def test_json_is_accepted_after_every_command_too(tmp_path: Path) -> None:
    cli = build_cli()
    for name, command in cli.commands.items():
        assert "--json" in [o for p in command.params for o in p.opts], name
    result = invoke(["--sandbox", "generate", "x", "-o", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["tasks"][0]["status"] == "succeeded"
    credits = invoke(["--sandbox", "credits", "--json"])
    assert json.loads(credits.stdout)["total"] == 1000


@pytest.mark.parametrize("source", ["file:///etc/passwd", "ftp://example.com/a.mp3"])
def test_download_of_a_url_that_is_not_http_is_a_usage_error(tmp_path: Path, source: str) -> None:
    result = invoke(["--sandbox", "download", source, "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "only http(s) URLs" in result.stderr
    assert "SANDBOX" not in result.stderr


def test_errors_give_the_command_line_way_not_python_advice(tmp_path: Path) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    with use_fake(fake):
        # --no-wait, then wait: a task this client did not create is polled at once (in
        # real time, a new task is first polled when tasks usually finish).
        made = invoke([*key, "generate", "x", "--no-wait"])
        first = invoke([*key, "--json", "wait", made.stdout.strip()])
        assert first.exit_code == 0, first.stderr
        url = json.loads(first.stdout)["tasks"][0]["clips"][0]["audio_url"]
        assert invoke([*key, "download", url, "-o", str(tmp_path)]).exit_code == 0
        fetched = invoke([*key, "download", url, "-o", str(tmp_path)])
        assert fetched.exit_code == 1
        assert "already exists: pass --overwrite" in fetched.stderr
        assert "overwrite=True" not in fetched.stderr

        fake.inject("/sonic/create", status=500, after_processing=True)
        paid = invoke([*key, "generate", "x", "-o", str(tmp_path / "p")])
        assert paid.exit_code == 1
        assert "`musicapi credits`" in paid.stderr
        assert "client.credits.get()" not in paid.stderr

        wrong = invoke(["--rate", "100/1", "--api-key", "sk-wrong", "credits"])
        assert wrong.exit_code == 1
        assert "--api-key" in wrong.stderr
        assert "MusicAPI(api_key" not in wrong.stderr

        fake.clear_injections()
        fake.plan(duration=600.0)
        late = invoke([*key, "generate", "x", "--timeout", "0", "-o", str(tmp_path / "t")])
    assert late.exit_code == 1
    assert "pending_json" not in late.stderr
    assert "resume with: musicapi wait " in late.stderr
    assert f"-o {tmp_path / 't'}" in late.stderr

    # In the sandbox the task lived in the process: a resume command would go to the API.
    gone = invoke(["--sandbox", "generate", "x", "--timeout", "0", "-o", str(tmp_path / "g")])
    assert gone.exit_code == 1
    assert "resume with" not in gone.stderr
    assert "are gone" in gone.stderr

    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    lyrics = invoke(["--sandbox", "generate", "--lyrics", str(empty), "-o", str(tmp_path)])
    assert lyrics.exit_code == 2
    assert "is empty" in lyrics.stderr
    assert "custom_mode=True" not in lyrics.stderr

    negative = invoke(["--sandbox", "extend", "clip", "--at", "-3"])
    assert negative.exit_code == 2
    assert "continue_at" not in negative.stderr


def test_a_sandbox_batch_with_sent_jobs_refuses_to_resume_before_any_request(
    tmp_path: Path,
) -> None:
    batch = write_batch(tmp_path, '{"id": "a", "prompt": "lofi"}')
    out = tmp_path / "out"
    slow = {"MUSICAPI_SANDBOX_DURATION": "600"}
    first = invoke(["--sandbox", "batch", str(batch), "-o", str(out), "--timeout", "0"], slow)
    assert first.exit_code == 1, first.stderr  # left created, as after a Ctrl-C
    again = invoke(["--sandbox", "batch", str(batch), "-o", str(out)])
    assert again.exit_code == 2, again.stderr
    assert "a sandbox batch cannot resume" in again.stderr
    assert "use another -o directory" in again.stderr
    assert "SANDBOX" not in again.stderr  # refused before the sandbox even started
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [row["state"] for row in rows] == ["created"]  # not poisoned as failed


def test_batch_failed_jobs_say_how_to_try_them_again(tmp_path: Path) -> None:
    batch = write_batch(tmp_path, '{"id": "a", "prompt": "lofi"}', '{"id": "b", "prompt": "x"}')
    out = tmp_path / "out"
    failed = {"MUSICAPI_SANDBOX_OUTCOME": "failed"}
    result = invoke(["--sandbox", "batch", str(batch), "-o", str(out)], failed)
    assert result.exit_code == 1
    assert "are not retried" in result.stderr
    assert "with another -o directory" in result.stderr  # every job failed

    # One job kept, one failed: a new id for the failed one's line tries it again.
    mixed = tmp_path / "mixed"
    write_batch(tmp_path, '{"id": "a", "prompt": "lofi"}')
    assert invoke(["--sandbox", "batch", str(batch), "-o", str(mixed)]).exit_code == 0
    write_batch(tmp_path, '{"id": "a", "prompt": "lofi"}', '{"id": "c", "prompt": "y"}')
    result = invoke(["--sandbox", "batch", str(batch), "-o", str(mixed)], failed)
    assert result.exit_code == 1
    assert 'give its line a new "id" in the file and rerun: musicapi --sandbox batch' in (
        result.stderr
    )
    write_batch(tmp_path, '{"id": "a", "prompt": "lofi"}', '{"id": "c2", "prompt": "y"}')
    retried = invoke(["--sandbox", "batch", str(batch), "-o", str(mixed)])
    assert retried.exit_code == 0, retried.stderr
    assert "c2\tdownloaded" in retried.stdout


# --- waiting on several tasks, resuming, downloads --------------------------------------------


def _two_finished_tasks(fake: Any, key: list[str]) -> list[str]:
    ids = []
    for prompt in ("one", "two"):
        made = invoke([*key, "generate", prompt, "--no-wait"])
        assert made.exit_code == 0, made.stderr
        ids.append(made.stdout.strip())
    return ids


def _break_cdn_for(fake: Any, monkeypatch: pytest.MonkeyPatch, *clip_ids: str) -> None:
    """The fake's CDN drops the connection for the audio of these clips (only)."""
    answer_cdn = fake.handle_cdn

    async def cdn(method: str, url: str, headers: Any) -> Any:
        if any(clip_id in url for clip_id in clip_ids):
            return None  # the transport raises a connection error
        return await answer_cdn(method, url, headers)

    monkeypatch.setattr(fake, "handle_cdn", cdn)


def test_wait_saves_every_task_it_can_and_names_the_one_whose_audio_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    out = tmp_path / "songs"
    with use_fake(fake):
        first, second = _two_finished_tasks(fake, key)
        _break_cdn_for(fake, monkeypatch, *fake.tasks[first].clip_ids)
        result = invoke([*key, "wait", first, second, "-o", str(out)])
        as_json = invoke([*key, "--json", "wait", first, second, "-o", str(tmp_path / "j")])
    assert result.exit_code == 1, result.stderr
    saved = sorted(out.glob("*.wav"))
    assert len(saved) == 2
    assert all(any(c in path.name for c in fake.tasks[second].clip_ids) for path in saved)
    assert sorted(Path(line) for line in result.stdout.splitlines()) == saved
    assert f"fetch its audio later with: musicapi download {first} -o {out}" in result.stderr
    assert as_json.exit_code == 1
    payload = json.loads(as_json.stdout)
    assert [task["task_id"] for task in payload["tasks"]] == [first, second]
    assert [error["task_id"] for error in payload["errors"]] == [first]


def test_one_clip_that_cannot_be_saved_does_not_cost_the_tasks_other_clips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CDN fails on a task's first clip only: its second clip is still saved, and the
    failure is named, with the command that fetches the rest later."""
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    out = tmp_path / "songs"
    with use_fake(fake):
        made = invoke([*key, "generate", "one", "--no-wait"])
        task_id = made.stdout.strip()
        broken, kept = fake.tasks[task_id].clip_ids
        _break_cdn_for(fake, monkeypatch, broken)
        result = invoke([*key, "wait", task_id, "-o", str(out)])
    assert result.exit_code == 1, result.stderr
    (saved,) = out.glob("*.wav")
    assert kept in saved.name
    assert f"fetch its audio later with: musicapi download {task_id} -o {out}" in result.stderr


def test_wait_prints_a_line_per_change_of_state_not_per_event(tmp_path: Path) -> None:
    """The first event of a wait says where the task stands: "pending" is printed once, not
    again a moment later."""
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=2.0)
    with use_fake(fake):
        made = invoke([*key, "generate", "lofi", "--no-wait"])
        assert made.exit_code == 0, made.stderr
        task_id = made.stdout.strip()
        fast = {"MUSICAPI_MIN_POLL_GAP": "0.5"}  # looked at again soon: a short test
        result = invoke([*key, "wait", task_id, "-o", str(tmp_path)], env=fast)
    assert result.exit_code == 0, result.stderr
    states = [
        line.split()[3]
        for line in result.stderr.splitlines()
        if line.startswith(f"musicapi: task {task_id} ")
    ]
    assert states.count("pending") == 1, result.stderr
    assert states[-1] == "saved"


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_a_timeout_that_is_not_a_number_of_seconds_is_refused_before_paying(value: str) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key()
    with use_fake(fake):
        result = invoke([*key, "generate", "lofi", "--timeout", value])
        extend = invoke([*key, "extend", "clip-1", "--at", value])
    assert result.exit_code == 2, result.stderr
    assert "--timeout" in result.stderr
    assert extend.exit_code == 2, extend.stderr
    assert fake.requests == ()  # nothing sent, nothing paid


def test_no_wait_json_prints_the_task_shape_of_every_command() -> None:
    result = invoke(["--sandbox", "--json", "generate", "lofi", "--no-wait"])
    assert result.exit_code == 0, result.stderr
    [task] = json.loads(result.stdout)["tasks"]
    assert set(task) == {"task_id", "family", "status", "error", "error_type", "clips"}
    assert (task["family"], task["status"], task["clips"]) == ("sonic", "pending", [])
    assert json.loads(result.stdout)["errors"] == []


def test_status_refuses_an_empty_id_before_polling_and_polls_each_id_once() -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    with use_fake(fake):
        [task_id] = _two_finished_tasks(fake, key)[:1]
        polls = len(fake.requests)
        empty = invoke([*key, "status", " ", task_id])
        assert empty.exit_code == 2, empty.stderr
        assert "a task id is empty" in empty.stderr
        assert len(fake.requests) == polls
        twice = invoke([*key, "status", task_id, task_id])
    assert twice.exit_code == 0, twice.stderr
    assert len(fake.requests) == polls + 1


def test_wait_marks_a_task_it_cannot_follow_as_failed_not_running(tmp_path: Path) -> None:
    """An unknown id fails at its first poll: it is shown failed (with why) at once, so a
    Ctrl-C later does not list it as still running in the command to resume."""
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    with use_fake(fake):
        [task_id] = _two_finished_tasks(fake, key)[:1]
        result = invoke([*key, "wait", task_id, "no-such-task", "-o", str(tmp_path)])
    assert result.exit_code == 1, result.stderr
    text = " ".join(result.stderr.split())
    assert "musicapi: task no-such-task failed" in text


def test_a_resumed_wait_keeps_the_clips_already_saved_and_fetches_the_rest(
    tmp_path: Path,
) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    out = tmp_path / "songs"
    with use_fake(fake):
        task_id = invoke([*key, "generate", "lofi", "--no-wait"]).stdout.strip()
        made = invoke([*key, "wait", task_id, "-o", str(out)])
        assert made.exit_code == 0, made.stderr
        first, second = sorted(Path(line) for line in made.stdout.splitlines())
        kept = first.stat().st_mtime_ns
        second.unlink()  # as if Ctrl-C came between the two clips
        fetched_before = len(fake.downloads)
        again = invoke([*key, "wait", task_id, "-o", str(out)])
        assert again.exit_code == 0, again.stderr
        assert sorted(Path(line) for line in again.stdout.splitlines()) == [first, second]
        assert first.stat().st_mtime_ns == kept
        assert len(fake.downloads) == fetched_before + 1  # the missing clip only
        assert "1 already there" in again.stderr
        once_more = invoke([*key, "download", task_id, "-o", str(out)])
        assert once_more.exit_code == 0, once_more.stderr
        assert len(fake.downloads) == fetched_before + 1
        replaced = invoke([*key, "wait", task_id, "-o", str(out), "--overwrite"])
        assert replaced.exit_code == 0, replaced.stderr
        assert len(fake.downloads) == fetched_before + 3


def test_json_with_a_timeout_names_the_unfinished_tasks(tmp_path: Path) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=600.0)
    with use_fake(fake):
        result = invoke([*key, "--json", "generate", "x", "--timeout", "0", "-o", str(tmp_path)])
    assert result.exit_code == 1, result.stderr
    payload = json.loads(result.stdout)
    assert payload["tasks"] == []
    [error] = payload["errors"]
    assert error["task_id"] == fake.last_task.task_id
    assert error["error"].endswith(f"musicapi wait {error['task_id']} -o {tmp_path}")


def test_a_wait_too_short_to_look_up_an_id_does_not_call_it_still_running() -> None:
    """`wait` on a mistyped id beside real ones, with a deadline too short to look each up:
    the id never looked up is "not known to exist", not "still unfinished"."""
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=600.0)
    with use_fake(fake):
        made = [invoke([*key, "generate", p, "--no-wait"]).stdout.strip() for p in "abc"]
        result = invoke([*key, "--rate", "1/3", "--json", "wait", *made, "typo-id",
                         "--timeout", "2"])  # fmt: skip
    assert result.exit_code == 1, result.stderr
    errors = {error["task_id"]: error["error"] for error in json.loads(result.stdout)["errors"]}
    assert errors["typo-id"].startswith("not looked up before the deadline")
    assert "not known to exist: " in result.stderr
    assert "typo-id" in result.stderr.split("not known to exist: ")[1]


def test_download_reports_a_malformed_source_and_still_prints_the_good_files(
    tmp_path: Path,
) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    with use_fake(fake):
        made = invoke([*key, "generate", "x", "--no-wait"])
        result = invoke([*key, "download", made.stdout.strip(), "http://[::1", "-o", str(tmp_path)])
    assert result.exit_code == 1, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert sorted(Path(line) for line in result.stdout.splitlines()) == sorted(
        tmp_path.glob("*.wav")
    )
    assert "http://[::1" in result.stderr
    assert "Traceback" not in result.stderr


def test_download_json_lists_the_saved_paths_and_every_source_it_could_not_save(
    tmp_path: Path,
) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    with use_fake(fake):
        made = invoke([*key, "generate", "x", "--no-wait"])
        good = made.stdout.strip()
        result = invoke([*key, "--json", "download", good, "no-such-task", "-o", str(tmp_path)])
    assert result.exit_code == 1, result.stderr
    payload = json.loads(result.stdout)
    assert sorted(Path(p) for p in payload["paths"]) == sorted(tmp_path.glob("*.wav"))
    assert len(payload["paths"]) == 2
    [error] = payload["errors"]
    assert error["source"] == "no-such-task"
    assert "404" in error["error"]


def test_download_json_lists_a_tasks_saved_clip_when_its_other_clip_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    with use_fake(fake):
        task_id = invoke([*key, "generate", "x", "--no-wait"]).stdout.strip()
        broken = fake.tasks[task_id].clip_ids[1]
        _break_cdn_for(fake, monkeypatch, broken)
        result = invoke([*key, "--json", "download", task_id, "-o", str(tmp_path)])
    assert result.exit_code == 1, result.stderr
    payload = json.loads(result.stdout)
    assert [Path(p) for p in payload["paths"]] == sorted(tmp_path.glob("*.wav"))
    assert len(payload["paths"]) == 1  # the clip that was saved before the other failed
    assert [error["source"] for error in payload["errors"]] == [task_id]


def test_ctrl_c_during_the_downloads_names_the_task_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicapi_async import MusicAPI
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    out = tmp_path / "songs"
    download = MusicAPI.download

    async def slow_download(self: MusicAPI, *args: Any, **kwargs: Any) -> Path:
        await anyio.sleep(3)
        return await download(self, *args, **kwargs)

    monkeypatch.setattr(MusicAPI, "download", slow_download)
    timers = _ctrl_c_at(1.0)
    with use_fake(fake):
        task_id = invoke([*key, "generate", "lofi", "--no-wait"]).stdout.strip()
        for timer in timers:
            timer.start()
        try:
            result = invoke([*key, "wait", task_id, "-o", str(out)])
        finally:
            for timer in timers:
                timer.cancel()
    assert result.exit_code == 130, result.stderr
    assert f"finished, results not saved or shown yet: {task_id}" in result.stderr
    assert f"resume with: musicapi wait {task_id} -o {shlex.quote(str(out))}" in result.stderr
    assert not list(out.iterdir())


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_during_a_batch_create_on_the_wire_says_what_stopping_waits_for(
    tmp_path: Path, presses: int
) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=600.0, latency={"/sonic/create": 3.0})
    batch = write_batch(tmp_path, '{"prompt": "lofi"}', '{"prompt": "jazz"}')
    out = tmp_path / "out"
    timers = _ctrl_c_at(*[0.5, 1.5][:presses])
    with use_fake(fake):
        for timer in timers:
            timer.start()
        try:
            result = invoke([*key, "batch", str(batch), "-o", str(out)])
        finally:
            for timer in timers:
                timer.cancel()
        assert result.exit_code == 130, result.stderr
        assert "a create request already on the wire is let finish" in result.stderr
        cut_short = "was cut short and may have reached MusicAPI" in result.stderr
        assert cut_short is (presses == 2)
        assert len(fake.tasks) == 1  # the create on the wire arrived; the second never left
        rerun = invoke([*key, "batch", str(batch), "-o", str(out), "--timeout", "0"])
    # The rerun creates the job that never left; the one cut short is uncertain, not made
    # again: each prompt was created once.
    prompts = sorted(task.request["gpt_description_prompt"] for task in fake.tasks.values())
    assert prompts == ["jazz", "lofi"]
    assert ("uncertain" in rerun.stderr) is (presses == 2)


def test_an_empty_output_directory_is_refused_not_taken_for_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(["--sandbox", "generate", "lofi", "-o", ""])
    assert result.exit_code == 2, result.stderr
    assert "-o is empty" in result.stderr
    assert not list(tmp_path.iterdir())


def test_a_source_given_twice_is_downloaded_once(tmp_path: Path) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    with use_fake(fake):
        task_id = invoke([*key, "generate", "x", "--no-wait"]).stdout.strip()
        waited = invoke([*key, "--json", "wait", task_id])
        url = json.loads(waited.stdout)["tasks"][0]["clips"][0]["audio_url"]
        result = invoke([*key, "download", url, url, "-o", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert len(fake.downloads) == 1


# --- batch: what a rerun must not lose or loop on ---------------------------------------------


def test_batch_without_the_line_of_a_running_task_names_it_and_exits_1(tmp_path: Path) -> None:
    from musicapi_async.testing import use_fake

    durations = iter([0.0, 600.0])  # "keep" finishes at once, "gone" runs on
    fake, key = fake_and_key(sonic_duration=lambda task: next(durations))
    both = write_batch(tmp_path, '{"id": "keep", "prompt": "a"}', '{"id": "gone", "prompt": "b"}')
    out = tmp_path / "my songs"
    with use_fake(fake):
        first = invoke([*key, "batch", str(both), "-o", str(out), "--timeout", "0"])
        assert first.exit_code == 1, first.stderr
        gone_task = fake.last_task.task_id
        write_batch(tmp_path, '{"id": "keep", "prompt": "a"}')  # the second line removed
        # Followed though its line is gone, "gone" is still running at the wait's deadline.
        result = invoke([*key, "batch", str(both), "-o", str(out), "--timeout", "0"])
        as_json = invoke([*key, "--json", "batch", str(both), "-o", str(out), "--timeout", "0"])
    assert result.exit_code == 1, result.stderr
    assert result.stdout.startswith("keep\tdownloaded\t")
    assert len(result.stdout.splitlines()) == 1  # stdout: this file's jobs
    text = " ".join(result.stderr.split())
    assert f"job gone created, task {gone_task}" in text
    assert f"have a task (paid) not saved yet ({gone_task})" in text
    assert "the batch follows them though their lines are out of the file" in text
    assert "run it again to go on" in text
    assert "1 job(s) not in this file have a paid task not yet saved" in text
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(row["id"], row["in_input"], row["task_id"]) for row in rows] == [
        ("keep", True, rows[0]["task_id"]),
        ("gone", False, gone_task),
    ]
    assert len(fake.requests_to("/sonic/create")) == 2  # nothing created again
    payload = json.loads(as_json.stdout)
    assert as_json.exit_code == 1
    assert payload["complete"] is False
    assert [job["id"] for job in payload["jobs"]] == ["keep"]
    assert [(job["id"], job["state"]) for job in payload["other_jobs"]] == [("gone", "created")]


def test_batch_without_the_line_of_an_uncertain_job_warns_and_exits_0(tmp_path: Path) -> None:
    """A create that may have made a task of unknown id, its line then removed: nothing can
    follow it and removing it was the user's call, so the run ends 0, saying what to check
    and how to adopt a task found on the dashboard."""
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=1.0)  # expected, so polled at once
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)  # "lost"
    both = write_batch(tmp_path, '{"id": "lost", "prompt": "a"}', '{"id": "keep", "prompt": "b"}')
    out = tmp_path / "out"
    with use_fake(fake):
        first = invoke([*key, "batch", str(both), "-o", str(out)])
        assert first.exit_code == 1, first.stderr  # "lost" is uncertain
        write_batch(tmp_path, '{"id": "keep", "prompt": "b"}')
        again = invoke([*key, "batch", str(both), "-o", str(out)])
    assert again.exit_code == 0, again.stderr
    text = " ".join(again.stderr.split())
    assert "job lost uncertain, task -" in text
    assert "(lost) sent a create that may have reached MusicAPI without an answer" in text
    assert "put the job's line back and add --adopt JOB=TASK_ID" in text
    assert len(fake.requests_to("/sonic/create")) == 2  # nothing created again


def test_batch_with_an_empty_mv_exits_2_once_not_on_every_line(tmp_path: Path) -> None:
    batch = write_batch(tmp_path, '{"prompt": "a"}', '{"prompt": "b"}')
    out = tmp_path / "out"
    result = invoke(["--sandbox", "batch", str(batch), "-o", str(out), "--mv", ""])
    assert result.exit_code == 2, result.stderr
    assert "--mv is empty" in result.stderr
    assert "line 1" not in result.stderr
    assert not out.exists()


def test_batch_on_a_disk_too_full_for_its_journal_exits_1_to_resume_once_there_is_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = write_batch(tmp_path, '{"prompt": "a"}')
    out = tmp_path / "out"
    room_again = no_room_for_a_journal(monkeypatch)
    result = invoke(["--sandbox", "batch", str(batch), "-o", str(out)])
    assert result.exit_code == 1, result.stderr
    text = " ".join(result.stderr.split())
    assert "disk is full" in text
    assert "cannot use" not in text
    assert "resume with: musicapi --sandbox batch" in text
    room_again()
    again = invoke(["--sandbox", "batch", str(batch), "-o", str(out)])
    assert again.exit_code == 0, again.stderr


def test_a_sandbox_batch_whose_finished_audio_is_not_saved_refuses_to_resume(
    tmp_path: Path,
) -> None:
    """A sandbox's audio URLs die with its command: a job left done (not downloaded) would
    fail its download at every rerun."""
    batch = write_batch(tmp_path, '{"id": "a", "prompt": "lofi"}')
    out = tmp_path / "out"
    first = invoke(["--sandbox", "batch", str(batch), "-o", str(out), "--no-download"])
    assert first.exit_code == 0, first.stderr  # done: complete without downloads
    again = invoke(["--sandbox", "batch", str(batch), "-o", str(out)])
    assert again.exit_code == 2, again.stderr
    assert "finished by an earlier run whose audio is not saved (a)" in again.stderr
    assert "use another -o directory" in again.stderr
    assert "SANDBOX" not in again.stderr  # refused before the sandbox even started
    still = invoke(["--sandbox", "batch", str(batch), "-o", str(out), "--no-download"])
    assert still.exit_code == 0, still.stderr  # nothing to fetch: fine

    saved = tmp_path / "saved"
    assert invoke(["--sandbox", "batch", str(batch), "-o", str(saved)]).exit_code == 0
    next(saved.glob("*.wav")).unlink()  # a saved clip deleted: it would be fetched again
    gone = invoke(["--sandbox", "batch", str(batch), "-o", str(saved)])
    assert gone.exit_code == 2, gone.stderr
    assert "use another -o directory" in gone.stderr


def test_batch_adopt_awaits_and_saves_the_task_of_an_uncertain_job(tmp_path: Path) -> None:
    from musicapi_async.testing import use_fake

    fake, key = fake_and_key(sonic_duration=0.0)
    fake.inject("/sonic/create", fault="read_timeout", after_processing=True)
    batch = write_batch(tmp_path, '{"id": "a", "prompt": "lofi"}')
    out = tmp_path / "out"
    with use_fake(fake):
        first = invoke([*key, "batch", str(batch), "-o", str(out)])
        assert first.exit_code == 1, first.stderr
        assert "--adopt a=TASK_ID" in " ".join(first.stderr.split())
        (task_id,) = fake.tasks  # found on the dashboard
        bad = invoke([*key, "batch", str(batch), "-o", str(out), "--adopt", "a"])
        unknown = invoke([*key, "batch", str(batch), "-o", str(out), "--adopt", "z=t"])
        adopted = invoke([*key, "batch", str(batch), "-o", str(out), "--adopt", f"a={task_id}"])
    assert bad.exit_code == 2, bad.stderr
    assert "JOB=TASK_ID" in bad.stderr
    assert unknown.exit_code == 2, unknown.stderr
    assert "job 'z' is not in this input" in unknown.stderr
    assert adopted.exit_code == 0, adopted.stderr
    assert adopted.stdout.startswith(f"a\tdownloaded\t{task_id}\t")
    assert len(fake.requests_to("/sonic/create")) == 1  # nothing paid twice
