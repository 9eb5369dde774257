"""Bytecode rewriting: make a function report the final values of some locals.

Every return instruction (``RETURN_VALUE``, and ``RETURN_CONST`` on 3.12+) is
preceded by a call ``hook.record((var1, var2, ...))`` whose result is discarded, so
the return value never leaves the stack and every return path is covered.  The
hook is reached with ``LOAD_GLOBAL`` of one name put in the function's module
globals (one per function, however often it is captured): plain bytecode, which
``torch.compile`` can follow.

Each captured local is loaded inside an exception-table region of its own, so a
name not assigned (or deleted) on the path taken arrives as ``UNASSIGNED``: it
is reported, never a crash, and the function's own locals are never touched
(``LOAD_FAST`` of an unbound local segfaults on 3.12+; ``LOAD_FAST_CHECK`` raises).

With a single captured name the code can take a fast path that skips the Python
recorder: if ``type(value)`` is ``hook.expected_type``, the value goes straight to
``hook.append`` (a C ``list.append``); otherwise, and always for ``UNASSIGNED``,
``hook.record`` is called.  The recorder decides which type (if any) may bypass
it, so a value that needs converting never does.
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Sequence
from typing import Any

from bytecode import Bytecode, CellVar, ConcreteBytecode, FreeVar, Instr, Label, TryBegin, TryEnd

from .errors import AnycaptureError

__all__ = [
    "UNASSIGNED",
    "HookAttrs",
    "InstrumentationError",
    "capturable_names",
    "instrument_code",
    "resolve_function",
]

_PY311 = sys.version_info < (3, 12)
_PY313 = sys.version_info >= (3, 13)
_RETURNS = frozenset({"RETURN_VALUE", "RETURN_CONST"})


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"<anycapture.{self._name}>"

    def __reduce__(self) -> str:  # keeps identity through copy/pickle
        return self._name


UNASSIGNED = _Sentinel("UNASSIGNED")
"""What the recorder receives for a captured local that is unbound at return."""


class InstrumentationError(AnycaptureError, TypeError):
    """The object cannot be instrumented (a class, generator, builtin, ...)."""


def resolve_function(obj: Any) -> types.FunctionType:
    """Return the plain Python function that owns the locals of ``obj``.

    Unwraps ``staticmethod``, ``classmethod``, bound methods and ``__wrapped__``
    chains (``functools.wraps``, ``torch.no_grad()``); refuses what has no such
    function, naming it.
    """
    seen: set[int] = set()
    current = obj
    while id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (staticmethod, classmethod, types.MethodType)):
            current = current.__func__
        elif isinstance(current, types.FunctionType) and hasattr(current, "__wrapped__"):
            current = current.__wrapped__
        else:
            break
    name = getattr(obj, "__qualname__", None) or repr(obj)
    if inspect.isclass(current):
        raise InstrumentationError(
            f"cannot capture locals of class {name}: decorate one of its methods "
            f"(e.g. {name}.forward) instead"
        )
    if not isinstance(current, types.FunctionType):
        raise InstrumentationError(
            f"cannot capture locals of {name} ({type(current).__name__}): "
            "only Python functions and methods have locals to capture"
        )
    flags = current.__code__.co_flags
    if flags & (inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR):
        raise InstrumentationError(
            f"cannot capture locals of generator function {name}: its locals live "
            "across yields; capture in a plain function it calls instead"
        )
    if flags & (inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE):
        raise InstrumentationError(
            f"cannot capture locals of coroutine function {name}: capture in a "
            "plain function it awaits instead"
        )
    return current


def capturable_names(code: types.CodeType) -> tuple[str, ...]:
    """The names whose final values ``code`` can report."""
    return tuple(dict.fromkeys(code.co_varnames + code.co_cellvars + code.co_freevars))


def _variable(code: types.CodeType, name: str) -> str | CellVar | FreeVar:
    """The bytecode argument naming local ``name`` (fast local, cell or free)."""
    if name in code.co_cellvars:
        return CellVar(name)
    if name in code.co_freevars:
        return FreeVar(name)
    return name


def _safe_load(var: str | CellVar | FreeVar, location: Any, depth: int) -> list[Any]:
    """Push the variable's value, or ``UNASSIGNED`` if it is unbound.

    The load sits in its own exception-table region whose handler drops the
    ``UnboundLocalError``/``NameError`` and pushes the sentinel instead: the
    function's own locals are never touched, and the normal path costs one jump.
    """
    if isinstance(var, str):
        load = Instr("LOAD_FAST" if _PY311 else "LOAD_FAST_CHECK", var, location=location)
    else:
        load = Instr("LOAD_DEREF", var, location=location)
    handler, done = Label(), Label()
    region = TryBegin(handler, push_lasti=False, stack_depth=depth)
    return [
        region,
        load,
        TryEnd(region),
        Instr("JUMP_FORWARD", done, location=location),
        handler,
        Instr("POP_TOP", location=location),
        Instr("LOAD_CONST", UNASSIGNED, location=location),
        done,
    ]


class HookAttrs:
    """Attribute names the instrumented code reads from its one hook global.

    One module global per instrumented function, ``<hook>``, holds an object with
    these attributes; re-pointing them (never the global) switches recording.
    """

    record = "record"  # called with the tuple of final values
    expected_type = "expected_type"  # values of this type skip ``record`` (fast path)
    append = "append"  # where those values go: a C ``list.append``
    type_of = "type_of"  # ``builtins.type``, under a name no module shadows


def _load_global(name: str, location: Any) -> Instr:
    return Instr("LOAD_GLOBAL", (False, name), location=location)


def _load_hook_attr(hook_global: str, attr: str, location: Any) -> list[Instr]:
    arg: Any = attr if _PY311 else (False, attr)
    return [_load_global(hook_global, location), Instr("LOAD_ATTR", arg, location=location)]


def _call_as_method(location: Any) -> list[Instr]:
    """Call ``callable(self)`` from a stack ``callable, self``: the method form of
    ``CALL 0``, which every supported CPython calls that way."""
    prefix = [Instr("PRECALL", 0, location=location)] if _PY311 else []
    return [*prefix, Instr("CALL", 0, location=location)]


def _record_call(hook_global: str, location: Any) -> list[Any]:
    """``hook.record(values)`` with the values tuple on top of the stack."""
    return [
        *_load_hook_attr(hook_global, HookAttrs.record, location),  # values record
        Instr("SWAP", 2, location=location),  # record values
        *_call_as_method(location),
        Instr("POP_TOP", location=location),
    ]


def _type_of_top(hook_global: str, location: Any) -> list[Any]:
    """``type(v)`` of the value on top, kept below it, as a plain one-argument call
    (NULL, callable, argument), which CPython specializes to a bare type lookup
    (``PRECALL_NO_KW_TYPE_1``, ``CALL_TYPE_1``); the method form is a general call.
    From 3.13 the NULL goes above the callable."""
    load_type = _load_hook_attr(hook_global, HookAttrs.type_of, location)
    null = Instr("PUSH_NULL", location=location)
    head = [*load_type, null] if _PY313 else [null, *load_type]
    prefix = [Instr("PRECALL", 1, location=location)] if _PY311 else []
    return [
        *head,  # v NULL type (v type NULL from 3.13)
        Instr("COPY", 3, location=location),  # ... v
        *prefix,
        Instr("CALL", 1, location=location),  # v type(v)
    ]


def _call_fast_path(hook_global: str, var: Any, location: Any, depth: int) -> list[Any]:
    """``v = var; hook.append(v) if type(v) is hook.expected_type else hook.record((v,))``."""
    slow, done = Label(), Label()
    jump_if_false = "POP_JUMP_FORWARD_IF_FALSE" if _PY311 else "POP_JUMP_IF_FALSE"
    return [
        *_safe_load(var, location, depth),  # v
        *_type_of_top(hook_global, location),  # v type(v)
        *_load_hook_attr(hook_global, HookAttrs.expected_type, location),  # v type(v) expected
        Instr("IS_OP", 0, location=location),  # v bool
        Instr(jump_if_false, slow, location=location),  # v
        *_load_hook_attr(hook_global, HookAttrs.append, location),  # v append
        Instr("SWAP", 2, location=location),  # append v
        *_call_as_method(location),  # None
        Instr("POP_TOP", location=location),
        Instr("JUMP_FORWARD", done, location=location),
        slow,
        Instr("BUILD_TUPLE", 1, location=location),  # (v,)
        *_record_call(hook_global, location),
        done,
    ]


def _call_recorder(
    hook_global: str, variables: Sequence[Any], location: Any, depth: int
) -> list[Any]:
    instrs: list[Any] = []
    for i, var in enumerate(variables):
        instrs += _safe_load(var, location, depth + i)
    instrs.append(Instr("BUILD_TUPLE", len(variables), location=location))
    return instrs + _record_call(hook_global, location)


def instrument_code(
    code: types.CodeType, names: Sequence[str], hook_global: str, fast_path: bool = False
) -> types.CodeType:
    """Return a copy of ``code`` that calls ``<hook_global>.record((final values))`` on return.

    ``names`` must all be locals, cell or free variables of ``code``; one that is
    unbound at a return is passed as :data:`UNASSIGNED`.  With ``fast_path`` (one
    name only) values whose type is ``<hook_global>.expected_type`` go to
    ``<hook_global>.append`` without calling ``record`` (see :class:`HookAttrs`).
    """
    if fast_path and len(names) != 1:
        raise ValueError("the fast path records exactly one name")
    missing = [n for n in names if n not in capturable_names(code)]
    if missing:
        raise ValueError(f"{code.co_qualname} has no local named {', '.join(missing)}")
    variables = [_variable(code, name) for name in names]

    bytecode = Bytecode.from_code(code)
    _keep_region_depths(code, bytecode)
    rewritten: list[Any] = []
    open_region: TryBegin | None = None  # the function's own try region we are inside
    renamed: dict[int, TryBegin] = {}  # regions split around our code -> their reopening
    for instr in bytecode:
        if isinstance(instr, TryBegin):
            open_region = instr
        elif isinstance(instr, TryEnd):
            instr = TryEnd(renamed.get(id(instr.entry), instr.entry))
            open_region = None
        if isinstance(instr, Instr) and instr.name in _RETURNS:
            # Our loads need regions of their own, and regions do not nest:
            # close the enclosing one around the inserted code, then reopen it.
            if open_region is not None:
                rewritten.append(TryEnd(renamed.get(id(open_region), open_region)))
            # At a return the stack holds only the value returned (CPython asserts
            # it), so our regions' depths are known exactly.
            depth = 0 if instr.name == "RETURN_CONST" else 1
            if fast_path:
                rewritten += _call_fast_path(hook_global, variables[0], instr.location, depth)
            else:
                rewritten += _call_recorder(hook_global, variables, instr.location, depth)
            if open_region is not None:
                reopened = TryBegin(
                    open_region.target, open_region.push_lasti, open_region.stack_depth
                )
                renamed[id(open_region)] = reopened
                rewritten.append(reopened)
        rewritten.append(instr)
    bytecode.clear()
    bytecode.extend(rewritten)
    # Every region's depth is set: the function's own come from its exception table,
    # ours from the return (see _keep_region_depths).
    return bytecode.to_code(compute_exception_stack_depths=False)


def _keep_region_depths(code: types.CodeType, bytecode: Bytecode) -> None:
    """Give the function's own try regions the stack depths its exception table has.

    ``Bytecode.from_code`` leaves them to be recomputed, and bytecode 0.19's
    recomputation gets some wrong (a handler after nested try/finally inside a loop:
    even a plain round trip then records a wrong value or segfaults on 3.12).  The
    regions come in exception-table order; a table this cannot match is refused.
    """
    regions = [instr for instr in bytecode if isinstance(instr, TryBegin)]
    entries = ConcreteBytecode.from_code(code).exception_table
    if len(regions) != len(entries) or any(
        region.push_lasti != entry.push_lasti
        for region, entry in zip(regions, entries, strict=False)
    ):
        raise InstrumentationError(
            f"cannot instrument {code.co_qualname}: its exception table "
            f"({len(entries)} entries) does not map onto {len(regions)} try regions"
        )
    for region, entry in zip(regions, entries, strict=True):
        region.stack_depth = entry.stack_depth
