"""MkDocs hook: the bundled model's card (edge/data/model/MODEL_CARD.md, shipped in the package)
as a page of the site, read at build time so there is one copy of it."""

from __future__ import annotations

import os

PAGE = "models/model-card.md"
CARD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    "edge", "data", "model", "MODEL_CARD.md")


def on_files(files, config):
    from mkdocs.structure.files import File

    with open(CARD, encoding="utf-8") as f:
        files.append(File.generated(config, PAGE, content=f.read()))
    return files
