"""Fault injection over real HTTP: every failed call raises a clear litellm error and leaves `hist` (and `use`, except
for responses that did arrive) exactly as before; tools run only from the declared list."""
import json, time, asyncio, threading
import pytest
import litellm, openai
from litellm import ModelResponse
from lisette.chat import Chat
from lisette.async_chat import AsyncChat
from lisette.errors import (LisetteError, ModelError, ModelServerError, ModelRateLimitError, ModelTimeoutError,
                            IncompleteStreamError)
from conftest import (FaultServer, ok, tool_reply, status, raw, cut, eof, malformed, slow, reply, oai_completion,
                      oai_chat, anth_chat, snapshot, same, primed, NO_RETRY)

# A dangerous-looking function that exists in this module's globals but is never declared as a tool.
OS_CALLS = []
def os_system(cmd:str) -> str:
    "Run a shell command (never declared to any Chat: calling it would be a security bug)"
    OS_CALLS.append(cmd)
    return 'ran'

ADD_CALLS = []
def add(a:int, b:int) -> int:
    "Add `a` and `b`"
    ADD_CALLS.append((a, b))
    return a + b

def boom(x:str) -> str:
    "Always fails"
    raise RuntimeError(f'boom on {x}')

@pytest.fixture(autouse=True)
def _reset_calls():
    OS_CALLS.clear(); ADD_CALLS.clear()

def consume(r): return list(r) if not isinstance(r, ModelResponse) else r

def mentions(err, text):
    "True if exception `err`'s message contains `text` (or one of a tuple of alternatives)."
    return any(t in str(err) for t in ((text,) if isinstance(text, str) else text))

# --- sync Chat over the OpenAI wire format ---------------------------------------------------------------------

FAULTS = {  # name: (scripted action, stream?, call kwargs, expected exception, substring of its message)
    '500':          (status(500, 'upstream exploded'), False, {}, litellm.InternalServerError, 'upstream exploded'),
    '500-stream':   (status(500, 'upstream exploded'), True, {}, litellm.InternalServerError, 'upstream exploded'),
    '429':          (status(429, 'slow down', 'rate_limit_error'), False, {}, litellm.RateLimitError, 'slow down'),
    '429-stream':   (status(429, 'slow down', 'rate_limit_error'), True, {}, litellm.RateLimitError, 'slow down'),
    'not-json':     (raw(b'<html>502 Bad Gateway</html>'), False, {}, openai.APIError, 'Expecting value'),
    'stream-cut':   (cut(3), True, {}, openai.APIError, ('incomplete chunked read', 'payload is not completed')),
    'bad-sse-line': (malformed(), True, {}, openai.APIError, 'delimiter'),
    'slow':         (slow(3), False, dict(timeout=0.5), litellm.Timeout, ('timed out', 'Timeout')),
    'slow-stream':  (slow(3), True, dict(timeout=0.5), litellm.Timeout, ('timed out', 'Timeout')),
}

# Each fault as lisette's own error: one class to catch per kind of failure, still the litellm error above as well.
KINDS = {'500': ModelServerError, '500-stream': ModelServerError, '429': ModelRateLimitError,
         '429-stream': ModelRateLimitError, 'not-json': ModelServerError, 'stream-cut': ModelServerError,
         'bad-sse-line': ModelServerError, 'slow': ModelTimeoutError, 'slow-stream': ModelTimeoutError}

def is_kind(err, kind, model):
    "True if `err` is lisette's `kind` of `ModelError`, naming `model`, wrapping (and being) a litellm error."
    return (isinstance(err, kind) and isinstance(err, LisetteError) and err.model == model
            and isinstance(err.__cause__, openai.APIError) and isinstance(err, type(err.__cause__)))

