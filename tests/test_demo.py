"""The demo: its request handler (no browser), its HTTP API, and the real page in headless Chromium."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the demo extra is not installed (pip install -e '.[demo]')")

from maskgit.demo.handler import (  # noqa: E402
    DemoError,
    decode_image,
    inpaint_events,
    parse_inpaint_request,
    png_data_url,
)


def _png(array) -> str:
    return png_data_url(np.asarray(array, dtype=np.uint8))


def _decode(url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _request(size=32, hole=(slice(8, 20), slice(10, 22)), **extra):
    image = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[hole] = 255
    return {"image": _png(image), "mask": _png(mask), "steps": 4, "seed": 3, **extra}, image, mask > 0


def test_a_request_streams_every_step_then_a_result_that_keeps_the_known_pixels(micro_pipe):
    payload, image, hole = _request()
    events = list(inpaint_events(micro_pipe, parse_inpaint_request(payload, micro_pipe)))
    assert events[0] == {"type": "start", "steps": 4, "sweet_spot": None}
    steps = [e for e in events if e["type"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3, 4]
    assert _decode(steps[0]["token_mask"]).shape[:2] == (8, 8) and _decode(steps[0]["image"]).shape == (32, 32, 3)
    assert (_decode(steps[-1]["token_mask"]) == 255).all()  # nothing unknown after the last step: all white
    assert (_decode(steps[0]["token_mask"]) == 0).any()  # black = still unknown, as in --trace
    result = events[-1]
    assert result["type"] == "result"
    out = _decode(result["result"])
    assert np.array_equal(out[~hole], image[~hole]) and not np.array_equal(out[hole], image[hole])
    # The same request gives the same result as the library call with that seed.
    import torch

    expected = micro_pipe.inpaint(image, hole, generator=torch.Generator().manual_seed(3), steps=4).images[0]
    assert np.array_equal(out, np.asarray(expected))


def test_images_of_any_size_are_centre_cropped_and_resized_for_the_model(micro_pipe):
    wide = np.zeros((60, 100, 3), np.uint8)
    wide[:, 12:88] = 200  # the centre square (and a margin) bright, the far sides dark
    payload, _, _ = _request()
    payload["image"] = _png(wide)
    request = parse_inpaint_request(payload, micro_pipe)
    assert request.image.shape == (32, 32, 3) and request.image.min() >= 150


@pytest.mark.parametrize("change,message", [
    ({"image": "data:image/png;base64,aGVsbG8="}, "not an image"),
    ({"image": "%%%"}, "not valid base64"),
    ({"image": None}, "no image"),
    ({"image": "data:"}, "holds no data"),
    ({"schedule": ["cosine"]}, "schedule must be one of"),
    ({"steps": 4.5}, "steps must be a whole number"),
    ({"steps": True}, "steps must be a number"),
    ({"steps": None, "sweet_spot": 13}, r"sweet spot \(13\) cannot be after the last step \(12\)"),
    ({"mask": None}, "no mask"),
    ({"mask": "empty"}, "the mask is empty"),
    ({"mask": "full"}, "covers the whole image"),
    ({"mask": "small"}, "the mask is 16x16 but the image is 32x32"),
    ({"steps": 0}, "steps must be between 1 and 64"),
    ({"steps": "many"}, "steps must be a number"),
    ({"sweet_spot": 9}, "cannot be after the last step"),
    ({"schedule": "exponential"}, "schedule must be one of"),
    ({"prefill": "magic"}, "pre-fill must be one of"),
    ({"seed": -1}, "seed must be between"),
])
def test_bad_requests_get_a_message_for_the_user(micro_pipe, change, message):
    payload, _, _ = _request()
    special = {"empty": np.zeros((32, 32)), "full": np.full((32, 32), 255), "small": np.full((16, 16), 255)}
    payload.update({k: _png(special[v]) if isinstance(v, str) and v in special else v for k, v in change.items()})
    with pytest.raises(DemoError, match=message):
        parse_inpaint_request(payload, micro_pipe)


def test_a_failing_request_reports_an_error_event(micro_pipe, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    request = parse_inpaint_request(_request()[0], micro_pipe)
    monkeypatch.setattr(micro_pipe, "inpaint", broken)
    events = list(inpaint_events(micro_pipe, request))
    assert events[-1] == {"type": "error", "message": "inpainting failed: RuntimeError: out of memory"}


def test_a_client_that_goes_away_stops_the_decoding_and_frees_the_model(micro_pipe):
    import threading
    import time

    lock = threading.Lock()
    events = inpaint_events(micro_pipe, parse_inpaint_request(_request(steps=40)[0], micro_pipe), lock)
    assert next(events)["type"] == "start" and next(events)["step"] == 1
    events.close()  # what the server does when the client disconnects
    deadline = time.time() + 10
    while lock.locked() and time.time() < deadline:
        time.sleep(0.01)
    assert not lock.locked()
    # A request that waits for the model says so.
    lock.acquire()
    waiting = inpaint_events(micro_pipe, parse_inpaint_request(_request()[0], micro_pipe), lock)
    assert next(waiting)["type"] == "start" and next(waiting) == {"type": "queued"}
    lock.release()
    assert list(waiting)[-1]["type"] == "result"


def test_photos_are_turned_upright_from_their_exif_orientation():
    from maskgit.demo.handler import model_image

    tall = np.zeros((40, 20, 3), np.uint8)
    tall[:20] = 255  # top half white
    image = Image.fromarray(np.rot90(tall).copy())  # stored sideways (40 wide, 20 high)...
    exif = image.getexif()
    exif[0x0112] = 6  # ...tagged "rotate 90 degrees clockwise to view"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    upright = model_image(Image.open(io.BytesIO(buffer.getvalue())), 32)
    assert upright[:4].mean() > 200 and upright[-4:].mean() < 50


def test_decoding_refuses_huge_images():
    import maskgit.demo.handler as handler

    big = _png(np.zeros((300, 300, 3)))
    old, handler.MAX_PIXELS = handler.MAX_PIXELS, 50_000
    try:
        with pytest.raises(DemoError, match="too large"):
            decode_image(big)
    finally:
        handler.MAX_PIXELS = old


# --- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture
def client(micro_pipe, tmp_path):
    pytest.importorskip("httpx", reason="the HTTP tests need httpx")
    from starlette.testclient import TestClient

    from maskgit.demo.app import create_app

    examples = tmp_path / "examples"
    examples.mkdir()
    Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(examples / "cat.png")
    (examples / "broken.png").write_bytes(b"not a png")
    return TestClient(create_app(micro_pipe, examples, max_file_bytes=150_000))


def test_the_api_serves_the_page_settings_examples_and_results(client):
    page = client.get("/")
    assert page.status_code == 200 and "MaskGIT inpainting" in page.text
    info = client.get("/api/info").json()
    assert info["resolution"] == 32 and info["examples"] == ["broken.png", "cat.png"] and info["defaults"]["steps"] == 12
    assert client.get("/api/examples/broken.png").json() == {
        "error": "the example broken.png is not an image this demo can read (use PNG, JPEG or WebP)"}
    example = _decode(client.get("/api/examples/cat.png").json()["image"])
    assert example.shape == (32, 32, 3) and (example == 90).all()
    assert client.get("/api/examples/../../etc/passwd").status_code == 404
    payload, image, hole = _request()
    response = client.post("/api/inpaint", json=payload)
    events = [json.loads(line) for line in response.text.splitlines()]
    assert response.status_code == 200 and sum(e["type"] == "step" for e in events) == 4
    assert np.array_equal(_decode(events[-1]["result"])[~hole], image[~hole])


def test_bad_uploads_are_refused_with_a_message_and_the_server_keeps_serving(client):
    payload, _, _ = _request()
    assert client.post("/api/inpaint", json={**payload, "mask": _png(np.zeros((32, 32)))}).json() == {
        "error": "the mask is empty: paint the hole to fill first"}
    assert client.post("/api/prepare", json={"image": "data:image/png;base64,aGVsbG8="}).status_code == 400
    assert client.post("/api/inpaint", content=b"{not json").json()["error"] == "the request is not valid JSON"
    assert client.post("/api/prepare", json={"image": "data:"}).json() == {"error": "the upload holds no data"}
    huge = client.post("/api/prepare", json={"image": "A" * 1_400_000})  # > 4/3 x 150 kB + 1 MiB for the mask
    assert huge.status_code == 413 and "too large" in huge.json()["error"]
    assert client.post("/api/inpaint", json=payload).status_code == 200  # still serving


def test_requests_beyond_the_queue_limit_get_503_and_finished_ones_free_their_place(micro_pipe):
    pytest.importorskip("httpx", reason="the HTTP tests need httpx")
    from starlette.testclient import TestClient

    from maskgit.demo.app import create_app

    payload, _, _ = _request()
    one = TestClient(create_app(micro_pipe, max_pending=1))
    for _ in range(3):  # each finished request gives its place back
        assert one.post("/api/inpaint", json=payload).status_code == 200
    with one.stream("POST", "/api/inpaint", json=payload) as running:  # holds the only place while open
        busy = one.post("/api/inpaint", json=payload)
        assert busy.status_code == 503 and "busy" in busy.json()["error"]
        assert running.status_code == 200
    assert one.post("/api/inpaint", json=payload).status_code == 200  # its place is free again


def test_every_inpainting_runs_on_the_thread_that_loaded_the_model(micro_pipe, monkeypatch):
    """One thread for PyTorch: a model used from a second thread doubles the OpenMP threads on the
    cores (each request was 1.5x slower on 2 cores)."""
    pytest.importorskip("httpx", reason="the HTTP tests need httpx")
    import threading

    from starlette.testclient import TestClient

    from maskgit.demo.app import create_app, model_executor

    executor = model_executor()
    loader = executor.submit(threading.get_ident).result()
    seen = []
    real = micro_pipe.inpaint
    monkeypatch.setattr(micro_pipe, "inpaint", lambda *a, **k: seen.append(threading.get_ident()) or real(*a, **k))
    app = TestClient(create_app(micro_pipe, executor=executor))
    payload, _, _ = _request()
    for _ in range(2):
        assert app.post("/api/inpaint", json=payload).status_code == 200
    assert seen == [loader, loader] and loader != threading.get_ident()


def test_a_streamed_upload_without_a_length_is_cut_off_at_the_limit(client):
    sent = []

    def chunks():  # no Content-Length: the body arrives in chunks and only its size so far can tell
        for _ in range(40):
            sent.append(1)
            yield b"A" * 65536

    response = client.post("/api/prepare", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "too large" in response.json()["error"]


def test_the_demo_listens_on_this_machine_only_unless_told_otherwise():
    import inspect

    from maskgit.cli import build_parser
    from maskgit.demo.app import serve

    assert build_parser().parse_args(["demo"]).host == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"


# --- the real page in headless Chromium ----------------------------------------------------------


def _chromium():
    import os
    import shutil

    browser = os.environ.get("MASKGIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("no headless Chromium here (Debian: apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="the browser test needs selenium")
    pytest.importorskip("uvicorn", reason="the demo extra is not installed")
    return browser, driver


@pytest.fixture
def served_demo():
    """The demo with the shipped model and the repository's examples, on a free local port."""
    import threading
    import time

    import uvicorn
    from helpers import REPO, free_port

    from maskgit.demo.app import create_app
    from maskgit.pipeline import MaskGIT

    app = create_app(MaskGIT.from_pretrained("catface64", device="cpu"), REPO / "examples" / "cases" / "gt")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.slow
