"""Bad input, table driven: each bad argument raises TypeError/ValueError naming the argument, before anything is sent
(the fixture server counts requests) and without touching `hist`."""
import random, asyncio
from pathlib import Path
import pytest
from lisette.chat import Chat
from lisette.async_chat import AsyncChat
from lisette.messages import mk_msg, mk_msgs
from conftest import ok, oai_chat, snapshot, same

def add(a:int, b:int) -> int:
    "Add `a` and `b`"
    return a + b

def cases(lst):
    "Parametrize rows `(id, kwargs, arg)`, with `id` as the test id; `pytest.param` rows are kept as they are."
    return [c if hasattr(c, 'marks') else pytest.param(*c, id=c[0]) for c in lst]

def names(ei, arg):
    "True if the exception message names argument `arg` (one name or a tuple of accepted names)."
    return any(f'{a}' in str(ei.value) for a in ((arg,) if isinstance(arg, str) else arg))

# --- mk_msg / mk_msgs ------------------------------------------------------------------------------------------------

MK_MSG = [  # (id, kwargs for mk_msg, argument that must be named)
    ('int',           dict(content=1), 'content'),
    ('float',         dict(content=1.5), 'content'),
    ('None',          dict(content=None), 'content'),
    ('object',        dict(content=object()), 'content'),
    ('set',           dict(content={1, 2}), 'content'),
    ('bool',          dict(content=True), 'content'),
    ('list of None',  dict(content=[None]), 'content'),
    ('nested list',   dict(content=[[['x']]]), 'content'),
    ('bad utf8',      dict(content=b'\xff\xfe\xfd'), 'content'),
    ('bytearray',     dict(content=bytearray(b'\xc3\x28')), 'content'),
    ('mixed list',    dict(content=['ok', 3]), 'content'),
    ('bad role',      dict(content='x', role='hacker'), 'role'),
    ('role None',     dict(content='x', role=None), 'role'),
    ('bad ttl',       dict(content='x', cache=True, ttl='2h'), 'ttl'),
    ('ttl int',       dict(content='x', cache=True, ttl=300), 'ttl'),
    pytest.param('dict bad role', dict(content={'role': 'hacker', 'content': 'x'}), 'role', id='dict bad role'),
    pytest.param('dict no content', dict(content={'role': 'user'}), 'content', id='dict no content'),
    pytest.param('dict int content', dict(content={'role': 'user', 'content': 5}), 'content', id='dict int content'),
    pytest.param('ttl without cache', dict(content='x', ttl='2h'), 'ttl', id='ttl without cache'),
]

@pytest.mark.parametrize('case,kw,arg', cases(MK_MSG))
def test_mk_msg_rejects(case, kw, arg):
    with pytest.raises((TypeError, ValueError)) as ei: mk_msg(**kw)
    assert names(ei, arg), str(ei.value)

MK_MSGS = [
    ('int',             dict(msgs=42), 'content'),
    ('None',            dict(msgs=None), 'content'),
    ('list with int',   dict(msgs=['hi', 'there', 3]), 'content'),
    ('bad bytes',       dict(msgs=['hi', b'\xff']), 'content'),
    ('5 cache idxs',    dict(msgs=['a', 'b'], cache=True, cache_idxs=[0, 1, 2, 3, 4]), 'cache_idxs'),
    ('bad ttl',         dict(msgs=['a'], cache=True, ttl='forever'), 'ttl'),
    pytest.param('cache_idxs strs', dict(msgs=['a'], cache=True, cache_idxs=['x']), 'cache_idxs', id='cache_idxs strs'),
    pytest.param('cache_idxs int', dict(msgs=['a'], cache=True, cache_idxs=1), 'cache_idxs', id='cache_idxs int'),
]

@pytest.mark.parametrize('case,kw,arg', cases(MK_MSGS))
def test_mk_msgs_rejects(case, kw, arg):
    with pytest.raises((TypeError, ValueError)) as ei: mk_msgs(**kw)
    assert names(ei, arg), str(ei.value)