@pytest.mark.parametrize('name', FAULTS)
def test_sync_fault_leaves_hist(fx, name):
    act,stream,kw,exc,text = FAULTS[name]
    c = primed(fx)
    snap = snapshot(c)
    fx.push(act)
    t = time.monotonic()
    with pytest.raises(exc) as ei: consume(c('second question', stream=stream, **kw))
    assert time.monotonic() - t < 2.5, 'no retries and no waiting out a slow server past `timeout`'
    assert mentions(ei.value, text), str(ei.value)
    assert is_kind(ei.value, KINDS[name], c.model), type(ei.value).__mro__
    assert same(c, snap), f'{name}: hist/use changed by a failed call'
    assert len(fx.requests) == 2, 'exactly one request for the failed call (no retries)'
    # and the chat is still usable afterwards
    fx.push(ok('third answer'))
    assert c('third question').choices[0].message.content == 'third answer'
    assert [m['content'] if isinstance(m, dict) else m.content for m in c.hist] == [
        'first question', 'first answer', 'third question', 'third answer']

def test_stream_abandoned_midway_leaves_hist(fx):
    c = primed(fx)
    snap = snapshot(c)
    fx.push(ok('a long streamed answer'))
    g = c('q', stream=True)
    next(g); next(g)
    g.close()
    assert same(c, snap)

BROKEN_STREAMS = {'ends early': eof(3),   # body ends cleanly after 3 chunks: no finish_reason, no usage, no [DONE]
                  'not sse': raw(b'<html>502 Bad Gateway</html>', ctype='text/event-stream')}  # a proxy's error page

BROKEN_KINDS = {'ends early': IncompleteStreamError, 'not sse': IncompleteStreamError}

@pytest.mark.parametrize('name', BROKEN_STREAMS)
def test_broken_stream_is_an_error(fx, name):
    "A stream that never says it finished must raise; the partial answer must not become history."
    c = primed(fx)
    snap = snapshot(c)
    fx.push(BROKEN_STREAMS[name])
    with pytest.raises(ModelError) as ei: list(c('q', stream=True))
    assert isinstance(ei.value, BROKEN_KINDS[name]), type(ei.value).__mro__
    assert same(c, snap)

def test_tool_loop_second_request_fails(fx):
    "The tool ran, then the follow-up request 500s: exception, hist unchanged, usage counts the one response received."
    c = primed(fx, tools=[add])
    h0,u0 = snapshot(c)
    fx.push(tool_reply(('add', {'a': 12, 'b': 30})), status(500, 'second call failed'))
    with pytest.raises(ModelServerError, match='second call failed') as ei: c('add 12 and 30')
    assert is_kind(ei.value, ModelServerError, c.model) and isinstance(ei.value, litellm.InternalServerError)
    assert ADD_CALLS == [(12, 30)]
    assert snapshot(c)[0] == h0
    assert c.use.calls == u0.calls + 1 and c.use.input == u0.input + 10 and c.use.output == u0.output + 5
    # the failed follow-up did carry the tool result
    assert dict(role='tool', tool_call_id='call_0', name='add', content='42') in fx.requests[-1]['body']['messages']

def test_tool_loop_second_request_fails_stream(fx):
    c = primed(fx, tools=[add])
    h0,u0 = snapshot(c)
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), cut(2))
    seen = []
    with pytest.raises(ModelServerError) as ei:
        for o in c('add', stream=True): seen.append(o)
    assert is_kind(ei.value, ModelServerError, c.model)
    assert any(isinstance(o, dict) and o.get('role') == 'tool' and o['content'] == '3' for o in seen)
    assert snapshot(c)[0] == h0 and c.use.calls == u0.calls + 1

def test_tool_raising_base_exception_leaves_hist(fx):
    "A KeyboardInterrupt inside a tool is not turned into a result: it propagates, and hist is unchanged."
    def halt() -> str:
        "Stop"
        raise KeyboardInterrupt
    c = primed(fx, tools=[halt])
    h0 = snapshot(c)[0]
    fx.push(tool_reply(('halt', {})))
    with pytest.raises(KeyboardInterrupt): c('go')
    assert snapshot(c)[0] == h0

