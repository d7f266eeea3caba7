"""Explore mode in a real TensorBoard and Chromium: a Grad-CAM at a layer that was not
logged, for an uploaded image and a chosen class, at a chosen epoch, equals ``cv.grad_cam``
on that epoch's snapshot; feature maps of a probe at another layer; a filmstrip."""

import io
import json
import os
import urllib.error
import urllib.request

import keras
import models
import numpy as np
import pytest
from browser_util import module_page, tensorboard_server, wait_for_runs
from PIL import Image
from test_browser import SCREENSHOTS

import tb_cnnvis as cv
from tb_cnnvis import snapshots
from tb_cnnvis.callback import CnnVisCallback

pytestmark = pytest.mark.browser

RUN = "fit/cnnvis"


@pytest.fixture(scope="module")
def served(tmp_path_factory, browser):
    """A tiny model fitted 2 epochs (Grad-CAM logged at conv2 only, snapshots at 0, 1, 2),
    served by a real ``tensorboard`` with its explore cache in a temporary folder."""
    root = tmp_path_factory.mktemp("explore_browser")
    rng = np.random.default_rng(0)
    x = rng.random((8, models.SIZE, models.SIZE, 3), dtype=np.float32)
    y = rng.integers(0, models.CLASSES, 8)
    model = models.sequential()
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = CnnVisCallback(
        str(root / "fit"), x[:2], y[:2], views=["grad_cam"], layers="conv2",
        filters_every_n_epochs=1, class_names=["red", "green", "blue"],
    )  # fmt: skip
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callback])
    saved = os.environ.get("TB_CNNVIS_CACHE")
    os.environ["TB_CNNVIS_CACHE"] = str(root / "cache")
    try:
        with tensorboard_server(root) as url:
            wait_for_runs(url, [RUN])
            yield url, root
    finally:
        if saved is None:
            os.environ.pop("TB_CNNVIS_CACHE", None)
        else:
            os.environ["TB_CNNVIS_CACHE"] = saved


@pytest.fixture(scope="module")
def shared(browser, served):
    """One TensorBoard page for the module's tests (``browser_util.SharedPage``)."""
    yield from module_page(browser, served[0])


def open_explore(shared):
    """The dashboard opened anew in explore mode: ``(page, frame, problems)``."""
    page, problems, _ = shared.begin()
    frame = shared.open()
    frame.get_by_role("button", name="Explore").click()
    frame.wait_for_selector("body[data-explore=ready]")
    return page, frame, problems


def choose(frame, **values):
    for key, value in values.items():
        frame.locator(f'select[data-explore="{key}"]').select_option(str(value))


def compute(frame):
    frame.locator('[data-explore="compute"]').click()
    frame.wait_for_selector("body[data-explore=done], body[data-explore=error]", timeout=60_000)
    status = frame.locator(".explore-status").text_content()
    assert frame.evaluate("document.body.dataset.explore") == "done", status
    return json.loads(frame.locator("dialog.explore").get_attribute("data-images"))


# The dashboard's fetch, answering explore_info for a chosen step 1.5 s late.
SLOW_STEP_INFO = """() => {
  window.fetchBeforeTest = window.fetch;
  window.fetch = async (url, ...rest) => {
    const response = await window.fetchBeforeTest(url, ...rest);
    if (String(url).includes('explore_info?') && String(url).includes('step=')) {
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
    return response;
  };
}"""


def served_pixels(url, image):
    with urllib.request.urlopen(f"{url}data/plugin/cnnvis/{image}", timeout=30) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())))


