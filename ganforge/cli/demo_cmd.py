"""`ganforge demo`: a local web page to draw samples, pick a class, interpolate or translate an upload."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ganforge.cli import common

HOST = "127.0.0.1"  # loopback only: the page is for the person at this computer


def bind(port: int):
    """A listening socket on the loopback address (port 0: any free one), or one clear line."""
    import socket

    from ganforge.core.errors import GanforgeError

    if not 0 <= port <= 65535:
        raise GanforgeError(f"--port must be between 0 and 65535, got {port}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise GanforgeError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}",
                            hint="choose another port with --port (0 picks a free one)") from None
    sock.listen(64)
    return sock


def demo_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="A checkpoint file, its folder, or a run folder (latest checkpoint).")],
    port: Annotated[int, typer.Option("--port", "-p", help="The port to serve on, on 127.0.0.1 only (0: any free port).")] = 8765,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest image upload accepted, in MB.")] = 20.0,
    open_it: Annotated[bool, typer.Option("--open", help="Open the page in the default web browser.")] = False,
):
    """Serve a page on 127.0.0.1 to try a model: samples, classes, interpolation, translation.

    The page offers what the model declares; bad requests get one line on the page. Needs: pip install
    'ganforge\\[demo]'. Ctrl-C stops it."""
    from ganforge.core.errors import GanforgeError

    with common.user_errors():
        from ganforge.io.demo_app import DemoModel, create_app, require_web
        from ganforge.io.inference import load_for_inference

        require_web()
        if not max_upload_mb > 0:
            raise GanforgeError(f"--max-upload-mb must be above 0, got {max_upload_mb:g}")
        registry = common.registry()
        loaded = load_for_inference(checkpoint, registry)
        model = DemoModel(loaded, component=registry.get("algorithm", loaded.recipe.algorithm.name),
                          max_upload_bytes=int(max_upload_mb * 2**20))
        if not (model.can_sample or model.directions):
            raise GanforgeError(f"{loaded.path}: algorithm '{loaded.recipe.algorithm.name}' declares neither sampling "
                                "nor translation, so there is nothing to show")
        sock = bind(port)
        url = f"http://{HOST}:{sock.getsockname()[1]}/"
        serve(create_app(model), sock, url, open_it)


def serve(app, sock, url: str, open_it: bool = False) -> None:
    import uvicorn

    common.out.print(f"serving {url} (this computer only; Ctrl-C stops it)")
    if open_it:
        import webbrowser

        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then passes Ctrl-C on: the normal way to stop
        pass
    finally:
        sock.close()
    common.out.print("stopped")