def test_successful_call_does_not_mutate_old_hist(fx):
    "litellm's request transformation must not rewrite messages already in hist (cache checkpoints, dict copies)."
    c = primed(fx, tools=[add], cache=True, ttl='1h')
    h0 = snapshot(c)[0]
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('3'))
    c('add')
    assert snapshot(c)[0][:2] == h0
    assert len(c.hist) == 7   # + user, assistant tool call, tool result, final prompt, answer

# --- Anthropic wire format ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('code,kind,exc,ours', [(500, 'api_error', litellm.InternalServerError, ModelServerError),
                                                (529, 'overloaded_error', openai.APIError, ModelServerError),
                                                (429, 'rate_limit_error', litellm.RateLimitError, ModelRateLimitError)])
@pytest.mark.parametrize('stream', [False, True])
def test_anthropic_errors(fx, code, kind, exc, ours, stream):
    c = anth_chat(fx)
    fx.push(ok('hello'))
    c('hi')
    snap = snapshot(c)
    fx.push(status(code, f'fixture {kind}', kind, anthropic=True))
    with pytest.raises(exc, match=f'fixture {kind}') as ei: consume(c('again', stream=stream))
    assert is_kind(ei.value, ours, c.model), type(ei.value).__mro__
    assert same(c, snap)
    assert fx.requests[-1]['path'] == '/v1/messages' and len(fx.requests) == 2

def test_anthropic_stream_cut(fx):
    c = anth_chat(fx)
    snap = snapshot(c)
    fx.push(cut(2))   # OpenAI-shaped chunks on /v1/messages, then a dropped connection
    with pytest.raises(openai.APIError) as ei: list(c('hi', stream=True))
    assert isinstance(ei.value, ModelError), type(ei.value).__mro__
    assert same(c, snap)

# --- tools only from the declared list ---------------------------------------------------------------------------

def _tool_msgs(c): return [m for m in c.hist if isinstance(m, dict) and m.get('role') == 'tool']

@pytest.mark.parametrize('stream', [False, True])
def test_undeclared_tool_never_runs(fx, stream):
    c = oai_chat(fx, tools=[add])
    fx.push(tool_reply(('os_system', {'cmd': 'rm -rf /'}), ('add', {'a': 2, 'b': 3})), ok('done'))
    r = c('hi', stream=stream)
    r = list(r)[-1] if stream else r
    assert r.choices[0].message.content == 'done'
    assert OS_CALLS == [] and ADD_CALLS == [(2, 3)]
    res = _tool_msgs(c)
    assert res[0]['name'] == 'os_system' and "no tool named 'os_system'" in res[0]['content'] and 'add' in res[0]['content']
    assert res[1]['content'] == '5'
    sent = [m for m in fx.requests[1]['body']['messages'] if m['role'] == 'tool']
    assert [m['content'] for m in sent] == [m['content'] for m in res], 'the error results were fed back to the model'

def test_schema_dict_tool_ns_is_filtered(fx):
    "With schema-dict tools, only names declared in `tools` are callable, even if `ns` holds more."
    schema = {'type': 'function', 'function': {'name': 'add', 'description': 'add',
              'parameters': {'type': 'object', 'properties': {'a': {'type': 'integer'}, 'b': {'type': 'integer'}}}}}
    c = oai_chat(fx, tools=[schema], ns={'add': add, 'os_system': os_system})
    fx.push(tool_reply(('os_system', {'cmd': 'id'})), ok('done'))
    c('hi')
    assert OS_CALLS == [] and "no tool named 'os_system'" in _tool_msgs(c)[0]['content']

def test_no_tools_declared_nothing_runs(fx):
    c = oai_chat(fx)
    fx.push(tool_reply(('os_system', {'cmd': 'id'})), ok('done'))
    c('hi')
    assert OS_CALLS == [] and 'Available tools: none' in _tool_msgs(c)[0]['content']

