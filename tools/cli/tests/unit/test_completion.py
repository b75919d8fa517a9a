"""`shopstream completion bash` completes commands, options and choices in a real bash."""

import shutil
import subprocess

import pytest

from shopstream_cli.main import run


def _complete(script: str, words: list[str]) -> list[str]:
    """COMPREPLY for the command line `words` (the last one is being typed)."""
    line = " ".join(f"'{w}'" for w in words)
    program = f"""{script}
COMP_WORDS=({line})
COMP_CWORD={len(words) - 1}
_shopstream_complete
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return result.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_knows_commands_options_and_topics(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "complete -o default -F _shopstream_complete shopstream" in script
    assert {"status", "topics", "groups", "logs", "dlq", "completion"} <= set(
        _complete(script, ["shopstream", ""])
    )
    assert _complete(script, ["shopstream", "to"]) == ["topics", "token"]
    assert _complete(script, ["shopstream", "topics", "tail", "--of"]) == ["--offset"]
    assert "commerce.orders.v1" in _complete(script, ["shopstream", "topics", "tail", "comm"])
    assert _complete(script, ["shopstream", "logs", "cre"]) == ["creator-score"]
    assert {"lag", "--all"} <= set(_complete(script, ["shopstream", "groups", ""]))
    # An argument between commands does not lose the path.
    assert _complete(script, ["shopstream", "--json", "groups", "lag", "g1", "--js"]) == ["--json"]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("shopstream 0.1.0 (Python 3.")
