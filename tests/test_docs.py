"""The docs site in a real browser: Debian's Chromium, driven by playwright, over `_docs/` served on loopback.

The site is built by `bash tools/build_docs.sh` (the README's test command runs it first, in `tools/suite.sh`).
The `site` fixture rebuilds it once per session when `_docs/` is missing or older than a notebook, a module, the
docs tooling or settings.ini, so `pytest tests/test_docs.py` alone also works. No model server is needed.

Every notebook page is loaded and checked: no console error, no failed request, nothing fetched from outside
loopback, the sidebar lists every notebook in order, the title is the notebook's, no nbdev/Quarto markup shows as
text, code outputs are visible, markdown is rendered. Then: search, API blocks and their source links, internal
links, images, the tool `<details>` blocks. Full-page screenshots of the home page and the Chat page are saved in
`_docs_screenshots/` (gitignored). `test_converter_*` builds a one-page site from a small notebook written here,
to check the converter's handling of outputs (markdown with `<details>` and footnote links, images, streams,
errors, directives) whatever the project's notebooks currently hold.
"""
import base64, json, os, re, shutil, subprocess, sys, threading, functools
from html.parser import HTMLParser
from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import urljoin, urlparse, unquote
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT/'_docs'
SHOTS = ROOT/'_docs_screenshots'
CHROMIUM = next((p for p in (shutil.which('chromium'), '/usr/bin/chromium') if p and Path(p).exists()), None)
FORBIDDEN = {'#|': 'an nbdev directive', 'show_doc(': 'show_doc source', 'In [0]': 'a Jupyter prompt',
             '{target=': 'Quarto link attributes', 'output-file:': 'front matter', ':::': 'a Quarto fenced div'}

# --- the site and a server for it -------------------------------------------------------------------------------

def notebooks() -> list[tuple[str, str]]:
    "(page stem, title) of every notebook, in the site's order: index first, then by file name (as nbdev does)."
    res = []
    for p in sorted((ROOT/'nbs').glob('*.ipynb'), key=lambda p: (p.stem != 'index', p.name)):
        if p.name.startswith(('_', '.')): continue
        nb = json.loads(p.read_text())
        first = next((''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'markdown'), '')
        m = re.search(r'^#\s+(.+?)\s*$', first, re.M)
        res.append((re.sub(r'^\d+[a-z]?_', '', p.stem), (m[1] if m else p.stem).replace('`', '')))
    return res

def newest_input() -> float:
    srcs = [*ROOT.glob('nbs/*.ipynb'), *ROOT.glob('lisette/**/*.py'), *ROOT.glob('tools/docs/**/*'),
            ROOT/'tools/build_docs.sh', ROOT/'settings.ini']
    return max(p.stat().st_mtime for p in srcs if p.is_file() and '__pycache__' not in p.parts)

@pytest.fixture(scope='session')
def site():
    "`_docs/`, rebuilt if missing or stale."
    idx = DOCS/'index.html'
    if not idx.exists() or idx.stat().st_mtime < newest_input():
        r = subprocess.run(['bash', 'tools/build_docs.sh'], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, f'docs build failed:\n{r.stdout}\n{r.stderr}'
    return DOCS

class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

def serve(root:Path):
    "Serve `root` on a free loopback port, in a thread; (server, base url)."
    srv = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.server_port}/'

@pytest.fixture(scope='session')
def base(site):
    srv,url = serve(site)
    yield url
    srv.shutdown(); srv.server_close()

@pytest.fixture(scope='module')
def browser():
    "Chromium for this module only: playwright's sync API keeps an event loop running on this thread while open."

    if CHROMIUM is None: pytest.fail('Chromium is missing: `apt-get install -y chromium` (tools/run_tests.sh does)')
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()