BAD_ARGS = {  # raw arguments string from the model: substring of the error result
    'not json':       ('{"a": 1, "b": ', 'not valid JSON'),
    'json list':      ('[1, 2]', 'must be a JSON object'),
    'json string':    ('"1 2"', 'must be a JSON object'),
    'json null':      ('null', 'must be a JSON object'),
    'wrong type':     ('{"a": "one", "b": 2}', 'invalid arguments for add: a:'),
    'missing arg':    ('{"a": 1}', 'invalid arguments for add: b: Field required'),
    'extra arg':      ('{"a": 1, "b": 2, "c": 3}', 'invalid arguments for add: c: Extra inputs are not permitted'),
}

@pytest.mark.parametrize('name', BAD_ARGS)
def test_bad_tool_arguments_become_error_results(fx, name):
    args,err = BAD_ARGS[name]
    c = oai_chat(fx, tools=[add])
    fx.push(tool_reply(('add', args)), ok('done'))
    assert c('hi').choices[0].message.content == 'done'
    assert ADD_CALLS == []
    res = _tool_msgs(c)
    assert len(res) == 1 and res[0]['content'].startswith('Error:') and err in res[0]['content'], res[0]['content']
    # the second request is well-formed: the broken arguments were replaced by a JSON object after being reported
    call = fx.requests[1]['body']['messages'][1]['tool_calls'][0]
    assert isinstance(json.loads(call['function']['arguments']), dict)

def test_tool_raising_is_error_text_and_loop_continues(fx):
    c = oai_chat(fx, tools=[boom, add])
    fx.push(tool_reply(('boom', {'x': 'it'}), ('add', {'a': 1, 'b': 1})), tool_reply(('add', {'a': 2, 'b': 2})), ok('done'))
    r = c('hi', max_steps=3)
    assert r.choices[0].message.content == 'done'
    assert [m['content'] for m in _tool_msgs(c)] == ['Error: RuntimeError: boom on it', '2', '4']
    assert len(fx.requests) == 3

def test_step_limit_does_not_run_tools(fx):
    "On the last step, tool calls are answered with an error, not run."
    c = oai_chat(fx, tools=[add])
    fx.push(tool_reply(('add', {'a': 1, 'b': 1})), tool_reply(('add', {'a': 5, 'b': 5})))
    c('hi', max_steps=2)
    assert ADD_CALLS == [(1, 1)]
    assert 'step limit' in _tool_msgs(c)[-1]['content']
    assert fx.requests[1]['body']['tool_choice'] == 'none'

# --- AsyncChat ---------------------------------------------------------------------------------------------------

async def _aconsume(r):
    r = await r
    return [o async for o in r] if not isinstance(r, ModelResponse) else r

@pytest.mark.parametrize('name', FAULTS)
def test_async_fault_leaves_hist(fx, name):
    act,stream,kw,exc,text = FAULTS[name]
    c = primed(fx, AsyncChat)
    snap = snapshot(c)
    fx.push(act)
    with pytest.raises(exc) as ei: asyncio.run(_aconsume(c('second', stream=stream, **kw)))
    assert mentions(ei.value, text), str(ei.value)
    assert is_kind(ei.value, KINDS[name], c.model), type(ei.value).__mro__
    assert same(c, snap)
    assert len(fx.requests) == 2

@pytest.mark.parametrize('stream', [False, True])
def test_async_tool_loop_second_request_fails(fx, stream):
    c = primed(fx, AsyncChat, tools=[add])
    h0,u0 = snapshot(c)
    fx.push(tool_reply(('add', {'a': 4, 'b': 5})), status(500, 'second call failed'))
    with pytest.raises(litellm.InternalServerError, match='second call failed') as ei:
        asyncio.run(_aconsume(c('add', stream=stream)))
    assert is_kind(ei.value, ModelServerError, c.model)
    assert ADD_CALLS == [(4, 5)] and snapshot(c)[0] == h0 and c.use.calls == u0.calls + 1