def test_grad_cam_of_an_upload_at_an_unlogged_layer_equals_cv_grad_cam(served, shared, tmp_path):
    url, root = served
    upload = np.random.default_rng(7).integers(0, 256, (models.SIZE, models.SIZE, 3), np.uint8)
    path = tmp_path / "mine.png"
    Image.fromarray(upload).save(path)
    page, frame, problems = open_explore(shared)
    # The step's fields arrive late (as from a busy server): the dialog says it is loading
    # until they do, and the upload's status is not overwritten by them afterwards.
    frame.evaluate(SLOW_STEP_INFO)
    try:
        choose(frame, step=1)
        assert frame.evaluate("document.body.dataset.explore") == "loading"
        frame.wait_for_selector("body[data-explore=ready]")
        choose(frame, layer="conv1", view="grad_cam", **{"class": 2})
        frame.locator('input[data-explore="file"]').set_input_files(str(path))
        frame.wait_for_function(
            "document.querySelector('.explore-status').textContent.includes('resized')"
        )
        images = compute(frame)
        snapshot = keras.saving.load_model(
            os.path.join(snapshots.model_dir(str(root / RUN)), "step-1.keras"), safe_mode=True
        )
        expected = cv.grad_cam(snapshot, upload[None] / 255.0, "conv1", class_index=2)[0]
        np.testing.assert_array_equal(
            served_pixels(url, images[0]), np.round(np.clip(expected, 0, 1) * 255)
        )
        caption = frame.locator(".explore-cards figcaption").first.text_content()
        assert frame.locator(".explore-cards canvas").count() == 1 and "%" in caption
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "explore_grad_cam.png"))
        assert problems == []
    finally:
        frame.evaluate("window.fetch = window.fetchBeforeTest")
        shared.end()


def test_feature_maps_of_a_probe_and_a_filmstrip_across_snapshots(shared):
    page, frame, problems = open_explore(shared)
    try:
        choose(frame, layer="pool1", view="feature_maps", image=0)
        images = compute(frame)
        assert len(images) == 1 and frame.locator(".explore-cards canvas").count() == 4
        frame.locator('[data-explore="filmstrip"]').click()
        frame.wait_for_selector("body[data-explore=strip-done]", timeout=90_000)
        frames = frame.locator(".explore-frame")
        assert [frames.nth(i).get_attribute("data-step") for i in range(3)] == ["0", "1", "2"]
        assert frame.locator(".explore-frame canvas").count() == 3
        assert frame.locator(".explore-error").count() == 0
        status = frame.locator(".explore-status").text_content()
        assert status == "Filmstrip: 3 of 3 steps"
        page.screenshot(path=str(SCREENSHOTS / "explore_filmstrip.png"))
        assert problems == []
    finally:
        shared.end()


def tensorboard_rss_mib(root):
    """Resident memory of the ``tensorboard`` process serving ``root`` (found by its argv)."""
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as source:
                argv = source.read().split(b"\0")
            if str(root).encode() in argv and any(b"tensorboard" in a for a in argv):
                with open(f"/proc/{entry}/status") as source:
                    status = source.read()
                return int(status.split("VmRSS:")[1].split()[0]) / 1024
        except (OSError, ValueError, IndexError):
            continue
    raise AssertionError("no tensorboard process found")


def test_50_concurrent_requests_to_the_real_server_are_never_5xx(served):
    import base64
    import threading

    url, root = served
    before = tensorboard_rss_mib(root)
    junk = base64.b64encode(os.urandom(3000)).decode()
    bodies = [
        {"run": RUN, "step": i % 3, "view": "feature_maps", "layer": ["conv1", "pool1", "conv2"][i % 3],
         "image": {"probe": i % 2}} if i % 5 else
        [{"run": "nope"}, {"run": RUN, "step": 9}, {"image": {"png": junk}}, "not json"][i // 5 % 4]
        for i in range(50)
    ]  # fmt: skip
    codes = []

    def one(body):
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        request = urllib.request.Request(
            f"{url}data/plugin/cnnvis/explore", data=data,
            headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                codes.append(response.status)
        except urllib.error.HTTPError as error:
            codes.append(error.code)

    threads = [threading.Thread(target=one, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(codes) == 50 and max(codes) < 500, codes
    assert sum(code >= 400 for code in codes) >= 10  # the hostile tenth and more
    assert tensorboard_rss_mib(root) - before < 400
