"""Turn nbdev's processed notebooks (`_proc/*.ipynb`) into markdown pages and a config for mkdocs-material.

`nbdev_proc_nbs` (here `nbproc.py`) leaves notebooks meant for Quarto: front matter in a raw cell, `#|` directives
for Quarto (`echo: false`, `output: asis`, `code-fold`), `show_doc` cells whose markdown output is the API block,
Quarto attributes after links (`{target="_blank"}`), `:::` fenced divs, and doc links to the published site.
This writes what mkdocs needs instead, one page per notebook, plus a page per module for the "source" links:

    python tools/docs/nb2md.py _proc _proc/mkdocs _docs   # then: mkdocs build -f _proc/mkdocs/mkdocs.yml

Nothing here runs a notebook: pages show the outputs saved in them. Code outputs prefer `text/markdown`, then
`text/html`, images, and `text/plain`, as Jupyter does.
"""
from __future__ import annotations
import base64, html, json, re, shutil, sys, warnings
from pathlib import Path

import nbformat, yaml
from nbdev.config import get_config

HERE = Path(__file__).resolve().parent
MIME_ORDER = ('text/markdown', 'text/html', 'image/svg+xml', 'image/png', 'image/jpeg', 'image/gif', 'text/plain')
HIDE_DIRS = {'hide', 'export', 'exporti', 'default_exp', 'hide_input'}
_re_ansi = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')
_re_fence = re.compile(r'^\s*(`{3,}|~{3,})')
_re_item = re.compile(r'^([-*+]|\d+[.)])\s+\S')

# --- small helpers ----------------------------------------------------------------------------------------------

def fence(text, lang='') -> str:
    "`text` in a fenced block longer than any backtick run inside it."
    n = max([3] + [len(m) + 1 for m in re.findall(r'`{3,}', text)])
    return f"{'`'*n}{lang}\n{text.rstrip()}\n{'`'*n}"

def div(cls, body, md=True) -> str:
    "`body` in a `<div class=cls>`; markdown inside is rendered when `md`."
    attr = ' markdown="1"' if md else ''
    return f'<div class="{cls}"{attr}>\n\n{body.strip()}\n\n</div>'

def directives(src) -> tuple[dict, str]:
    "The leading `#|` directives of a code cell as a dict, and the source without them."
    dirs,lines = {},src.splitlines()
    while lines and (lines[0].startswith('#|') or not lines[0].strip()):
        l = lines.pop(0)[2:].strip()
        if not l: continue
        k,_,v = l.partition(':') if ':' in l.split()[0] else (l.split()[0], '', ' '.join(l.split()[1:]))
        dirs[k.strip().lower()] = v.strip().strip('"\'')
    return dirs, '\n'.join(lines).strip('\n')

def falsy(v) -> bool: return str(v).strip().lower() in ('false', 'no', '0')

def page_name(nb_path, fm) -> str:
    "The page's file stem: nbdev's `output-file` (`03_chat.ipynb` -> `chat`)."
    out = fm.get('output-file')
    return Path(out).stem if out else re.sub(r'^\d+[a-z]?_', '', Path(nb_path).stem)

# --- markdown: links, Quarto-isms, HTML ------------------------------------------------------------------------

_re_qattr = re.compile(r'(\]\([^)\s]*(?:\s+"[^"]*")?\))\{([^}\n]*)\}')

def quarto_attrs(m) -> str:
    "`[x](u){target=... style=...}` -> `[x](u){: target=... }`: keep what attr_list understands, drop styles."
    keep = [a for a in re.findall(r'(\.[\w-]+|#[\w-]+|(?:target|width|height|title)="[^"]*"|(?:width|height)=\S+)', m[2])]
    return m[1] + ('{: ' + ' '.join(keep) + ' }' if keep else '')

def in_fence(state, line):
    "The code-fence state after `line`: None outside a fence, else the fence that opened it."
    m = _re_fence.match(line)
    if state is None: return m[1] if m else None
    return None if m and m[1].startswith(state) and not line.strip()[len(m[1]):].strip() else state