@pytest.mark.parametrize('stream', [False, True])
def test_async_cancel_during_tool(fx, stream):
    "Cancelling the task while a (slow, async) tool runs: CancelledError, hist unchanged, the tool is cancelled too."
    state = {}
    async def nap(secs:float) -> str:
        "Sleep"
        state['started'] = True
        try: await asyncio.sleep(secs)
        except asyncio.CancelledError: state['cancelled'] = True; raise
        return 'rested'
    c = primed(fx, AsyncChat, tools=[nap])
    h0 = snapshot(c)[0]
    fx.push(tool_reply(('nap', {'secs': 30})), ok('after nap'))
    async def go():
        task = asyncio.create_task(_aconsume(c('nap', stream=stream)))
        for _ in range(200):
            if state.get('started'): break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError): await task
    t = time.monotonic()
    asyncio.run(go())
    assert time.monotonic() - t < 5
    assert state == {'started': True, 'cancelled': True}
    assert snapshot(c)[0] == h0
    assert len(fx.requests) == 2, 'the follow-up request was never sent'

def test_async_cancel_during_sync_tool(fx):
    "A sync tool runs in a thread: cancelling the turn returns promptly and leaves hist alone."
    started = threading.Event()
    def snooze(secs:float) -> str:
        "Sleep"
        started.set(); time.sleep(secs); return 'done'
    c = primed(fx, AsyncChat, tools=[snooze])
    h0 = snapshot(c)[0]
    fx.push(tool_reply(('snooze', {'secs': 0.5})), ok('x'))
    async def go():
        task = asyncio.create_task(c('nap'))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError): await task
    asyncio.run(go())
    assert snapshot(c)[0] == h0 and len(fx.requests) == 2

def test_async_cancel_during_request(fx):
    c = primed(fx, AsyncChat)
    snap = snapshot(c)
    fx.push(slow(2))
    async def go():
        task = asyncio.create_task(c('q'))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError): await task
    asyncio.run(go())
    assert same(c, snap)

def test_async_aclose_stream(fx):
    c = primed(fx, AsyncChat)
    snap = snapshot(c)
    fx.push(ok('a long streamed answer'))
    async def go():
        g = await c('q', stream=True)
        await g.__anext__(); await g.__anext__()
        await g.aclose()
    asyncio.run(go())
    assert same(c, snap)

def test_async_aclose_stream_after_tool_result(fx):
    c = primed(fx, AsyncChat, tools=[add])
    h0 = snapshot(c)[0]
    fx.push(tool_reply(('add', {'a': 1, 'b': 2})), ok('three'))
    async def go():
        g = await c('q', stream=True)
        async for o in g:
            if isinstance(o, dict) and o.get('role') == 'tool': break
        await g.aclose()
    asyncio.run(go())
    assert ADD_CALLS == [(1, 2)] and snapshot(c)[0] == h0 and len(fx.requests) == 2

def test_async_undeclared_tool_never_runs(fx):
    c = oai_chat(fx, AsyncChat, tools=[add])
    fx.push(tool_reply(('os_system', {'cmd': 'id'}), ('add', {'a': 'x', 'b': 1})), ok('done'))
    r = asyncio.run(c('hi'))
    assert r.choices[0].message.content == 'done' and OS_CALLS == [] and ADD_CALLS == []
    res = _tool_msgs(c)
    assert "no tool named 'os_system'" in res[0]['content'] and 'invalid arguments for add' in res[1]['content']

def test_async_concurrent_chats(fx):
    "20 concurrent AsyncChat calls on separate chats all succeed; each hist holds exactly its own 2 messages."
    fx.default = lambda h, body: ok('echo:' + body['messages'][-1]['content'])(h, body)
    chats = [oai_chat(fx, AsyncChat) for _ in range(20)]
    async def one(i, c):
        r = await c(f'msg {i}', stream=i % 2 == 1)
        return r if isinstance(r, ModelResponse) else [o async for o in r][-1]
    async def run(): return await asyncio.gather(*(one(i, c) for i,c in enumerate(chats)))
    rs = asyncio.run(run())
    for i,(c,r) in enumerate(zip(chats, rs)):
        assert r.choices[0].message.content == f'echo:msg {i}'
        assert len(c.hist) == 2 and c.hist[0]['content'] == f'msg {i}' and c.hist[1].content == f'echo:msg {i}'
        assert c.use.calls == 1
    assert len(fx.requests) == 20
