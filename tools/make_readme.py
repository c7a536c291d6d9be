"""Render `nbs/index.ipynb`, with the outputs saved in it, to `README.md`.

nbdev's own `nbdev_readme` needs Quarto, which can't be installed here. This needs no server: the outputs come
from the last `tools/run_nbs.py` run, so the README shows exactly what the notebook does.

    python tools/make_readme.py
"""
import re, sys
from pathlib import Path
import nbformat

root = Path(__file__).resolve().parent.parent
nb_path = root/'nbs'/'index.ipynb'

def directives(src) -> set: return set(re.findall(r'^#\|\s*(.+?)\s*$', src, re.M))
def is_hidden(cell) -> bool: return 'hide' in directives(cell.source)
def strip_directives(src) -> str: return '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()

def output_md(o) -> str|None:
    "Markdown for one saved output: rich markdown as it is, text fenced, anything else (images, stderr) left out."
    if o.get('output_type') == 'stream': return None if o.get('name') == 'stderr' else f"```\n{o['text'].rstrip()}\n```"
    data = o.get('data', {})
    if 'text/markdown' in data: return data['text/markdown'].strip()
    return f"```\n{data['text/plain'].rstrip()}\n```" if 'text/plain' in data else None

def render(nb) -> str:
    "Markdown for the notebook: markdown cells as they are, code cells fenced, then their outputs."
    out = []
    for c in nb.cells:
        if c.cell_type == 'markdown': out.append(c.source)
        elif c.cell_type == 'code' and not is_hidden(c):
            if strip_directives(c.source): out.append(f"```python\n{strip_directives(c.source)}\n```")
            if 'output: false' not in directives(c.source): out += [s for s in map(output_md, c.get('outputs', [])) if s]
    return '\n\n'.join(out) + '\n'

if __name__ == '__main__':
    (root/'README.md').write_text(render(nbformat.read(nb_path, as_version=4)))
    print(f'wrote {root/"README.md"}', file=sys.stderr)