def callouts(md) -> str:
    "Quarto fenced divs: `::: {.callout-note}` becomes an admonition, any other `::: {.x}` a `<div class=x>`."
    out,stack,fc = [],[],None
    for l in md.splitlines():
        ind = '    ' * stack.count('adm')
        m = None if fc else re.match(r'^\s*:::+\s*(\{([^}]*)\}|[\w-]+)?\s*$', l)
        fc = in_fence(fc, l)
        if not m: out.append(ind+l if l.strip() else l); continue
        if m[1] is None:  # a closing fence
            if stack: out.append('</div>' if stack.pop() == 'div' else '')
            continue
        attrs = m[2] if m[2] is not None else '.'+m[1]
        if call := re.search(r'\.callout-(\w+)', attrs):
            kind = {'important':'danger', 'caution':'warning'}.get(call[1], call[1])
            title = re.search(r'title="([^"]*)"', attrs)
            out.append(ind + ('???' if 'collapse="true"' in attrs else '!!!') + f' {kind}' + (f' "{title[1]}"' if title else ''))
            stack.append('adm')
        else:
            cls = ' '.join(re.findall(r'[.]([\w-]+)', attrs))
            out.append(ind + f'<div class="{cls}" markdown="1">')
            stack.append('div')
    return '\n'.join(out + ['</div>' for k in reversed(stack) if k == 'div'])

def lists_need_blank_line(md) -> str:
    "Python-Markdown (unlike Jupyter's CommonMark) wants a blank line between a paragraph and a list."
    out,fc = [],None
    for l in md.splitlines():
        if not fc and _re_item.match(l) and out and out[-1].strip() and not _re_item.match(out[-1]) \
           and not out[-1].startswith((' ', '\t', '|', '<', '#', '>')): out.append('')
        fc = in_fence(fc, l)
        out.append(l)
    return '\n'.join(out)

def md_in_html(md) -> str:
    "Let markdown inside `<details>` and `<div>` blocks render (as it does in Jupyter)."
    return re.sub(r'<(details|div)(?![^>]*\bmarkdown=)([^>]*)>', r'<\1\2 markdown="1">', md)

def outside_fences(md, f) -> str:
    "Apply `f` to the parts of `md` that are not fenced code."
    def g(chunk):
        out = f(chunk)
        return out + '\n' if chunk.endswith('\n') and not out.endswith('\n') else out
    res,buf,fc = [],[],None
    for l in md.splitlines(keepends=True):
        new = in_fence(fc, l)
        if fc is None and new is not None: res.append(g(''.join(buf))); buf = []
        buf.append(l)
        if fc is not None and new is None: res.append(''.join(buf)); buf = []
        fc = new
    res.append(''.join(buf) if fc else g(''.join(buf)))
    return ''.join(res)

# --- one notebook -----------------------------------------------------------------------------------------------

