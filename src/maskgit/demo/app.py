"""The demo's web app (Starlette): one static page and a small JSON API; run with `maskgit demo`."""

from __future__ import annotations

import itertools
import json
import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .handler import (
    MAX_FILE_BYTES,
    DemoError,
    UploadTooLarge,
    body_limit,
    decode_image,
    inpaint_events,
    list_examples,
    model_image,
    open_image,
    parse_inpaint_request,
    png_data_url,
)

if TYPE_CHECKING:
    from ..pipeline import MaskGIT

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
REPO_EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "cases" / "gt"  # in a source checkout


MAX_PENDING = 4  # inpainting requests running or waiting for the model; more are answered 503


def model_executor() -> ThreadPoolExecutor:
    """The one thread that should load the model and run every inpainting. PyTorch's OpenMP threads
    belong to the thread that calls it: a model used from a second thread doubles the threads on
    the cores, libgomp then stops spinning between operations, and on 2 cores each request took
    about 1.5 times as long (docs/demo.md)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="maskgit-model")


def create_app(pipe: "MaskGIT", examples_dir: Optional[Path] = None, max_file_bytes: int = MAX_FILE_BYTES,
               max_pending: int = MAX_PENDING, executor: Optional[Executor] = None):
    """A Starlette app serving `pipe` (a MaskGIT); `examples_dir`: images offered on the page;
    image files over `max_file_bytes` are refused (the request body, base64, over ~4/3 of it);
    beyond `max_pending` inpainting requests running or queued, new ones get HTTP 503.
    `executor`: where inpainting runs (default: a new `model_executor()`; best the one that loaded `pipe`)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import (
        FileResponse,
        JSONResponse,
        Response,
        StreamingResponse,
    )
    from starlette.routing import Route

    examples_dir = examples_dir if examples_dir is not None else REPO_EXAMPLES
    resolution = pipe.resolution
    executor = executor or model_executor()
    if pipe.sampling.pixel_evidence > 0:  # now, if the model folder did not hold them: no request waits for them
        executor.submit(lambda: pipe.code_patches).result()
    max_body_bytes = body_limit(max_file_bytes)
    limit = f"the limit is {max_file_bytes / 2**20:.0f} MiB per image"
    lock = threading.Lock()  # one inpainting at a time: the model is shared
    pending = threading.Semaphore(max_pending)  # each queued request holds a worker thread: bound them

    def error(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def read_json(request: Request):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            raise UploadTooLarge(f"the upload is too large (about {int(length) * 3 / 4 / 2**20:.1f} MiB; {limit})")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                raise UploadTooLarge(f"the upload is too large ({limit})")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise DemoError("the request is not valid JSON") from None

    async def page(_request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    async def info(_request: Request) -> Response:
        from ..holes import PREFILLS
        from ..schedules import MASK_SCHEDULES

        s = pipe.sampling
        return JSONResponse({
            "resolution": resolution, "token_grid": pipe.tokenizer.config.token_grid,
            "schedules": list(MASK_SCHEDULES), "prefills": list(PREFILLS), "max_file_bytes": max_file_bytes,
            "defaults": {"schedule": s.schedule, "steps": s.steps, "sweet_spot": s.sweet_spot or 0,
                         "choice_temperature": s.choice_temperature, "prefill": s.prefill, "seed": 0},
            "examples": list_examples(examples_dir),
        })

    async def example(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in list_examples(examples_dir):
            return error(f"no example named {name!r}", 404)

        def load() -> str:
            return png_data_url(model_image(open_image(examples_dir / name, f"example {name}"), resolution))

        try:
            return JSONResponse({"image": await run_in_threadpool(load)})
        except DemoError as exc:
            return error(str(exc))

    def prepared(payload) -> dict:
        image = decode_image(payload.get("image") if isinstance(payload, dict) else None, "upload")
        return {"image": png_data_url(model_image(image, resolution)), "original_size": [image.width, image.height]}

    async def prepare(request: Request) -> Response:
        try:  # decoding runs in a worker thread: a big image does not stall the other requests
            return JSONResponse(await run_in_threadpool(prepared, await read_json(request)))
        except DemoError as exc:
            return error(str(exc), 413 if isinstance(exc, UploadTooLarge) else 400)

    async def inpaint(request: Request) -> Response:
        try:
            parsed = await run_in_threadpool(parse_inpaint_request, await read_json(request), pipe)
        except DemoError as exc:
            return error(str(exc), 413 if isinstance(exc, UploadTooLarge) else 400)
        if not pending.acquire(blocking=False):
            return error(f"the demo is busy ({max_pending} requests are running or waiting); try again shortly", 503)

        def lines():
            try:
                for event in inpaint_events(pipe, parsed, lock, executor):
                    yield json.dumps(event) + "\n"
            finally:
                pending.release()

        stream = lines()
        first = next(stream)  # started now, so its `finally` frees the slot even if the response is never sent
        return StreamingResponse(itertools.chain([first], stream), media_type="application/x-ndjson")

    async def server_error(_request: Request, exc: Exception) -> Response:
        log.exception("request failed", exc_info=exc)
        return error(f"the server failed on this request: {type(exc).__name__}", 500)

    return Starlette(routes=[
        Route("/", page), Route("/api/info", info), Route("/api/examples/{name}", example),
        Route("/api/prepare", prepare, methods=["POST"]), Route("/api/inpaint", inpaint, methods=["POST"]),
    ], exception_handlers={Exception: server_error})


def serve(pipe: "MaskGIT", host: str = "127.0.0.1", port: int = 7860, examples_dir: Optional[Path] = None,
          executor: Optional[Executor] = None) -> None:
    import uvicorn

    uvicorn.run(create_app(pipe, examples_dir, executor=executor), host=host, port=port, log_level="warning")
