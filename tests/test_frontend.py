"""The dashboard's sources (frontend/): names, sizes, the family index and the app interface.

Static checks that keep the frontend's structure as README (Development) describes it; the
dashboard itself is tested in a real browser (test_browser.py) and linted by ESLint
(``make lint``).
"""

import re

from tb_cnnvis import plugin, views

FRONTEND = plugin.frontend_dir()
PARTS = ("controls.js", "panes.js", "detail.js")
"""The parts of the page that the App lends its interface to."""


def read(name):
    return (FRONTEND / name).read_text(encoding="utf-8")


def interface_members():
    """The members the AppInterface typedef of index.js documents, and those it builds."""
    index = read("index.js")
    typedef = re.search(r"@typedef \{object\} AppInterface(.*?)\*/", index, re.S).group(1)
    documented = set(re.findall(r"@property \{[^}]*\}[\s*]*(\w+)", typedef))
    body = re.search(r"return Object\.freeze\(\{\n(.*?)\n    \}\);", index, re.S).group(1)
    built = set(re.findall(r"^      (?:get )?(\w+)(?:\(\)|:)", body, re.M))
    return documented, built


def test_every_module_and_stylesheet_reads_in_one_sitting():
    sizes = {path.name: path.read_text().count("\n") for path in FRONTEND.iterdir()}
    assert sizes and max(sizes.values()) <= 400, sizes
    scripts = [size for name, size in sizes.items() if name.endswith(".js")]
    assert sum(scripts) / len(scripts) <= 300


def test_every_frontend_file_is_named_so_that_the_plugin_serves_it():
    names = sorted(path.name for path in FRONTEND.iterdir())
    assert names == sorted(plugin.static_files(FRONTEND))


def test_the_family_index_is_one_line_per_family_module():
    pattern = r"^export \{ default as (\w+) \} from '\./family_(\w+)\.js';$"
    lines = re.findall(pattern, read("families.js"), re.M)
    assert lines and all(name == module for name, module in lines)
    modules = sorted(path.stem.removeprefix("family_") for path in FRONTEND.glob("family_*.js"))
    assert sorted(name for name, _ in lines) == modules
    for name in modules:
        assert f"  name: '{name}',\n" in read(f"family_{name}.js")
    assert {view["family"] for view in views.catalog()} <= set(modules)


def test_the_app_interface_is_documented_member_by_member():
    documented, built = interface_members()
    assert documented == built
    assert {"state", "store", "ctx", "set", "update", "retryButton"} <= built


def test_the_parts_read_only_members_of_the_app_interface():
    _, members = interface_members()
    for part in PARTS:
        text = read(part)
        used = set(re.findall(r"\bapp\.(\w+)", text))
        for names in re.findall(r"const \{([^}]+)\} = (?:this\.)?app\b", text):
            used |= {name.strip() for name in names.split(",")}
        assert used and used <= members, (part, sorted(used - members))
        assert "from './index.js'" not in text and "window.cnnvis" not in text


def test_no_module_switches_on_a_family_or_view_name():
    switches = re.compile(r"family\s*===|\.family\s*===|kind\s*===\s*'(?!probes)")
    for path in FRONTEND.glob("*.js"):
        if not path.name.startswith("family_"):
            assert not switches.search(path.read_text()), path.name
