"""Execute `nbs/index.ipynb` (saving its outputs) and render it to `README.md`.

nbdev's own `nbdev_readme` needs Quarto, which can't be installed here. Run with a test server up:
`lisette-llama run -- python tools/make_readme.py`.
"""
import os, re, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

root = Path(__file__).resolve().parent.parent
nb_path = root/'nbs'/'index.ipynb'

def is_hidden(cell): return bool(re.search(r'^#\|\s*hide\b', cell.source, re.M))

def strip_directives(src): return '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()

def output_text(o):
    "Plain-text form of one saved output, or None for outputs a README can't show."
    if o.get('output_type') == 'stream': return ''.join(o['text']) if o.get('name') != 'stderr' else None
    data = o.get('data', {})
    if 'text/markdown' in data: return None
    return ''.join(data['text/plain']) if 'text/plain' in data else None

def render(nb) -> str:
    "Markdown for the notebook: markdown cells as they are, code cells fenced, with their text outputs."
    out = []
    for c in nb.cells:
        if c.cell_type == 'markdown': out.append(re.sub(r'^> ', '> ', c.source))
        elif c.cell_type == 'code' and not is_hidden(c):
            out.append(f"```python\n{strip_directives(c.source)}\n```")
            texts = [t for t in map(output_text, c.get('outputs', [])) if t]
            if texts: out.append('```\n' + '\n'.join(t.rstrip() for t in texts) + '\n```')
    return '\n\n'.join(out) + '\n'

if __name__ == '__main__':
    os.chdir(nb_path.parent)
    nb = read_nb(nb_path)
    CaptureShell().run_all(nb, exc_stop=True)
    write_nb(nb, nb_path)
    (root/'README.md').write_text(render(nb))
    print(f'wrote {root/"README.md"}', file=sys.stderr)
