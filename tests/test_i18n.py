"""English and Chinese: the catalogues agree, the library's views follow the language, and every page in
Chinese mode shows no English words (cbam/i18n.py, cbam/locales/*.json)."""

import re

import pytest
import torch

from cbam import CBAM, i18n, trace, views


def test_both_catalogues_have_the_same_keys():
    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    assert set(en) - set(zh) == set(), "keys only in en.json"
    assert set(zh) - set(en) == set(), "keys only in zh.json"


def test_every_key_has_the_same_placeholders_in_both_languages():
    en, zh = i18n.catalogue("en"), i18n.catalogue("zh")
    wrong = {key: (i18n.placeholders(en[key]), i18n.placeholders(zh[key])) for key in en
             if i18n.placeholders(en[key]) != i18n.placeholders(zh.get(key, ""))}
    assert not wrong, wrong


def test_no_chinese_text_is_left_empty():
    assert not [key for key, text in i18n.catalogue("zh").items() if not text.strip()]


def test_t_fills_placeholders_and_english_is_the_default():
    assert i18n.language() == "en"
    assert i18n.t("sidebar.too_big", name="a.png", size=12.34, limit=10) == "a.png: the file is 12.3 MiB; the limit is 10 MiB."
    with i18n.use("zh"):
        assert i18n.language() == "zh"
        assert i18n.t("sidebar.too_big", name="a.png", size=12.34, limit=10).startswith("a.png：")
    assert i18n.language() == "en"
    assert i18n.t("no.such.key") == "no.such.key"


def test_a_worded_text_survives_deepcopy_and_pickle_with_its_key_and_values():
    """Specs hold worded titles: copying a chart's spec (or caching it) must not fail."""
    import copy
    import pickle

    text = i18n.t("sidebar.too_big", name="a.png", size=12.34, limit=10)
    for copied in (copy.deepcopy({"title": text})["title"], pickle.loads(pickle.dumps(text))):
        assert copied == text and isinstance(copied, i18n.Text)
        assert (copied.key, copied.values) == ("sidebar.too_big", {"name": "a.png", "size": 12.34, "limit": 10})
    spec = views.channel.descriptors(trace(CBAM(8, reduction_ratio=2), torch.randn(1, 8, 4, 4))).spec
    assert copy.deepcopy(spec) == spec


@pytest.fixture(scope="module")
def block_trace():
    torch.manual_seed(0)
    return trace(CBAM(32, reduction_ratio=4), torch.randn(1, 32, 8, 8))


def test_the_library_views_follow_the_language(block_trace):
    english = views.channel.channel_weights(block_trace).spec
    with i18n.use("zh"):
        chinese = views.channel.channel_weights(block_trace).spec
        kernel_title = views.spatial.kernel(CBAM(32)).spec["title"]
        step = views.steps.step(0).title, views.steps.step(0).explanation
    assert english["title"] == "Channel attention Mc = σ(MLP(AvgPool F) + MLP(MaxPool F))"
    assert re.search(r"[\u4e00-\u9fff]", chinese["title"]), chinese["title"]
    assert re.search(r"[\u4e00-\u9fff]", kernel_title), kernel_title
    assert all(re.search(r"[\u4e00-\u9fff]", text) for text in step), step
    assert chinese["layer"][0]["encoding"]["x"]["title"] == "排名（按 Mc 排序）"


# --------------------------------------------------------------------------------------------
# Every page in Chinese mode: no exceptions, no errors, no English words
# --------------------------------------------------------------------------------------------

PAGES = ["pages/start.py", "pages/steps.py", "pages/channel.py", "pages/spatial.py", "pages/full.py", "pages/layers.py",
         "pages/gradcam.py", "pages/shapes.py", "pages/training.py", "pages/ablations.py"]

# Words of 4+ Latin letters a Chinese page may show: symbols, names of methods, models, layers and formats,
# and the markdown/LaTeX the app writes around them. Keep it short and honest.
ALLOWED = {
    "CBAM", "ReLU", "MLP", "Grad", "CAM", "ImageNet", "ResNet", "BatchNorm", "PNG", "CSV", "NPZ", "CPU", "CUDA", "GPU",
    "AvgPool", "MaxPool", "logit", "sigmoid", "softmax", "Woo", "Park", "Kweon", "ECCV", "arXiv", "https", "arxiv",
    "Selvaraju", "Jongchan", "attention", "module", "pytorchcv", "timm", "PyTorch", "Linear", "super", "Block",
    "demo", "baseline", "stages", "cbam", "shapes", "task", "pointing", "game", "docs", "ablations", "epoch",
    "Shapes",  # the sample "Shapes task…" named in a hint
    "Sigmoid", "Language",
    "Convolutional", "Attention", "Module",  # the paper's name, given beside its Chinese name  # "Language / 语言": the language select is labelled in both
    "magma", "viridis", "gray",
}
LATIN_WORD = re.compile(r"(?<![A-Za-z])[A-Za-z][A-Za-z'’-]*[A-Za-z]")
DROP = re.compile(r"`[^`]*`|\$[^$]*\$|\([^)]*https?://[^)]*\)|\\[a-zA-Z]+|[\w/]+\.\w+")  # code, LaTeX, links, file and module names


