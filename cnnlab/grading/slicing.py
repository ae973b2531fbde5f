"""Which instructor cells a grading run may leave out, so that it costs what the grade needs.

A lab notebook teaches with cells the grade never looks at: public checks, long training
runs, figures. The instructors mark the ones a grading run may leave out with the cell
metadata ``{"cnnlab": {"grading": "skip"}}`` in the solution (``cnnlab assign`` copies it
into the lab); check cells (``{"cnnlab": {"check": ...}}``) may always be left out, since
they only print. A submission cannot mark anything: the grader takes every instructor cell,
metadata included, from its own copy of the lab.

A marked cell is still run when anything that runs after it may need it:

- when it is the anchor of an export (the export reads what it made);
- when a later cell that runs reads a name it binds (found by parsing the cells; ``del x``
  and ``x += 1`` read x; builtins count, since a cell may rebind one), repeated until
  nothing changes;
- when a later cell that runs cannot be parsed as plain Python (IPython magics and shell
  escapes included: a magic runs a string of code), is very long, or reaches names
  indirectly (``globals()``, ``exec``, ``get_ipython()``, IPython's ``Out`` and ``_``, the
  modules and attributes that lead to frames and namespaces: ``sys``, ``inspect``,
  ``__globals__``...; see :data:`INDIRECT`): then every earlier cell runs.

Parsing runs in the grader's parent process before any sandbox exists, so it never hands a
cell to anything whose cost a submission could inflate (IPython's own input transformer
re-scans a cell once per magic): a cell is parsed by Python's ``ast`` alone, within a size
cap, and anything unusual makes it opaque.

Side effects that bind no name, and names a marked cell reaches indirectly, are the
instructors' responsibility: a marked cell that seeds a random generator is safe only because
every export seeds what it measures itself. ``tests/grading`` grades stored submissions with
and without leaving cells out and requires identical scores.
"""

from __future__ import annotations

import ast
import re
import symtable
from dataclasses import dataclass

# Ways to reach the notebook's names other than by writing them: such a cell may read (or
# write) any name, so everything before it runs. Builtins, IPython's own names...
INDIRECT = {
    "globals", "locals", "vars", "dir", "exec", "eval", "compile", "__import__", "__builtins__", "get_ipython",
    "get_type_hints",  # evaluates string annotations in the caller's globals
    "attrgetter", "methodcaller",  # getattr by a string, like getattr
}  # fmt: skip
IPYTHON_NAMES = {"In", "Out", "_oh", "_ih", "_dh", "_", "__", "___"}  # IPython's input and output history
IPYTHON_HISTORY = re.compile(r"^_(i{1,3}|i?\d+)$")  # _i, _ii, _iii, _i5, _5
# ...modules that hand out frames, modules or the interpreter's objects (sys.modules["__main__"],
# inspect.currentframe(), gc.get_objects())...
# (pickle and its kin resolve "__main__.name" strings when they load)
INDIRECT_MODULES = {
    "sys", "inspect", "builtins", "__main__", "gc", "ctypes", "importlib", "traceback", "typing", "operator",
    "pickle", "_pickle", "copyreg", "shelve", "dill", "cloudpickle", "joblib",
    # ...and those that run or resolve code in __main__'s namespace
    "cProfile", "profile", "bdb", "pdb", "pkgutil", "rlcompleter", "unittest", "doctest", "code", "codeop", "runpy",
}  # fmt: skip
# Text naming a namespace ("{0.__globals__[x]}".format(f), resolve_name("__main__:x"))
INDIRECT_TEXT = (
    "__globals__",
    "__dict__",
    "__self__",
    "__builtins__",
    "__main__",
    "f_globals",
    "f_locals",
    "__closure__",
)
# ...and attributes that lead to a namespace: a function's globals, a frame's, a module's dict,
# a builtin's module (print.__self__), a string evaluated in the caller's frame (pandas' eval).
INDIRECT_ATTRIBUTES = {
    "__globals__", "__dict__", "__self__", "__builtins__", "__closure__", "__code__", "__subclasses__", "__getattribute__",
    "f_globals", "f_locals", "f_back", "f_builtins", "gi_frame", "cr_frame", "ag_frame", "tb_frame", "_getframe",
    "globals", "locals", "eval", "exec", "get_type_hints", "modules", "attrgetter", "methodcaller", "currentframe",
}  # fmt: skip
# getattr and friends with a name that is not written out could reach any of the above; so
# could they passed on as values (g = getattr, map(getattr, ...))
BY_NAME = {"getattr", "setattr", "delattr"}
MAX_PARSED = 100_000  # characters: a longer cell is opaque, never parsed
# magics, shell escapes, help; [ \t] and not \s, which would let one line's match run on over
# the following empty lines (a cell of newlines would then cost the square of its length); a ? after a # is
# a comment's, not help
IPYTHON_SYNTAX = re.compile(r"^[ \t]*[!%]|^[^#\n]*\?[ \t]*$", re.MULTILINE)