class Watched:
    "A browser page that records console errors, page errors, failed requests, and requests leaving loopback."
    def __init__(self, browser):
        self.ctx = browser.new_context(viewport={'width': 1280, 'height': 900})
        self.page = self.ctx.new_page()
        self.problems = []
        pg = self.page
        pg.on('console', lambda m: m.type == 'error' and self.problems.append(f'console error: {m.text} ({m.location})'))
        pg.on('pageerror', lambda e: self.problems.append(f'page error: {e}'))
        pg.on('requestfailed', lambda r: self.problems.append(f'request failed: {r.url} ({r.failure})'))
        pg.on('response', lambda r: r.status >= 400 and self.problems.append(f'HTTP {r.status}: {r.url}'))
        def route(rt):
            host = urlparse(rt.request.url).hostname
            if rt.request.url.startswith(('data:', 'blob:')) or host in ('127.0.0.1', 'localhost'): return rt.continue_()
            self.problems.append(f'request to the internet: {rt.request.url}')
            rt.abort()
        pg.route('**/*', route)

    def goto(self, url):
        self.page.goto(url, wait_until='load')
        self.page.wait_for_load_state('networkidle')
        return self.page

    def close(self): self.ctx.close()

@pytest.fixture(scope='module')
def visited(browser, base):
    "Every notebook page, loaded once: {stem: dict(problems, text, sidebar, title, h1, outputs, links, ...)}."
    SHOTS.mkdir(exist_ok=True)
    res = {}
    for stem,_ in notebooks():
        w = Watched(browser)
        pg = w.goto(f'{base}{stem}.html')
        info = pg.evaluate('''() => {
          const art = document.querySelector('article.md-content__inner');
          const prose = art.cloneNode(true);
          prose.querySelectorAll('pre, code, .highlight').forEach(e => e.remove());
          const outs = [...art.querySelectorAll('.nb-output')];
          return {
            title: document.title,
            h1: (h => h && [...h.childNodes].filter(n => !(n.classList && n.classList.contains('headerlink'))).map(n => n.textContent).join('').trim())(art.querySelector('h1')),
            text: document.body.innerText,
            prose: prose.innerText,
            sidebar: [...document.querySelectorAll('.md-nav--primary > .md-nav__list > .md-nav__item > a.md-nav__link')].map(a => a.innerText.trim()),
            outputs: outs.length,
            hidden_outputs: outs.filter(o => !o.closest('details:not([open])') && !(o.offsetWidth && o.offsetHeight)).length,
            links: [...art.querySelectorAll('a[href]')].map(a => a.href),
            api: [...art.querySelectorAll('.api-block')].map(b => ({
              id: b.querySelector('h3') && b.querySelector('h3').id,
              source: b.querySelector('a.api-source') && b.querySelector('a.api-source').href,
              sig: !!b.querySelector('pre'), table: b.querySelector('table') ? b.querySelector('table').innerText : null})),
            imgs: [...document.querySelectorAll('article img')].map(i => ({src: i.src, w: i.naturalWidth, done: i.complete})),
            details: Object.fromEntries(['.nb-output details', '.nb-output details.tool-usage-details'].map(
                       s => [s, art.querySelectorAll(s).length])),
          };
        }''')
        if stem in ('index', 'chat'): pg.screenshot(path=str(SHOTS/f"{'home' if stem == 'index' else 'chat'}.png"), full_page=True)
        info['problems'] = list(w.problems)
        res[stem] = info
        w.close()
    return res

# --- every page -------------------------------------------------------------------------------------------------

def test_every_notebook_has_a_page(site):
    missing = [s for s,_ in notebooks() if not (site/f'{s}.html').exists()]
    assert not missing, f'no page for: {missing}'

def test_pages_load_cleanly(visited):
    bad = {s: v['problems'] for s,v in visited.items() if v['problems']}
    assert not bad, f'console errors or failed requests: {json.dumps(bad, indent=1)}'

def test_sidebar_lists_every_notebook_in_order(visited):
    want = [t for _,t in notebooks()]
    for stem,v in visited.items():
        got = [s for s in v['sidebar'] if s in want]
        assert got == want, f'{stem}: sidebar {v["sidebar"]}'

def test_titles_are_the_notebooks_titles(visited):
    for stem,title in notebooks():
        v = visited[stem]
        assert v['h1'] == title, f'{stem}: h1 {v["h1"]!r}, notebook title {title!r}'
        assert v['title'].startswith(title), f'{stem}: <title> {v["title"]!r}'

def test_no_nbdev_or_quarto_markup_shows(visited):
    bad = [f'{s}: {why} ({k!r})' for s,v in visited.items() for k,why in FORBIDDEN.items() if k in v['text']]
    bad += [f'{s}: front matter' for s,v in visited.items() if re.search(r'^---\s*$\n^(title|description):', v['text'], re.M)]
    assert not bad, bad

