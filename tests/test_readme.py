"""The README front page, the reference pages in docs/ and the configuration document what the
code does: the Quickstart's two commands, the CI script, every option, every input shape, and
links that lead somewhere."""

import os
import re
import sys
from typing import Dict

from parsers import KINDS
from plugin.config import OPTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
README_MAX_BYTES = 12 * 1024


def doc(name: str) -> str:
    with open(os.path.join(DOCS, name), encoding="utf-8") as handle:
        return handle.read()


def pages() -> Dict[str, str]:
    """README.md and every docs/*.md, by path relative to the repository."""
    found = {"README.md": README}
    for name in sorted(os.listdir(DOCS)):
        if name.endswith(".md"):
            found["docs/" + name] = doc(name)
    return found


def quickstart_commands():
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_has_exactly_two_commands_installing_then_running():
    first, second = quickstart_commands()
    assert first.startswith("pip install . && fail2entra ") and "tests/sample/" in first
    assert second.startswith("pip install '.[test]' && ")


def test_ci_runs_the_readme_test_command():
    script = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    commands = [line for line in script.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == [quickstart_commands()[1]]
    assert os.access(os.path.join(ROOT, ".ci", "run"), os.X_OK)


def test_quickstart_sample_files_exist():
    for path in re.findall(r"tests/sample/\S+", quickstart_commands()[0]):
        assert os.path.isfile(os.path.join(ROOT, path)), path


def test_every_option_is_in_the_command_line_page_and_the_shipped_config():
    reference = doc("cli.md")
    config = open(os.path.join(ROOT, "conf", "fail2entra.toml"), encoding="utf-8").read()
    for option in OPTIONS:
        assert f"`{option.flag}" in reference, option.flag
        assert re.search(rf"^{option.name} = ", config, re.M), f"{option.name} missing from conf/fail2entra.toml"


def test_the_shipped_config_holds_every_default():
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    from plugin.config import resolve
    with open(os.path.join(ROOT, "conf", "fail2entra.toml"), "rb") as handle:
        table = tomllib.load(handle)
    assert resolve(table, {}).__dict__ == resolve({}, {}).__dict__


def test_every_input_shape_is_in_the_input_page():
    reference = doc("inputs.md")
    for kind in KINDS:
        assert f"`{kind}`" in reference, kind


def test_the_front_page_is_short_and_links_every_reference_page():
    assert len(README.encode("utf-8")) <= README_MAX_BYTES
    linked = set(re.findall(r"\]\((docs/[^)#\s]+)", README))
    assert set(pages()) - {"README.md"} <= linked


def anchors(text: str) -> set:
    """The anchors GitHub gives the headings of a page (lower case, punctuation dropped,
    spaces as hyphens; a repeated heading gets -1, -2...)."""
    found, seen = set(), {}
    in_code = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        heading = re.match(r"#{1,6} (.+)", line)
        if heading and not in_code:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def test_every_relative_link_leads_to_a_file_and_heading():
    documents = pages()
    broken = []
    for page, text in documents.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
            if not os.path.exists(os.path.join(ROOT, resolved)):
                broken.append(f"{page}: {target} (no {resolved})")
            elif anchor and anchor not in anchors(documents.get(resolved, "")):
                broken.append(f"{page}: {target} (no heading #{anchor} in {resolved})")
    assert not broken, "\n".join(broken)


def conf_command_lines():
    """The fail2entra command lines the shipped Fluentd and Fluent Bit configs run."""
    found = []
    for name in sorted(os.listdir(os.path.join(ROOT, "conf"))):
        if not name.endswith(".conf"):
            continue
        text = open(os.path.join(ROOT, "conf", name), encoding="utf-8").read()
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#") or "/fail2entra " not in line:
                continue
            arguments = re.split(r"[;']", line.split("/fail2entra ", 1)[1])[0]  # up to the shell's next word
            found.append((name, arguments.split()))
    return found


def test_the_shipped_configs_run_fail2entra_with_valid_options():
    from plugin.cli import load_config
    lines = conf_command_lines()
    assert {name for name, _ in lines} >= {"fluentd.conf", "fluentd-json.conf", "fluent-bit.conf"}
    for name, args in lines:
        config, files = load_config(args)
        assert files == [], (name, files)
        assert config.input in ("auto", "json", "msgpack"), name
