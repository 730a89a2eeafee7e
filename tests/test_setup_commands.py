"""The README's two set-up commands work on a fresh machine (issue 4, item 1).

The first (install with the command, generate a song in the sandbox) is run as the README
writes it, in a fresh virtualenv, in a clean clone of the committed tree: uncommitted work
is not in it, as it would not be on a newcomer's machine. It needs PyPI, hence ``slow``.
The second (install the test dependencies, run the tests) is what ``.ci/run`` runs on a
clean checkout; here it is only checked to be that.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The README's two commands: one line each, in a console block.
FIRST = re.compile(r"^pip install .*&& musicapi --sandbox .*$", re.M)
SECOND = re.compile(r"^pip install .*\[dev\].*&& python -m pytest$", re.M)


def readme_command(readme: Path, pattern: re.Pattern[str]) -> str:
    match = pattern.search(readme.read_text(encoding="utf-8"))
    assert match, f"{readme}: no line matching {pattern.pattern}"
    return match.group(0)


def test_the_readme_shows_both_commands_before_anything_else() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = FIRST.search(text)
    second = SECOND.search(text)
    assert first
    assert second
    # In the Install section, the first after the title and the opening example.
    install = text.index("\n## Install\n")
    assert install < first.start() < second.start() < text.index("\n## Quickstart\n")


def test_the_second_command_is_what_ci_runs() -> None:
    command = readme_command(ROOT / "README.md", SECOND)
    install, _, run_tests = command.partition(" && ")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^python -m pip install --quiet -e '\.\[dev\]'$", ci, re.M)
    assert install == "pip install -e '.[dev]'"
    assert re.search(rf"^{re.escape(run_tests)}$", ci, re.M)


def clean_clone(destination: Path) -> Path:
    """A clone of this checkout's HEAD, or skip when this is not a git checkout."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot make a clean clone")
    inside = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        text=True,
        check=False,
    )
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        pytest.skip(f"{ROOT} is not a git checkout: there is no committed tree to clone")
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(destination)],
        check=True,
        capture_output=True,
    )
    return destination


@pytest.mark.slow
def test_the_first_command_generates_songs_in_a_clean_clone(tmp_path: Path) -> None:
    """The README's first command, in a fresh venv and clone: real WAV files, in the sandbox."""
    clone = clean_clone(tmp_path / "clone")
    command = readme_command(clone / "README.md", FIRST)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MUSICAPI_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        VIRTUAL_ENV=str(venv),
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    shown = f"$ {command}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 0, shown
    assert "SANDBOX" in result.stderr, shown
    songs = sorted((clone / "songs").glob("*.wav"))
    assert len(songs) == 2, shown  # a Sonic task makes two clips
    for song in songs:
        assert song.read_bytes()[:4] == b"RIFF"
        assert song.read_bytes()[8:12] == b"WAVE"
        with wave.open(str(song), "rb") as audio:
            assert audio.getnframes() > audio.getframerate() // 2  # at least half a second
    # After pip's output, the command prints the saved paths, one per line.
    printed = [clone / line for line in result.stdout.splitlines() if line.endswith(".wav")]
    assert sorted(printed) == songs
