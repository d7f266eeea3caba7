"""Shared test set-up: quiet TensorFlow, deterministic seeds, a temporary log directory."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from tb_cnnvis.budget import DEFAULT_BUDGET
from tb_cnnvis.callback import CnnVisCallback

# The cost budget reduces views by the time they take, so what a callback writes under it
# depends on the machine's speed and load. Tests assert exact content: the callback runs
# without a budget here unless a test is marked ``budget`` (the budget's own tests, the
# zoo). Module-scoped fixtures that log a run get no budget either.
CnnVisCallback.__init__.__kwdefaults__["budget"] = None


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state."""
    keras.utils.set_random_seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _budget(request):
    """The callback's real default budget for tests marked ``budget``."""
    if request.node.get_closest_marker("budget") is None:
        yield
        return
    CnnVisCallback.__init__.__kwdefaults__["budget"] = DEFAULT_BUDGET
    try:
        yield
    finally:
        CnnVisCallback.__init__.__kwdefaults__["budget"] = None


@pytest.fixture
def logdir(tmp_path):
    """A fresh log directory (a string, as users pass it)."""
    path = tmp_path / "logs"
    path.mkdir()
    return str(path)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium for every browser test (``browser_util.chromium``), launched once;
    each module makes its own contexts."""
    from browser_util import chromium

    with chromium() as instance:
        yield instance


@pytest.fixture(scope="module")
def shared(browser, server):
    """One TensorBoard page for a browser module's tests (``browser_util.SharedPage``) on
    the module's own ``server`` fixture (its base URL)."""
    from browser_util import module_page

    yield from module_page(browser, server)


@pytest.fixture
def tab(shared):
    """TensorBoard's page on the cnnvis tab, its dashboard fresh for the test: ``.page``,
    ``.frame`` (after ``.open()``), and the problems and requests it has seen (a module
    whose tests open it otherwise defines its own)."""
    with shared.tab() as state:
        yield state


def pytest_collection_finish(session):
    """Once every test module is imported (TensorFlow, Keras and the rest: about 300,000
    objects), move what exists to the collector's permanent generation: Python's full
    collections, and the tests' own ``gc.collect()`` calls, then scan only what the tests
    make, not the libraries again each time (``gc.freeze``)."""
    import gc

    gc.collect()
    gc.freeze()
