"""The app's CBAM-ResNet-50 (ImageNet) choice: offline explanation, upload, download — no network."""

import io
from pathlib import Path

import pytest
import torch

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from cbam import imagenet, zoo  # noqa: E402
from cbam.models import cbam_resnet50  # noqa: E402

APP = Path(__file__).resolve().parent.parent / "app.py"


@pytest.fixture(autouse=True)
def empty_weights_cache(tmp_path, monkeypatch):
    """No ImageNet weights anywhere: an empty torch hub cache, no environment variable."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(imagenet.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)


def weights_bytes() -> bytes:
    """A file in this library's own layout, with random weights (the real key layout)."""
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(cbam_resnet50().state_dict(), buffer)
    return buffer.getvalue()


def app_with_imagenet_chosen() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=240)
    at.run()
    bundled = at.session_state["lab"].model
    at.selectbox(key="w.model").set_value(zoo.IMAGENET_MODEL).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["lab"].model == bundled  # the bundled model stays selected
    return at


def test_without_weights_the_app_explains_and_keeps_working():
    at = app_with_imagenet_chosen()
    text = " ".join(m.value for m in at.markdown)
    assert "needs its weights first" in text and imagenet.ENV_VAR in text
    at.switch_page("pages/layers.py").run()
    assert not at.exception and not at.error
    at.button(key="imagenet.dismiss").click().run()
    assert "needs its weights first" not in " ".join(m.value for m in at.markdown)


def test_a_failed_download_is_explained(monkeypatch):
    def offline(**_):
        raise imagenet.OfflineError("CBAM Lab could not reach the pytorchcv model store (test).")

    monkeypatch.setattr(imagenet, "download_weights", offline)
    at = app_with_imagenet_chosen()
    at.button(key="imagenet.download").click().run()
    assert not at.exception
    assert any("could not reach" in e.value for e in at.error)


def test_a_successful_download_switches_to_the_imagenet_model(monkeypatch):
    def fake_download(progress=None, **_):
        path = imagenet.cached_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(weights_bytes())
        if progress:
            progress(len(path.read_bytes()), len(path.read_bytes()))
        return path

    monkeypatch.setattr(imagenet, "download_weights", fake_download)
    monkeypatch.setattr(imagenet, "is_available_offline", lambda **_: imagenet.cached_path().exists())
    monkeypatch.setattr(imagenet, "load_imagenet_model",
                        lambda **_: imagenet.build_imagenet_model(torch.load(imagenet.cached_path(), weights_only=True)))
    at = app_with_imagenet_chosen()
    at.button(key="imagenet.download").click().run()
    assert not at.exception, [e.stack_trace for e in at.exception]
    assert at.session_state["lab"].model == zoo.IMAGENET_MODEL
    assert len(at.selectbox(key="w.layer").options) == 16


def test_uploaded_weights_become_a_model_with_imagenet_classes():
    at = app_with_imagenet_chosen()
    at.get("file_uploader")[-1].upload("my_weights.pth", weights_bytes(), "application/octet-stream").run()
    assert not at.exception, [e.value for e in at.exception]
    name = at.session_state["lab"].model
    assert name.startswith("session-") and "my_weights.pth" in at.session_state["lab"].session_models[name][1].title
    at.switch_page("pages/layers.py").run()
    assert not at.exception and not at.error
    prediction = " ".join(m.value for m in at.markdown if m.value.startswith("**Prediction:**"))
    assert any(c in prediction for c in imagenet.IMAGENET_CLASSES)
    assert len(at.dataframe[0].value) == 16


def test_a_bad_weights_file_is_refused_with_its_name():
    at = app_with_imagenet_chosen()
    at.get("file_uploader")[-1].upload("broken.pth", b"not a checkpoint at all", "application/octet-stream").run()
    assert not at.exception
    assert any("broken.pth" in e.value for e in at.error)
