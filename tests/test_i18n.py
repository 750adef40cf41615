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
