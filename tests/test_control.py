"""Control over the tool loop, over real HTTP to the fault server: per-call overrides, checked histories and settings,
a fast clear failure for a missing local model, approvals (and approvals cut short, which must leave `hist` alone),
generator tools, `tool_exec=False`, and the event sequence of a tool loop."""
import os, sys, json, shutil, asyncio, inspect, tempfile, subprocess
import pytest
from litellm import ModelResponse
from lisette.chat import Chat
from lisette.async_chat import AsyncChat
from lisette.messages import mk_msgs, mk_tc_results
from lisette.approvals import ToolReview, Decision
from lisette.tools import ToolProgress, ToolResult
from lisette.events import Event
from lisette.errors import ConfigTypeError, ConfigValueError, LisetteError
from conftest import ok, tool_reply, oai_chat, snapshot, same, primed, closed_port

CALLS = []
def mul(a:int, b:int) -> int:
    "Multiply `a` by `b`"
    CALLS.append(('mul', a, b))
    return a * b

def add(a:int, b:int) -> int:
    "Add `a` and `b`"
    CALLS.append(('add', a, b))
    return a + b

@pytest.fixture(autouse=True)
def _reset(): CALLS.clear()

def run(r):
    "The final item of call result `r`: awaited if a coroutine, consumed if a stream."
    async def go(r):
        r = await r
        return [o async for o in r][-1] if not isinstance(r, (ModelResponse, list)) else r
    if inspect.iscoroutine(r): return asyncio.run(go(r))
    return r if isinstance(r, (ModelResponse, list)) else list(r)[-1]

def body(fx, i=-1): return fx.requests[i]['body']
def sent_tools(fx, i=-1): return [t['function']['name'] for t in body(fx, i).get('tools', [])]
def tool_msgs(c): return [m for m in c.hist if isinstance(m, dict) and m.get('role') == 'tool']

# --- bug 1: per-call arguments ------------------------------------------------------------------------------------

@pytest.mark.parametrize('cls', [Chat, AsyncChat])
@pytest.mark.parametrize('stream', [False, True])
def test_per_call_kwarg_overrides_the_chat_for_that_call_only(fx, cls, stream):
    c = oai_chat(fx, cls, max_tokens=20)
    fx.push(ok('a'), ok('b'))
    run(c('hi', max_tokens=50, temperature=0.7, stream=stream))
    run(c('again', stream=stream))
    first,second = body(fx, 0),body(fx, 1)
    assert (first['max_tokens'], first['temperature']) == (50, 0.7)
    assert (second['max_tokens'], second['temperature']) == (20, 0)
    assert c.kw == {'max_tokens': 20, 'num_retries': 0, 'max_retries': 0}

@pytest.mark.parametrize('cls', [Chat, AsyncChat])
def test_per_call_tools_are_for_that_call_only(fx, cls):
    c = oai_chat(fx, cls, tools=[add])
    fx.push(tool_reply(('mul', {'a': 2, 'b': 3}), ('add', {'a': 1, 'b': 1})), ok('six'), ok('plain'), )
    run(c('multiply', tools=[mul]))
    assert sent_tools(fx, 0) == ['mul'] and sent_tools(fx, 1) == ['mul']
    assert CALLS == [('mul', 2, 3)], 'add was not declared for this call, so it must not run'
    assert [m['content'] for m in tool_msgs(c)][0] == '6' and "no tool named 'add'" in tool_msgs(c)[1]['content']
    run(c('next'))
    assert sent_tools(fx) == ['add'] and list(c.ns) == ['add']

def test_per_call_tools_are_checked(fx):
    c = oai_chat(fx, tools=[add])
    with pytest.raises(ConfigTypeError, match='tools: expected'): c('hi', tools=[3])
    with pytest.raises(ConfigTypeError, match='tool_exec: expected True, False or None'): c('hi', tool_exec='no')
    assert fx.requests == []

# --- bug 2: dicts in a history ------------------------------------------------------------------------------------