def test_random_bytes_content():
    "500 random byte strings: each is an image/PDF part, UTF-8 text, or a ValueError naming `content` — nothing else."
    rng = random.Random(1234)
    outcomes = {'text': 0, 'media': 0, 'error': 0}
    for _ in range(500):
        b = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        if rng.random() < 0.1: b = rng.choice([b'\x89PNG\r\n\x1a\n', b'%PDF-', b'GIF89a', b'\xff\xd8\xff']) + b
        try: m = mk_msg(b)
        except ValueError as e:
            assert 'content' in str(e); outcomes['error'] += 1; continue
        part = m['content'][0]
        assert m['role'] == 'user' and part['type'] in ('text', 'image_url', 'file')
        outcomes['text' if part['type'] == 'text' else 'media'] += 1
        if part['type'] == 'text': assert part['text'] == b.decode()
    assert all(outcomes.values()), outcomes

# --- Chat(...) constructor ----------------------------------------------------------------------------------------

CTOR = [  # (id, Chat kwargs beyond model/api_base/api_key, argument that must be named)
    ('model None',       dict(model=None), 'model'),
    ('model empty',      dict(model=''), 'model'),
    ('model int',        dict(model=3), 'model'),
    ('temp str',         dict(temp='hot'), 'temp'),
    ('search bad',       dict(search='x'), 'search'),
    ('search True',      dict(search=True), 'search'),
    ('tools int',        dict(tools=[42]), 'tools'),
    ('tools str',        dict(tools='add'), 'tools'),
    ('tools bad dict',   dict(tools=[{'type': 'function', 'function': {'name': 'f'}}]), 'ns'),
    ('5 cache idxs',     dict(cache_idxs=[0, 1, 2, 3, 4]), 'cache_idxs'),
    ('hist int item',    dict(hist=['hi', 3]), 'content'),
    ('hist bad bytes',   dict(hist=[b'\xff']), 'content'),
    ('max_concurrency',  dict(cls=AsyncChat, max_concurrency=0), 'max_concurrency'),
    pytest.param('tools single fn', dict(tools=add), 'tools', id='tools single fn'),
    pytest.param('hist int', dict(hist=42), 'hist', id='hist int'),
    pytest.param('cache_idxs int', dict(cache_idxs=3), 'cache_idxs', id='cache_idxs int'),
    pytest.param('cache_idxs strs', dict(cache=True, cache_idxs=['a']), 'cache_idxs', id='cache_idxs strs'),
    ('ttl',              dict(cache=True, ttl='2h'), 'ttl'),   # accepted by the constructor, but fails before sending
    pytest.param('ttl no cache', dict(ttl='2h'), 'ttl', id='ttl no cache'),
    pytest.param('sp int', dict(sp=123), 'sp', id='sp int'),
    pytest.param('api_key int', dict(api_key=123), 'api_key', id='api_key int'),
    pytest.param('temp nan', dict(temp=float('nan')), 'temp', id='temp nan'),
    pytest.param('max_concurrency True', dict(cls=AsyncChat, max_concurrency=True), 'max_concurrency', id='max_concurrency True'),
]

@pytest.mark.parametrize('case,kw,arg', cases(CTOR))
def test_chat_constructor_rejects(fx, case, kw, arg):
    kw = dict(kw)
    cls = kw.pop('cls', Chat)
    model = kw.pop('model', 'openai/fixture-model')
    kw = {'api_key': 'sk-test', **kw}
    with pytest.raises((TypeError, ValueError)) as ei:
        c = cls(model, api_base=fx.base, num_retries=0, **kw)
        c('hi')   # a bad argument the constructor let through must at least fail before sending
    assert names(ei, arg), str(ei.value)
    assert fx.requests == []

def test_chat_hist_string_is_one_message(fx):
    assert Chat('openai/m', hist='hello').hist == mk_msgs('hello') == [{'role': 'user', 'content': 'hello'}]

# --- call arguments -------------------------------------------------------------------------------------------------

