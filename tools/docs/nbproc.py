"""Run nbdev's own notebook processing (what `nbdev_proc_nbs` does) into `_proc/`, with one change.

nbdev executes every cell that contains an import, out of context and without a model server, to get the names
its `show_doc` cells need. A cell that mixes imports with other code (`from x import y` then a call to the server)
then fails, and `nbdev_proc_nbs` stops the whole build. Here such a cell runs only its import statements, keeps its
saved outputs, and is reported on stderr with the fix (move the imports to a cell of their own). Everything else is
nbdev's: the same processors (`FilterDefaults`), the same `show_doc` cells, the same doc links.

`show_doc` renders with `ApiRenderer`: nbdev's markdown (signature, docstring, source link), with the docments
comments shown as a parameter table (type, default, details) as nbdev's Quarto sites used to. A parameter with no
comment takes its base class's (so `AsyncChat` documents the `Chat` arguments it takes through `delegates`).

    python tools/docs/nbproc.py [DIR]    # processes nbs/ (or the notebooks in DIR) into _proc/ (from scratch)
"""
import ast, re, sys, inspect, warnings
from pathlib import Path

import nbdev.serve, nbdev.showdoc, nbdev.processors as P
from fastcore.docments import docments

def _table_cell(s) -> str: return str(s).replace('|', '\\|').replace('\n', '<br>')
def _code(s) -> str: return f'`` {s} ``' if '`' in s else f'`{s}`'
def _nm(o) -> str: return '' if o is inspect.Parameter.empty else getattr(o, '__name__', None) or str(o)
def _default(o, mx=32) -> str:
    "A default value for the table, long ones cut short (the signature above has them in full)."
    s = '' if o is inspect.Parameter.empty else getattr(o, '__name__', None) or repr(o)
    return s if len(s) <= mx else s[:mx-1] + '…'

def owner_class(f):
    "The class a function was defined in (or `@patch`ed onto), from its qualified name; else None."
    *path, _ = getattr(f, '__qualname__', '').split('.')
    o = sys.modules.get(getattr(f, '__module__', None))
    for p in path: o = getattr(o, p, None)
    return o if path and inspect.isclass(o) else None

def base_docs(sym) -> dict:
    "The docments comments of `sym`'s namesake in its base classes (a class's: their `__init__`), by parameter."
    cls,name = (sym,'__init__') if inspect.isclass(sym) else (owner_class(sym), getattr(sym, '__name__', ''))
    res = {}
    for b in (cls.__mro__[1:] if cls else []):
        f = vars(b).get(name)
        if b is object or not callable(f): continue
        for k,v in docments(f).items():
            if v and not res.get(k): res[k] = v
    return res

def param_table(sym) -> str:
    "A markdown table of `sym`'s parameters (type, default, docments comment); '' if none has a comment."
    try: dm = docments(sym, full=True)
    except Exception: return ''
    dm.pop('self', None)
    ret,inherited = dm.pop('return', {}),base_docs(sym)
    pre = {inspect.Parameter.VAR_POSITIONAL:'*', inspect.Parameter.VAR_KEYWORD:'**'}
    rows = [(_code(pre.get(p.get('kind'), '')+k), _nm(p.anno), _default(p.default), p.docment or inherited.get(k) or '')
            for k,p in dm.items()]
    if ret and (ret.docment or ret.anno is not inspect.Parameter.empty):
        rows.append(('**Returns**', _nm(ret.anno), '', ret.docment or ''))
    if not any(r[3] for r in rows): return ''
    cols = [i for i in (1,2,3) if any(r[i] for r in rows)]
    hdr = ['', *[('Type','Default','Details')[i-1] for i in cols]]
    out = ['| ' + ' | '.join(f'**{h}**' if h else ' ' for h in hdr) + ' |', '|' + '|'.join('---' for _ in hdr) + '|']
    for r in rows:
        cells = [r[0]] + [_table_cell(r[i]) if i == 3 else (_code(r[i]) if r[i] else '') for i in cols]
        out.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(out)

class ApiRenderer(nbdev.showdoc.BasicMarkdownRenderer):
    "nbdev's `show_doc` markdown, with the docments comments moved from the signature into a parameter table."
    def __init__(self, sym, name=None, title_level=3, maxline=72):  # 72: a signature that fits the page's width
        super().__init__(sym, name=name, title_level=title_level, maxline=maxline)
        self.tbl = param_table(self.sym)
        if self.tbl:
            for v in self.dm.dm.values(): v['docment'] = None
    def _repr_markdown_(self):
        md = super()._repr_markdown_() + (f'\n\n{self.tbl}' if self.tbl else '')
        return re.sub(r' at 0x[0-9a-f]+>', '>', md)  # a default's repr with its memory address would churn

class exec_show_docs(P.exec_show_docs):
    "nbdev's `exec_show_docs` with our renderer, except that a cell mixing imports with other code runs only its imports."
    def begin(self):
        nbdev.showdoc.BasicMarkdownRenderer = ApiRenderer  # `show_doc`'s default renderer, looked up when called
        super().begin()

    def __call__(self, cell):
        if not self.nb.has_docs_ or not hasattr(self, 'k'): return
        if mixed_imports(cell) and quiet_do_eval(cell):
            imps = import_lines(cell.source)
            fix = f"move `{imps.splitlines()[0]}` to a cell of its own" if imps else "move its imports to a cell of their own"
            print(f"warning: {Path(self.nb.path_).name}: cell id={cell.get('id')} mixes imports with other code; nbdev "
                  f"would run all of it, without a server. Ran only its top-level imports. Fix: {fix}.", file=sys.stderr)
            if imps: self.k.run(imps)
            if self.k.exc: raise Exception(f"Error in {self.nb.path_}, cell id={cell.get('id')}:\n{imps}") from self.k.exc
            return
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # nbdev's own "imports and other code" warning: we've handled those
            return super().__call__(cell)

def quiet_do_eval(cell):
    "nbdev's test for 'execute this cell for the docs', without its warning."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return P._do_eval(cell)

def mixed_imports(cell) -> bool:
    "Is `cell` a code cell, not exported and not `show_doc`, with imports next to other statements?"
    if cell.cell_type != 'code' or set(cell.directives_) & {'export', 'exports', 'exporti', 'exec_doc'}: return False
    try: tree = ast.parse(cell.source)
    except SyntaxError: return False
    imp = (ast.Import, ast.ImportFrom)
    return any(isinstance(o, imp) for o in ast.walk(tree)) and not all(isinstance(o, imp) for o in tree.body)

def import_lines(src) -> str:
    "Only the top-level import statements of `src`."
    return '\n'.join(ast.get_source_segment(src, o) for o in ast.parse(src).body if isinstance(o, (ast.Import, ast.ImportFrom)))

class FilterDefaults(P.FilterDefaults):
    "nbdev's processors with our `exec_show_docs`."
    def base_procs(self): return [exec_show_docs if p is P.exec_show_docs else p for p in super().base_procs()]
    def __call__(self, nb):
        nb.path_ = getattr(nb, 'path_', '?')
        return super().__call__(nb)

if __name__ == '__main__':
    sys.path.insert(0, str(Path(__file__).parent))
    import nbproc  # by module name, so that nbdev's spawned workers can unpickle our class
    nbdev.serve.FilterDefaults = nbproc.FilterDefaults
    nbdev.serve.proc_nbs(sys.argv[1] if len(sys.argv) > 1 else '', force=True, n_workers=2)
