"""The HTTP app: the OpenAI Images API over t2i pipelines, and the page at `/`.

`POST /v1/images/generations` takes the API's fields (`prompt`, `model`, `n` 1-10, `size`,
`response_format` b64_json or url) and, as extra fields, `seed` and any sampling option of the
model (`decoder_steps`, `base_guidance`, `sampler`, ...). Image i of a response is what
`t2i generate PROMPT --model MODEL -n N --seed SEED` draws as its image i; every item says its
seed. Errors are `{"error": {"message", "type", "param", "code"}}` with 400 (bad input), 404
(unknown model or file), 429 (the model's queue is full) or 503 (waited too long), never a
traceback. Requests that wait for one model with the same options run as one batch (up to
`max_batch` images), each image still the one its request alone would get.
"""
from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import secrets
import shlex
import sys
import time
import traceback
from dataclasses import fields
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from t2i.diffusion.noise import MAX_SEED, check_request
from t2i.errors import InputError
from t2i.pipelines.base import generate_requests
from t2i.serve.jobs import ModelWorker, QueueFull

MAX_IMAGES = 10  # n, as the OpenAI API allows
MAX_PROMPT_CHARS = 1000
URL_SECONDS = 600  # how long a response_format=url image stays fetchable
MAX_KEPT_URLS = 256
API_FIELDS = {"prompt", "model", "n", "size", "response_format", "seed", "quality", "style", "user"}  # quality, style, user: accepted, no effect
PAGE = Path(__file__).with_name("page.html")


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error", code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code


