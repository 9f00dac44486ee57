"""Run by the worker just before link_docs.py, which installs it: how the worker encodes document changes for the
page. (A script of the worker's, not of the app: a build of another app directory (build.py --app-dir) has no `app`.)

Panel's worker sync (``panel.io.pyodide._link_docs_worker``) encodes each document event on its own, and for each one
first made a reference of every synced model of the document: ``Serializer(references=doc.models.synced_references)``,
~370 models a page, 0.4 ms in CPython and several in Pyodide, for each of a click's ~11 events and of every training
tick's. :class:`DocumentSerializer` makes a model's reference when the encoder meets it.
"""

from __future__ import annotations

from bokeh.core.serialization import Ref, Serializer
from bokeh.model import Model


class DocumentSerializer(Serializer):
    """A ``Serializer`` that knows ``doc``'s synced models (those not new since the last flush) as references, as
    ``Serializer(references=doc.models.synced_references)`` does, but looks each one up only when it meets it."""

    def __init__(self, doc, **kwargs) -> None:
        super().__init__(**kwargs)
        self._doc_models = doc.models

    def _synced_ref(self, obj) -> Ref | None:
        models = self._doc_models
        if isinstance(obj, Model) and models.get_by_id(obj.id) is obj and obj not in models._new_models:
            ref = self._references[id(obj)] = obj.ref
            return ref
        return None

    def has_ref(self, obj) -> bool:
        return super().has_ref(obj) or self._synced_ref(obj) is not None

    def get_ref(self, obj) -> Ref | None:
        ref = super().get_ref(obj)
        return ref if ref is not None else self._synced_ref(obj)