def test_markdown_is_rendered(visited):
    "Outside code, no raw markdown links, `<details>` tags or attribute lists are left as text."
    pats = [r'\]\((https?:|\.|#)', r'<details', r'</div>', r'\{:\s*[#.]', r'markdown="1"']
    bad = [f'{s}: {p}' for s,v in visited.items() for p in pats if re.search(p, v['prose'])]
    assert not bad, bad

def test_code_outputs_are_visible(visited):
    assert sum(v['outputs'] for v in visited.values()), 'no page shows a code output'
    bad = {s: v['hidden_outputs'] for s,v in visited.items() if v['hidden_outputs']}
    assert not bad, f'invisible outputs: {bad}'

def test_home_page_is_the_readme(visited):
    "The home page has the README's sections (the README is generated from the same notebook)."
    heads = re.findall(r'^##\s+(.+?)\s*$', (ROOT/'README.md').read_text(), re.M)
    assert heads
    missing = [h for h in heads if h.replace('`', '') not in visited['index']['text']]
    assert not missing, missing

# --- API blocks, links, search --------------------------------------------------------------------------------------

def exported_names() -> dict:
    "{name: page stem} of the public names in lisette's `__all__`s, from nbdev's index (`lisette/_modidx.py`)."
    import importlib
    idx = {}
    for mod,syms in __import__('lisette._modidx', fromlist=['d']).d['syms'].items():
        m = importlib.import_module(mod)
        for full,(url,_) in syms.items():
            nm = full[len(mod)+1:]
            if nm in getattr(m, '__all__', ()): idx[nm] = url.split('.html')[0]
    return idx

def test_every_exported_name_has_an_api_block(visited):
    have = {b['id'] for v in visited.values() for b in v['api']}
    missing = {n: p for n,p in exported_names().items() if n.lower() not in have}
    assert not missing, f'exported names with no API block: {missing}'
    for s,v in visited.items():
        for b in v['api']: assert b['sig'] and b['source'], f'{s}: API block {b["id"]} lacks a signature or source link'

def test_asyncchat_parameters_include_chats(visited):
    b = next(b for b in visited['async']['api'] if b['id'] == 'asyncchat')
    for want in ('tool_timeout', 'max_concurrency', 'model', 'sp', 'tools', 'hist', 'system prompt'):
        assert want in (b['table'] or ''), f'AsyncChat table lacks {want!r}: {b["table"]}'

class Ids(HTMLParser):
    def __init__(self, html):
        super().__init__(); self.ids = set(); self.feed(html)
    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k,v in attrs if k in ('id', 'name') and v)

def test_internal_links_resolve(visited, base):
    "Every link to this site (doc links, source links, page links) reaches a page, and its anchor exists."
    pages,bad = {},[]
    for s,v in visited.items():
        for href in set(v['links']):
            if not href.startswith(base): continue
            u = urlparse(href)
            path = unquote(u.path)
            if path not in pages:
                try: pages[path] = Ids(urlopen(urljoin(base, path)).read().decode()).ids
                except Exception as e: pages[path] = e
            got = pages[path]
            if isinstance(got, Exception): bad.append(f'{s}: {href} ({got})')
            elif u.fragment and unquote(u.fragment) not in got: bad.append(f'{s}: {href} (no such anchor)')
    assert not bad, bad

def test_backticked_names_link_to_their_api_blocks(visited):
    "Like nbdev's doc links: `Chat` in prose links to chat.html#chat."
    links = {l.split('/')[-1] for v in visited.values() for l in v['links']}
    assert 'chat.html#chat' in links and any(l.startswith('messages.html#mk_msg') for l in links), sorted(links)[:40]

def test_source_links_show_the_line(browser, base, visited):
    src = next(b['source'] for b in visited['chat']['api'] if b['id'] == 'chat')
    w = Watched(browser)
    pg = w.goto(src)
    frag = urlparse(src).fragment
    assert frag and pg.locator(f'[id="{frag}"]').count() == 1
    assert pg.locator(f'[id="{frag}"]').is_visible() or pg.evaluate(f'() => !!document.getElementById("{frag}")')
    assert 'class Chat' in pg.inner_text('article') and not w.problems, w.problems
    w.close()