CALL = [  # (id, call kwargs, argument that must be named); the chat has tools=[add] and a 2-message history
    ('msg int',           dict(msg=123), ('msg', 'content')),
    ('msg object',        dict(msg=object()), ('msg', 'content')),
    ('msg bad bytes',     dict(msg=bytes(range(128, 256))), ('msg', 'content')),
    ('msg list int',      dict(msg=['look', 7]), ('msg', 'content')),
    ('max_steps 0',       dict(max_steps=0), 'max_steps'),
    ('max_steps -1',      dict(max_steps=-1), 'max_steps'),
    ('max_steps float',   dict(max_steps=2.0), 'max_steps'),
    ('max_steps str',     dict(max_steps='3'), 'max_steps'),
    ('max_steps None',    dict(max_steps=None), 'max_steps'),
    ('think bad',         dict(think='max'), 'think'),
    ('think int',         dict(think=1), 'think'),
    ('think True',        dict(think=True), 'think'),
    ('search bad',        dict(search='web'), 'search'),
    ('search list',       dict(search=['l']), 'search'),
    pytest.param('max_steps True', dict(max_steps=True), 'max_steps', id='max_steps True'),
    pytest.param('prefill int', dict(prefill=123), 'prefill', id='prefill int'),
    pytest.param('msg dict bad role', dict(msg={'role': 'hacker', 'content': 'x'}), 'role', id='msg dict bad role'),
]

def _call(c, stream, kw):
    kw = dict(kw); msg = kw.pop('msg', 'hello')
    if isinstance(c, AsyncChat):
        async def go():
            r = await c(msg, stream=stream, **kw)
            if stream: [o async for o in r]
        return asyncio.run(go())
    r = c(msg, stream=stream, **kw)
    if stream: list(r)

@pytest.mark.parametrize('cls', [Chat, AsyncChat])
@pytest.mark.parametrize('stream', [False, True], ids=['nostream', 'stream'])
@pytest.mark.parametrize('case,kw,arg', cases(CALL))
def test_call_rejects(fx, case, kw, arg, stream, cls):
    fx.push(ok('first'))
    c = oai_chat(fx, cls, tools=[add])
    _call(c, False, {})
    snap,n = snapshot(c),len(fx.requests)
    fx.push(ok('should not be sent'))
    with pytest.raises((TypeError, ValueError)) as ei: _call(c, stream, kw)
    assert names(ei, arg), str(ei.value)
    assert len(fx.requests) == n, 'nothing may be sent for a bad argument'
    assert same(c, snap)

@pytest.mark.parametrize('kw,arg', [(dict(cache=True, ttl='2h'), 'ttl'), (dict(cache=True, cache_idxs=[0, 1, 2, 3, 4, 5]), 'cache_idxs')])
def test_bad_chat_settings_set_after_construction(fx, kw, arg):
    "Settings changed on an existing chat are checked when the request is built: before sending, hist unchanged."
    c = oai_chat(fx)
    for k,v in kw.items(): setattr(c, k, v)
    with pytest.raises(ValueError, match=arg): c('hi')
    assert fx.requests == [] and c.hist == []

def test_random_bytes_calls_send_nothing(fx):
    "Random non-UTF-8 byte messages through Chat: ValueError naming content, 0 requests, hist unchanged."
    rng = random.Random(7)
    c = oai_chat(fx)
    tried = 0
    while tried < 50:
        b = bytes(rng.randrange(128, 256) for _ in range(rng.randrange(1, 32)))
        try: b.decode(); continue
        except UnicodeDecodeError: pass
        if b[:3] == b'\xff\xd8\xff': continue
        tried += 1
        with pytest.raises(ValueError, match='content'): c(b)
        with pytest.raises(ValueError, match='content'): c(['text', b])
    assert fx.requests == [] and c.hist == [] and c.use.calls == 0

def test_tool_schema_dict_without_callable_sends_nothing(fx):
    with pytest.raises(ValueError, match='ns'):
        oai_chat(fx, tools=[{'type': 'function', 'function': {'name': 'secret_fn'}}], ns={'other': add})
    assert fx.requests == []

def test_live_server_bad_args_send_nothing(live):
    "On the real server too, a bad argument fails before the request, and a good one after it still works."
    c = Chat(**live['openai'], tools=[add], max_tokens=60)
    with pytest.raises(ValueError, match='max_steps'): c('What is 12 + 30? Use the add tool.', max_steps=0)
    with pytest.raises(ValueError, match='think'): c('What is 12 + 30? Use the add tool.', think='x')
    assert c.hist == [] and c.use.calls == 0
    r = c('What is 12 + 30? Use the add tool.', max_steps=2, return_all=True)
    assert c.use.calls >= 1 and len(c.hist) >= 2
    tool_msgs = [o for o in r if isinstance(o, dict) and o.get('role') == 'tool']
    assert all(m['name'] == 'add' or m['content'].startswith('Error') for m in tool_msgs)
