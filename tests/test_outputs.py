"""Outputs never delete what xstilts did not write: an existing --out with foreign files is refused (unless --force),
the working folder is never an output, a folder xstilts wrote is replaced whole on a re-run, and a failed step
leaves the previous output as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts.errors import OutputExistsError
from xstilts.io import OUTPUT_MARKER, atomic_dir, check_output_dir, replacing_foreign_outputs

XSTILTS = str(Path(sys.executable).parent / "xstilts")


def cli(*args, cwd):
    return subprocess.run([XSTILTS, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_new_and_empty_folders_are_written(tmp_path):
    with atomic_dir(tmp_path / "new") as tmp:
        (tmp / "a.txt").write_text("a")
    (tmp_path / "empty").mkdir()  # KFP creates its output paths before the step runs
    with atomic_dir(tmp_path / "empty") as tmp:
        (tmp / "b.txt").write_text("b")
    assert (tmp_path / "new" / "a.txt").read_text() == "a" and (tmp_path / "new" / OUTPUT_MARKER).is_file()
    assert (tmp_path / "empty" / "b.txt").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "new"]  # no temp folders left


def test_a_folder_xstilts_wrote_is_replaced_whole(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "old.txt").write_text("old")
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_foreign_folder_is_refused_before_any_work_and_kept(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    ran = []
    with pytest.raises(OutputExistsError, match=r"mine: the folder exists and holds files xstilts did not write.*--force"):
        with atomic_dir(out):
            ran.append(True)
    assert not ran and (out / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_force_replaces_a_foreign_folder_but_never_the_working_folder(tmp_path, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with replacing_foreign_outputs():
        with atomic_dir(out) as tmp:
            (tmp / "new.txt").write_text("y")
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER, "new.txt"]
    monkeypatch.chdir(out)
    for target in (Path("."), out, tmp_path, Path(os.sep), Path.home()):
        with replacing_foreign_outputs(), pytest.raises(OutputExistsError, match="refusing to use the working folder"):
            check_output_dir(target)
    assert (out / "new.txt").exists()


def test_a_file_or_a_link_is_not_an_output_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("keep")
    with pytest.raises(OutputExistsError, match="notes.txt: exists and is not a folder xstilts wrote.*--force"):
        check_output_dir(tmp_path / "notes.txt")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with replacing_foreign_outputs(), pytest.raises(OutputExistsError, match="link: exists and is not a folder"):
        check_output_dir(tmp_path / "link")
    assert (tmp_path / "notes.txt").read_text() == "keep"


def test_a_failing_step_leaves_the_previous_output(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "result.json").write_text("1")
    with pytest.raises(ZeroDivisionError):
        with atomic_dir(out) as tmp:
            (tmp / "result.json").write_text("2")
            1 / 0
    assert (out / "result.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_validate_refuses_an_existing_user_folder(sample_root, tmp_path):
    out = tmp_path / "validated"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    refused = cli("validate", "--task", "xnli", "--data", str(sample_root), "--languages", "en", "--out", str(out),
                  cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "holds files xstilts did not write" in refused.stderr and (out / "notes.md").read_text() == "mine"
    again = cli("validate", "--task", "xnli", "--data", str(sample_root), "--languages", "en", "--out",
                str(tmp_path / "fresh"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    rerun = cli("validate", "--task", "xnli", "--data", str(sample_root), "--languages", "en", "--out",
                str(tmp_path / "fresh"), cwd=tmp_path)  # its own output: replaced
    assert rerun.returncode == 0, rerun.stderr
    forced = cli("validate", "--task", "xnli", "--data", str(sample_root), "--languages", "en", "--out", str(out),
                 "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert not (out / "notes.md").exists() and (out / "xnli" / "test.parquet").exists()


def test_code_eval_out_dot_deletes_nothing(tmp_path):
    (tmp_path / "problems.jsonl").write_text("")
    (tmp_path / "samples.jsonl").write_text("")
    (tmp_path / "keep.py").write_text("print('mine')\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    for extra in ([], ["--force"]):
        out = cli("code-eval", "--problems", "problems.jsonl", "--samples", "samples.jsonl", "--out", ".", *extra,
                  cwd=tmp_path)
        assert out.returncode == 1 and "refusing to use the working folder" in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# ---- readers: one line naming the file and the line, never a traceback or a hang ---------------------------------

@pytest.mark.parametrize("content, message", [
    (b'{"a": 1}\n[1, 2]\n', "line 2: expected a JSON object, got list"),
    (b'{"a": 1}\n{"a": \n', "line 2: not valid JSON"),
    (b'{"a": 1}\n{"a": "caf\xe9"}\n', "line 2: not UTF-8 (byte 0xe9"),
    ('{"a": 1}\n'.encode("utf-16"), "is UTF-16 text: save it as UTF-8"),
    (b'{"a": 1}\n\x00\x01\x02\n', "line 2: binary data (a NUL byte)"),
    (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "line 1: JSON nested too deeply"),
    (b'{"text": "ok"}\n{"q": {"text": ["fine", "bad \\ud800 half"]}}\n',
     "line 2: field q.text.1 holds an unpaired UTF-16 surrogate"),
])
def test_jsonl_reader_errors(tmp_path, content, message):
    from xstilts.errors import DataError
    from xstilts.io import read_jsonl

    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as e:
        read_jsonl(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_jsonl_reader_special_files_and_gzip(tmp_path):
    import gzip

    from xstilts.errors import DataError
    from xstilts.io import read_jsonl

    with pytest.raises(DataError, match="is a folder, not a file"):
        read_jsonl(tmp_path)
    os.mkfifo(tmp_path / "fifo.jsonl")
    with pytest.raises(DataError, match="not a regular file"):
        read_jsonl(tmp_path / "fifo.jsonl")  # refused from its stat: opening it would block
    with gzip.open(tmp_path / "rows.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write('{"task_id": "HumanEval/0", "prompt": "def f():\\n"}\n\n{"task_id": "x"}\n')
    assert read_jsonl(tmp_path / "rows.jsonl.gz", numbered=True) == [
        (1, {"task_id": "HumanEval/0", "prompt": "def f():\n"}), (3, {"task_id": "x"})]
    whole = gzip.compress(b"".join(b'{"a": %d}\n' % (i * 7919 % 100003) for i in range(5000)))
    (tmp_path / "cut.jsonl.gz").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DataError, match="cut.jsonl.gz: cannot be read"):
        read_jsonl(tmp_path / "cut.jsonl.gz")


def test_single_file_writers_never_replace_a_device_fifo_folder_or_link(tmp_path):
    from xstilts.io import atomic_copy, write_json

    (tmp_path / "src.txt").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    (tmp_path / "target.txt").write_text("keep")
    (tmp_path / "link.txt").symlink_to(tmp_path / "target.txt")
    for target in (Path(os.devnull), tmp_path / "fifo", tmp_path / "folder", tmp_path / "link.txt"):
        with pytest.raises(OutputExistsError, match="is not a plain file"):
            write_json(target, {"a": 1})
        with pytest.raises(OutputExistsError, match="is not a plain file"):
            atomic_copy(tmp_path / "src.txt", target)
    assert Path(os.devnull).is_char_device() and (tmp_path / "target.txt").read_text() == "keep"
    write_json(tmp_path / "new.json", {"a": 1})  # a new or plain file is written as before