def test_the_page_in_a_real_browser_paints_runs_and_keeps_the_known_pixels(served_demo, tmp_path):
    import os
    import urllib.request

    browser, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import Select, WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(served_demo)
        wait.until(lambda d: "Upload an image" in d.find_element(By.ID, "message").text)
        assert "64×64" in driver.find_element(By.ID, "model-note").text
        example = Select(driver.find_element(By.ID, "examples")).first_selected_option.get_attribute("value")
        driver.find_element(By.ID, "load-example").click()
        wait.until(lambda d: "Paint the hole" in d.find_element(By.ID, "message").text)
        # One stroke across the image with the default brush.
        stage = driver.find_element(By.ID, "mask-layer")
        ActionChains(driver).move_to_element_with_offset(stage, -100, -40).click_and_hold() \
            .move_by_offset(60, 20).move_by_offset(80, 30).move_by_offset(50, -10).release().perform()
        mask = _decode(driver.execute_script("return maskDataURL();"))[..., 0] > 127
        assert 0.02 < mask.mean() < 0.5
        driver.find_element(By.ID, "run").click()
        wait.until(ready.presence_of_element_located((By.ID, "download")))
        steps = driver.find_elements(By.CSS_SELECTOR, "#decode-steps .step")
        assert len(steps) == 7  # T = 12 and the shipped model's sweet spot 7
        for step in steps:
            for picture, width in (("img.token-mask", "16"), ("img.decoded", "64")):
                img = step.find_element(By.CSS_SELECTOR, picture)
                assert img.is_displayed() and img.get_attribute("naturalWidth") == width
        screenshot = os.environ.get("MASKGIT_DEMO_SCREENSHOT") or str(tmp_path / "demo.png")
        driver.save_screenshot(screenshot)
        result = _decode(driver.find_element(By.ID, "download").get_attribute("href"))
        with urllib.request.urlopen(f"{served_demo}/api/examples/{example}") as response:
            example_image = _decode(json.load(response)["image"])
        assert result.shape == (64, 64, 3)
        assert np.array_equal(result[~mask], example_image[~mask])  # known pixels exactly the input's
        assert not np.array_equal(result[mask], example_image[mask])
        assert driver.find_element(By.ID, "message").text == "Done."
    finally:
        driver.quit()
