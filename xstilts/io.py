"""File and value helpers every room may use: atomic writes (outputs appear whole or not at all), JSON and JSONL
reading, content fingerprints, plain Python values from numpy/pandas and JSON, and the small HTML/Markdown table
writers of the reports. It imports nothing of xstilts but xstilts.errors."""

from __future__ import annotations

import base64
import contextlib
import contextvars
import dataclasses
import gzip
import hashlib
import html
import json
import math
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from xstilts.errors import ConfigError, DataError, OutputExistsError


def shorten(value: Any, limit: int = 120) -> str:
    """repr(value), cut to `limit` characters with the full length said: error messages and reports quote input
    values, and a 50 MB field must not be echoed whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def read_text_file(path: str | os.PathLike, what: str = "file", max_bytes: int = 64 << 20) -> str:
    """The UTF-8 text of a regular file, or a one-line ConfigError naming the file and what is wrong: missing, a
    folder, a FIFO or device (never opened: a FIFO would block), too large, binary, UTF-16/32 or not UTF-8."""
    path = Path(path)
    info = check_regular_file(path, what)
    if info.st_size > max_bytes:
        raise ConfigError(f"{what} {path} is {info.st_size:,} bytes; at most {max_bytes:,} are read")
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[:1] == b"\0" or data[1:2] == b"\0":
        raise ConfigError(f"{what} {path} is UTF-16 or UTF-32 text: save it as UTF-8")
    nul = data.find(b"\0")
    if nul >= 0:
        raise ConfigError(f"{what} {path} is binary (a NUL byte at offset {nul}), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{what} {path}: line {line} is not UTF-8 (byte {data[e.start]:#04x} at offset "
                          f"{e.start})") from None


# Written into every folder atomic_dir creates: proof that xstilts made it, so a re-run may replace it. A folder
# without it holds someone else's files, and is never deleted (the user may pass --force to replace it).
OUTPUT_MARKER = ".xstilts-output"
_REPLACE_FOREIGN_OUTPUT: contextvars.ContextVar[bool] = contextvars.ContextVar("replace_foreign_output", default=False)


@contextlib.contextmanager
def replacing_foreign_outputs() -> Iterator[None]:
    """Within this block atomic_dir may replace an existing folder xstilts did not write (the CLI's `--force`)."""
    token = _REPLACE_FOREIGN_OUTPUT.set(True)
    try:
        yield
    finally:
        _REPLACE_FOREIGN_OUTPUT.reset(token)


def check_output_dir(final: str | os.PathLike) -> None:
    """Raise OutputExistsError unless `final` may become an output folder: absent, an empty folder (KFP creates its
    output paths), a folder xstilts wrote (OUTPUT_MARKER), or anything but a working/home/root folder under --force."""
    final = Path(final)
    resolved = final.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents or resolved == Path.home().resolve() or resolved.parent == resolved:
        raise OutputExistsError(f"{final}: refusing to use the working folder, one of its parents, the home folder "
                                "or / as an output folder; name a new folder")
    if not final.exists() and not final.is_symlink():
        return
    if final.is_dir() and not final.is_symlink():
        if not any(final.iterdir()) or (final / OUTPUT_MARKER).is_file() or _REPLACE_FOREIGN_OUTPUT.get():
            return
        raise OutputExistsError(f"{final}: the folder exists and holds files xstilts did not write; choose another "
                                "output folder, or pass --force to replace it")
    if _REPLACE_FOREIGN_OUTPUT.get() and not final.is_symlink():
        return
    raise OutputExistsError(f"{final}: exists and is not a folder xstilts wrote; choose another output path"
                            + ("" if final.is_symlink() else ", or pass --force to replace it"))


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp dir beside `final`; on success it replaces `final`, on error it is removed. `final` is checked
    before any work (check_output_dir) and again before the swap; the old folder is renamed aside, the new one
    renamed in, and only then the old one removed, so there is always one whole folder at `final`."""
    final = Path(final)
    check_output_dir(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        (tmp / OUTPUT_MARKER).write_text("written by xstilts: a re-run may replace this folder\n")
        check_output_dir(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_output_file(path: str | os.PathLike) -> None:
    """Refuse to replace what is not a plain file: renaming a temp file over /dev/null, a FIFO or a folder would
    destroy it (as root, a device node)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise OutputExistsError(f"{path}: exists and is not a plain file (a folder, link, device or FIFO); "
                                "name a file to write")


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, then rename it over `path`: a reader sees the old or the new."""
    path = Path(path)
    check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_copy(src: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Copy a file to `dest` atomically, byte for byte (KFP's HTML/Markdown outputs are single files beside a
    folder)."""
    dest = Path(dest)
    check_output_file(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: str | os.PathLike, *, numbered: bool = False) -> list[dict] | list[tuple[int, dict]]:
    """The JSON objects of a JSON Lines file (`.gz` too), one a line (blank lines skipped); with `numbered`, (line
    number, object) pairs. Anything else — a folder or FIFO, binary or UTF-16 bytes, a line that is not UTF-8, not
    JSON or not an object, JSON nested too deeply, text holding an unpaired surrogate — raises DataError naming the
    file and the line."""
    path = Path(path)
    check_regular_file(path, "data file", DataError)
    rows = []
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        try:
            for number, raw in enumerate(f, start=1):
                if number == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                    raise DataError(f"{path} is UTF-16 text: save it as UTF-8")
                if b"\0" in raw:
                    raise DataError(f"{path}: line {number}: binary data (a NUL byte), not JSON Lines text")
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{path}: line {number}: not UTF-8 (byte {raw[e.start]:#04x} at column "
                                    f"{e.start + 1})") from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}: line {number}: not valid JSON ({e.msg} at column {e.colno})") from None
                except RecursionError:
                    raise DataError(f"{path}: line {number}: JSON nested too deeply") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}: line {number}: expected a JSON object, got {type(row).__name__}")
                where = _unpaired_surrogate(row)
                if where is not None:
                    raise DataError(f"{path}: line {number}: field {where} holds an unpaired UTF-16 surrogate "
                                    "(a \\ud800-\\udfff escape alone), not text")
                rows.append((number, row) if numbered else row)
        except (OSError, EOFError) as e:  # a truncated or corrupt .gz
            if isinstance(e, DataError):
                raise
            raise DataError(f"{path}: cannot be read ({e})") from None
    return rows


