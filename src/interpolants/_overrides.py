"""Which class of a hierarchy defines a method: the rule that keeps an optional fast path
(a fused loss, a joint schedule, declared constants) from outliving the methods it stands
for when a subclass overrides those methods."""

__all__: list[str] = []


def defining_class(cls: type, name: str) -> type:
    """The first class in ``cls``'s method resolution order whose own namespace defines
    ``name`` (``object`` if none does)."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass
    return object


def covers(cls: type, shortcut: str, *methods: str) -> bool:
    """Whether ``cls``'s ``shortcut`` is defined at least as deep in its hierarchy as each of
    ``methods``, so that it was written with (or after) the versions of them that ``cls``
    uses: a subclass that overrides one of ``methods`` but inherits ``shortcut`` from above
    makes this False."""
    # MRO membership, not issubclass: during class creation (``__init_subclass__``) an ABC's
    # subclass check still reads its parent's cache and would answer for the parent
    lineage = defining_class(cls, shortcut).__mro__
    return all(defining_class(cls, method) in lineage for method in methods)
