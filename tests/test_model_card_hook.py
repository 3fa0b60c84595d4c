"""The model card renders on the documentation site as on GitHub: its lists keep their bullets.

GitHub starts a list on the line after a paragraph; Python-Markdown (MkDocs) needs a blank line
first, or the items run into the paragraph as text with dashes. docs/hooks/model_card.py adds it."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest

from conftest import REPO

markdown = pytest.importorskip("markdown")


def load_hook():
    spec = importlib.util.spec_from_file_location("docs_hook_model_card",
                                                  os.path.join(REPO, "docs", "hooks", "model_card.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render(text: str) -> str:
    return markdown.markdown(text, extensions=["tables", "attr_list"])


def list_items(text: str) -> int:
    """Top-level list items outside code fences, as GitHub shows them."""
    hook, count, fence = load_hook(), 0, False
    for line in text.split("\n"):
        if hook.FENCE.match(line):
            fence = not fence
        elif not fence and re.match(r"^(?:[-*+]|\d+[.)]) ", line):
            count += 1
    return count


SAMPLE = """**Against the rules.**
- first rule,
continued lazily
- second rule

## Architecture
- **Stem.** a CNN

| a | b |
|---|---|
| 1 | 2 |
1. numbered

```
text
- not a list in a code block
```
"""


def test_a_list_right_after_a_paragraph_loses_its_bullets_without_the_hook_and_keeps_them_with_it():
    hook = load_hook()
    assert render(SAMPLE).count("<li>") < 4                   # the failure this hook is for
    fixed = hook.separate_lists(SAMPLE)
    assert render(fixed).count("<li>") == 4
    assert "- not a list in a code block" in fixed
    assert "- first rule,\ncontinued lazily\n- second rule" in fixed     # one list, as it was
    assert hook.separate_lists(fixed) == fixed                # nothing more to add the second time


def test_every_list_item_of_the_real_card_is_a_list_item_on_the_site():
    hook = load_hook()
    with open(hook.CARD, encoding="utf-8") as f:
        card = f.read()
    html = render(hook.separate_lists(card))
    assert list_items(card) > 10
    assert html.count("<li>") >= list_items(card)
    assert not re.search(r"<p>[^<]*\n- ", html)                # no item left as text in a paragraph


def test_the_site_page_is_the_card_with_its_lists_separated(tmp_path):
    pytest.importorskip("mkdocs")
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

    hook = load_hook()
    config = MkDocsConfig()
    config.load_dict({"site_name": "t", "docs_dir": str(tmp_path), "site_dir": str(tmp_path / "site")})
    config.validate()
    config.plugins._current_plugin = None      # as MkDocs has it while it runs a hook's on_files
    files = hook.on_files(Files([]), config)
    page = files.get_file_from_path(hook.PAGE)
    with open(hook.CARD, encoding="utf-8") as f:
        assert page.content_string == hook.separate_lists(f.read())
