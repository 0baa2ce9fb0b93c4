"""`t2i serve` as its users reach it: a real server on a free loopback port, called with the official
`openai` client (generation, errors, models) and over plain HTTP (the page, image URLs)."""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

import t2i  # noqa: E402
from t2i.serve.app import Served, create_app  # noqa: E402

FAST = {"unclip": {"prior_steps": 2, "decoder_steps": 2, "upsampler_steps": 1}, "imagen": {"base_steps": 2, "sr_steps": 1}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, pipelines: dict, **kw) -> None:
        self.served = Served(pipelines, **kw)
        self.port = _free_port()
        config = uvicorn.Config(create_app(self.served), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.served.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="not-needed", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def server(tiny_run, tiny_imagen):
    pipes = {"tiny-unclip": t2i.load_pipeline(tiny_run.pipeline), "tiny-imagen": t2i.load_pipeline(tiny_imagen.pipeline)}
    with Server(pipes, max_waiting=4) as s:
        yield s


def _image(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


def test_the_openai_client_generates_what_t2i_generate_draws(server) -> None:
    client = server.client()
    for model, kind in (("tiny-unclip", "unclip"), ("tiny-imagen", "imagen")):
        result = client.images.generate(model=model, prompt="a red apple", n=2, size="64x64", response_format="b64_json", extra_body={"seed": 7, **FAST[kind]})
        assert len(result.data) == 2 and result.data[0].revised_prompt == "a red apple"
        got = [_image(item.b64_json) for item in result.data]
        want = [np.asarray(im) for im in server.served.pipelines[model](["a red apple"], num_images=2, seed=7, **FAST[kind])]
        assert all(np.array_equal(a, b) for a, b in zip(got, want)) and got[0].shape == (64, 64, 3)
        assert [item.model_extra["seed"] for item in result.data] == [7, 7] and "--seed 7" in result.model_extra["command"]
    random_seed = client.images.generate(model="tiny-imagen", prompt="a cat", extra_body=FAST["imagen"]).data[0].model_extra["seed"]
    assert isinstance(random_seed, int) and 0 <= random_seed < 2**63


def test_models_are_listed_and_url_images_are_served(server) -> None:
    client = server.client()
    listed = {m.id: m for m in client.models.list().data}
    assert set(listed) == {"tiny-unclip", "tiny-imagen"} and listed["tiny-imagen"].model_extra["sizes"] == ["64x64"]
    result = client.images.generate(model="tiny-imagen", prompt="a blue car", response_format="url", extra_body={"seed": 3, **FAST["imagen"]})
    with urllib.request.urlopen(result.data[0].url) as response:
        assert response.headers["content-type"] == "image/png" and Image.open(io.BytesIO(response.read())).size == (64, 64)


@pytest.mark.parametrize(("kwargs", "error", "phrase"), [
    ({"model": "tiny-imagen", "size": "1024x1024"}, "BadRequestError", "allowed: 64x64"),
    ({"model": "tiny-imagen", "n": 11}, "BadRequestError", "n must be a whole number from 1 to 10"),
    ({"model": "no-such-model"}, "NotFoundError", "no model 'no-such-model' on this server"),
    ({"model": "/etc"}, "NotFoundError", "no model '/etc'"),  # a path never loads anything
    ({"model": "tiny-imagen", "extra_body": {"decoder_steps": 3}}, "BadRequestError", "unknown field 'decoder_steps'"),
    ({"model": "tiny-imagen", "extra_body": {"base_steps": 0}}, "BadRequestError", "base-steps must be between 1 and 1000"),
    ({"model": "tiny-imagen", "extra_body": {"seed": -1}}, "BadRequestError", "seed must be a whole number"),
    ({"model": "tiny-imagen", "prompt": "x" * 1001}, "BadRequestError", "at most 1000"),
    ({"model": "tiny-imagen", "prompt": "   "}, "BadRequestError", "prompt must be a non-empty string"),
])
def test_bad_requests_get_errors_in_the_api_shape(server, kwargs, error, phrase) -> None:
    kwargs = {"prompt": "a cat", **kwargs}
    with pytest.raises(getattr(openai, error)) as raised:
        server.client().images.generate(**kwargs)
    body = raised.value.body
    assert phrase in body["message"] and set(body) == {"message", "type", "param", "code"}
    assert "Traceback" not in json.dumps(body)


def test_a_full_queue_is_refused_with_429_and_nothing_is_lost(tiny_imagen) -> None:
    pipe = t2i.load_pipeline(tiny_imagen.pipeline)
    gate = threading.Event()

    def slow(prompts, **kw):  # the real pipeline, held until the test lets it go
        gate.wait(60)
        return pipe(prompts, **kw)

    slow.image_size, slow.kind, slow.defaults = pipe.image_size, pipe.kind, pipe.defaults
    with Server({"m": slow}, max_waiting=1) as s:
        results, errors = [], []

        def call():
            try:
                results.append(s.client().images.generate(model="m", prompt="a cat", extra_body={"seed": 1, **FAST["imagen"]}))
            except openai.APIStatusError as e:
                errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
            time.sleep(0.3)  # one runs, one waits, the others find the queue full
        gate.set()
        for t in threads:
            t.join(60)
    assert len(results) + len(errors) == 4 and len(results) >= 2
    assert errors and all(e.status_code == 429 and e.body["code"] == "queue_full" for e in errors)


def test_generate_requests_draws_what_each_request_alone_draws(server) -> None:
    from t2i.pipelines.base import generate_requests

    requests = [("a red apple", 2, 5), ("a blue car", 1, 9), ("a red apple", 3, 6)]
    for model, kind in (("tiny-unclip", "unclip"), ("tiny-imagen", "imagen")):
        pipe = server.served.pipelines[model]
        together = generate_requests(pipe, requests, **FAST[kind])
        alone = [pipe([prompt], num_images=n, seed=seed, **FAST[kind]) for prompt, n, seed in requests]
        assert [len(images) for images in together] == [2, 1, 3]
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for got, want in zip(together, alone) for a, b in zip(got, want))


def test_waiting_requests_with_the_same_options_share_a_batch_and_a_bad_one_fails_alone(tiny_imagen) -> None:
    pipe = t2i.load_pipeline(tiny_imagen.pipeline)
    gate, calls = threading.Event(), []

    def held(prompts, **kw):  # the real pipeline, held until the test lets it go; "boom" fails
        gate.wait(60)
        calls.append(len(prompts))
        if "boom" in prompts:
            raise ValueError("boom")
        return pipe(prompts, **kw)

    held.image_size, held.kind, held.defaults = pipe.image_size, pipe.kind, pipe.defaults
    asks = [("a cat", 1, 1, {}), ("a dog", 2, 2, {}), ("boom", 1, 3, {}), ("a cow", 3, 4, {}), ("a cat", 1, 5, {"base_steps": 3}), ("a cat", 1, 6, {})]
    with Server({"m": held}, max_waiting=8, max_batch=8) as s:
        results: dict[int, object] = {}

        def call(i: int) -> None:
            prompt, n, seed, options = asks[i]
            try:
                results[i] = s.client().images.generate(model="m", prompt=prompt, n=n, extra_body={"seed": seed, **FAST["imagen"], **options})
            except openai.APIStatusError as e:
                results[i] = e

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(asks))]
        for t in threads:
            t.start()
            time.sleep(0.3)  # the first starts alone and is held; the rest wait
        gate.set()
        for t in threads:
            t.join(120)
    # batches: the first alone; "a dog", "boom", "a cow", the last "a cat" (7 images) together,
    # which fails and runs again one by one; the request with other options alone
    assert s.served.workers["m"].batches == 7 and calls == [1, 7, 2, 1, 3, 1, 1]
    assert isinstance(results[2], openai.APIStatusError)
    for i in (0, 1, 3, 4, 5):
        prompt, n, seed, options = asks[i]
        want = pipe([prompt], num_images=n, seed=seed, **{**FAST["imagen"], **options})
        assert all(np.array_equal(_image(item.b64_json), np.asarray(w)) for item, w in zip(results[i].data, want))


