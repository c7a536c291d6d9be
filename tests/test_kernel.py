"""Jupyter checked in a real kernel: a small notebook run by nbclient in a fresh ipykernel, asserted on its iopub messages.

What a Jupyter user sees is what the kernel sends: `display_data` opens a display, `update_display_data` messages
(same `transient.display_id`) replace its content, and a cell's last expression comes back as an `execute_result`
holding a bundle of mime types. nbclient folds updates into the saved outputs, so `Recorder` overrides
`process_message` to keep every message as it arrives, with its size on the wire.

The notebook runs once per module (the `run` fixture) against the live test server, and each test reads the messages
of its own cells. `_Live` throttles updates by the clock, so `check_live` asserts only what holds for any pacing of
the stream, except the byte budget (see there).
"""
import os, re, json, textwrap
import nbformat, pytest
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools'))
from kernel_recorder import Recorder, wire_bytes

# The notebook, one named cell each. Imports sit in cells of their own; the star import comes first, in a fresh kernel.
CELLS = dict(
    star       = "from lisette import *",
    display    = "display",
    namespace  = """\
        import types, IPython.display
        assert display is IPython.display.display, display
        bound = [n for n,v in globals().items() if isinstance(v, types.ModuleType) and v.__name__.startswith('lisette')]
        assert not bound, bound""",
    imports    = "import json, litellm\nfrom lisette.testing import server_models",
    setup      = """\
        litellm.suppress_debug_info = True
        oa = server_models()['openai']
        def add(a: int, b: int) -> int:
            "Add two numbers"
            return a + b
        async def aadd(a: int, b: int) -> int:
            "Add two numbers"
            return a + b
        q = "What is 12 + 30? Use the add tool."
        r = litellm.completion(messages=[{'role':'user', 'content':'Hi'}], max_tokens=8, temperature=0, **oa)""",
    response   = "r",
    response_md= "print(json.dumps(dict(md=response_md(r), plain=repr(r))))",
    stream     = "fmt = display_stream(Chat(tools=[add], max_tokens=60, **oa)(q, stream=True))",
    stream_md  = "print(json.dumps(fmt.outp))",
    astream    = "afmt = await adisplay_stream(await AsyncChat(tools=[aadd], max_tokens=60, **oa)(q, stream=True))",
    astream_md = "print(json.dumps(afmt.outp))",
)
IDX = {k:i for i,k in enumerate(CELLS)}

@pytest.fixture(scope='module')
def run(live, tmp_path_factory):
    "The `Recorder` that ran the notebook in a fresh kernel, in a temporary directory, against the live server."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(textwrap.dedent(s)) for s in CELLS.values()])
    env = {**os.environ, 'LISETTE_TEST_API_BASE': os.environ['LISETTE_TEST_API_BASE'], 'LITELLM_LOCAL_MODEL_COST_MAP': 'True'}
    path = str(tmp_path_factory.mktemp('kernel'))
    c = Recorder(nb, kernel_name='python3', timeout=300, allow_errors=True, resources={'metadata': {'path': path}})
    c.execute(env=env)
    return c

def msgs(run, name, *types) -> list:
    "The iopub messages of cell `name`, only those of `types` if given."
    return [m for m in run.msgs.get(IDX[name], []) if not types or m['msg_type'] in types]

def errors(run, name) -> list: return [f"{m['content']['ename']}: {m['content']['evalue']}" for m in msgs(run, name, 'error')]

def printed(run, name) -> str:
    "What cell `name` printed, after checking it ran without error."
    assert not errors(run, name)
    return ''.join(m['content']['text'] for m in msgs(run, name, 'stream') if m['content']['name'] == 'stdout')

def test_notebook_ran(run):
    "Every cell ran, without error (the other tests say what went wrong in their own cells)."
    assert {n: errors(run, n) for n in CELLS if errors(run, n)} == {}
    assert all(msgs(run, n, 'status') for n in CELLS)

def test_star_import_keeps_display(run):
    "After `from lisette import *` in a fresh kernel, `display` is IPython's function, and no lisette module is bound."
    assert not errors(run, 'star') and not errors(run, 'namespace')
    [res] = msgs(run, 'display', 'execute_result')
    plain = res['content']['data']['text/plain']
    assert plain.startswith('<function ') and 'display' in plain, plain

def test_response_shows_markdown(run):
    "A `ModelResponse` as a cell's last expression comes back as `response_md` markdown, and its repr as plain text."
    want = json.loads(printed(run, 'response_md'))
    [res] = msgs(run, 'response', 'execute_result')
    data = res['content']['data']
    assert data['text/markdown'] == want['md']
    assert data['text/plain'] == want['plain']
    assert '\n\n<details>\n\n- id: `' in data['text/markdown']

# A tool call's pending line, or the `<details>` block of its result that later replaces it.
TOOL_BLOCK = re.compile(r"\n\n⏳ `[^`\n]*`\n\n|\n\n<details class='tool-usage-details'>.*?</details>\n\n", re.DOTALL)

def check_live(run, name, final_md) -> tuple:
    "Assert that cell `name` showed one live display that grew into `final_md`; its (updates, markdown bytes, wire bytes)."
    assert not errors(run, name)
    ms = msgs(run, name, 'display_data', 'update_display_data', 'execute_result')
    first, ups = ms[0], ms[1:]
    # One display: opened empty by a display_data, then only updates of that same display id.
    assert first['msg_type'] == 'display_data' and first['content']['data']['text/markdown'] == ''
    did = first['content']['transient']['display_id']
    assert [m['msg_type'] for m in ups] == ['update_display_data'] * len(ups)
    assert {m['content']['transient']['display_id'] for m in ups} == {did}
    mds = [m['content']['data']['text/markdown'] for m in ups]
    # At least two updates whatever the timing: the first increment is always due (nothing is shown yet), and the
    # final state, which differs from it, is always sent.
    assert len(mds) >= 2
    # The last update is the formatter's whole output: the tool's result block, no pending line left.
    assert mds[-1] == final_md
    assert "<details class='tool-usage-details'>" in final_md and '"result": "42"' in final_md and '⏳' not in final_md
    # Growing as the stream arrives: each update is longer than the one before, and with the tool blocks taken out
    # (a pending line is replaced in place by its result's longer <details> block) each is a prefix of the final one.
    assert all(len(a) < len(b) for a,b in zip(mds, mds[1:]))
    final_text = TOOL_BLOCK.sub('', final_md)
    for md in mds: assert final_text.startswith(TOOL_BLOCK.sub('', md)), md
    # The byte budget (issue 7: at most 30x the final markdown; it measured ~125x before the throttle), for the
    # markdown the updates carry and for the whole messages on the socket. `_Live` sends an update only while all it
    # has sent stays within 12x the size of what it sends, so the markdown is bounded by 13x the final one whatever
    # the timing; the messages' envelopes (a few hundred bytes each) fit in the rest.
    md_bytes, wire = sum(len(md.encode()) for md in mds), sum(m['wire_bytes'] for m in ms)
    assert md_bytes <= wire <= 30 * len(final_md.encode())
    return len(mds), md_bytes, wire

def test_display_stream_live(run):
    "`display_stream` of a streamed tool-loop turn: one display, updated in place, ending with the tool's `<details>`."
    check_live(run, 'stream', json.loads(printed(run, 'stream_md')))

def test_adisplay_stream_live(run):
    "The same for `adisplay_stream` over an `AsyncChat` stream."
    check_live(run, 'astream', json.loads(printed(run, 'astream_md')))
