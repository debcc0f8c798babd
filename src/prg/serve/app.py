"""``prg serve``: the HTTP API for robots and the web page, over one :class:`~prg.pipeline.PRGPipeline`.

```
POST /v1/predict          multipart (image file, optional depth file, "request" JSON) or JSON (image_b64, ...)
                          -> PRGResult JSON: answer, citations, grasps (pixels), poses (ROS PoseStamped fields)
POST /v1/predict/stream   the same input -> server-sent events: retrieved, token..., result (or error)
GET  /healthz /readyz /metrics          liveness, model loaded, Prometheus
GET  /v1/scenes[/{id}/image|depth]      the demo scenes the web page offers
GET  /                                  the web page; OpenAPI docs at /docs
```

Every refused request gets a 4xx with ``{"error": {"code", "message", "field"}}`` and the server keeps serving.
Requests are checked and decoded on the handler's side (a thread pool); only valid ones queue for the model
(:class:`~prg.serve.batcher.MicroBatcher`).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prg.pipeline import PRGInputError, PRGPipeline, PRGRequest, PRGResult
from prg.serve.batcher import Job, MicroBatcher
from prg.serve.decode import DEPTH_FORMATS, RequestError, decode_b64, decode_depth, decode_image
from prg.serve.metrics import ServeMetrics

__all__ = ["PredictJSON", "PredictOptions", "ServeSettings", "create_app"]

log = logging.getLogger("prg.serve")
STATIC = Path(__file__).parent / "static"


class ServeSettings(BaseModel):
    """Limits and batching of one server; ``prg serve`` options map onto these fields one to one."""

    model_config = ConfigDict(extra="forbid")

    max_batch: int = Field(8, ge=1, le=256, description="Requests per batched generation at most.")
    max_wait_ms: float = Field(10.0, ge=0, description="How long the first request waits for others to join.")
    max_queue: int = Field(256, ge=1, description="Requests waiting beyond this are refused with 503.")
    max_body_bytes: int = Field(32 * 2**20, ge=1024, description="Largest request body.")
    max_pixels: int = Field(40_000_000, ge=1, description="Largest image (width x height), checked before decoding.")
    max_instruction_chars: int = Field(4000, ge=1, description="Longest instruction.")
    request_timeout_s: float = Field(300.0, gt=0, description="A request not answered by then gets 504.")
    body_timeout_s: float = Field(15.0, gt=0, description="A client that sends no body bytes for this long gets 408.")
    api_key: str | None = Field(None, repr=False, description="Bearer key for /v1/ routes; None: open.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS; empty: CORS off.")
    scenes: Path | None = Field(None, description="A PRG dataset folder whose scenes the web page offers.")


class PredictOptions(BaseModel):
    """What a predict request asks, besides the image (the ``request`` part of a multipart body)."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(..., description="What the user asks for, in words.")
    intrinsics: dict[str, Any] | None = Field(
        None, description='Pinhole intrinsics in pixels: {"fx", "fy", "cx", "cy"} or {"K": 3x3}; with depth -> poses.'
    )
    k_docs: int | None = Field(None, ge=0, le=50, description="Retrieved clauses shown to the model.")
    k_grasps: int | None = Field(None, ge=1, le=50, description="Grasps kept per [POSE], best first.")
    depth_scale: float = Field(0.001, gt=0, description="Metres per unit of a 16-bit PNG depth (0.001: millimetres).")
    depth_format: Literal["png", "tiff", "npy"] | None = Field(None, description="Default: from the file itself.")
    frame_id: str | None = Field(
        None, min_length=1, max_length=256, description="The camera's frame, copied into every pose's header."
    )
    stamp: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="The image's capture time (s), copied into every pose's header."
    )


class PredictJSON(PredictOptions):
    """A predict request as one JSON body: the image (and depth) base64-encoded."""

    image_b64: str = Field(..., description="The image file (PNG, JPEG, ...), base64.")
    depth_b64: str | None = Field(None, description="Aligned depth (16-bit PNG, TIFF or .npy), base64.")


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "format": "binary"},
                    "depth": {"type": "string", "format": "binary"},
                    "request": {"type": "string", "description": "PredictOptions as JSON"},
                    "instruction": {"type": "string", "description": "instead of 'request': the fields one by one"},
                },
            }
        },
        "application/json": {"schema": PredictJSON.model_json_schema()},
    },
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in [
        (400, "malformed body"),
        (401, "missing or wrong API key"),
        (408, "body not received in time"),
        (413, "body, image or instruction too large"),
        (415, "not an image, or an unsupported content type"),
        (422, "invalid field"),
        (503, "model not loaded, or too busy"),
        (504, "not answered in time"),
    ]
}


