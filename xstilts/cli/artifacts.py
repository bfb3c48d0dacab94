"""`xstilts artifacts push|pull`: model folders in a DVC remote, by DVC md5 (the `dvc_md5` on a Model artifact)."""

from __future__ import annotations

import json
from pathlib import Path
import typer
from rich.markup import escape
from xstilts.ops.artifact_store import human_size
from xstilts.cli.common import console, friendly_errors


app = typer.Typer(help="Model folders (checkpoints, ONNX exports) in a DVC remote, addressed by DVC md5.",
                            no_args_is_help=True)

REMOTE_HELP = ("DVC remote: a URL (local path, s3://bucket/prefix, gs://bucket/prefix) or the name of a remote "
               "configured with `dvc remote add`. Credentials and a MinIO endpoint come from the environment "
               "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, XSTILTS_DVC_REMOTE_ENDPOINT, GOOGLE_APPLICATION_CREDENTIALS).")


@app.command()
@friendly_errors
def push(path: Path = typer.Argument(..., help="The model folder to store (a `model/` or `onnx_model/` artifact)."),
         remote: str = typer.Option(..., "--remote", help=REMOTE_HELP),
         json_out: bool = typer.Option(False, "--json", help="Print the push record as JSON.")):
    """Store a folder in the DVC remote, content-addressed; prints its DVC md5 (`<md5>.dir`)."""
    from xstilts.ops.artifact_store import push as push_folder

    record = push_folder(path, remote)
    if json_out:
        print(json.dumps(record))
        return
    news = f"{record['uploaded']} new file(s) uploaded" if record["uploaded"] else "nothing new to upload (already there)"
    console.print(f"pushed {escape(str(path))}: {record['nfiles']} files, {human_size(record['size'])}; {news}",
                  highlight=False)
    print(record["dvc_md5"])


@app.command()
@friendly_errors
def pull(md5: str = typer.Argument(..., help="DVC md5 of the folder (`dvc_md5` in the Kubeflow UI), with or "
                                   "without `.dir`."),
         remote: str = typer.Option(..., "--remote", help=REMOTE_HELP),
         out: Path = typer.Option(..., "--out", help="Folder to write (replaced whole once every file checks out).")):
    """Fetch a folder by DVC md5, check every file against it, and write it to --out."""
    from xstilts.ops.artifact_store import pull as pull_folder

    record = pull_folder(md5, remote, out)
    console.print(f"pulled {record['dvc_md5']}: {record['nfiles']} files, {human_size(record['size'])}, verified",
                  highlight=False)
    print(record["path"])