BAD_DICTS = {'made-up role': ({'role': 'robot', 'content': 'x'}, "role: expected one of"),
             'no content': ({'role': 'user'}, "content: a message with role 'user' needs content"),
             'content int': ({'role': 'user', 'content': 3}, "content: expected str or a list of parts, got int")}

@pytest.mark.parametrize('name', BAD_DICTS)
@pytest.mark.parametrize('cls', [Chat, AsyncChat])
def test_hist_dicts_are_validated(fx, cls, name):
    d,err = BAD_DICTS[name]
    with pytest.raises(ConfigValueError if name != 'content int' else ConfigTypeError, match=err):
        oai_chat(fx, cls, hist=['hello', 'hi', d])
    with pytest.raises(LisetteError, match=err): mk_msgs(['hello', 'hi', d])
    assert fx.requests == []

def test_bad_dict_added_to_hist_later_fails_before_sending(fx):
    c = primed(fx)
    c.hist.append({'role': 'robot', 'content': 'x'})
    snap = snapshot(c)
    with pytest.raises(ConfigValueError, match='role: expected'): c('q')
    assert same(c, snap) and len(fx.requests) == 1

# --- bug 3: tool_timeout ------------------------------------------------------------------------------------------

@pytest.mark.parametrize('bad', ['5', 0, -1, True, float('nan'), [5]])
def test_bad_tool_timeout_is_refused_at_construction(bad):
    with pytest.raises(ConfigTypeError, match='tool_timeout: expected a number of seconds > 0, or None'):
        AsyncChat('openai/x', tool_timeout=bad)

@pytest.mark.parametrize('bad', [0, -2, 1.5, '8', None])
def test_bad_max_concurrency_is_refused(bad):
    with pytest.raises(ConfigValueError, match='max_concurrency: expected an int >= 1'): AsyncChat('openai/x', max_concurrency=bad)

# --- bug 4: a missing local model ---------------------------------------------------------------------------------

def _cli(args, tmp_path, **env):
    "Run the CLI with `args` and HuggingFace's cache in `tmp_path`; `env` values of None unset a variable."
    run = tempfile.mkdtemp(prefix='lzc')   # the local model daemon's folder (short: it holds a Unix socket)
    env = {**os.environ, 'HF_HUB_CACHE': str(tmp_path/'hub'), 'LISETTE_RUN_DIR': run, **env}
    try: return subprocess.run([sys.executable, '-c', 'import sys; from lisette.cli import main; sys.exit(main())', *args],
                               capture_output=True, text=True, env={k: v for k,v in env.items() if v is not None}, timeout=300)
    finally: shutil.rmtree(run, ignore_errors=True)

@pytest.mark.parametrize('how', ['offline', 'hub unreachable'])
def test_missing_local_model_fails_in_one_clear_line(tmp_path, how):
    env = {'HF_HUB_OFFLINE': '1'} if how == 'offline' else {'HF_HUB_OFFLINE': None,
                                                            'HF_ENDPOINT': f'http://127.0.0.1:{closed_port()}'}
    r = _cli(['-m', 'local/does-not-exist', 'hi'], tmp_path, **env)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1 and r.stdout == ''
    assert len(lines) == 1, r.stderr   # no retry lines, no traceback
    assert 'ConfigValueError' in lines[0] and 'local/does-not-exist' in lines[0] and str(tmp_path/'hub') in lines[0]
    assert ('HF_HUB_OFFLINE is set' if how == 'offline' else 'nor found on the HuggingFace hub') in lines[0]

