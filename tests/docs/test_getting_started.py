"""The shell examples of the Getting started page, run as written so that they cannot rot.

Every ``bash`` block of ``docs/getting-started.md`` runs in a fresh folder, each ``seqadapt`` training command
with the tiny random backbone and small splits appended (the page's own settings still apply: Hydra takes the
last value of a key, and these keys are not on the page). The one block not run here is the set-up and the
test command itself, which CI runs (``.ci/run``). The README's Python example then runs on the folder they wrote.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
SETUP_BLOCK = ["bash .ci/setup && .venv/bin/seqadapt", ".venv/bin/python -m pytest"]
TINY = ("backbone=tiny_random data.train_size=48 data.val_size=16 data.test_size=24 data.max_length=16 "
        "trainer.max_epochs=1 logger=none")


def bash_blocks(markdown: str) -> list[list[str]]:
    """The command lines of each fenced ``bash`` block, comments after a command removed."""
    blocks = re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.S | re.M)
    return [[re.sub(r"\s+#\s.*$", "", line).strip() for line in block.splitlines() if line.strip()]
            for block in blocks]


def tiny(line: str, bin_dir: Path) -> str:
    """The line with ``.venv/bin/`` pointing at this interpreter's scripts and the tiny settings after ``seqadapt``."""
    line = line.replace(".venv/bin/", f"{bin_dir}/")
    return re.sub(rf"^({re.escape(str(bin_dir))}/seqadapt)(?=\s)", rf"\1 {TINY}", line)


def test_the_page_has_the_set_up_block_and_one_to_run():
    blocks = bash_blocks(PAGE.read_text(encoding="utf-8"))
    assert [line.split("  ")[0] for line in blocks[0]] == SETUP_BLOCK
    assert len(blocks) >= 2


@pytest.mark.integration
def test_getting_started_commands_run(tmp_path):
    bin_dir = Path(sys.executable).parent
    blocks = bash_blocks(PAGE.read_text(encoding="utf-8"))[1:]
    script = "\n".join(["set -euo pipefail", *(tiny(line, bin_dir) for block in blocks for line in block)])
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((tmp_path / "runs" / "first" / "results.json").read_text())
    assert record["tasks"] == ["trec", "sms_spam", "reuters_r8", "rotten_tomatoes", "election_tweets"]
    assert record["metrics"]["bwt"] == 0.0
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [answer["task"] for answer in answers] == ["sms_spam", answers[1]["task"]]
    assert answers[1]["selected_by"] == "mahalanobis"
    assert re.search(r"every task preserved \(5\)", result.stdout), result.stdout[-2000:]
    example = re.search(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S | re.M)
    printed = subprocess.run([sys.executable, "-c", example.group(1)], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)
    assert printed.returncode == 0, printed.stderr[-3000:]
    label_line, chosen_line = printed.stdout.splitlines()[-2:]
    assert label_line.split()[0] in ("ham", "spam") and chosen_line.split()[0] in record["tasks"]
