"""MkDocs hook: the bundled model's card (edge/data/model/MODEL_CARD.md, shipped in the package)
as a page of the site, read at build time so there is one copy of it.

The card is written for GitHub, whose Markdown starts a list on the line after a paragraph;
Python-Markdown (MkDocs) needs a blank line first, or the items run into the paragraph with their
dashes. ``separate_lists`` adds that blank line, so the card renders on the site as on GitHub.
"""

from __future__ import annotations

import os
import re

PAGE = "models/model-card.md"
CARD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "edge", "data", "model", "MODEL_CARD.md")

LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])(?:\s|$)")
FENCE = re.compile(r"^ {0,3}(```|~~~)")


def separate_lists(text: str) -> str:
    """``text`` with a blank line before every list that follows a paragraph, heading or table line
    directly; lines inside a list (lazy continuations included) and inside code fences are left as
    they are."""
    out: list[str] = []
    fence = None          # the fence marker while inside a fenced code block
    in_list = False       # the block since the last blank line holds a list item
    for line in text.split("\n"):
        marker = FENCE.match(line)
        if fence is not None:
            if marker and marker.group(1) == fence:
                fence = None
        elif marker:
            fence = marker.group(1)
        elif not line.strip():
            in_list = False
        elif LIST_ITEM.match(line):
            if out and out[-1].strip() and not in_list:
                out.append("")
            in_list = True
        out.append(line)
    return "\n".join(out)


def on_files(files, config):
    from mkdocs.structure.files import File

    with open(CARD, encoding="utf-8") as f:
        files.append(File.generated(config, PAGE, content=separate_lists(f.read())))
    return files