@dataclass
class CellNames:
    binds: set[str]
    reads: set[str]  # builtins included: a cell may rebind one (`input = 3`)
    opaque: bool  # unparseable or a star import: what it binds is unknown
    indirect: bool = False  # reaches names without writing them (see INDIRECT): may read or write any


def _outer_reads(table: symtable.SymbolTable) -> set[str]:
    """The names a scope and the scopes inside it read from outside themselves: everything the
    cell's top level reads, and the global names of its functions, classes and comprehensions
    (a function's own parameters and locals, and those of the functions around it, are not the
    notebook's names)."""
    # a class body reads a global of the name it is about to bind (class A: x = x + 1): count
    # every name a module or a class body references
    top = table.get_type() in ("module", "class")
    reads = {
        symbol.get_name()
        for symbol in table.get_symbols()
        # a free name is an enclosing function's; a global a function assigns may be read first (+=)
        if (symbol.is_referenced() and (top or symbol.is_global())) or symbol.is_declared_global()
    }
    for child in table.get_children():
        reads |= _outer_reads(child)
    return reads


def _outside_functions(tree: ast.AST):
    """The nodes of a cell's own scope: not those inside its functions, lambdas and classes."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                todo.append(child)


def names_of(source: str) -> CellNames:
    """The names a cell binds (anywhere in it, which keeps more cells than needed, never fewer)
    and the names it reads from the notebook: at top level, and inside its functions and
    classes the names that are not their own (they read them when called)."""
    if len(source) > MAX_PARSED or IPYTHON_SYNTAX.search(source):
        return CellNames(set(), set(), opaque=True)
    try:
        tree = ast.parse(source)
        reads = _outer_reads(symtable.symtable(source, "<cell>", "exec"))
    except Exception:  # SyntaxError, RecursionError, MemoryError...: not plain Python
        return CellNames(set(), set(), opaque=True)
    binds, opaque, indirect = set(), False, False
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                binds.add(node.id)
            elif node.id in BY_NAME and id(node) not in called:
                indirect = True
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(text in node.value for text in INDIRECT_TEXT):
                indirect = True
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            binds.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            binds.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            binds.add(node.rest)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(module.split(".")[0] in INDIRECT_MODULES for module in modules):
                indirect = True
            for alias in node.names:
                if alias.name == "*":
                    opaque = True
                binds.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            binds.update(node.names)
        elif isinstance(node, ast.Attribute) and node.attr in INDIRECT_ATTRIBUTES:
            indirect = True
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BY_NAME:
            name = node.args[1] if len(node.args) > 1 else None
            if (
                not (isinstance(name, ast.Constant) and isinstance(name.value, str))
                or name.value in INDIRECT_ATTRIBUTES
            ):
                indirect = True
    for node in _outside_functions(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Del):
            reads.add(node.id)  # `del x` needs the x an earlier cell made
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            reads.add(node.target.id)  # `x += 1` reads x first (symtable does not say so at top level)
    # IPython's history names, unless the cell binds them itself (`for _i in ...`)
    history = {name for name in reads - binds if name in IPYTHON_NAMES or IPYTHON_HISTORY.match(name)}
    indirect = indirect or bool(reads & INDIRECT or history)
    return CellNames(binds, reads, opaque, indirect)


def cells_to_skip(cells: list[tuple[str, bool, str]]) -> set[int]:
    """Indices of the cells a grading run leaves out.

    Parameters
    ----------
    cells : for each code cell of the assembled notebook, in order: ``(source, skippable,
        kind)`` where ``skippable`` says the instructors allow leaving it out (marked, or a
        check cell, and not an export anchor), and ``kind`` is free text for diagnostics.
    """
    names = [names_of(source) for source, _, _ in cells]
    skip = {i for i, (_, skippable, _) in enumerate(cells) if skippable}
    changed = True
    while changed:
        changed = False
        needed: set[str] = set()
        everything = False
        for index in reversed(range(len(cells))):
            if index in skip:
                # an instructors' marked cell: what it binds directly counts (reaching names
                # indirectly in a marked cell is theirs to avoid, like other side effects)
                if everything or names[index].binds & needed or names[index].opaque:
                    skip.discard(index)
                    changed = True
                    break
                continue
            needed |= names[index].reads
            everything = everything or names[index].opaque or names[index].indirect
    return skip