def english_words(text: str) -> set[str]:
    text = DROP.sub(" ", text)
    words = set()
    for word in LATIN_WORD.findall(text):
        for part in re.split(r"[-'’]", word):
            if len(part) >= 4 and part not in ALLOWED:
                words.add(part)
    return words


def chart_titles(spec) -> list[str]:
    """Every "title" in a Vega-Lite spec (chart, axes, legends, tooltips)."""
    found = []
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "title" and isinstance(value, str):
                found.append(value)
            elif key not in ("datasets", "data"):
                found += chart_titles(value)
    elif isinstance(spec, list):
        for value in spec:
            found += chart_titles(value)
    return found


def page_texts(at) -> list[str]:
    import json

    texts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        texts += [element.value for element in at.get(kind)]
    for kind in ("selectbox", "select_slider", "slider", "radio", "toggle", "checkbox", "number_input", "multiselect",
                 "button", "text_input"):
        for widget in at.get(kind):
            texts.append(widget.label)
            if getattr(widget, "help", None):
                texts.append(widget.help)
    for kind in ("metric",):
        texts += [m.label for m in at.get(kind)]
    for chart in at.get("vega_lite_chart"):
        texts += chart_titles(json.loads(chart.proto.spec))
    return [text for text in texts if text]


@pytest.fixture(scope="module")
def chinese_app():
    from test_app import app_with_link

    return app_with_link(lang="zh")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_in_chinese_shows_no_english(chinese_app, page):
    from test_app import go

    at = go(chinese_app, page)
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["lab"].lang == "zh"
    english = {}
    for text in page_texts(at):
        words = english_words(text)
        if words:
            english[text[:120]] = sorted(words)
    assert not english, english


def test_a_bad_upload_in_chinese_gets_a_chinese_error():
    from test_app import app_with_link, upload

    at = upload(app_with_link(lang="zh"), "notes.png", b"%PDF-1.7\n" + b"\x00" * 64)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "notes.png" in errors[0], errors
    assert re.search(r"[\u4e00-\u9fff]", errors[0]) and "PDF" in errors[0], errors
    assert not english_words(errors[0]), errors


def test_a_key_missing_from_one_catalogue_fails_the_catalogue_test(monkeypatch):
    en, zh = dict(i18n.catalogue("en")), i18n.catalogue("zh")
    del en["plot.grid.title"]
    monkeypatch.setattr(i18n, "catalogue", {"en": en, "zh": zh}.get)
    with pytest.raises(AssertionError, match="keys only in zh.json"):
        test_both_catalogues_have_the_same_keys()


def test_the_library_errors_a_user_reads_follow_the_language():
    from cbam import checkpoints, images

    with i18n.use("zh"), pytest.raises(checkpoints.CheckpointError) as weights:
        checkpoints.load(b"<html>not weights</html>")
    with i18n.use("zh"), pytest.raises(images.ImageError) as image:
        images.load_image(b"")
    for error in (weights.value, image.value):
        assert re.search(r"[\u4e00-\u9fff]", str(error)), str(error)
        assert english_words(str(error)) <= {"pickle"}, str(error)  # the format's name


def test_an_upload_error_follows_a_switch_to_chinese():
    from test_app import app_with_link, upload

    at = upload(app_with_link(), "notes.png", b"%PDF-1.7\n" + b"\x00" * 64)
    assert [e.value for e in at.error] and "PDF" in at.error[0].value and not re.search(r"[\u4e00-\u9fff]", at.error[0].value)
    at.selectbox(key="w.lang").set_value("zh").run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "notes.png" in errors[0] and "PDF" in errors[0], errors
    assert re.search(r"[\u4e00-\u9fff]", errors[0]) and not english_words(errors[0]), errors


# Names stay as they are: the samples' subjects and authors, products, and the file formats a refused upload is named by.
NAMES = {
    "Chelsea", "Eileen", "Collins", "DSCOVR", "Falcon", "Grace", "Hopper", "Walt", "Rachel", "Michetti", "Pikolo",
    "Espresso", "scikit", "image", "Matplotlib", "NASA", "SpaceX", "osmr", "Python",
    "Word", "Excel", "PowerPoint", "gzip", "Photoshop", "HEIC", "HEIF", "JPEG", "AVIF", "QuickTime", "HTML", "HTTP",
}


def test_no_chinese_catalogue_entry_has_english_words_even_where_no_page_test_reaches_it():
    placeholder = re.compile(r"\{[^}]*\}")
    found = {key: sorted(english_words(placeholder.sub(" ", text)) - NAMES) for key, text in i18n.catalogue("zh").items()}
    assert not {key: words for key, words in found.items() if words}