def _unpaired_surrogate(value: Any, where: str = "") -> str | None:
    """The key path of the first string holding a lone surrogate (it cannot be written as UTF-8), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where or "(value)"
        return None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _unpaired_surrogate(item, f"{where}.{key}" if where else str(key))
        if found is not None:
            return found
    return None


def check_regular_file(path: str | os.PathLike, what: str = "file", error: type[Exception] = ConfigError) -> os.stat_result:
    """The file's stat, or `error` (one line) when it is missing, a folder, or a FIFO, socket or device (which are
    never opened: a FIFO would block)."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except OSError as e:
        raise error(f"{what} {path}: cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} {path} is not a regular file (a FIFO, socket or device)")
    return info


def plain(value: Any) -> Any:
    """numpy scalars and arrays (from Parquet, pandas, datasets) as Python values, in dicts too; NaN as None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def jsonable(value: Any, *, sort_keys: bool = False) -> Any:
    """`value` as JSON reads it back: dataclasses as dicts, anything else JSON lacks (paths, ...) as its str."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, sort_keys=sort_keys, default=str))


def file_md5(path: str | os.PathLike) -> str:
    """The md5 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (used to key checkpoints and caches)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def dir_fingerprint(path: str | os.PathLike, pattern: str = "*") -> str:
    """Content hash of every file below `path` (names and bytes), or of those whose name matches `pattern`."""
    h = hashlib.sha256()
    root = Path(path)
    for file in sorted(p for p in root.rglob(pattern) if p.is_file()):
        h.update(str(file.relative_to(root)).encode())
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;color:#1f2328}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f6f8fa}.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.pos{color:#1a7f37}.neg{color:#cf222e}code{background:#f6f8fa;padding:0 .2rem}
img{max-width:100%}
"""


def fmt(value, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence]) -> str:
    def cell(v) -> str:
        return fmt(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def html_table(headers: Sequence[str], rows: Iterable[Sequence], classes: Sequence[Sequence[str]] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c, v in enumerate(row):
            cls = classes[r][c] if classes and classes[r][c] else ""
            cells.append(f'<td class="{cls}">{html.escape(fmt(v))}</td>' if cls else f"<td>{html.escape(fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def html_image(png_path: str | Path, alt: str) -> str:
    data = base64.b64encode(Path(png_path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_page(title: str, body: str) -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def esc(text: str) -> str:
    return html.escape(text)


def markdown_html(text: str) -> str:
    """Markdown (with tables) as an HTML fragment."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)