def test_the_page_is_self_contained_and_lists_the_models(server) -> None:
    with urllib.request.urlopen(server.url + "/") as response:
        page = response.read().decode()
    assert "<form" in page and "/v1/images/generations" in page and 'name="viewport"' in page
    assert "http://" not in page and "https://" not in page  # no external scripts, fonts or styles: it works offline
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(server.url + "/nothing-here")
    assert missing.value.code == 404 and set(json.loads(missing.value.read())["error"]) == {"message", "type", "param", "code"}


def test_the_page_generates_images_in_a_headless_browser(server, tmp_path) -> None:
    """Type a prompt, generate, wait for the images: Debian's chromium and chromedriver (installed
    by .ci/run), driven by selenium, at a phone's width."""
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver")
    driver_path, browser = shutil.which("chromedriver"), shutil.which("chromium") or shutil.which("chromium-browser")
    if not (driver_path and browser):
        pytest.skip("no chromium and chromedriver on this machine (apt install chromium chromium-driver)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=390,844"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    try:
        driver.get(server.url + "/")
        WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 2)
        Select(driver.find_element(By.ID, "model")).select_by_value("tiny-imagen")
        prompt = driver.find_element(By.ID, "prompt")
        prompt.clear()
        prompt.send_keys("a green triangle")
        for field, value in (("n", "2"), ("seed", "11"), ("steps", "2")):
            box = driver.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        driver.find_element(By.ID, "go").click()
        WebDriverWait(driver, 180).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#images img")) == 2 or "error" in d.find_element(By.ID, "status").get_attribute("class"))
        driver.save_screenshot(str(tmp_path / "page.png"))
        images = driver.find_elements(By.CSS_SELECTOR, "#images img")
        assert len(images) == 2, driver.find_element(By.ID, "status").text
        assert all(driver.execute_script("return arguments[0].naturalWidth", im) == 64 for im in images)
        assert "seed 11" in driver.find_element(By.ID, "images").text and "t2i generate" in driver.find_element(By.ID, "status").text
    finally:
        driver.quit()
    assert (tmp_path / "page.png").stat().st_size > 0
