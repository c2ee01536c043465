"""``seqadapt-tasks check``: its output lines and exit codes on the toy task dir, broken definitions included."""

import subprocess
import sys

import pytest
import yaml

from seqadapt.cli.tasks import main


def run(capsys, *argv):
    with pytest.raises(SystemExit) as exited:
        main(["check", *argv])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def test_every_toy_task_is_ok_with_its_counts(capsys, toy_task_dir):
    code, out, err = run(capsys, "--task-dir", str(toy_task_dir))
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line for line in lines if not line.startswith(" ") and line] == [
        f"animals: ok  ({toy_task_dir / 'animals.yaml'})", f"colors: ok  ({toy_task_dir / 'colors.yaml'})",
        f"weather: ok  ({toy_task_dir / 'weather.yaml'})", "3 task(s) checked: 3 ok",
    ]
    assert lines.count("  source     train 160 rows, test 80 rows") == 3
    assert lines.count("  splits     train 128, val 32, test 80") == 3
    assert lines.count("  leakage    none: no text is in two splits") == 3
    assert lines.count("  per label         train    val   test") == 3
    table = [line.split() for line in lines if line.startswith(("             cat", "             dog"))]
    assert [row[0] for row in table] == ["cat", "dog"] and sum(int(row[3]) for row in table) == 80  # test column
    assert sum(line.startswith("  examples   [") for line in lines) == 3


def test_names_pick_tasks_and_sizes_follow_the_options(capsys, toy_task_dir):
    code, out, _ = run(capsys, "colors", "--task-dir", str(toy_task_dir), "--train-size", "50", "--val-size", "10")
    assert code == 0 and out.startswith("colors: ok") and "animals" not in out
    assert "  splits     train 50, val 10, test 80" in out.splitlines()


def test_a_broken_definition_exits_1_naming_file_and_fix_without_a_traceback(capsys, toy_task_dir):
    (toy_task_dir / "weather.yaml").write_text("name: weather\nlabels: [sunny, rainy]\nsource: {kind: local_files, format: csv}\n")
    code, out, err = run(capsys, "--task-dir", str(toy_task_dir))
    assert code == 1 and "Traceback" not in out + err
    assert f"weather: 1 error(s)  ({toy_task_dir / 'weather.yaml'})" in out
    assert f"  error      {toy_task_dir / 'weather.yaml'}: source (kind local_files) has no 'files'; add `files: " in out
    assert out.rstrip().endswith("3 task(s) checked: 2 ok, 1 with errors (weather)")


def test_warnings_are_listed_but_keep_exit_code_0(capsys, toy_task_dir):
    path = toy_task_dir / "animals.yaml"
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "labels": ["cat", "dog", "parrot"]}))
    code, out, _ = run(capsys, "animals", "--task-dir", str(toy_task_dir))
    assert code == 0 and out.startswith("animals: ok, 1 warning(s)")
    assert "  warning    task 'animals': declared label(s) ['parrot'] never occur in its 128 training examples" in out
    assert out.rstrip().endswith("1 task(s) checked: 1 ok; 1 warning(s)")


def test_drop_leaked_shows_the_counts_after_dropping(capsys, toy_task_dir):
    for split in ("train", "test"):  # the same two sentences at the end of both files
        with open(toy_task_dir / f"colors_{split}.csv", "a", encoding="utf-8") as handle:
            handle.write("a red house twice,red\na blue house twice,blue\n")
    code, out, _ = run(capsys, "colors", "--task-dir", str(toy_task_dir))
    assert code == 0 and "  warning    task 'colors': texts in more than one split (" in out
    assert "  leakage    source train/test: 2 text(s), e.g. 'a red house twice', 'a blue house twice'" in out
    assert "  splits     train 130, val 32, test 82" in out.splitlines()  # 162 rows in the train pool
    code, out, _ = run(capsys, "colors", "--task-dir", str(toy_task_dir), "--drop-leaked")
    assert code == 0 and "warning" not in out
    (dropped,) = [line.strip() for line in out.splitlines() if "drop_leaked removed" in line]
    (splits,) = [line.split()[1:] for line in out.splitlines() if line.startswith("  splits")]
    train, val, test = (int(n.rstrip(",")) for n in splits[1::2])
    assert (train + val, test) == (160, 82) and dropped.endswith("row(s); the splits above are what is left")


def test_an_empty_task_dir_exits_1(capsys, tmp_path):
    code, _, err = run(capsys, "--task-dir", str(tmp_path))
    assert code == 1 and f"no task definitions (*.yaml) in {tmp_path}" in err


def test_runs_as_a_module_and_prints_problems_not_tracebacks(toy_task_dir):
    (toy_task_dir / "colors.yaml").write_bytes(b"name: colors\nlabels: [r\xe9d, blue]\n")
    done = subprocess.run([sys.executable, "-m", "seqadapt.cli.tasks", "check", "--task-dir", str(toy_task_dir)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    assert "colors.yaml is not valid UTF-8: byte 0xe9 on line 2" in done.stdout
    assert "3 task(s) checked: 2 ok, 1 with errors (colors)" in done.stdout


def test_a_task_with_20000_labels_prints_a_few_lines_not_megabytes(capsys, toy_task_dir):
    # before: one table row per label and a warning listing all 19,998 unseen labels (1.18 MB here; megabytes
    # at 100,000 labels)
    path = toy_task_dir / "animals.yaml"
    extra = [f"extra{i:05d}" for i in range(19_998)]
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "labels": ["cat", "dog", *extra]}))
    code, out, _ = run(capsys, "animals", "--task-dir", str(toy_task_dir))
    lines = out.splitlines()
    assert code == 0 and out.startswith("animals: ok, 1 warning(s)") and len(out) < 6_000
    assert max(len(line) for line in lines) <= 2_100  # a problem's message: its start and its end, the middle cut
    (header,) = [i for i, line in enumerate(lines) if line.startswith("  per label")]
    table = lines[header + 1 : header + 22]
    assert [row.split()[0] for row in table[:20]] == ["cat", "dog", *extra[:18]]
    assert table[20].split() == ["19980", "more", "labels", "0", "0", "0"]  # extra*: in no split
    assert len({len(row) for row in lines[header : header + 22]}) == 1  # the columns line up
    (warning,) = [line for line in lines if line.startswith("  warning")]
    assert " characters left out] … " in warning and warning.endswith(".")
