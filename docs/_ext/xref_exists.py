"""Cross-references checked against the code, not only against these pages.

The pages document kcolors' public names only, yet the docstrings rightly name internal functions too
(``:func:`kcolors.metrics.composited_figures```) and numpy's or Pillow's (no intersphinx: the build is
offline). Sphinx's ``nitpicky`` mode would call each of those "not found". Here a reference that Sphinx
cannot link is looked up in Python instead: one that names something that exists (in the module or class
the docstring belongs to, or by its full name) is shown as plain text, one that names nothing (a typo, a
function renamed or gone) stays a warning, and ``-W`` fails the build on it.

Checked: the roles a docstring writes (``:func:``, ``:class:``, ``:meth:``, ``:data:``, ``:mod:``...) and the
exceptions of its "Raises" section. Not checked: types. A numpydoc type (``labels : (H, W) uint8 array``)
is free text, not a name, and an annotation may name what is imported only under ``TYPE_CHECKING``.
"""

import builtins
import importlib
import inspect
import re

from docutils import nodes
from sphinx import addnodes


NOTHING = object()


def resolve(dotted):
    """The object a dotted name names (a module, then attributes), or NOTHING."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for position, attribute in enumerate(parts[split:], split + 1):
            try:
                obj = getattr(obj, attribute)
            except AttributeError:
                last = position == len(parts)
                return INSTANCE_ATTRIBUTE if last and is_instance_attribute(obj, attribute) else NOTHING
        return obj
    return getattr(builtins, dotted, NOTHING)


INSTANCE_ATTRIBUTE = object()


def is_instance_attribute(cls, name):
    """Whether instances of ``cls`` have an attribute ``name`` that the class itself does not: a dataclass
    field without a default, an annotated or slotted name, or one its methods set (``self.name = ...``)."""
    if not isinstance(cls, type):
        return False
    assigned = re.compile(rf"\bself\.{re.escape(name)}\b\s*(:[^=\n]*)?=[^=]")
    for klass in cls.__mro__:
        if name in _annotations(klass) or name in getattr(klass, "__slots__", ()):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):  # a built-in class, or one defined where there is no source
            continue
        if assigned.search(source):
            return True
    return False


def _annotations(klass):
    try:
        return inspect.get_annotations(klass)
    except Exception:  # Python 3.14 evaluates them: a name imported only under TYPE_CHECKING raises
        return {}


def exists(target, scopes=()):
    """Whether ``target`` names something, by its full name or inside one of ``scopes`` (dotted names)."""
    target = target.lstrip(".~")
    return any(resolve(name) is not NOTHING for name in [*(f"{scope}.{target}" for scope in scopes), target])


def scopes_of(node):
    """Where a reference is written, innermost first: its docstring's owner and the modules and classes
    around it (``kcolors.quantize.quantize``, ``kcolors.quantize``, ``kcolors``), then the module and class
    Sphinx is documenting it under (``kcolors.Palette``, whose code is ``kcolors.palette``'s)."""
    owner = re.search(r"docstring of ([\w.]+)", node.source or "")
    parts = owner.group(1).split(".") if owner else []
    scopes = [".".join(parts[:end]) for end in range(len(parts), 0, -1)]
    module, cls = node.get("py:module"), node.get("py:class")
    if module and cls:
        scopes.append(f"{module}.{cls}")
    if module:
        scopes.append(module)
    return scopes


def _missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    if not isinstance(contnode, (nodes.literal, addnodes.literal_strong)):
        return contnode  # a type (numpydoc's free text, "(n, 3) uint8 array", or an annotation): no warning
    if exists(node["reftarget"], scopes_of(node)):
        return contnode  # it exists, outside these pages: plain text, no link
    return None  # names nothing: Sphinx warns (nitpicky), and -W fails the build


def setup(app):
    app.connect("missing-reference", _missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