def test_missing_local_model_fails_at_construction(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(ConfigValueError, match='local/no/such-model: not a GGUF file or model directory here'):
        Chat('local/no/such-model')

# --- approvals ----------------------------------------------------------------------------------------------------

def _reviews_then(c, decide, msg='add', **kw):
    "Stream a call, answering each `ToolReview` with `decide(review)`; the items seen."
    g,seen,sent = c(msg, stream=True, **kw),[],None
    while True:
        try: o = g.send(sent)
        except StopIteration: return seen
        seen.append(o)
        sent = decide(o) if isinstance(o, ToolReview) else None

def test_approve_reject_edit_through_send(fx):
    "(The fault server speaks tool calls only in the OpenAI format; the notebooks show both protocols on a real server.)"
    c = oai_chat(fx, tools=[add, mul], review=['add'])
    fx.push(tool_reply(('add', {'a': 1, 'b': 2}), ('mul', {'a': 2, 'b': 5}), ('add', {'a': 3, 'b': 4})), ok('done'))
    decisions = iter([lambda r: r.approve(), lambda r: r.edit(a=30, b=40)])
    seen = _reviews_then(c, lambda r: next(decisions)(r))
    reviews = [o for o in seen if isinstance(o, ToolReview)]
    assert [(r.name, r.args) for r in reviews] == [('add', {'a': 1, 'b': 2}), ('add', {'a': 3, 'b': 4})]
    assert CALLS == [('add', 1, 2), ('mul', 2, 5), ('add', 30, 40)]   # mul needs no review
    assert [m['content'] for m in tool_msgs(c)] == ['3', '10', '70']
    call = c.hist[1]['tool_calls'][2] if isinstance(c.hist[1], dict) else c.hist[1].tool_calls[2]
    assert json.loads(call['function']['arguments']) == {'a': 30, 'b': 40}, 'the history shows what actually ran'
    CALLS.clear()
    fx.push(tool_reply(('add', {'a': 5, 'b': 5})), ok('ok'))
    _reviews_then(c, lambda r: r.reject('not today'))
    assert CALLS == [] and tool_msgs(c)[-1]['content'] == 'Error: this tool call was not run: not today.'

def test_decisions_made_on_the_review_in_a_for_loop(fx):
    c = oai_chat(fx, tools=[add], review=['add'])
    fx.push(tool_reply(('add', {'a': 1, 'b': 2}), ('add', {'a': 3, 'b': 4}), ('add', {'a': 5, 'b': 6})), ok('done'))
    acts = iter([lambda r: r.approve(), lambda r: r.edit(a=0, b=0), lambda r: r.reject('no')])
    for o in c('add', stream=True):
        if isinstance(o, ToolReview): next(acts)(o)
    assert CALLS == [('add', 1, 2), ('add', 0, 0)]
    assert [m['content'] for m in tool_msgs(c)] == ['3', '0', 'Error: this tool call was not run: no.']

def test_saved_state_never_holds_an_api_key(fx, tmp_path):
    c = oai_chat(fx, tools=[add], review=['add'], api_key='sk-chat-secret')
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})))
    g = c('add', stream=True, api_key='sk-call-secret')
    rv = next(o for o in g if isinstance(o, ToolReview))
    text = rv.save(tmp_path/'s.json').read_text()
    g.close()
    assert 'secret' not in text and 'secret' not in repr(rv)

def test_blocking_call_rejects_without_decide_and_asks_decide_when_given(fx):
    c = oai_chat(fx, tools=[add], review=['add'])
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('x'))
    c('add')
    assert CALLS == [] and "needs a person's approval" in tool_msgs(c)[-1]['content']
    asked = []
    c.decide = lambda r: asked.append(r) or Decision('edit', args={'a': 7, 'b': 8})
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('x'))
    c('add')
    assert [a.args for a in asked] == [{'a': 1, 'b': 2}] and CALLS == [('add', 7, 8)] and tool_msgs(c)[-1]['content'] == '15'

def test_async_approve_through_asend(fx):
    c = oai_chat(fx, AsyncChat, tools=[add], review=lambda name, args: args['a'] > 10)
    fx.push(tool_reply(('add', {'a': 1, 'b': 2}), ('add', {'a': 11, 'b': 2})), ok('done'))
    async def go():
        g,sent,seen = await c('add', stream=True),None,[]
        while True:
            try: o = await g.asend(sent)
            except StopAsyncIteration: return seen
            seen.append(o)
            sent = o.reject('too big') if isinstance(o, ToolReview) else None
    seen = asyncio.run(go())
    assert [o.args for o in seen if isinstance(o, ToolReview)] == [{'a': 11, 'b': 2}]
    assert CALLS == [('add', 1, 2)] and [m['content'] for m in tool_msgs(c)] == ['3', 'Error: this tool call was not run: too big.']