def test_search_finds_asyncchat(browser, base):
    "Typing `AsyncChat` in the search box offers its API block; following the result shows the block."
    w = Watched(browser)
    pg = w.goto(f'{base}index.html')
    pg.click('.md-search__input')
    pg.keyboard.type('AsyncChat', delay=20)
    hits = pg.locator('.md-search-result__item a')
    hits.first.wait_for(timeout=15000)
    hrefs = hits.evaluate_all('as => as.map(a => a.getAttribute("href"))')
    i = next((i for i,h in enumerate(hrefs) if re.search(r'async\.html(\?[^#]*)?#asyncchat$', h)), None)
    assert i is not None, f'no search result for the AsyncChat API block: {hrefs}'
    hit = hits.nth(i)
    if not hit.is_visible(): hit.locator('xpath=ancestor::details[1]/summary').click()  # "N more on this page"
    hit.click()
    pg.wait_for_url(re.compile(r'async\.html(\?[^#]*)?#asyncchat$'))
    head = pg.locator('.api-block h3#asyncchat')
    assert head.is_visible() and head.evaluate('e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight; }')
    assert not w.problems, w.problems
    w.close()

# --- images and tool blocks on the real site ------------------------------------------------------------------------

def test_images_load(visited):
    imgs = [(s, i) for s,v in visited.items() for i in v['imgs']]
    assert imgs, 'no page shows an image (the sample PNG in a chat turn belongs in a notebook)'
    bad = [f'{s}: {i["src"]}' for s,i in imgs if not i['w'] > 0]
    assert not bad, f'images that did not load: {bad}'

def open_details(browser, base, visited, sel):
    "Click the first `sel` <details> in an output on the site: it was closed, it opens, its content shows."
    stems = [s for s,v in visited.items() if v['details'].get(sel)]
    assert stems, f'no page shows a {sel!r} block in a code output'
    w = Watched(browser)
    pg = w.goto(f'{base}{stems[0]}.html')
    d = pg.locator(sel).first
    d.scroll_into_view_if_needed()
    assert d.evaluate('e => e.open') is False
    (d.locator('summary').first if d.locator('summary').count() else d).click()
    assert d.evaluate('e => e.open') is True
    assert d.locator(':scope > :not(summary)').first.is_visible()
    assert not w.problems, w.problems
    w.close()

def test_output_details_block_opens(browser, base, visited):
    "A `<details>` block in a markdown output (a response's id, model and usage) opens on click."
    open_details(browser, base, visited, '.nb-output details')

def test_tool_details_block_opens(browser, base, visited):
    "A tool call's `<details>` block (from `mk_tr_details`, in a display output) opens on click."
    open_details(browser, base, visited, '.nb-output details.tool-usage-details')

# --- the converter, on a notebook written here ------------------------------------------------------------------------

def md_cell(src): return dict(cell_type='markdown', metadata={}, source=src)
def code_cell(src, *outs): return dict(cell_type='code', metadata={}, source=src, outputs=list(outs), execution_count=1)
def md_out(md): return dict(output_type='display_data', metadata={}, data={'text/markdown': md, 'text/plain': '<obj>'})

