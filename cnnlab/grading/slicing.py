"""Which instructor cells a grading run may leave out, so that it costs what the grade needs.

A lab notebook teaches with cells the grade never looks at: public checks, long training
runs, figures. The instructors mark the ones a grading run may leave out with the cell
metadata ``{"cnnlab": {"grading": "skip"}}`` in the solution (``cnnlab assign`` copies it
into the lab); check cells (``{"cnnlab": {"check": ...}}``) may always be left out, since
they only print. A submission cannot mark anything: the grader takes every instructor cell,
metadata included, from its own copy of the lab.

A marked cell is still run when anything that runs after it may need it:

- when it is the anchor of an export (the export reads what it made);
- when a later cell that runs reads a name it binds (found by parsing the cells, IPython
  magics included), repeated until nothing changes;
- when a later cell that runs cannot be parsed as plain Python (IPython magics and shell
  escapes included: a magic runs a string of code), is very long, or reaches names
  indirectly (``globals()``, ``exec``, ``get_ipython()``...): then every earlier cell runs.

Parsing runs in the grader's parent process before any sandbox exists, so it never hands a
cell to anything whose cost a submission could inflate (IPython's own input transformer
re-scans a cell once per magic): a cell is parsed by Python's ``ast`` alone, within a size
cap, and anything unusual makes it opaque.

Side effects that bind no name (seeding a random generator, say) are the instructors'
responsibility: such a cell must not be marked. ``tests/grading`` grades stored submissions
with and without leaving cells out and requires identical scores.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
from dataclasses import dataclass

INDIRECT = {"globals", "locals", "vars", "exec", "eval", "get_ipython", "__import__", "compile", "__builtins__"}
BUILTIN_NAMES = set(dir(builtins))
MAX_PARSED = 100_000  # characters: a longer cell is opaque, never parsed
IPYTHON_SYNTAX = re.compile(r"^\s*[!%]|\?\s*$", re.MULTILINE)  # magics, shell escapes, help


@dataclass
class CellNames:
    binds: set[str]
    reads: set[str]
    opaque: bool  # unparseable, a star import, or indirect access to names


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
    binds, opaque = set(), False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                binds.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            binds.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    opaque = True
                binds.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            binds.update(node.names)
    if reads & INDIRECT:
        opaque = True
    return CellNames(binds, reads - BUILTIN_NAMES, opaque)


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
                if everything or names[index].binds & needed or names[index].opaque:
                    skip.discard(index)
                    changed = True
                    break
                continue
            needed |= names[index].reads
            everything = everything or names[index].opaque
    return skip