def test_stream_closed_at_review_leaves_hist(fx):
    c = primed(fx, tools=[add], review=['add'])
    snap = snapshot(c)
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('3'))
    items = list(c('add', stream=True))
    assert any(isinstance(o, ToolReview) for o in items)   # a plain for loop sends nothing: the call is rejected ...
    assert CALLS == [] and 'no one decided' in tool_msgs(c)[-1]['content']
    c.hist = c.hist[:2]; snap = snapshot(c)
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('3'))
    g = c('add', stream=True)
    for o in g:
        if isinstance(o, ToolReview): break
    g.close()                                            # ... and one closed while it waits leaves no trace
    assert CALLS == [] and snapshot(c)[0] == snap[0]

def test_events_closed_at_review_leaves_hist(fx):
    c = primed(fx, tools=[add], review=['add'])
    snap = snapshot(c)
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('3'))
    evs = c.events('add')
    for ev in evs:
        if ev.type == 'review': break
    evs.close()
    assert CALLS == [] and snapshot(c)[0] == snap[0] and c.on_event == []

def test_async_stream_closed_at_review_leaves_hist(fx):
    c = primed(fx, AsyncChat, tools=[add], review=['add'])
    snap = snapshot(c)
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('3'))
    async def go():
        g = await c('add', stream=True)
        async for o in g:
            if isinstance(o, ToolReview): break
        await g.aclose()
    asyncio.run(go())
    assert CALLS == [] and snapshot(c)[0] == snap[0] and len(fx.requests) == 2

def test_async_cancelled_while_decide_waits_leaves_hist(fx):
    "A blocking call whose (async) decide callback waits for a person: cancelling the task leaves hist alone."
    waiting = []
    async def decide(review):
        waiting.append(review)
        await asyncio.Event().wait()
    c = primed(fx, AsyncChat, tools=[add], review=['add'], decide=decide)
    snap = snapshot(c)
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('3'))
    async def go():
        task = asyncio.create_task(c('add'))
        while not waiting: await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError): await task
    asyncio.run(go())
    assert CALLS == [] and len(fx.requests) == 2
    h,u = snapshot(c)
    assert h == snap[0] and u.calls == snap[1].calls + 1   # the response that asked for the tool did arrive

def test_resume_in_a_fresh_process(fx, tmp_path):
    c = primed(fx, tools=[add], review=['add'])
    fx.push(tool_reply(('add', {'a': 20, 'b': 22})))
    g = c('add', stream=True)
    rv = next(o for o in g if isinstance(o, ToolReview))
    path = rv.save(tmp_path/'pending.json')
    g.close()
    fx.push(ok('forty-two'))
    code = f'''
import json, sys
sys.path.insert(0, {str(os.path.dirname(__file__))!r})
from test_control import add, CALLS
from lisette.chat import Chat
c = Chat('openai/fixture-model', api_base={fx.base!r}, api_key='sk-test', tools=[add], num_retries=0)
r = c.resume({str(path)!r}, 'approve')
print(json.dumps(dict(calls=CALLS, answer=r.choices[0].message.content, hist=[m['role'] if isinstance(m, dict) else m.role for m in c.hist])))
'''
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res == {'calls': [['add', 20, 22]], 'answer': 'forty-two', 'hist': ['user', 'assistant', 'user', 'assistant', 'tool', 'user', 'assistant']}  # (the last step's final prompt)
    assert 'sk-test' not in path.read_text()

# --- generator tools, tool_exec=False, events --------------------------------------------------------------------