def sample_nb() -> dict:
    png = base64.b64encode((ROOT/'samples/sunny_hill.png').read_bytes()).decode()
    details = "\n\n<details class='tool-usage-details'>\n\n```json\n{\"id\": \"call_1\", \"call\": {\"function\": \"add\"}}\n```\n\n</details>\n\n"
    return dict(nbformat=4, nbformat_minor=4, metadata={'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'}}, cells=[
        dict(cell_type='raw', metadata={}, source='---\ntitle: Sample\ndescription: A notebook of every output kind\noutput-file: sample.html\n---\n'),
        md_cell('## Outputs\nSome prose with a [Quarto link](https://example.invalid){target="_blank"}:\n- a list right after a line'),
        md_cell('::: {.callout-note}\nA callout.\n```python\nx = 1\n```\n:::\n\n![a hill](../samples/sunny_hill.png)'),
        md_cell('Back to [the top](sample.ipynb#outputs), or see [the build script](../tools/build_docs.sh).\n```python\nfenced_right_after_text()\n```'),
        code_cell('#| code-fold: true\n#| code-summary: "Show the code"\nfolded_source()', dict(output_type='execute_result', metadata={}, execution_count=1, data={'text/html': '<table class="frame"><tr><td>html cell</td></tr></table>', 'text/plain': 'frame'})),
        code_cell('#| echo: false\nprint("source hidden")', dict(output_type='stream', name='stdout', text='only the output\n')),
        code_cell('#| output: false\nnoisy()', dict(output_type='stream', name='stderr', text='progress 100%\n')),
        code_cell('r = chat("What is 2+2?")\nr', md_out(f'The answer[*](https://otters.test/a "A title") is 4.{details}🔧 add(a=2, b=2)\n\n<details>\n\n- id: `chatcmpl-1`\n\n</details>')),
        code_cell('show_image()', dict(output_type='display_data', metadata={}, data={'image/png': png, 'text/plain': '<Image>'})),
        code_cell('1/0', dict(output_type='error', ename='ZeroDivisionError', evalue='division by zero', traceback=['\x1b[31mZeroDivisionError\x1b[0m: division by zero'])),
        code_cell('#| hide\nsecret_setup()'),
    ])

@pytest.fixture(scope='module')
def sample_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('docs')
    (tmp/'proc').mkdir()
    (tmp/'proc/sample.ipynb').write_text(json.dumps(sample_nb()))
    subprocess.run([sys.executable, 'tools/docs/nb2md.py', tmp/'proc', tmp/'src', tmp/'site'], cwd=ROOT, check=True)
    r = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '-f', tmp/'src/mkdocs.yml'], cwd=ROOT, capture_output=True,
                       text=True, env=os.environ | {'NO_MKDOCS_2_WARNING': '1'})  # strict (in mkdocs.yml): no warnings
    assert r.returncode == 0 and 'WARNING' not in r.stderr, r.stderr
    srv,url = serve(tmp/'site')
    yield url, tmp
    srv.shutdown(); srv.server_close()

def test_converter_renders_outputs(browser, sample_site):
    url,tmp = sample_site
    w = Watched(browser)
    pg = w.goto(f'{url}sample.html')
    text = pg.inner_text('article')
    assert pg.evaluate('() => document.querySelector("article h1").firstChild.textContent') == 'Sample' and 'A notebook of every output kind' in text
    assert 'only the output' in text and 'source hidden' not in text
    assert 'noisy()' in text and 'progress 100%' not in text and 'secret_setup' not in text
    assert 'ZeroDivisionError' in text and '\x1b' not in text
    for k in FORBIDDEN: assert k not in text, k
    assert pg.locator('article li', has_text='a list right after a line').count() == 1
    assert pg.locator('.admonition.note', has_text='A callout.').locator('pre', has_text='x = 1').count() == 1
    assert pg.locator('a', has_text='the top').get_attribute('href') == 'sample.html#outputs'
    assert pg.locator('a', has_text='the build script').get_attribute('href').endswith('/blob/main/tools/build_docs.sh')
    assert pg.locator('pre', has_text='fenced_right_after_text()').count() == 1
    fold = pg.locator('details.nb-fold')
    assert fold.locator('summary').inner_text() == 'Show the code' and not fold.locator('pre').is_visible()
    assert pg.locator('.nb-html table.frame td').inner_text() == 'html cell'
    assert pg.locator('a[href="https://otters.test/a"][title="A title"]').inner_text() == '*'
    assert pg.locator('a[href="https://example.invalid"][target="_blank"]').count() == 1
    widths = pg.evaluate('() => [...document.querySelectorAll("article img")].map(i => i.naturalWidth)')
    assert len(widths) == 2 and all(x > 0 for x in widths), widths
    tool = pg.locator('details.tool-usage-details')
    assert tool.evaluate('e => e.open') is False and not tool.locator('pre').is_visible()
    tool.click()
    assert tool.evaluate('e => e.open') is True and tool.locator('pre').is_visible()
    assert '"function": "add"' in tool.inner_text()
    assert pg.locator('.nb-output details li code', has_text='chatcmpl-1').count() == 1
    assert not w.problems, w.problems
    w.close()
