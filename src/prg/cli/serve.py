"""``prg serve``: the HTTP API and web page (:mod:`prg.serve.app`) on uvicorn."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True, soft_wrap=True)


def serve(
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="PRG checkpoint folder (default: the shipped)."),
    index: Path = typer.Option(None, "--index", help="Document index folder (prg index build)."),
    docs: Path = typer.Option(None, "--docs", help="Documents folder: indexed once and cached (~/.cache/prg)."),
    scenes: Path = typer.Option(
        None, "--scenes", help="PRG dataset folder whose scenes the web page offers (default: the demo's)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free one)."),
    api_key_file: Path = typer.Option(
        None, "--api-key-file", help="File holding the bearer key that /v1/ requests must send."
    ),
    max_batch: int = typer.Option(8, "--max-batch", min=1, help="Requests per batched generation at most."),
    max_wait_ms: float = typer.Option(10.0, "--max-wait-ms", min=0, help="How long a request waits for company."),
    max_body_mb: float = typer.Option(32.0, "--max-body-mb", min=0.01, help="Largest request body, MiB."),
    max_pixels: int = typer.Option(40_000_000, "--max-pixels", min=1, help="Largest image, width x height."),
    max_instruction_chars: int = typer.Option(4000, "--max-instruction-chars", min=1, help="Longest instruction."),
    timeout: float = typer.Option(300.0, "--timeout", min=0.1, help="Seconds before a request gets 504."),
    body_timeout: float = typer.Option(
        15.0, "--body-timeout", min=0.1, help="Seconds a client may pause while sending its body (then 408)."
    ),
    max_queue: int = typer.Option(256, "--max-queue", min=1, help="Waiting requests beyond this get 503."),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="Allow browser calls from this origin (repeatable); CORS is off without it."
    ),
    k_docs: int | None = typer.Option(None, "--k-docs", min=0, help="Retrieved clauses (default: as trained)."),
    k_grasps: int = typer.Option(3, "--k-grasps", min=1, help="Grasps kept per [POSE], best first."),
    embedder: str = typer.Option("minilm", help="Embedder for --docs and the demo index: minilm or hashing."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level: debug, info, warning, error."),
) -> None:
    """Serve PRG over HTTP: POST /v1/predict for robots, a web page at /, OpenAPI docs at /docs.

    Without --index or --docs the demo's regulations are indexed (and its scenes offered on the page), made once
    in ~/.cache/prg/demo. The model loads after the server starts: /readyz says when it is ready."""
    import uvicorn

    from prg.demo import demo_cache_dir, prepare_demo_data
    from prg.pipeline import PRGPipeline, default_checkpoint, index_for_docs
    from prg.serve.app import ServeSettings, create_app

    if index is not None and docs is not None:
        raise typer.BadParameter("give --index or --docs, not both")
    for name, p in (("--index", index), ("--docs", docs), ("--scenes", scenes)):
        if p is not None and not p.is_dir():
            raise typer.BadParameter(f"{name} {p}: no such folder")
    api_key = _read_key(api_key_file) if api_key_file is not None else None
    if not _loopback(host) and api_key is None:
        console.print(
            f"[yellow]warning:[/yellow] listening on {escape(host)} without --api-key-file: anyone who can reach "
            "this port can use the model",
            highlight=False,
        )
    ckpt = checkpoint if checkpoint is not None else default_checkpoint()
    demo_root = demo_cache_dir()
    use_demo = scenes is None or (index is None and docs is None)
    if scenes is None:
        scenes = demo_root / "dataset"
    settings: dict[str, Any] = {"k_grasps": k_grasps} if k_docs is None else {"k_grasps": k_grasps, "k_docs": k_docs}

    def load() -> PRGPipeline:  # on the server's loading thread: /healthz answers meanwhile
        idx = index
        if use_demo:
            _, demo_index = prepare_demo_data(demo_root, embedder=embedder, progress=False)
            idx = idx if idx is not None or docs is not None else demo_index
        if docs is not None:
            idx = index_for_docs(docs, embedder=embedder)
        return PRGPipeline.from_pretrained(ckpt, index=idx, device=device, **settings)

    app = create_app(
        load,
        ServeSettings(
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            max_body_bytes=int(max_body_mb * 2**20),
            max_pixels=max_pixels,
            max_instruction_chars=max_instruction_chars,
            request_timeout_s=timeout,
            body_timeout_s=body_timeout,
            max_queue=max_queue,
            api_key=api_key,
            cors_origins=list(cors_origin),
            scenes=scenes,
        ),
    )
    console.print(f"PRG on http://{escape(host)}:{port}/ (model: {escape(str(ckpt))})", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _read_key(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise typer.BadParameter(f"--api-key-file {path}: {e.strerror}") from None
    if len(key) < 16:
        raise typer.BadParameter(f"--api-key-file {path}: the key must have at least 16 characters")
    return key


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