class Page:
    "The markdown of one processed notebook."
    def __init__(self, site:Site, path:Path):
        self.site,self.path = site,path
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # cells nbdev inserted have no ids
            self.nb = nbformat.read(path, as_version=4)
        self.fm = self.front_matter()
        self.name = page_name(path, self.fm)
        self.title = str(self.fm.get('title') or self.name)
        self.plain_title = self.title.replace('`', '')  # for the sidebar and <title>, which show no markdown
        self.n_files = 0

    def front_matter(self) -> dict:
        "nbdev's front matter (the first raw cell), removed from the cells."
        cells = self.nb.cells
        fm = {}
        if cells and cells[0].cell_type == 'raw' and cells[0].source.strip().startswith('---'):
            fm = yaml.safe_load(cells.pop(0).source.strip().strip('-')) or {}
            fm = fm if isinstance(fm, dict) else {}
        if fm.get('description') and (full := full_description(self.site.nbs/self.path.name)):
            if full.startswith(str(fm['description']).rstrip()): fm['description'] = full
        return fm

    def api_anchors(self) -> set:
        "The anchors of the API blocks on this page (nbdev's: the lowercased qualified name)."
        return {a for c in self.nb.cells if is_show_doc(c) for a in [api_parts(out_markdown(c))[1]] if a}

    # markdown from the notebook's authors, or from outputs
    def fix_md(self, md, cell=None) -> str:
        def f(s):
            s = _re_qattr.sub(quarto_attrs, s)
            s = self.images(s, cell)
            return md_in_html(lists_need_blank_line(s))
        md = re.sub(r'<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->\s*', '', md)
        return outside_fences(callouts(md), f)

    def images(self, md, cell) -> str:
        "Copy images the markdown points at (beside the notebook, or cell attachments) into the site."
        def save(ref):
            if ref.startswith('attachment:') and cell is not None:
                att = (cell.get('attachments') or {}).get(ref[len('attachment:'):], {})
                mime = next((m for m in att if m.startswith('image/')), None)
                if not mime: return ref
                data = base64.b64decode(att[mime]) if mime != 'image/svg+xml' else att[mime].encode()
                return self.write_file(data, '.'+mime.split('/')[1].split('+')[0])
            if re.match(r'^(\w+:|/|#|data:)', ref): return ref
            src = (self.site.nbs/ref).resolve()
            if not src.is_file(): return ref
            return self.write_file(src.read_bytes(), src.suffix, src.name)
        md = re.sub(r'(!\[[^\]]*\]\()([^)\s]+)', lambda m: m[1]+save(m[2]), md)
        return re.sub(r'(<img\b[^>]*\bsrc=")([^"]+)', lambda m: m[1]+save(m[2]), md)

    def write_file(self, data:bytes, suffix, name=None) -> str:
        "Save `data` under `<page>_files/`; its path relative to the page."
        self.n_files += 1
        name = name or f'output_{self.n_files}{suffix}'
        p = self.site.docs/f'{self.name}_files'/name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return f'{self.name}_files/{name}'

    def outputs(self, cell) -> list[str]:
        "Markdown for each of a code cell's saved outputs (streams of one name merged)."
        res = []
        for o in cell.get('outputs', []):
            t = o.get('output_type')
            if t == 'stream':
                txt = _re_ansi.sub('', o.get('text', ''))
                if res and res[-1][0] == o.get('name'): res[-1][1].append(txt)
                else: res.append([o.get('name'), [txt]])
            elif t == 'error':
                res.append(['error', [_re_ansi.sub('', '\n'.join(o.get('traceback', [])) or f"{o.get('ename')}: {o.get('evalue')}")]])
            elif t in ('execute_result', 'display_data'): res.append(['data', o])
        out = []
        for kind,v in res:
            if kind == 'data':
                if (s := self.data(v)): out.append(s)
            elif (txt := ''.join(v).strip('\n')): out.append(div(f'nb-output nb-{kind}', fence(txt, 'text')))
        return out

    def data(self, o) -> str|None:
        "Markdown for one rich output: the first of `MIME_ORDER` it has."
        d = o.get('data', {})
        mime = next((m for m in MIME_ORDER if m in d), None)
        if mime is None: return None
        v = d[mime] if isinstance(d[mime], str) else ''.join(d[mime])
        if mime == 'text/markdown': return div('nb-output nb-markdown', self.fix_md(v))
        if mime == 'text/html': return div('nb-output nb-html', v, md=False)
        if mime == 'text/plain': return div('nb-output nb-text', fence(_re_ansi.sub('', v), 'text'))
        data = v.encode() if mime == 'image/svg+xml' else base64.b64decode(v)
        src = self.write_file(data, '.'+mime.split('/')[1].split('+')[0])
        size = ''.join(f' {k}="{v}"' for k,v in (o.get('metadata', {}).get(mime) or {}).items() if k in ('width', 'height'))
        return div('nb-output nb-image', f'<img src="{src}"{size} alt="output image">', md=False)

    def code(self, cell) -> list[str]:
        dirs,src = directives(cell.source)
        if HIDE_DIRS & set(dirs) or falsy(dirs.get('include', 'true')): return []
        if is_show_doc(cell): return [self.api_block(out_markdown(cell))] if out_markdown(cell) else []
        res = []
        if src.strip() and not falsy(dirs.get('echo', 'true')):
            block = fence(src, cell.metadata.get('language', 'python'))
            if 'code-fold' in dirs:
                summ = html.escape(dirs.get('code-summary') or 'Code')
                block = f'<details class="nb-fold" markdown="1"{" open" if dirs["code-fold"]=="show" else ""}>\n<summary>{summ}</summary>\n\n{block}\n\n</details>'
            res.append(block)
        if not falsy(dirs.get('output', 'true')): res += self.outputs(cell)
        return res

    def api_block(self, md) -> str:
        "nbdev's show_doc markdown as an API block: anchored heading, signature, docstring, table, source link."
        body,anchor,name,src = api_parts(md)
        esc = lambda s: re.sub(r'([\\`*_{}\[\]<>#+!|])', r'\\\1', s)
        head = f"### {esc(name)} {{: #{esc(anchor)} }}"
        link = f'<a class="api-source" href="{src}" title="source">source</a>\n\n' if src else ''
        return div('api-block', f'{link}{head}\n\n{self.fix_md(body)}')

    def markdown(self) -> str:
        out = [f'---\ntitle: {json.dumps(self.plain_title)}\n---', f'# {self.title}']
        if desc := self.fm.get('description'): out.append(f'{desc}\n{{: .nb-description }}')
        for c in self.nb.cells:
            if c.cell_type == 'markdown': out.append(self.fix_md(c.source, c))
            elif c.cell_type == 'code': out += self.code(c)
            elif c.cell_type == 'raw' and c.source.strip() and not c.source.lstrip().startswith('---'): out.append(c.source)
        return self.site.links('\n\n'.join(s for s in out if s.strip()) + '\n')

