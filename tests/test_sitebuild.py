"""Unit tests of the site builder's stages (sitebuild/): no browser, no full build, so they run in every suite
(`-m "not static"` too). The end-to-end tests of the built site are in test_static_site.py."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import zipfile

import pytest

from sitebuild import assets, pack, patches, pins, scripts, site, snapshot, sources, wheels, wheels_zip
from sitebuild.errors import BuildError
from sitebuild.pipeline import select_pages
from sitebuild.pyc import find_python312, precompile


# ---------------------------------------------------------------------------------------------- pack
def _wheel(path, members: dict) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def test_the_pack_round_trips_every_file_in_order_and_lists_its_compiled_modules(tmp_path):
    _wheel(tmp_path / "a-1-py3-none-any.whl", {"a/__init__.py": "x = 1", "a/_core.so": b"\0asm"})
    _wheel(tmp_path / "b-1-py3-none-any.whl", {"b/data.json": "{}"})
    wheels_ab = [tmp_path / "a-1-py3-none-any.whl", tmp_path / "b-1-py3-none-any.whl"]
    dynlibs = pack.write_pack(tmp_path / "out.pack", wheels_ab)
    index, files, leftover = pack.read_pack(tmp_path / "out.pack")
    assert [n for n, _ in index] == ["a/__init__.py", "a/_core.so", "b/data.json"]
    assert files["a/_core.so"] == b"\0asm" and files["b/data.json"] == b"{}" and leftover == 0
    assert dynlibs == ["a/_core.so"]
    only = pack.write_pack(tmp_path / "only.pack", wheels_ab[:1], only=lambda n: n.endswith(".py"))
    assert [n for n, _ in pack.read_pack(tmp_path / "only.pack")[0]] == ["a/__init__.py"] and only == []


def test_a_wheel_file_outside_its_package_stops_the_build(tmp_path):
    _wheel(tmp_path / "evil-1.0-py3-none-any.whl", {"../escape.py": "x = 1"})
    with pytest.raises(BuildError, match="outside its package"):
        pack.write_pack(tmp_path / "out.pack", [tmp_path / "evil-1.0-py3-none-any.whl"])


def test_two_wheels_sharing_a_file_stop_the_build(tmp_path):
    _wheel(tmp_path / "a-1-py3-none-any.whl", {"shared/x.py": "1"})
    _wheel(tmp_path / "b-1-py3-none-any.whl", {"shared/x.py": "2"})
    with pytest.raises(BuildError, match="shared/x.py is in both"):
        pack.write_pack(tmp_path / "out.pack", [tmp_path / "a-1-py3-none-any.whl", tmp_path / "b-1-py3-none-any.whl"])


def test_the_same_members_give_the_same_zip_bytes(tmp_path):
    members = [("b.txt", b"2"), ("a/x.py", b"1")]
    wheels_zip.write_zip(tmp_path / "1.zip", members)
    wheels_zip.write_zip(tmp_path / "2.zip", list(reversed(members)))
    assert (tmp_path / "1.zip").read_bytes() == (tmp_path / "2.zip").read_bytes()
    assert zipfile.ZipFile(tmp_path / "1.zip").namelist() == ["a/x.py", "b.txt"]


def test_precompiled_zips_hold_pyc_instead_of_py(tmp_path):
    py312 = find_python312()
    if py312 is None:
        pytest.fail("no CPython 3.12 here: the build precompiles with it (set MTL_PY312)")
    _wheel(
        tmp_path / "m-1-py3-none-any.whl",
        {"m/__init__.py": "x = 1\n", "m-1.dist-info/RECORD": "m/__init__.py,,\n", "m/bad.py": "print 'py2'\n"},
    )
    out = precompile(py312, tmp_path / "m-1-py3-none-any.whl", "/lib/site/", tmp_path / "cache")
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        assert "m/__init__.pyc" in names and "m/__init__.py" not in names
        assert "m/bad.py" in names  # not Python 3: shipped as it is
        assert zf.read("m-1.dist-info/RECORD").decode().splitlines() == ["m/__init__.pyc,,"]
    assert precompile(py312, tmp_path / "m-1-py3-none-any.whl", "/lib/site/", tmp_path / "cache") == out  # cached


# ---------------------------------------------------------------------------------------------- patches + wheels
def test_a_patch_applies_exactly_once_or_stops_the_build():
    ((old, new),) = patches.PATCHES[("bokeh", "bokeh/model/model.py")]
    assert patches.patch_member("bokeh", "bokeh/model/model.py", ("x\n" + old).encode()) == ("x\n" + new).encode()
    with pytest.raises(BuildError, match="bokeh/model/model.py of bokeh"):
        patches.patch_member("bokeh", "bokeh/model/model.py", b"class Model: pass\n")
    with pytest.raises(BuildError, match="exactly once"):
        patches.patch_member("bokeh", "bokeh/model/model.py", (old + old).encode())
    assert patches.patch_member("bokeh", "bokeh/other.py", b"untouched") == b"untouched"


def test_files_python_never_reads_stay_out_of_the_packs_and_those_it_reads_stay_in():
    dropped = [
        "bokeh/_sri/3.8.0.json",
        "pyviz_comms/labextension/static/479.f8613002a4a279797a83.js",
        "packaging/tags.py.orig",
        "panel/styles/models/card.less",
        "panel/eslint.config.js",
        "numpy/_core/include/numpy/ndarrayobject.h",
        "panel/tests/test_config.py",
    ]
    kept = [
        f"bokeh/_sri/{pins.BOKEH_VERSION}.json",  # bokeh.resources reads its own version's hashes
        "pyviz_comms/labextension/package.json",  # read at import
        "panel/dist/css/markdown.css",
        "bokeh-3.9.2.dist-info/METADATA",
        "typing_extensions-4.16.0.dist-info/licenses/LICENSE",
        "app/arena.py",
    ]
    assert [n for n in dropped if not patches.never_read(n)] == []
    assert [n for n in kept if patches.never_read(n)] == []


def test_the_shipped_bokeh_skips_its_signature_work(tmp_path):
    (src,) = [w for w in sources.fetch_pure_wheels(pins.CACHE) if w.name.startswith("bokeh-")]
    wheels.repack(src, tmp_path / src.name, pins.CACHE)
    with zipfile.ZipFile(tmp_path / src.name) as zf:
        text = zf.read("bokeh/model/model.py").decode()
        record = zf.read(f"bokeh-{pins.BOKEH_VERSION}.dist-info/RECORD").decode().splitlines()
        assert not any(n.endswith(".min.js") for n in zf.namelist())  # BokehJS is served by the page instead
    assert "cls.__init__.__signature__ = Signature" not in text and "MTL Playground build" in text
    assert "bokeh/model/model.py,," in record  # its old hash is gone from RECORD


def _shipped(tmp_path, dist: str) -> pathlib.Path:
    """The shipped (patched) wheel of ``dist``, unpacked under ``tmp_path / "shipped"``."""
    (src,) = [w for w in sources.fetch_pure_wheels(pins.CACHE) if w.name.startswith(f"{dist}-")]
    wheels.repack(src, tmp_path / src.name, pins.CACHE)
    with zipfile.ZipFile(tmp_path / src.name) as zf:
        zf.extractall(tmp_path / "shipped")
    return tmp_path / "shipped"


def _run_script(code: str, *path: str) -> tuple[list[str], str]:
    """Run ``code`` with ``path`` first on sys.path; its last two printed lines (the first split into words)."""
    res = subprocess.run([sys.executable, "-c", code, *path], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    first, second = res.stdout.splitlines()[-2:]
    return first.split(), second


def test_the_shipped_bokehs_property_containers_have_no_instance_dict_and_behave_as_bokehs(tmp_path):
    """The shipped bokeh's list, set and dict wrappers keep their owners in a slot (patches.py): the same script, run
    on that bokeh and on the unpatched one of the same version (this checkout's), mutates and copies a real model's
    properties in a real document, and sees the same values, owners and change events."""
    shipped_dir = _shipped(tmp_path, "bokeh")
    code = textwrap.dedent(
        """
        import copy, sys
        sys.path[:0] = sys.argv[1:]
        import bokeh
        from bokeh.document import Document
        from bokeh.models import ColumnDataSource, Select

        doc = Document()
        select, source = Select(options=["a"], tags=[1]), ColumnDataSource(data={"x": [1, 2]})
        doc.add_root(select)
        doc.add_root(source)
        seen = []
        doc.on_change(lambda event: seen.append(type(event).__name__))
        select.options.append("b")
        source.data["y"] = [3, 4]
        source.data.update(x=[5, 6])
        copies = [copy.copy(v) for v in (select.options, source.data, select.tags)]  # a list's copy notifies too
        select.options.remove("a")
        owners = [[(type(o).__name__, d.name) for o, d in v._owners] for v in copies]
        print(bokeh.__file__, hasattr(select.options, "__dict__"), hasattr(source.data, "__dict__"))
        print(select.options, sorted(source.data.items()), copies, owners, seen)
        """
    )

    (where, *dicts), shipped = _run_script(code, str(shipped_dir))
    assert where.startswith(str(shipped_dir)) and dicts == ["False", "False"]
    (where, *dicts), upstream = _run_script(code)
    assert not where.startswith(str(tmp_path)) and dicts == ["True", "True"]
    assert shipped == upstream and "ColumnDataChangedEvent" in shipped and "Select" in shipped


def test_the_shipped_params_instance_watchers_are_no_dicts_and_behave_as_params(tmp_path):
    """The shipped param keeps each parameter's instance watchers in a slotted mapping, not a one-key dict
    (patches.py): the same script, on that param and on the unpatched one of the same version (this checkout's),
    watches, triggers, unwatches, copies and pickles real Parameterized and Panel objects and sees the same."""
    shipped_dir = _shipped(tmp_path, "param")
    code = textwrap.dedent(
        """
        import copy, pickle, sys
        sys.path[:0] = sys.argv[1:]
        import param
        import panel as pn

        class P(param.Parameterized):
            x = param.Number(1)
            y = param.Number(2)

        seen = []

        def events(*events):
            seen.append([(e.name, e.new) for e in events])

        def values(**kw):
            seen.append(sorted(kw.items()))

        p = P()
        w = p.param.watch(events, ["x", "y"])
        p.param.watch_values(values, "x", precedence=1)
        p.x = 3
        p.param.update(x=4, y=5)
        p.param.trigger("y")
        p.param.unwatch(w)
        p.param.unwatch(w)  # twice: unwatching is idempotent
        p.x = 6
        inner = p.param.watchers["x"]
        shape = {k: (len(v), list(v), "value" in v, v.get("value") is v["value"], v.get("nope")) for k, v in
                 p.param.watchers.items()}
        q = pickle.loads(pickle.dumps(p))
        q.x = 7  # its watcher came along and answers for q (param recreates instance watchers when unpickled)
        r = copy.deepcopy(p)
        r.y = 8
        tabs = pn.Tabs(("A", "a"), ("B", "b"))  # a NamedListLike: reverses its objects' watchers in place
        tabs.objects = [*tabs.objects, pn.pane.Markdown("c", name="C")]
        names = tabs._names
        slider = pn.widgets.IntSlider(value=1)
        text = pn.widgets.StaticText(value="1")
        slider.link(text, value="value")
        slider.value = 4
        own = [w.fn.__name__ for ws in slider.param.watchers.values() for wv in ws.values() for w in wv]
        print(param.__file__, type(inner).__name__)
        print(seen, shape, names, text.value, sorted(own), p.x, q.x, r.y)
        """
    )

    (where, inner), shipped = _run_script(code, str(shipped_dir))
    assert where.startswith(str(shipped_dir)) and inner == "_ValueWatchers"
    (where, inner), upstream = _run_script(code)
    assert not where.startswith(str(tmp_path)) and inner == "dict"
    assert shipped == upstream and "[('x', 7)]]" in shipped and "['A', 'B', 'C'] 4 " in shipped and "link_cb" in shipped


def test_the_shipped_panels_edit_readonly_lifts_only_the_flags_there_are_and_behaves_as_panels(tmp_path):
    """The shipped Panel's edit_readonly touches only the parameters that are readonly or constant (patches.py):
    the same script, on that Panel and on the unpatched one of the same version (this checkout's), writes readonly
    and constant parameters inside it, fails inside it, and sends a widget a change as the browser does, and sees the
    same values and flags after; the shipped one sets far fewer parameter attributes."""
    shipped_dir = _shipped(tmp_path, "panel")
    code = textwrap.dedent(
        """
        import sys
        sys.path[:0] = sys.argv[1:]
        import param
        import panel as pn
        from panel.util import edit_readonly

        class P(param.Parameterized):
            a = param.Number(1, readonly=True)
            b = param.Number(2, constant=True)
            c = param.Number(3)

        sets = [0]
        original = param.Parameter.__setattr__

        def counted(self, attribute, value):
            if attribute in ("readonly", "constant"):
                sets[0] += 1
            original(self, attribute, value)

        param.Parameter.__setattr__ = counted
        p = P()
        with edit_readonly(p):
            p.a, p.b, p.c = 10, 20, 30
        try:
            with edit_readonly(p):
                p.a = 11
                raise ValueError("inside")
        except ValueError:
            pass
        flags = {n: (q.readonly, q.constant) for n, q in p.param.objects("existing").items()}
        refused = []
        for name in ("a", "b"):
            try:
                setattr(p, name, 0)
            except TypeError:
                refused.append(name)
        slider = pn.widgets.FloatSlider(value=0.5, start=0, end=1)
        slider._process_events({"value": 0.25, "value_throttled": 0.25})
        print(pn.__file__, sets[0])
        cls_flags = [(q.readonly, q.constant) for q in (P.param["a"], P.param["b"], P.param["c"])]
        print(p.a, p.b, p.c, sorted(flags.items()), cls_flags, refused, slider.value, slider.value_throttled)
        """
    )
    (where, shipped_sets), shipped = _run_script(code, str(shipped_dir))
    assert where.startswith(str(shipped_dir))
    (where, upstream_sets), upstream = _run_script(code)
    assert not where.startswith(str(tmp_path))
    # (the instance's own copies of a and b, made while their flags were lifted, keep them lifted: Panel's way too)
    assert shipped == upstream and "[(True, True), (False, True), (False, False)]" in shipped, (shipped, upstream)
    assert shipped.endswith(" 0.25 0.25")
    assert int(shipped_sets) * 5 < int(upstream_sets), (shipped_sets, upstream_sets)


def test_the_shipped_bokehjs_asks_the_css_cascade_nothing(tmp_path):
    # the wheel's own bundle carries the anchor once (a Bokeh upgrade that changes it stops the build instead)
    (src,) = [w for w in sources.fetch_pure_wheels(pins.CACHE) if w.name.startswith("bokeh-")]
    assets.copy_js_assets(tmp_path, {"bokeh": src, "panel": src}, {"_static/bokeh/bokeh.min.js"})
    shipped = (tmp_path / "_static" / "bokeh" / "bokeh.min.js").read_text()
    ((old, new),) = assets.JS_PATCHES["bokeh.min.js"]
    assert old not in shipped and shipped.count(new) == 1
    assert "getComputedStyle" in shipped  # only that one read is gone: layout still measures what it must
    with pytest.raises(BuildError, match="bokeh.min.js.*exactly once"):
        assets.patch_js("bokeh.min.js", "no such text")
    assert assets.patch_js("bokeh-widgets.min.js", "untouched") == "untouched"


def test_the_app_wheel_holds_mtl_core_and_the_app_and_no_tests(tmp_path):
    wheels.build_app_wheel(pins.ROOT / "app", tmp_path / pins.APP_WHEEL)
    names = zipfile.ZipFile(tmp_path / pins.APP_WHEEL).namelist()
    assert "mtl_core/__init__.py" in names and "app/pages.py" in names
    assert not any("__pycache__" in n or "/tests/" in n for n in names)
    assert "mtl_playground-0.1.0.dist-info/RECORD" in names


# ---------------------------------------------------------------------------------------------- sources
def test_a_corrupted_download_stops_the_build_naming_the_file(tmp_path):
    sources.fetch_pure_wheels(pins.CACHE)  # make sure the verified wheels are in the cache
    cached = tmp_path / "cache" / "wheels"
    shutil.copytree(pins.CACHE / "wheels", cached)
    victim = cached / "tqdm-4.70.1-py3-none-any.whl"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(BuildError, match=r"sha256 mismatch for .*tqdm-4\.70\.1-py3-none-any\.whl(.|\n)*Delete"):
        sources.fetch_pure_wheels(tmp_path / "cache")


def test_a_corrupted_runtime_file_stops_the_build(tmp_path):
    sources.fetch_core(pins.CACHE)  # make sure the verified npm copy is in the cache
    src = pins.CACHE / "npm" / f"pyodide-{pins.PYODIDE_VERSION}"
    dst = tmp_path / "cache" / "npm" / f"pyodide-{pins.PYODIDE_VERSION}"
    shutil.copytree(src, dst)
    (dst / "pyodide.js").write_text("// tampered\n")
    with pytest.raises(BuildError, match=r"sha256 mismatch for .*pyodide\.js"):
        sources.fetch_core(tmp_path / "cache")


def test_without_npm_the_runtime_comes_from_the_verified_fallback_copy(tmp_path, monkeypatch):
    if not (pins.FALLBACK / "pyodide.asm.wasm").exists():
        pytest.fail(f"the fallback copy {pins.FALLBACK} is missing (it ships beside the repository in shared/)")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on PATH: `npm pack` cannot run
    files = sources.fetch_core(tmp_path / "cache")
    assert set(files) == set(pins.CORE_FILES)
    for name, path in files.items():
        assert path.parent == pins.FALLBACK
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pins.CORE_FILES[name]


def test_the_lock_closure_follows_dependencies():
    lock = {
        "packages": {"numpy": {"depends": []}, "packaging": {"depends": ["pyparsing"]}, "pyparsing": {"depends": []}}
    }
    assert set(sources.lock_closure(lock)) >= {"numpy", "packaging", "pyparsing"}


# ---------------------------------------------------------------------------------------------- snapshot, scripts, site
def test_without_node_the_build_ships_no_snapshot(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(snapshot.shutil, "which", lambda name: None)
    assert snapshot.make_snapshot(tmp_path, tmp_path / "x.pack", [], None, tmp_path) is None
    assert "no memory snapshot: node is not installed" in capsys.readouterr().out


def test_the_worker_bundle_holds_every_module_once_and_its_python():
    text = scripts.bundle(scripts.WORKER, scripts.WORKER_PYTHON)
    for part in scripts.WORKER:
        assert text.count(f"// ---- {part}\n") == 1, part
    py = json.loads(text.split("const PY = ", 1)[1].split(";\n// ---- ", 1)[0])
    assert set(py) == set(scripts.WORKER_PYTHON)
    assert py["prelude"] == (pins.WEB / "python" / "prelude.py").read_text()
    assert "__" + "PRELUDE_PY__" not in text and text.rstrip().endswith("})();")


def test_the_bundles_parse_as_javascript(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (the build needs it for the snapshots)")
    import subprocess

    for name, parts, python in (("worker", scripts.WORKER, scripts.WORKER_PYTHON), ("loader", scripts.LOADER, ())):
        (tmp_path / f"{name}.js").write_text(scripts.bundle(parts, python))
        res = subprocess.run([node, "--check", str(tmp_path / f"{name}.js")], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr


# V8 playing JavaScriptCore (WebKit, Safari): a slot an element segment filled hands out an object of its own, one per
# slot (a Proxy here, its `name` the function's index as JSC's is), a slot set from JS the object it was set to.
# Boots Pyodide, loads numpy's compiled modules; prints the function table's size and digest after each.
FAKE_JSC_BOOT = r"""
const path = require("path");
const [web, runtime, mode] = process.argv.slice(2);
const {tableDigest, exportIdentity} = require(path.join(web, "shared/tabledigest.js"));
globalThis.exportIdentity = exportIdentity;   // the worker bundle's scope has it
if (mode !== "v8") {
  const T = WebAssembly.Table.prototype, get = T.get, set = T.set, slots = new WeakMap(), targets = new WeakMap();
  const of = (t) => slots.get(t) || slots.set(t, new Map()).get(t);
  T.get = function (i) {
    const f = get.call(this, i);
    if (f === null) return f;
    const had = of(this).get(i);
    if (had && had.target === f) return had.object;
    const object = new Proxy(f, {});
    targets.set(object, f);
    of(this).set(i, {target: f, object});
    return object;
  };
  T.set = function (i, v, ...rest) {
    const real = (v && targets.get(v)) || v;
    set.call(this, i, real, ...rest);
    of(this).set(i, {target: real, object: v});
  };
}
const out = {identity: exportIdentity()};
if (mode === "shim") out.shim = require(path.join(web, "worker/identity.js")).oneObjectPerFunction();
(async () => {
  const py = await require(path.join(runtime, "pyodide.js")).loadPyodide({indexURL: runtime + "/"});
  const t = py._module.wasmTable;
  out.boot = [t.length, tableDigest(t, 0, t.length)];
  await py.loadPackage("numpy", {messageCallback: () => {}});
  out.numpy = [t.length, tableDigest(t, 0, t.length)];
  out.x = py.runPython("import numpy as np; float(np.linalg.norm(np.arange(12.).reshape(3, 4) @ np.ones(4)))");
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
"""


def test_where_wasm_functions_are_two_objects_the_worker_lays_out_the_table_as_node_does(tmp_path):
    """worker/identity.js: on an engine whose table slots and exports are two objects per function, Emscripten gives
    every exported function whose address Pyodide's linker takes a second slot (1,154 more at boot here, 1,155 in
    WebKit), and no snapshot made in node fits. With the shim the boot's table and numpy's are node's, slot for slot."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (the build needs it for the snapshots)")
    core = sources.fetch_core(pins.CACHE)
    lock = json.loads(core["pyodide-lock.json"].read_text())
    numpy = lock["packages"]["numpy"]["file_name"]
    index = tmp_path / "pyodide"
    index.mkdir()
    for name, path in {**core, **sources.fetch_lock_wheels(pins.CACHE, [numpy], lock)}.items():
        shutil.copyfile(path, index / name)
    (tmp_path / "boot.js").write_text(FAKE_JSC_BOOT)
    runs = {
        mode: subprocess.Popen(
            [node, str(tmp_path / "boot.js"), str(pins.WEB), str(index), mode], stdout=subprocess.PIPE, text=True
        )
        for mode in ("v8", "jsc", "shim")
    }
    out = {}
    for mode, proc in runs.items():
        stdout, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, (mode, stdout)
        out[mode] = json.loads(stdout.strip().splitlines()[-1])
    v8, jsc, shim = out["v8"], out["jsc"], out["shim"]
    assert v8["identity"] and not jsc["identity"] and not shim["identity"]
    assert jsc["boot"][0] > v8["boot"][0] + 1000  # the fake shows JavaScriptCore's extra slots
    assert shim["shim"] == "shim"  # installed, and the probe's own module now answers one object
    assert shim["boot"] == v8["boot"] and shim["numpy"] == v8["numpy"]
    assert shim["x"] == v8["x"] == jsc["x"]


def test_unknown_pages_stop_the_build_naming_the_known_ones():
    with pytest.raises(BuildError, match="unknown page.*nope.*known: shared_separate"):
        select_pages(pins.ROOT / "app", ["nope"])
    assert [p.slug for p in select_pages(pins.ROOT / "app", ["arena"])] == ["arena"]


def test_the_keep_list_names_addressed_files_and_versioned_scripts_but_no_previews(tmp_path):
    for rel in ("mtl/loader.js", "_static/panel/1.9.4/dist/panel.min.js", "previews/a-420.jpg", "index.html"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    keep = site.keep_list(tmp_path, {"wheels/abc/site-packages.pack"})
    assert "wheels/abc/site-packages.pack" in keep and "_static/panel/1.9.4/dist/panel.min.js" in keep
    assert any(k.startswith("mtl/loader.js?v=") for k in keep)
    assert not any(k.startswith(("previews/", "index.html")) for k in keep)


def test_a_failed_build_leaves_the_old_site_and_a_good_one_keeps_the_readme(tmp_path):
    out = tmp_path / "static"
    out.mkdir()
    (out / "README.md").write_text("hand-written")
    (out / "old.html").write_text("old")
    with pytest.raises(RuntimeError), site.staged(out) as stage:
        (stage / "new.html").write_text("new")
        raise RuntimeError("a stage failed")
    assert (out / "old.html").exists() and not (out / "new.html").exists()
    with site.staged(out) as stage:
        (stage / "new.html").write_text("new")
    assert (out / "new.html").exists() and not (out / "old.html").exists()
    assert (out / "README.md").read_text() == "hand-written"


def test_the_zstd_decoder_becomes_a_classic_script_or_the_build_stops():
    module = "let x = 1;\nvar ZSTDDecoder = class {};\n//#endregion\nexport { ZSTDDecoder };\n"
    assert scripts.classic_script(module, "ZSTDDecoder").endswith("self.ZSTDDecoder = ZSTDDecoder;\n")
    with pytest.raises(BuildError, match="exactly once"):
        scripts.classic_script("export default ZSTDDecoder;", "ZSTDDecoder")


def test_the_pinned_zstd_decoder_is_verified(tmp_path):
    decoder = sources.fetch_zstddec(pins.CACHE)
    if decoder is None:
        pytest.fail("npm could not fetch the pinned zstddec (the registry must be reachable for a build)")
    assert "export { ZSTDDecoder };" in decoder.read_text()
    tampered = tmp_path / "npm"
    tampered.mkdir()
    (tampered / pins.ZSTDDEC[2]).write_bytes((pins.CACHE / "npm" / pins.ZSTDDEC[2]).read_bytes() + b"\0")
    with pytest.raises(BuildError, match="is not the pinned zstddec"):
        sources.fetch_zstddec(tmp_path)


def test_the_zstd_snapshot_is_deterministic_and_decodes_to_the_heap(tmp_path):
    import gzip

    import zstandard

    heap = bytes(range(256)) * 2000 + b"\0" * 100_000
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "heap.gz").write_bytes(gzip.compress(heap, mtime=0))
    a, b = snapshot.zstd_copy(tmp_path / "a" / "heap.gz"), snapshot.zstd_copy(tmp_path / "b" / "heap.gz")
    assert a.read_bytes() == b.read_bytes() and len(a.read_bytes()) < len(heap) // 10
    frame = zstandard.get_frame_parameters(a.read_bytes())
    assert frame.content_size == len(heap)  # the worker sizes its buffer from the build's record of it
    assert zstandard.ZstdDecompressor().decompress(a.read_bytes()) == heap


def test_pack_members_name_their_modules():
    from sitebuild.packs import module_name

    assert module_name("numpy/fft/__init__.pyc") == "numpy.fft"
    assert module_name("numpy/fft/_pocketfft_umath.cpython-312-wasm32-emscripten.so") == "numpy.fft._pocketfft_umath"
    assert module_name("app/arena.py") == "app.arena"
    assert module_name("typing_extensions.pyc") == "typing_extensions"
    assert module_name("panel/dist/css/button.css") is None


def test_every_page_builds_and_trains_without_docstrings_or_asserts():
    """The site's packages are compiled with -OO (sitebuild/pipeline.py): under ``python -OO`` every page builds,
    renders to a Bokeh model and trains (Panel, Bokeh, param and numpy read no docstring of theirs)."""
    code = textwrap.dedent(
        """
        import importlib, inspect, sys
        import panel as pn
        from app.pages import PAGES
        if sys.flags.optimize != 2 or pn.Column.__doc__ is not None:
            raise SystemExit("not running without docstrings")
        for p in PAGES:
            create = importlib.import_module(p.module).create_page
            view = create(autoplay=False) if "autoplay" in inspect.signature(create).parameters else create()
            root = pn.panel(view).get_root()
            trains = hasattr(view.state, "tick") and hasattr(view.state, "steps")
            for _ in range(3 if trains else 0):
                view.state.tick()
            print(p.slug, type(root).__name__, view.state.steps if trains else -1)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(pins.ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    res = subprocess.run(
        [sys.executable, "-OO", "-c", code], capture_output=True, text=True, cwd=pins.ROOT, timeout=300, env=env
    )
    assert res.returncode == 0, res.stderr[-3000:]
    from app.pages import PAGES

    rows = [line.split() for line in res.stdout.splitlines()]
    assert [r[0] for r in rows] == [p.slug for p in PAGES]
    assert all(r[1] == "Column" for r in rows)
    assert sum(int(r[2]) > 0 for r in rows) >= 4, rows  # the training pages made steps


def test_a_package_no_page_imports_travels_whole_in_the_later_pack():
    from sitebuild.packs import later_members

    umath = "numpy/_core/_multiarray_umath.cpython-312-wasm32-emscripten.so"
    fft = "numpy/fft/_pocketfft_umath.cpython-312-wasm32-emscripten.so"
    names = [
        "numpy/__init__.pyc", umath, fft, "numpy/ma/__init__.pyc", "numpy/ma/core.pyc", "numpy/ma/README.rst",
        "numpy/LICENSE.txt", "app/arena.py", "app/unused.py", "numpy-2.0.2.dist-info/METADATA",
    ]  # fmt: skip
    later = later_members(names, {"numpy/__init__.pyc", "app/arena.py"})
    # the .so files the snapshot places stay (umath) even if the build's run did not import them
    assert later == {fft, "numpy/ma/__init__.pyc", "numpy/ma/core.pyc", "numpy/ma/README.rst", "app/unused.py"}
