"""Source edits to the shipped wheels, each one measured to pay in the browser.

``PATCHES``: (dist, member) -> [(old, new)]; a text that is not found exactly once stops the build (a new release
needs the edit re-checked). ``DROP``: per distribution, the members the worker never reads.
"""

from __future__ import annotations

from sitebuild.errors import BuildError
from sitebuild.pins import BOKEH_VERSION


def drop_bokeh(name: str) -> bool:
    """BokehJS lives in the page, not in the worker: drop the wheel's JS (its templates stay)."""
    return not name.startswith("bokeh/core/_templates") and (
        name.endswith(("bokeh.json", ".js", ".d.ts", ".tsbuildinfo", ".js.map")) or name.startswith("bokeh/sampledata")
    )


def drop_panel(name: str) -> bool:
    """Panel's JS/CSS bundles are served from _static/; the worker only needs the Python."""
    return name.startswith(
        ("panel/dist/", "panel/tests/", "panel/_templates/pyodide", "panel/examples/")
    ) and not name.startswith("panel/dist/css/")  # panel reads a few CSS files (e.g. notifications) at runtime


DROP = {"bokeh": drop_bokeh, "panel": drop_panel}

# Files of any wheel that Python never reads at run time: type stubs, C headers and static libraries, Cython
# declarations, TypeScript and Less sources of Panel's models and styles, files a patch left behind (.orig), JS
# tooling configuration, test suites, and a wheel's .data folder (installed outside site-packages by pip; in the pack
# it would only be a second copy). ~3 MB raw of the pack. Also the JupyterLab extension's scripts of pyviz_comms
# (Jupyter serves them; only its package.json is read, at import) and Bokeh's SRI hashes of its older releases
# (bokeh.resources reads its own version's only): 88 KB of the pack (zstd), every one of it downloaded before live.
NEVER_READ_SUFFIXES = (".pyi", ".h", ".a", ".pxd", ".c", ".ts", ".tsx", ".lib", ".less", ".orig")


def never_read(name: str) -> bool:
    parts = name.split("/")
    return (
        name.endswith(NEVER_READ_SUFFIXES)
        or "tests" in parts[1:-1]
        or parts[0].endswith(".data")
        or name in ("panel/package-lock.json", "py.typed", "panel/eslint.config.js", "panel/tsconfig.json")
        or name.startswith("pyviz_comms/labextension/static/")
        or (name.startswith("bokeh/_sri/") and name != f"bokeh/_sri/{BOKEH_VERSION}.json")
    )


