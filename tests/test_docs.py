"""The documentation cannot drift: the generated configuration reference names every key the schema
has (with its default), README links into docs/ point at files that exist, every page is in the
site's nav, and .ci/run finds the README's test command. The link and anchor check of the whole site
is `mkdocs build --strict`, which .ci/run runs."""

import importlib.util
import json
import os
import re
import subprocess

import pytest
import yaml

from conftest import REPO
from edge.config import DeviceConfig, dump_defaults
from edge.outputs import OutputConfig

DOCS = os.path.join(REPO, "docs")
README = os.path.join(REPO, "README.md")


def load_hook(name: str):
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", os.path.join(DOCS, "hooks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flatten(value, where: str = ""):
    """(key, value) for every leaf of what `config show` prints; list items as `outputs[].type`."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flatten(v, f"{where}.{k}" if where else k)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for item in value:
            yield from flatten(item, f"{where}[]")
    else:
        yield where, value


def reference_rows() -> dict[str, list[str]]:
    """key -> its table cells, parsed from the generated page."""
    page = load_hook("config_reference").render()
    rows = {}
    for line in page.splitlines():
        match = re.match(r"\| `([^`]+)` \|", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
    return rows


def shown_keys() -> dict:
    """What `config show` prints, and each output type's keys with their defaults (its own
    settings: the default config shows only the log output's)."""
    import dataclasses

    from edge.outputs import OUTPUTS

    shown = dict(flatten(yaml.safe_load(dump_defaults())))
    for kind in OUTPUTS.values():
        for key, value in flatten({"outputs": [dataclasses.asdict(kind.config())]}):
            if key != "outputs[].type":   # each type's own name; the row shows the default config's
                assert shown.setdefault(key, value) == value, key
    return shown


def test_configuration_reference_names_every_key_config_show_prints_with_its_default():
    shown = shown_keys()
    rows = reference_rows()
    assert shown, "config show printed nothing"
    missing = sorted(set(shown) - set(rows))
    assert not missing, f"keys missing from the configuration reference: {missing}"
    stale = sorted(set(rows) - set(shown))
    assert not stale, f"keys in the configuration reference that the schema does not have: {stale}"
    for key, value in shown.items():
        assert json.loads(rows[key][2].strip("`")) == value, key


def test_configuration_reference_shows_the_rules_the_loader_checks():
    rows = reference_rows()
    assert rows["camera.width"][3] == "16 to 8192"
    assert "`mavlink`" in rows["outputs[].type"][3] and "`log`" in rows["outputs[].type"][3]
    assert rows["camera.reconnect_initial_s"][3].endswith("not above `reconnect_max_s`")
    assert rows["control.mode"][1] == "`rate` or `angle`"
    assert "no frame for this long" in rows["camera.frame_timeout_s"][4]   # the comment beside the field


def test_configuration_reference_follows_a_field_added_to_the_schema(monkeypatch):
    """A field the schema gains appears on the page with no edit to the page or the hook."""
    import dataclasses

    import edge.config as config

    @dataclasses.dataclass
    class Extended(config.WebConfig):
        max_clients: int = config.num(4, 1, 32)   # viewers at once

    @dataclasses.dataclass
    class Device(DeviceConfig):
        web: Extended = dataclasses.field(default_factory=Extended)

    monkeypatch.setattr(config, "DeviceConfig", Device)
    page = load_hook("config_reference").render()
    assert "| `web.max_clients` | int | `4` | 1 to 32 | viewers at once |" in page


def readme_links() -> list[str]:
    text = open(README, encoding="utf-8").read()
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", text)
            if not re.match(r"[a-z]+:", target)]


def test_every_readme_link_into_the_repository_points_at_a_file_that_exists():
    links = readme_links()
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        path, _, anchor = link.partition("#")
        full = os.path.join(REPO, path)
        assert os.path.exists(full), f"README links to {link}, which does not exist"
        if anchor and path.endswith(".md"):
            headings = [slug(h) for h in re.findall(r"^#+ (.+)$", open(full, encoding="utf-8").read(), re.M)]
            assert anchor in headings, f"README links to {link}: no heading with that anchor"


def slug(heading: str) -> str:
    """Python-Markdown's toc slug (what MkDocs and the links use): lower case, punctuation
    dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def nav_pages(nav) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_every_docs_page_is_in_the_nav_and_every_nav_page_exists_or_is_generated():
    with open(os.path.join(REPO, "mkdocs.yml"), encoding="utf-8") as f:
        site = yaml.safe_load(f)
    generated = {load_hook("config_reference").PAGE, load_hook("model_card").PAGE}
    pages = nav_pages(site["nav"])
    on_disk = {os.path.relpath(os.path.join(d, name), DOCS)
               for d, _, names in os.walk(DOCS) if "hooks" not in d for name in names if name.endswith(".md")}
    assert not set(pages) - on_disk - generated, "nav names pages that are neither files nor generated"
    assert not on_disk - set(pages), "pages missing from the nav"
    assert generated <= set(pages)


def test_ci_finds_the_readme_test_command_and_its_setup_is_the_main_install_plus_extras():
    """.ci/run takes the first `python3 -m venv` line after `Tests:`; it must be the whole suite."""
    script = open(os.path.join(REPO, ".ci", "run"), encoding="utf-8").read()
    awk = re.search(r"awk '([^']+)' README.md", script).group(1)
    cmd = subprocess.run(["awk", awk, README], capture_output=True, text=True, timeout=10).stdout.strip()
    assert cmd.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e \".[")
    # The whole suite: nothing after -q but the report of the slowest tests.
    assert re.search(r"&& python -m pytest -q( --durations=\d+)?$", cmd), cmd
    extras = re.search(r'\.\[([^\]]+)\]', cmd).group(1).split(",")
    assert {"train", "dev", "tflite-export", "gimbal"} <= set(extras)


@pytest.mark.parametrize("section", ["train", "tflite-export"])
def test_extras_that_install_torch_pin_it(section):
    """Unpinned, litert-torch pulls the newest torch and its CUDA wheels (gigabytes)."""
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    assert any(dep.startswith("torch==") for dep in extras[section])


def test_the_example_output_config_in_the_docs_is_valid():
    """The outputs example on the outputs page passes the loader."""
    from edge.config import load_config

    text = open(os.path.join(DOCS, "device", "outputs.md"), encoding="utf-8").read()
    block = re.search(r"```yaml\n(outputs:.*?)```", text, re.S).group(1)
    cfg = load_config(yaml.safe_load(block))
    assert [o.type for o in cfg.outputs] and all(isinstance(o, OutputConfig) for o in cfg.outputs)
