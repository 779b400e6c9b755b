"""The README and the configuration document what the code does: the Quickstart's two commands,
the CI script, every option and every input shape (in the README or a page under docs/)."""

import glob
import os
import re
import sys

from parsers import KINDS
from plugin.config import OPTIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
DOCUMENTATION = README + "".join(open(path, encoding="utf-8").read()
                                 for path in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))))


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


def test_every_option_is_in_the_readme_and_the_shipped_config():
    config = open(os.path.join(ROOT, "conf", "fail2entra.toml"), encoding="utf-8").read()
    for option in OPTIONS:
        assert f"`{option.flag}" in DOCUMENTATION, option.flag
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


def test_every_input_shape_is_in_the_readme():
    for kind in KINDS:
        assert f"`{kind}`" in DOCUMENTATION, kind


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
            found.append((name, line.split("/fail2entra ", 1)[1].split("'")[0].split()))
    return found


def test_the_shipped_configs_run_fail2entra_with_valid_options():
    from plugin.cli import load_config
    lines = conf_command_lines()
    assert {name for name, _ in lines} >= {"fluentd.conf", "fluentd-json.conf", "fluent-bit.conf"}
    for name, args in lines:
        config, files = load_config(args)
        assert files == [], (name, files)
        assert config.input in ("auto", "json", "msgpack"), name