# Source edits to the shipped wheels, each one measured to pay in the browser. (dist, member) -> [(old, new)];
# a text that is not found exactly once stops the build (a new release needs the edit re-checked).
PATCHES = {
    # Every bokeh.models class computes an inspect.Signature of its properties (with Sphinx type links) when it is
    # defined, for help() and IDEs. In the worker nobody reads it, and it was ~20% of `import panel`'s Python time
    # (cProfile in Chromium). bokeh.plotting builds its glyph signatures from Model.parameters() on its own.
    ("bokeh", "bokeh/model/model.py"): [
        (
            """            parameters = [x[0] for x in  cls.parameters()]
            cls.__init__.__signature__ = Signature(parameters=parameters)
            process_example(cls)
""",
            """            pass  # MTL Playground build: no __init__ signatures or example docs in the browser (build.py)
""",  # noqa: E501 - the replacement text is shipped as it is
        )
    ],
    # Every array a document sends is checked for being a numpy masked array, and `np.ma` imports numpy.ma (three
    # modules, 0.4 MB) at the first document a restored page sends: they would be fetched from later.pack before
    # the page is live. No masked array can exist before numpy.ma is imported.
    ("bokeh", "bokeh/util/serialization.py"): [
        (
            """    if isinstance(array, np.ma.MaskedArray):
""",
            """    if "numpy.ma" in sys.modules and isinstance(array, np.ma.MaskedArray):  # MTL Playground build
""",
        )
    ],
    # Imported by every page, read by none (measured in the snapshot: the modules of unittest and yaml are code and
    # classes frozen into every visit's heap). Panel's cache hashes a unittest Mock by id; no page caches a Mock.
    ("panel", "panel/io/cache.py"): [
        ("import unittest.mock\n", ""),
        ("    unittest.mock.Mock : lambda obj: _int_to_bytes(id(obj)),\n", ""),
    ],
    # No page chats: panel.chat (its ChatInterface, feed, steps and their models) is imported on first use, by a
    # module __getattr__, instead of with `import panel`.
    ("panel", "panel/__init__.py"): [
        (
            "from . import chat  # isort:skip noqa has to be after widgets\n",
            """

def __getattr__(name):  # MTL Playground build: panel.chat on first use
    if name == "chat":
        import importlib

        return importlib.import_module(".chat", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
""",
        )
    ],
    # Every list, dict and set a Bokeh property holds is wrapped, and every wrapper kept its owners in a set of its own:
    # a hash table with one entry, about 40,000 of them in the snapshot's six pages (4.3 MB of its heap, tracemalloc
    # under node). A tuple holds the one owner there nearly always is; owners are told in the order they came.
    ("bokeh", "bokeh/core/property/wrappers.py"): [
        (
            """    _owners: set[tuple[HasProps, PropertyDescriptor[Any]]]

    def __init__(self, *args, **kwargs) -> None:
        self._owners = set()
        super().__init__(*args, **kwargs)

    def _register_owner(self, owner: HasProps, descriptor: PropertyDescriptor[Any]) -> None:
        self._owners.add((owner, descriptor))

    def _unregister_owner(self, owner: HasProps, descriptor: PropertyDescriptor[Any]) -> None:
        self._owners.discard((owner, descriptor))
""",
            """    _owners: tuple[tuple[HasProps, PropertyDescriptor[Any]], ...]  # MTL Playground build: not a set
    __slots__ = ()  # MTL Playground build: each container keeps its owners in a slot, not an instance dict

    def __init__(self, *args, **kwargs) -> None:
        self._owners = ()
        super().__init__(*args, **kwargs)

    def _register_owner(self, owner: HasProps, descriptor: PropertyDescriptor[Any]) -> None:
        if not any(o is owner and d is descriptor for o, d in self._owners):
            self._owners = (*self._owners, (owner, descriptor))

    def _unregister_owner(self, owner: HasProps, descriptor: PropertyDescriptor[Any]) -> None:
        self._owners = tuple((o, d) for o, d in self._owners if not (o is owner and d is descriptor))
""",
        ),
        # ... and in a slot: the instance dict each wrapper had for its one attribute was 14,300 dicts (2.3 MB of the
        # snapshot's heap). A container holds nothing else of its own; pickling and copying handle slots. The slot is
        # the list's, set's and dict's wrapper's own (a slot in their shared base would clash with list's layout).
        *(
            (
                f"    def _saved_copy(self){ret}:\n",
                f'    __slots__ = ("_owners",)  # MTL Playground build\n\n    def _saved_copy(self){ret}:\n',
            )
            for ret in (" -> list[T]", " -> set[T]", "")
        ),
        (
            "    def __copy__(self):\n        return PropertyValueColumnData(dict(self))\n",
            "    __slots__ = ()  # MTL Playground build\n\n"
            "    def __copy__(self):\n        return PropertyValueColumnData(dict(self))\n",
        ),
    ],
    # param keeps an instance's watchers as {parameter: {"value": [Watcher, ...]}}; the inner dict only ever holds
    # "value" (other attributes' watchers live on the Parameter). Panel watches ~25 parameters of each of its objects:
    # 13,900 one-key dicts in the snapshot's pages (1.5 MB of its heap). A mapping with the list in a slot serves
    # every use param and Panel make of it (get, [], in, items, values, assignment).
    ("param", "param/parameterized.py"): [
        (
            "class _InstancePrivate:\n",
            """class _ValueWatchers(abc_MutableMapping):  # MTL Playground build: one parameter's watchers, by attribute
    __slots__ = ("_value", "_others")  # the "value" list, and a dict for any other key (param uses none)

    def __init__(self):
        self._value = self._others = None

    def __getitem__(self, what):
        if what == "value" and self._value is not None:
            return self._value
        if self._others is None:
            raise KeyError(what)
        return self._others[what]

    def get(self, what, default=None):
        if what == "value" and self._value is not None:
            return self._value
        return default if self._others is None else self._others.get(what, default)

    def __contains__(self, what):
        return (what == "value" and self._value is not None) or (self._others is not None and what in self._others)

    def __setitem__(self, what, watchers):
        if what == "value":
            self._value = watchers
        else:
            if self._others is None:
                self._others = {}
            self._others[what] = watchers

    def __delitem__(self, what):
        if what == "value" and self._value is not None:
            self._value = None
        elif self._others is not None:
            del self._others[what]
        else:
            raise KeyError(what)

    def __iter__(self):
        if self._value is not None:
            yield "value"
        yield from self._others or ()

    def __len__(self):
        return (self._value is not None) + len(self._others or ())

    def __repr__(self):
        return repr(dict(self))


class _InstancePrivate:
""",
        ),
        (
            "from collections import defaultdict, namedtuple, OrderedDict\n",
            "from collections import defaultdict, namedtuple, OrderedDict\n"
            "from collections.abc import MutableMapping as abc_MutableMapping  # MTL Playground build\n",
        ),
        (
            "                    instance_watchers[parameter_name] = {}\n",
            "                    instance_watchers[parameter_name] = _ValueWatchers()  # MTL Playground build\n",
        ),
    ],
    # bokeh.plotting writes a long docstring for each glyph method of figure() (for help()) when it is imported:
    # 0.7 MB of text in every visit's heap that no page reads.
    ("bokeh", "bokeh/plotting/_docstring.py"): [
        (
            "def generate_docstring(glyphclass, parameters, extra_docs):\n",
            "def generate_docstring(glyphclass, parameters, extra_docs):\n    return None  # MTL Playground build\n",
        )
    ],
    # Panel's Markdown pane imports Python-Markdown for every text it renders, though it renders with markdown-it
    # (renderer="markdown-it", the default, and every page's): the package (13 modules, 0.16 MB of .pyc, and the
    # standard modules it imports) was in every visit's heap. It is imported when renderer="markdown" asks for it.
    ("panel", "panel/pane/markup.py"): [
        (
            """    def _transform_object(self, obj: t.Any) -> dict[str, t.Any]:
        import markdown
        if obj is None:
""",
            """    def _transform_object(self, obj: t.Any) -> dict[str, t.Any]:
        if obj is None:
""",
        ),
        (
            """        if self.renderer == 'markdown':
            extensions = self.extensions""",
            """        if self.renderer == 'markdown':
            import markdown  # MTL Playground build: only for this renderer
            extensions = self.extensions""",
        ),
    ],
    # Panel lifts every parameter's readonly and constant flags around each of its own writes (edit_readonly): for
    # every change the page sends, on the widget (~33 parameters) and several times on pn.state (the busy counter).
    # A Parameter.__setattr__ costs ~50 us in the worker, and only one or two of a widget's parameters have a flag to
    # lift: ~9,000 of them and half the Python time of a slider's first answer went there (cProfile in Chromium).
    ("panel", "panel/util/parameters.py"): [
        (
            """    params = parameterized.param.objects("existing").values()
    readonlys = [p.readonly for p in params]""",
            """    params = parameterized.param.objects("existing").values()
    params = [p for p in params if p.readonly or p.constant]  # MTL Playground build: only those have a flag to lift
    readonlys = [p.readonly for p in params]""",
        ),
    ],
    # Bokeh reads YAML only from a configured bokeh.yaml (BOKEH_SETTINGS / load_config) or a theme file: import
    # PyYAML then.
    ("bokeh", "bokeh/themes/theme.py"): [
        ("import yaml\n", ""),
        ("json = yaml.safe_load(f)", "import yaml; json = yaml.safe_load(f)  # MTL Playground build"),
    ],
    ("bokeh", "bokeh/settings.py"): [
        ("import yaml\n", ""),
        (
            "self._config_override = yaml.load(f, Loader=yaml.SafeLoader)",
            "import yaml; self._config_override = yaml.load(f, Loader=yaml.SafeLoader)  # MTL Playground build",
        ),
        (
            "return yaml.load(f, Loader=yaml.SafeLoader)",
            "import yaml; return yaml.load(f, Loader=yaml.SafeLoader)  # MTL Playground build",
        ),
    ],
}


def patch_member(dist: str, name: str, data: bytes) -> bytes:
    for old, new in PATCHES.get((dist, name), ()):
        text = data.decode()
        if text.count(old) != 1:
            raise BuildError(
                f"the build cannot apply its edit to {name} of {dist} (the text to replace is not there "
                f"exactly once): was the wheel's version changed? "
                f"Re-check PATCHES in sitebuild/patches.py."
            )
        data = text.replace(old, new).encode()
    return data
