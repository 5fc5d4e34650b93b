"""PatchInputs as Clarifai documents it: ``merge``, ``remove`` and ``overwrite``.

Source: docs.clarifai.com, API guide, advanced topics, "Patching" (its examples are
quoted below as A patched into B gives the result). The rules apply to the input's
metadata (a JSON object) and to its concepts (a list of objects with an ``id``):

``merge``
    a value overwrites the stored one; two objects merge key by key, recursively; in
    two lists, items that carry an ``id`` merge into the stored item with that id (or
    are appended), and every other item is **appended** - so sending
    ``{"tags": ["a"]}`` twice stores ``["a", "a"]`` ("For non-id lists, merge will
    append"; "For id lists, merge will append"; "Deep merge, notice the id:1 matches");
    a ``null`` value changes nothing ("Merge a null element does nothing").
``remove``
    ``true`` deletes the key ("Remove a sub element"); ``null`` and ``{}`` do nothing
    ("Elements with nil/{} should do nothing"); an object recurses ("Remove a multiple
    sub elements"); in a list, items with an ``id`` delete the stored items with that
    id ("Remove from list") and other items are appended ("For non-id lists, remove
    will append"); any other value, ``false`` included, overwrites ("Remove with false
    should over write"). Concepts named in a remove are deleted by id.
``overwrite``
    Two versions of the page disagree, and neither shows an object under ``overwrite``
    beside keys it does not name, so the sandbox has a switch per reading
    (``SandboxOptions.patch_overwrite``, ``ingest sandbox --patch-overwrite``):

    ``whole`` (the default)
        the page as docs.clarifai.com serves it: "The ``overwrite`` action will overwrite
        the old object with the new object. If you want to change a field or sub-object
        with the ``overwrite`` action, it is suggested to first call ``Get`` to obtain the
        original object", with A = ``{"a":[{"id": "1"}], "blah":1}`` patched into
        B = ``{"a":[{"id": "2"}], "blah":"string", "foo": "bar"}`` giving
        ``{"a":[{"id": "1"}], "blah":1}`` (``foo`` is gone) and ``{}`` into anything
        giving ``{}``; its input example ("Patch inputs with overwrite action will
        overwrite data object") keeps the image and loses what the patch did not send
        (``geo``). So the metadata becomes what was sent, and so do the concepts (none
        sent: none kept). The most literal reading, and the only one with examples.
    ``keys``
        the older page: "``overwrite`` action will overwrite a key:value with
        key:new_value or overwrite a list of values with the new list of values. In most
        cases this is similar to ``merge`` action": each top-level key sent gets its new
        value whole; keys not sent stay.
    ``deep``
        "similar to merge" taken further: objects merge key by key, recursively, as
        under ``merge``; scalars and lists are replaced ("Overwrite whole list", "For
        non-id lists, overwrite will overwrite whole list").

    Under ``keys`` and ``deep``, given concepts replace the stored list and no concept
    given leaves it.

The input's ``geo`` (a geo point: an object of scalars) sent with ``merge`` or under any
reading of ``overwrite`` takes the value sent ("``merge`` action will overwrite a
``key:value`` with ``key:new_value``"); an ``overwrite`` under ``whole`` that does not send
it loses it (the page's input example).

Not modelled: the example "Only objects with id's can be put into lists" (a remove of
``{"key1": [{"key2": true}]}`` that empties the whole object), which contradicts the
non-id append rule just above it in the same page.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

__all__ = ["ACTIONS", "OVERWRITE_READINGS", "patch_data", "patch_json"]

ACTIONS = ("merge", "overwrite", "remove")

#: The readings of ``overwrite`` (see above); the first is the default.
OVERWRITE_READINGS = ("whole", "keys", "deep")


def patch_json(
    stored: dict[str, Any], patch: dict[str, Any], action: str, *, overwrite: str = "whole"
) -> dict[str, Any]:
    """``stored`` with ``patch`` applied by ``action`` (a new object; inputs untouched).

    ``overwrite`` names the reading of the ``overwrite`` action (:data:`OVERWRITE_READINGS`).
    """
    if action == "overwrite":
        if overwrite == "whole":
            return dict(patch)
        if overwrite == "keys":
            return {**stored, **patch}
    out = dict(stored)
    for key, value in patch.items():
        if action == "remove":
            _remove_key(out, key, value)
            continue
        if value is None and action == "merge":
            continue  # "Merge a null element does nothing"
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = patch_json(old, value, action, overwrite=overwrite)
        elif isinstance(value, list) and isinstance(old, list) and action == "merge":
            out[key] = _merge_lists(old, value)
        else:
            out[key] = value
    return out


def _remove_key(out: dict[str, Any], key: str, value: Any) -> None:
    if value is None or value == {}:
        return
    if value is True:
        out.pop(key, None)
        return
    old = out.get(key)
    if isinstance(value, dict):
        if isinstance(old, dict):
            out[key] = patch_json(old, value, "remove")
        return
    if isinstance(value, list) and isinstance(old, list):
        gone = {_id(item) for item in value} - {None}
        kept = [item for item in old if _id(item) not in gone or _id(item) is None]
        out[key] = kept + [item for item in value if _id(item) is None]
        return
    out[key] = value


def _id(item: Any) -> Any:
    return item.get("id") if isinstance(item, dict) else None


def _merge_lists(old: list[Any], new: list[Any]) -> list[Any]:
    out = list(old)
    where = {_id(item): i for i, item in enumerate(out) if _id(item) is not None}
    for item in new:
        i = where.get(_id(item)) if _id(item) is not None else None
        if i is None:
            if _id(item) is not None:
                where[_id(item)] = len(out)
            out.append(item)
        else:
            out[i] = patch_json(out[i], item, "merge")
    return out


def patch_data(data: Any, patch: Any, action: str, *, overwrite: str = "whole") -> None:
    """Apply PatchInputs' ``action`` to a stored input's concepts and metadata in place
    (``overwrite``: the reading of that action, :data:`OVERWRITE_READINGS`)."""
    if action == "overwrite" and overwrite == "whole":
        # the data object becomes what was sent, but for the media (the page's example)
        del data.concepts[:]
        data.concepts.extend(patch.concepts)
        data.metadata.Clear()
        data.metadata.MergeFrom(patch.metadata)
        data.ClearField("geo")
        if patch.HasField("geo"):
            data.geo.CopyFrom(patch.geo)
        return
    if patch.HasField("geo") and action != "remove":
        # a geo point is an object of scalars: merge overwrites scalars, and every reading
        # of overwrite gives a key that was sent its new value
        data.geo.CopyFrom(patch.geo)
    if patch.concepts:
        if action == "overwrite":
            del data.concepts[:]
            data.concepts.extend(patch.concepts)
        elif action == "remove":
            gone = {c.id for c in patch.concepts}
            kept = [c for c in data.concepts if c.id not in gone]
            del data.concepts[:]
            data.concepts.extend(kept)
        else:
            by_id = {c.id: c for c in data.concepts}
            for concept in patch.concepts:
                if concept.id in by_id:
                    by_id[concept.id].MergeFrom(concept)
                    by_id[concept.id].value = concept.value  # 0.0 (negative) too
                else:
                    data.concepts.add().CopyFrom(concept)
                    by_id[concept.id] = data.concepts[-1]
    if patch.HasField("metadata"):
        merged = patch_json(
            json_format.MessageToDict(data.metadata),
            json_format.MessageToDict(patch.metadata),
            action,
            overwrite=overwrite,
        )
        data.metadata.Clear()
        data.metadata.update(merged)