def error_body(message: str, *, kind: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Served:
    """The pipelines a server was started with, by name, each with its worker."""

    def __init__(self, pipelines: dict[str, Any], *, max_waiting: int = 8, timeout: float = 300.0, max_batch: int = 8) -> None:
        if not pipelines:
            raise InputError("serve at least one model")
        if max_batch < 1:
            raise InputError(f"the largest batch must be at least 1 image, got {max_batch}")
        self.pipelines, self.timeout = dict(pipelines), timeout
        self.workers = {name: ModelWorker(name, max_waiting, functools.partial(self.run_batch, name), max_batch=max_batch) for name in self.pipelines}
        self.urls: dict[str, tuple[float, bytes]] = {}

    def run_batch(self, name: str, requests: list[tuple[str, int, int, dict[str, Any]]]) -> list[list[Any]]:
        """Requests (prompt, n, seed, options) that share their options, in one pipeline call."""
        return generate_requests(self.pipelines[name], [(prompt, n, seed) for prompt, n, seed, _ in requests], **requests[0][3])

    def size_of(self, name: str) -> str:
        side = self.pipelines[name].image_size
        return f"{side}x{side}"

    def models(self) -> list[dict[str, Any]]:
        return [{"id": name, "object": "model", "created": 0, "owned_by": "t2i", "system": pipe.kind, "sizes": [self.size_of(name)],
                 "options": [f.name for f in fields(pipe.defaults)], "steps_option": type(pipe.defaults).sweep_steps[-1],
                 "guidance_option": type(pipe.defaults).sweep_guidance} for name, pipe in self.pipelines.items()]

    def keep_url(self, data: bytes) -> str:
        now = time.time()
        for key in [k for k, (expiry, _) in self.urls.items() if expiry < now]:
            del self.urls[key]
        while len(self.urls) >= MAX_KEPT_URLS:
            del self.urls[next(iter(self.urls))]
        key = secrets.token_urlsafe(12)
        self.urls[key] = (now + URL_SECONDS, data)
        return key

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()


def parse_request(body: Any, served: Served) -> tuple[str, str, int, int, str, dict[str, Any]]:
    """The request's (model, prompt, n, seed, response_format, sampling options), checked."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "prompt must be a non-empty string", param="prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(400, f"prompt is {len(prompt)} characters; at most {MAX_PROMPT_CHARS}", param="prompt")
    model = body.get("model") or next(iter(served.pipelines))
    if not isinstance(model, str) or model not in served.pipelines:
        raise ApiError(404, f"no model {model!r} on this server (served: {', '.join(served.pipelines)})", param="model", code="model_not_found")
    n = 1 if body.get("n") is None else body["n"]
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_IMAGES:
        raise ApiError(400, f"n must be a whole number from 1 to {MAX_IMAGES}, got {n!r}", param="n")
    size = body.get("size")
    if size not in (None, "auto", served.size_of(model)):
        raise ApiError(400, f"size {size!r} is not one {model} draws; allowed: {served.size_of(model)}", param="size")
    response_format = body.get("response_format") or "b64_json"
    if response_format not in ("b64_json", "url"):
        raise ApiError(400, f"response_format must be b64_json or url, got {response_format!r}", param="response_format")
    seed = body.get("seed")
    if seed is None:
        seed = secrets.randbelow(MAX_SEED + 1)
    try:
        check_request(seed, n)  # what every pipeline call accepts
    except InputError as e:
        raise ApiError(400, str(e), param="seed") from None
    pipe = served.pipelines[model]
    known = {f.name for f in fields(pipe.defaults)}
    options = {k: v for k, v in body.items() if k not in API_FIELDS}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ApiError(400, f"unknown field {unknown[0]!r}; {model} takes the API's fields and its sampling options ({', '.join(sorted(known))})", param=unknown[0])
    try:
        pipe.defaults.updated(**options)  # ranges and types, before the request queues
    except (InputError, TypeError) as e:
        raise ApiError(400, str(e)) from None
    return model, prompt, n, seed, response_format, options


def create_app(served: Served) -> FastAPI:
    app = FastAPI(title="t2i", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return JSONResponse(error_body(e.message, kind=e.kind, param=e.param, code=e.code), status_code=e.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        return JSONResponse(error_body(str(e.detail), kind="invalid_request_error"), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, e: Exception):  # a bug: its traceback goes to the server's log, not to the client
        traceback.print_exception(e, file=sys.stderr)
        return JSONResponse(error_body("the server failed on this request (its log says why)", kind="server_error"), status_code=500)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return PAGE.read_text(encoding="utf-8")

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": served.models()}

    @app.get("/v1/files/{key}.png")
    async def file(key: str):
        kept = served.urls.get(key)
        if kept is None or kept[0] < time.time():
            raise ApiError(404, "no such image (image URLs last 10 minutes)", code="not_found")
        return Response(kept[1], media_type="image/png")

    @app.post("/v1/images/generations")
    async def generations(request: Request):
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "the request body is not valid JSON") from None
        model, prompt, n, seed, response_format, options = parse_request(body, served)
        try:
            job = served.workers[model].submit((prompt, n, seed, options), key=json.dumps(options, sort_keys=True), images=n)
            images = await asyncio.wait_for(job, timeout=served.timeout)
        except QueueFull as e:
            raise ApiError(429, str(e), kind="rate_limit_error", code="queue_full") from None
        except TimeoutError:
            raise ApiError(503, f"no result within {served.timeout:g} s; the server is busy, try again later", kind="server_error", code="timeout") from None
        except InputError as e:
            raise ApiError(400, str(e)) from None
        data = []
        for i, image in enumerate(images):
            png = png_bytes(image)
            item = {"revised_prompt": prompt, "seed": seed, "index": i}
            if response_format == "url":
                item["url"] = f"{str(request.base_url).rstrip('/')}/v1/files/{served.keep_url(png)}.png"
            else:
                item["b64_json"] = base64.b64encode(png).decode("ascii")
            data.append(item)
        return {"created": int(time.time()), "data": data, "model": model, "seed": seed,
                "command": f"t2i generate {shlex.quote(prompt)} --model {model} -n {n} --seed {seed}" + "".join(f" --{k.replace('_', '-')} {v}" for k, v in options.items())}

    return app


def serve(models: list[str], *, host: str = "127.0.0.1", port: int = 8000, max_waiting: int = 8, timeout: float = 300.0, max_batch: int = 8) -> None:
    """Load `models` (shipped names or pipeline folders) once and serve them until Ctrl-C."""
    import uvicorn

    from t2i.pipelines.loading import load_pipeline

    pipelines = {}
    for name in models:
        key = Path(name).name if Path(name).is_dir() else name
        if key in pipelines:
            raise InputError(f"two models would be served as {key!r}; give folders of different names")
        pipelines[key] = load_pipeline(name)
    served = Served(pipelines, max_waiting=max_waiting, timeout=timeout, max_batch=max_batch)
    try:
        uvicorn.run(create_app(served), host=host, port=port, log_level="info", lifespan="off")  # no lifespan: Ctrl-C ends without a traceback
    finally:
        served.close()