def full_description(nb_path) -> str|None:
    "The whole `> description` under the notebook's title: nbdev keeps only its first line."
    if not nb_path.exists(): return None
    nb = json.loads(nb_path.read_text())
    first = next((''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown'), '')
    m = re.search(r'^#\s+.*\n+((?:>.*(?:\n|$))+)', first, re.M)
    return ' '.join(l.lstrip('>').strip() for l in m[1].splitlines()) if m else None

def is_show_doc(cell) -> bool:
    return cell.cell_type == 'code' and bool(cell.get('has_sd') or re.match(r'^show_doc\(', directives(cell.source)[1]))

def out_markdown(cell) -> str:
    "The markdown a `show_doc` cell displayed."
    for o in cell.get('outputs', []):
        md = o.get('data', {}).get('text/markdown')
        if md: return md if isinstance(md, str) else ''.join(md)
    return ''

def api_parts(md) -> tuple:
    "Split show_doc markdown: (the rest, anchor, name, source url)."
    src = re.search(r'\[source\]\(([^)]+)\)(\{[^}]*\})?', md)
    md = md[src.end():] if src else md
    head = re.search(r'^#{1,6}\s+(.+?)\s*$', md, re.M)
    name = head[1].strip() if head else ''
    rest = md[head.end():] if head else md
    return rest.strip(), name.lower(), name, src[1] if src else None

# --- links between pages, and to the source -----------------------------------------------------------------------

_re_link = re.compile(r'(\]\(\s*|href=")([^)"\s]+)')

class Site:
    "What the pages share: settings, the pages and their API anchors, the modules; and how links resolve."
    def __init__(self, out:Path):
        self.cfg = get_config()
        self.docs = out/'docs'
        self.root = Path(self.cfg.config_path).resolve()
        self.nbs = Path(self.cfg.nbs_path)
        self.doc_url = f"{self.cfg.doc_host.rstrip('/')}{self.cfg.doc_baseurl.rstrip('/')}/"
        self.src_url = f"{self.cfg.git_url.rstrip('/')}/blob/{self.cfg.branch}/"
        self.anchors = {}  # page stem -> the API anchors on it
        self.modules = {}  # repo-relative .py path -> the stem of its source page

    def links(self, md) -> str:
        "Every link in a page's markdown (markdown links and HTML hrefs), resolved for this site."
        return _re_link.sub(lambda m: m[1] + self.resolve(m[2], m[1] != 'href="'), md)

    def resolve(self, url, md_link=True) -> str:
        """Doc links to the published site and links to notebooks go to pages (to an anchor only if the page has
        it); source links go to the local source pages; other relative links to files of the repo go to GitHub."""
        ext = '.md' if md_link else '.html'
        if url.startswith(self.doc_url):
            page,_,anchor = url[len(self.doc_url):].partition('#')
            page = page.removesuffix('.html')
            if page not in self.anchors: return url
            return page + ext + (f'#{anchor}' if anchor in self.anchors[page] else '')
        if url.startswith(self.src_url):
            py,_,line = url[len(self.src_url):].partition('#L')
            if py not in self.modules: return url
            return f'src/{self.modules[py]}{ext}' + (f'#L-{line}' if line.isdigit() else '')
        if re.match(r'^(\w[\w+.-]*:|#|/)', url): return url
        path,_,anchor = url.partition('#')
        anchor = f'#{anchor}' if anchor else ''
        if path.endswith('.ipynb') and (stem := page_name(Path(path).name, {})) in self.anchors: return stem + ext + anchor
        if (self.docs/path).exists(): return url
        for base in (self.nbs, self.root):
            p = (base/path).resolve()
            if p.is_file() and p.is_relative_to(self.root): return f'{self.src_url}{p.relative_to(self.root)}{anchor}'
        return url

def source_page(site, py:Path, rel:str) -> str:
    "A page showing module `py` with numbered lines, each with an anchor `#L-<n>` (where API blocks' source links go)."
    from pygments import highlight
    from pygments.lexers import PythonLexer
    from pygments.formatters import HtmlFormatter
    code = highlight(py.read_text(), PythonLexer(), HtmlFormatter(linenos='table', lineanchors='L', anchorlinenos=True))
    return (f'---\ntitle: {json.dumps(rel)}\nsearch:\n  exclude: true\n---\n\n# {rel}\n\n'
            f'Generated from the notebooks by `nbdev_export`. [View it on GitHub]({site.src_url}{rel}).\n\n'
            f'<div class="src-page">\n{code}\n</div>\n')

# --- the site -------------------------------------------------------------------------------------------------------

def build(proc:Path, out:Path, site_dir:Path):
    "Write the pages, the source pages, the assets and `mkdocs.yml` into `out`, for a site in `site_dir`."
    site = Site(out)
    if out.exists(): shutil.rmtree(out)
    site.docs.mkdir(parents=True)
    nbs = sorted(proc.glob('*.ipynb'), key=lambda p: (p.stem != 'index', p.name))  # nbdev's order, home first
    pages = [Page(site, p) for p in nbs]
    for p in pages: site.anchors[p.name] = p.api_anchors()
    lib = Path(site.cfg.lib_path)
    for py in sorted(lib.rglob('*.py')):
        rel = str(py.resolve().relative_to(site.root))
        site.modules[rel] = str(py.relative_to(lib).with_suffix('')).replace('/', '.')
    for p in pages: (site.docs/f'{p.name}.md').write_text(p.markdown())
    (site.docs/'src').mkdir()
    for rel,stem in site.modules.items(): (site.docs/'src'/f'{stem}.md').write_text(source_page(site, site.root/rel, rel))
    shutil.copytree(HERE/'assets', site.docs/'assets')
    cfg = yaml.safe_load((HERE/'mkdocs.yml').read_text())
    c = site.cfg
    cfg.update(site_name=c.title, site_description=c.description, site_url=site.doc_url, docs_dir='docs',
               site_dir=str(site_dir.resolve()), nav=[{p.plain_title: f'{p.name}.md'} for p in pages],
               copyright=f'Copyright {c.copyright}')
    cfg.setdefault('extra', {})['social'] = [{'icon': 'fontawesome/brands/github', 'link': c.git_url, 'name': 'Source on GitHub'}]
    (out/'mkdocs.yml').write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return pages, site

if __name__ == '__main__':
    proc,out,site_dir = map(Path, sys.argv[1:4])
    pages,site = build(proc, out, site_dir)
    print(f'{len(pages)} notebook pages, {len(site.modules)} source pages in {out}', file=sys.stderr)