def count(n:int) -> str:
    "Count to `n`, reporting each number"
    for i in range(1, n+1): yield f'{i}...'
    return f'counted to {n}'

async def acount(n:int) -> str:
    "Count to `n`, reporting each number"
    for i in range(1, n+1):
        await asyncio.sleep(0)
        yield i
    yield ToolResult(f'counted to {n}')

@pytest.mark.parametrize('cls,tool', [(Chat, count), (AsyncChat, count), (AsyncChat, acount), (Chat, acount)])
def test_generator_tool_progress_streams_out(fx, cls, tool):
    c = oai_chat(fx, cls, tools=[tool])
    fx.push(tool_reply((tool.__name__, {'n': 3})), ok('done'))
    items = run_all(c('count', stream=True))
    prog = [o for o in items if isinstance(o, ToolProgress)]
    assert [(p.name, p.id, p.depth) for p in prog] == [(tool.__name__, 'call_0', 1)]*3
    assert [str(p.value) for p in prog] == (['1...', '2...', '3...'] if tool is count else ['1', '2', '3'])
    assert tool_msgs(c)[0]['content'] == 'counted to 3'
    kinds = [type(o).__name__ for o in items]
    assert kinds.index('ToolProgress') < kinds.index('dict'), 'progress comes before the result'

def run_all(r):
    async def go(r): return [o async for o in await r]
    return asyncio.run(go(r)) if inspect.iscoroutine(r) else list(r)

def test_async_generator_tool_timeout(fx):
    async def forever(x:str) -> str:
        "Report forever"
        while True:
            yield x
            await asyncio.sleep(0.01)
    c = oai_chat(fx, AsyncChat, tools=[forever], tool_timeout=0.3)
    fx.push(tool_reply(('forever', {'x': 'tick'})), ok('done'))
    items = run_all(c('go', stream=True))
    assert any(isinstance(o, ToolProgress) for o in items)
    assert tool_msgs(c)[0]['content'] == 'Error: forever did not finish within 0.3s'

@pytest.mark.parametrize('cls', [Chat, AsyncChat])
def test_tool_exec_false_returns_calls_then_continues(fx, cls):
    c = oai_chat(fx, cls, tools=[add], tool_exec=False)
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})))
    r = run(c('add'))
    assert CALLS == [] and len(fx.requests) == 1 and [m['role'] if isinstance(m, dict) else m.role for m in c.hist] == ['user', 'assistant']
    fx.push(ok('it is 3'))
    r = run(c(mk_tc_results(r, ['3'])))
    assert r.choices[0].message.content == 'it is 3' and CALLS == []
    assert [m['role'] for m in body(fx)['messages']] == ['user', 'assistant', 'tool']
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('ran'))
    run(c('again', tool_exec=True))
    assert CALLS == [('add', 1, 2)]

def test_event_sequence_of_a_two_step_loop(fx):
    evs = []
    c = oai_chat(fx, tools=[count], on_event=evs.append)
    fx.push(tool_reply(('count', {'n': 2})), ok('done'))
    c('count')
    assert [e.type for e in evs] == ['run_start', 'turn_start', 'message_start', 'message_end', 'tool_start', 'tool_update',
                                     'tool_update', 'tool_end', 'turn_end', 'turn_start', 'message_start', 'message_end',
                                     'turn_end', 'run_end']
    assert len({e.run_id for e in evs}) == 1 and [e.turn for e in evs if e.type == 'turn_start'] == [0, 1]
    assert {e.tool_call_id for e in evs if e.type.startswith('tool_')} == {'call_0'}
    assert 'api_key' not in evs[2].data and evs[3].data.metrics.output_tokens == 5

def test_error_event_then_raise(fx):
    from conftest import status
    evs = []
    c = oai_chat(fx, on_event=evs.append)
    fx.push(status(500, 'down'))
    with pytest.raises(LisetteError): c('hi')
    assert [e.type for e in evs] == ['run_start', 'turn_start', 'message_start', 'error'] and 'down' in str(evs[-1].data)
    assert c.hist == []