# --------------------------------------------------------------------------------------------------------------
# ASGI guard: body limits, a body timeout and the request metrics, outside everything else


class _BodyProblem(Exception):
    def __init__(self, error: RequestError) -> None:
        self.error = error


class Guard:
    """Refuses bodies over ``max_body_bytes`` (from Content-Length, else while reading) and clients that stop
    sending their body for ``body_timeout_s``; records every request's status and latency."""

    def __init__(self, app: ASGIApp, settings: ServeSettings, metrics: ServeMetrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500, "started": False}
        limit, timeout = self.settings.max_body_bytes, self.settings.body_timeout_s

        async def send_(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise _BodyProblem(_too_large(int(length), limit))
            received = 0
            body_done = False

            async def receive_() -> Message:
                nonlocal received, body_done
                if body_done:  # after the body, receive() waits for a disconnect (StreamingResponse): no timeout
                    return await receive()
                try:
                    message = await asyncio.wait_for(receive(), timeout)
                except asyncio.TimeoutError:
                    raise _BodyProblem(
                        RequestError(408, "body_timeout", f"no body bytes received for {timeout:g} s")
                    ) from None
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise _BodyProblem(_too_large(received, limit))
                    body_done = not message.get("more_body", False)
                else:
                    body_done = True
                return message

            await self.app(scope, receive_, send_)
        except _BodyProblem as p:
            if status["started"]:
                raise
            self.metrics.errors.labels(p.error.code).inc()
            await _send_json(send_, p.error.status, p.error.to_json())
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


def _too_large(size: int, limit: int) -> RequestError:
    return RequestError(
        413, "body_too_large", f"the body is {size} bytes or more; the limit is {limit} (prg serve --max-body-mb)"
    )


async def _send_json(send: Callable[[Message], Awaitable[None]], status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


# --------------------------------------------------------------------------------------------------------------
# The app


class _State:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.metrics = ServeMetrics()
        self.pipeline: PRGPipeline | None = None
        self.batcher: MicroBatcher | None = None
        self.error: str | None = None
        self.info: dict[str, Any] = {}

    def attach(self, pipe: PRGPipeline) -> None:
        s = self.settings
        self.batcher = MicroBatcher(pipe, s.max_batch, s.max_wait_ms, s.max_queue, self.metrics.batch_size.observe)
        self.pipeline = pipe
        self.info = {
            "preset": getattr(getattr(pipe.model, "config", None), "preset", None),
            "k_docs": pipe.config.k_docs,
            "k_grasps": pipe.config.k_grasps,
            "retrieval": pipe.retriever is not None,
            "max_batch": s.max_batch,
        }
        self.metrics.ready.set(1)


def create_app(pipeline: PRGPipeline | Callable[[], PRGPipeline], settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app. ``pipeline``: a loaded pipeline, or a function that loads one; then the model loads on
    a thread at start-up, ``/healthz`` answers at once and ``/readyz`` says 503 until it is loaded."""
    settings = settings or ServeSettings()
    state = _State(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if isinstance(pipeline, PRGPipeline):
            state.attach(pipeline)
        else:

            def load() -> None:
                try:
                    state.attach(pipeline())
                except Exception as e:  # reported by /readyz; the process stays up to say so
                    log.exception("loading the model failed")
                    state.error = f"{type(e).__name__}: {e}"

            threading.Thread(target=load, name="prg-load", daemon=True).start()
        yield
        if state.batcher is not None:
            state.batcher.close()
        if state.pipeline is not None:
            state.pipeline.close()

    app = FastAPI(
        title="PRG",
        summary="Professional Reasoning Grasping: a cited answer and grasp poses for a workspace image.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.prg = state
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"], allow_headers=["*"]
        )
    app.add_middleware(Guard, settings=settings, metrics=state.metrics)

    # -- errors: one JSON shape for all --------------------------------------------------------------------
    def error_response(e: RequestError) -> JSONResponse:
        state.metrics.errors.labels(e.code).inc()
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
        return JSONResponse(e.to_json(), status_code=e.status, headers=headers)

    @app.exception_handler(RequestError)
    async def _on_request_error(request: Request, e: RequestError) -> JSONResponse:
        return error_response(e)

    @app.exception_handler(PRGInputError)
    async def _on_input_error(request: Request, e: PRGInputError) -> JSONResponse:
        return error_response(RequestError(422, "bad_request", str(e), _field_of(str(e))))

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, e: RequestValidationError) -> JSONResponse:
        return error_response(_from_validation(e.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return error_response(RequestError(e.status_code, code, str(e.detail)))

    def check_key(request: Request) -> None:
        key = settings.api_key
        if key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        # constant-time: the comparison must not tell how much of a guessed key was right
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise RequestError(401, "unauthorized", "missing or wrong API key (Authorization: Bearer KEY)")

    def ready_batcher() -> MicroBatcher:
        if state.batcher is None:
            msg = f"the model failed to load: {state.error}" if state.error else "the model is still loading"
            raise RequestError(503, "not_ready", msg)
        return state.batcher

    # -- health --------------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"], summary="The process is up.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The model is loaded and requests are answered.")
    async def readyz() -> JSONResponse:
        if state.batcher is None:
            return JSONResponse({"ready": False, "error": state.error}, status_code=503)
        return JSONResponse({"ready": True, **state.info, "queue": state.batcher.depth})

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics.", response_class=Response)
    async def metrics() -> Response:
        if state.batcher is not None:
            state.metrics.queue_depth.set(state.batcher.depth)
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    # -- predict -------------------------------------------------------------------------------------------
    @app.post(
        "/v1/predict",
        tags=["predict"],
        summary="Answer an instruction about a workspace image: cited answer, grasps, poses.",
        response_model=PRGResult,
        responses=_ERRORS,
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def predict(request: Request) -> PRGResult:
        check_key(request)
        batcher = ready_batcher()
        req, opts = await _parse(request, settings)
        job = Job(req, opts.k_docs, opts.k_grasps)
        future = asyncio.wrap_future(batcher.submit(job))
        try:
            return _headed(await asyncio.wait_for(future, settings.request_timeout_s), opts)
        except asyncio.TimeoutError:
            job.future.cancel()
            raise RequestError(504, "timeout", f"not answered within {settings.request_timeout_s:g} s") from None

    @app.post(
        "/v1/predict/stream",
        tags=["predict"],
        summary="The same, streamed as server-sent events: retrieved, token (the answer piece by piece), result.",
        responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS},
        openapi_extra={"requestBody": _REQUEST_BODY},
        response_class=StreamingResponse,
    )
    async def predict_stream(request: Request) -> StreamingResponse:
        check_key(request)
        batcher = ready_batcher()
        req, opts = await _parse(request, settings)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        streamer = _SSEStreamer(batcher.pipeline.model.tokenizer, loop, events)

        def on_retrieved(docs: list[Any]) -> None:
            loop.call_soon_threadsafe(events.put_nowait, ("retrieved", docs))

        job = Job(req, opts.k_docs, opts.k_grasps, streamer=streamer, on_retrieved=on_retrieved)
        future = asyncio.wrap_future(batcher.submit(job))
        deadline = loop.time() + settings.request_timeout_s

        async def sse() -> AsyncIterator[str]:
            first = True
            finished = False
            try:
                while True:
                    kind, value = await asyncio.wait_for(events.get(), max(0.0, deadline - loop.time()))
                    if kind == "retrieved":
                        yield _event("retrieved", {"documents": [c.model_dump(mode="json") for c in value]})
                    elif kind == "token":
                        text = value.lstrip() if first else value
                        if text:
                            first = False
                            yield _event("token", {"text": text})
                    else:  # the text has ended (or the job failed)
                        break
                result = _headed(await asyncio.wait_for(future, max(0.0, deadline - loop.time())), opts)
                finished = True
                yield _event("result", result.model_dump(mode="json"))
            except asyncio.TimeoutError:
                finished = True  # an answer of its own (504), not a disconnect; generation stops all the same
                streamer.cancelled = True
                job.future.cancel()
                state.metrics.errors.labels("timeout").inc()
                yield _error_event(RequestError(504, "timeout", "not answered in time"))
            except RequestError as e:
                yield _error_event(e)
            except PRGInputError as e:
                yield _error_event(RequestError(422, "bad_request", str(e)))
            except Exception as e:
                log.exception("stream failed")
                yield _error_event(RequestError(500, "internal", f"{type(e).__name__}: {e}"))
            finally:
                if not finished and not job.future.done():
                    # the client went away mid-stream (Starlette cancels this generator) or the stream failed:
                    # a queued job is dropped, a running one stops generating at its next token
                    streamer.cancelled = True
                    job.future.cancel()
                    state.metrics.errors.labels("disconnected").inc()

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    # -- demo scenes and the page --------------------------------------------------------------------------
    scenes = _Scenes(settings.scenes)

    @app.get("/v1/scenes", tags=["demo"], summary="Demo scenes the web page offers.")
    async def list_scenes(request: Request) -> list[dict[str, Any]]:
        check_key(request)
        return scenes.list()

    @app.get("/v1/scenes/{scene_id}/{part}", tags=["demo"], summary="A demo scene's image or depth (PNG).")
    async def scene_file(request: Request, scene_id: str, part: Literal["image", "depth"]) -> FileResponse:
        check_key(request)
        return FileResponse(scenes.file(scene_id, part))  # the type from the suffix: PNG, JPEG, TIFF, .npy

    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        index = STATIC / "index.html"
        if not index.is_file():
            raise RequestError(404, "not_found", "this install has no web page (prg/serve/static/index.html)")
        return FileResponse(index, media_type="text/html")

    @app.exception_handler(Exception)
    async def _on_error(request: Request, e: Exception) -> JSONResponse:
        log.exception("request failed")
        return error_response(RequestError(500, "internal", f"{type(e).__name__}: {e}"))

    return app


def _version() -> str:
    from prg import __version__

    return __version__


def _headed(result: PRGResult, opts: PredictOptions) -> PRGResult:
    """The request's ``frame_id`` / ``stamp`` in every pose's header, so a robot can publish the poses as given."""
    if opts.frame_id is None and opts.stamp is None:
        return result
    from prg.grasp.pose import ros_stamp

    poses = []
    for p in result.poses:
        if p is not None:
            header = dict(p.header)
            if opts.frame_id is not None:
                header["frame_id"] = opts.frame_id
            if opts.stamp is not None:
                header["stamp"] = ros_stamp(opts.stamp)
            p = p.model_copy(update={"header": header})
        poses.append(p)
    return result.model_copy(update={"poses": poses})


def _event(kind: str, data: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _error_event(e: RequestError) -> str:
    """An error after the stream's 200: the error body of a refused request, plus the status it would have had."""
    return _event("error", {**e.to_json(), "status": e.status})


class _SSEStreamer:
    """transformers' TextStreamer (word-by-word decoding) whose pieces go to an asyncio queue on ``loop``."""

    def __init__(self, tokenizer: Any, loop: asyncio.AbstractEventLoop, events: asyncio.Queue[tuple[str, Any]]):
        from transformers import TextStreamer

        outer = self

        class _Streamer(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    outer.loop.call_soon_threadsafe(outer.events.put_nowait, ("token", text))
                if stream_end:
                    outer.loop.call_soon_threadsafe(outer.events.put_nowait, ("end", None))

        self.loop, self.events = loop, events
        self._inner = _Streamer(tokenizer, skip_prompt=False, skip_special_tokens=False)
        self._ended = False
        self.cancelled = False  # set when the client went away: the pipeline stops this sample's generation

    def put(self, value: Any) -> None:
        self._inner.put(value)

    def end(self) -> None:
        if not self._ended:  # ended by the pipeline and, on an error, by the batcher: one "end" event
            self._ended = True
            self._inner.end()


# --------------------------------------------------------------------------------------------------------------
# Parsing a predict request


async def _parse(request: Request, settings: ServeSettings) -> tuple[PRGRequest, PredictOptions]:
    """The body -> a checked :class:`PRGRequest` (decoded on a worker thread) and its options."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    depth_bytes: bytes | None = None
    depth_name = ""
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=2, max_fields=8, max_part_size=settings.max_body_bytes)
        except StarletteHTTPException as e:
            raise RequestError(400, "bad_multipart", f"the multipart body cannot be parsed: {e.detail}") from None
        image = form.get("image")
        if not isinstance(image, UploadFile):
            raise RequestError(422, "missing_image", "the multipart body needs an 'image' file part", "image")
        image_bytes = await image.read()
        depth = form.get("depth")
        if isinstance(depth, UploadFile):
            depth_bytes, depth_name = await depth.read(), depth.filename or ""
        raw = form.get("request")
        if isinstance(raw, str):
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as e:
                raise RequestError(400, "bad_json", f"the 'request' part is not JSON ({e.msg})", "request") from None
        else:  # plain form fields, for curl -F instruction=...
            obj = {k: v for k, v in form.items() if k not in ("image", "depth") and isinstance(v, str)}
            if "intrinsics" in obj:
                try:
                    obj["intrinsics"] = json.loads(obj["intrinsics"])
                except json.JSONDecodeError:
                    msg = "intrinsics must be a JSON object"
                    raise RequestError(422, "bad_intrinsics", msg, "intrinsics") from None
        opts = _options(obj, PredictOptions, settings)
    elif ctype == "application/json":
        try:
            obj = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RequestError(400, "bad_json", f"the body is not JSON ({e})") from None
        full = _options(obj, PredictJSON, settings)
        image_bytes = decode_b64(full.image_b64, "image_b64")
        if full.depth_b64 is not None:
            depth_bytes = decode_b64(full.depth_b64, "depth_b64")
        opts = PredictOptions.model_validate(full.model_dump(exclude={"image_b64", "depth_b64"}))
    else:
        raise RequestError(
            415,
            "unsupported_media_type",
            f"content type {ctype or 'none'!r}: send multipart/form-data (an 'image' file and a 'request' JSON part)"
            " or application/json (image_b64, instruction, ...)",
        )
    fmt = opts.depth_format or _suffix_format(depth_name)

    def decode() -> PRGRequest:
        rgb = decode_image(image_bytes, settings.max_pixels, "image")
        depth = None
        if depth_bytes is not None:
            depth = decode_depth(depth_bytes, settings.max_pixels, fmt, opts.depth_scale, "depth")
        req = PRGRequest(rgb, opts.instruction, depth, opts.intrinsics)
        try:
            req.checked()  # refused here, with its reason, rather than failing a whole batch later
        except PRGInputError as e:
            raise RequestError(422, "bad_request", str(e), _field_of(str(e))) from None
        return req

    return await run_in_threadpool(decode), opts


def _options(obj: Any, model: type[PredictOptions], settings: ServeSettings) -> Any:
    if not isinstance(obj, dict):
        raise RequestError(422, "bad_request", "the request must be a JSON object")
    text = obj.get("instruction")
    if isinstance(text, str) and len(text) > settings.max_instruction_chars:
        raise RequestError(
            413,
            "instruction_too_long",
            f"the instruction is {len(text)} characters; the limit is {settings.max_instruction_chars}",
            "instruction",
        )
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        raise _from_validation(e.errors()) from None


def _from_validation(errors: Any) -> RequestError:
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    field = ".".join(loc) or None
    msg = first.get("msg", "invalid request")
    if first.get("type") == "missing":
        msg = f"{field} is required"
    elif field:
        msg = f"{field}: {msg}"
    return RequestError(422, "invalid_field", msg, field)


def _field_of(message: str) -> str | None:
    for name in ("depth", "intrinsics", "instruction", "image"):
        if message.startswith(name) or f" {name} " in message[:40]:
            return name
    return None


def _suffix_format(name: str) -> str | None:
    suffix = Path(name).suffix.lower().lstrip(".")
    suffix = {"tif": "tiff"}.get(suffix, suffix)
    return suffix if suffix in DEPTH_FORMATS else None


# --------------------------------------------------------------------------------------------------------------
# Demo scenes


class _Scenes:
    """The records of a PRG dataset folder, as the web page's scene picker shows them."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._records: dict[str, Any] | None = None

    def _load(self) -> dict[str, Any]:
        if self._records is None:
            if self.root is None or not (self.root / "dataset.json").is_file():
                return {}  # not made yet (prg serve makes the demo's on its loading thread): look again next time
            from prg.data.dataset import iter_records

            self._records = {r.id: r for r in iter_records(self.root)}
        return self._records

    def list(self) -> list[dict[str, Any]]:
        out = []
        for rid, r in self._load().items():
            out.append(
                {
                    "id": rid,
                    "industry": r.industry,
                    "split": r.split,
                    "instruction": r.instruction,
                    "image": f"/v1/scenes/{rid}/image",
                    "depth": f"/v1/scenes/{rid}/depth" if r.depth else None,
                    "depth_scale": r.depth_scale,
                    "intrinsics": r.intrinsics.model_dump() if r.intrinsics else None,
                    "targets": [o.name for o in r.target_objects()],
                }
            )
        return out

    def file(self, scene_id: str, part: str) -> Path:
        rec = self._load().get(scene_id)
        rel = None if rec is None else (rec.image if part == "image" else rec.depth)
        if rec is None or rel is None or self.root is None:
            raise RequestError(404, "not_found", f"no demo scene {scene_id!r} with a {part}")
        path = (self.root / rel).resolve()
        if self.root.resolve() not in path.parents:  # a record naming a file outside its dataset folder
            raise RequestError(404, "not_found", f"no demo scene {scene_id!r} with a {part}")
        return path
