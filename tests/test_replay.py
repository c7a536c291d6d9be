"""Record and replay (`lisette.replay`): recordings hold no key, a miss fails without opening a socket, keys survive a
change of port and of tool-call ids, and httpx is left exactly as it was. Scripted traffic comes from the
`FaultServer` in conftest (deterministic); one test records the live llama-server."""
import re, json, socket, asyncio
import pytest
import httpx, requests
import cachy.core as cachy
from lisette.messages import contents, mk_msg, mk_tc, mk_tc_req, mk_tc_result
from lisette.chat import Chat
from lisette.async_chat import AsyncChat
from lisette.errors import ReplayMissError, ConfigValueError
from lisette.replay import replay, _clients
from conftest import FaultServer, ok, status, closed_port, NO_RETRY, _send, oai_completion

KEY = 'sk-secret-REPLAY-0123456789abcdef'
PARTS = (KEY, 'REPLAY-0123456789', '0123456789abcdef')   # long pieces of the key that would identify it too
MODES = [(p, stream, aio) for p in ('openai', 'anthropic') for stream in (False, True) for aio in (False, True)]

def model(prov, url, **kw) -> dict:
    "Chat kwargs for a server at `url` over wire format `prov`, with the test key and no retries."
    m = dict(model='openai/fixture-model', api_base=f'{url}/v1') if prov == 'openai' else dict(model='anthropic/claude-fixture', api_base=url)
    return {**m, 'api_key': KEY, **NO_RETRY, **kw}

def ask(kw, q='hi', stream=False, aio=False) -> str:
    "The reply text to `q` from a `Chat` (or `AsyncChat` if `aio`) made with `kw`, streamed or not."
    if aio:
        async def go():
            r = await AsyncChat(**kw)(q, stream=stream)
            return [o async for o in r][-1] if stream else r
        return contents(asyncio.run(go()))
    r = Chat(**kw)(q, stream=stream)
    return contents(list(r)[-1] if stream else r)

def stored(path) -> str:
    "Everything in the recording at `path`."
    return (path/'cachy.jsonl').read_text()

@pytest.fixture
def connects(monkeypatch):
    "Every socket connection attempted during the test, recorded (and still made)."
    calls = []
    orig,orig_cc = socket.socket.connect,socket.create_connection
    monkeypatch.setattr(socket.socket, 'connect', lambda self, *a: (calls.append(a), orig(self, *a))[1])
    monkeypatch.setattr(socket, 'create_connection', lambda *a, **k: (calls.append(a), orig_cc(*a, **k))[1])
    return calls

@pytest.mark.parametrize('prov,stream,aio', MODES)
def test_recording_holds_no_key(fx, tmp_path, prov, stream, aio):
    fx.push(ok('hello there'))
    with replay(tmp_path, 'record'): text = ask(model(prov, fx.url), stream=stream, aio=aio)
    assert text == 'hello there'
    h = {k.lower(): v for k,v in fx.requests[0]['headers'].items()}
    assert (h.get('authorization') == f'Bearer {KEY}') if prov == 'openai' else (h.get('x-api-key') == KEY), 'the key was really sent'
    s = stored(tmp_path)
    assert len(s.splitlines()) == 1
    assert not [p for p in PARTS if p in s]
    for word in ('authorization', 'x-api-key', 'bearer', 'anthropic-version'): assert word not in s.lower()
    assert {k for l in s.splitlines() for k in json.loads(l)['headers']} == {'content-type'}

def test_key_quoted_by_the_server_is_redacted(fx, tmp_path):
    "A 401 that quotes the key, and a success whose headers echo it: neither reaches the file."
    echo = lambda h, body: _send(h, 200, 'application/json', json.dumps(oai_completion('ok')).encode(), [('x-echo-key', KEY)])
    fx.push(status(401, f'Incorrect API key provided: {KEY}', 'invalid_api_key'), echo)
    kw = model('openai', fx.url)
    with replay(tmp_path, 'record'):
        with pytest.raises(Exception, match='Incorrect API key'): ask(kw, 'refused')
        assert ask(kw, 'echoed') == 'ok'
    s = stored(tmp_path)
    assert len(s.splitlines()) == 2 and 'sk-[redacted]' in s
    assert not [p for p in PARTS if p in s] and 'x-echo-key' not in s

@pytest.mark.parametrize('prov,stream,aio', MODES)
def test_replay_needs_no_server(fx, tmp_path, connects, prov, stream, aio):
    "Recorded against the server at one port, replayed at another where nothing listens: same reply, no socket."
    fx.push(ok('the recorded answer'))
    with replay(tmp_path, 'record'): live = ask(model(prov, fx.url), stream=stream, aio=aio)
    fx.stop()
    connects.clear()
    with replay(tmp_path) as rec: again = ask(model(prov, f'http://127.0.0.1:{closed_port()}'), stream=stream, aio=aio)
    assert again == live == 'the recorded answer'
    assert rec.misses == [] and connects == []

def test_port_change_reaches_no_server(tmp_path):
    "Replayed against a second live server on another port: it gets no request."
    a,b = FaultServer([ok('from a')]),FaultServer([ok('from b')])
    try:
        with replay(tmp_path, 'record'): ask(model('openai', a.url))
        with replay(tmp_path): assert ask(model('openai', b.url)) == 'from a'
        assert len(a.requests) == 1 and b.requests == []
    finally: a.stop(); b.stop()

@pytest.mark.parametrize('prov,stream,aio', MODES)
def test_miss_fails_without_connecting(fx, tmp_path, connects, prov, stream, aio):
    fx.push(ok('recorded'))
    with replay(tmp_path, 'record'): ask(model(prov, fx.url), 'the recorded question', stream=stream, aio=aio)
    fx.stop()
    dead = model(prov, f'http://127.0.0.1:{closed_port()}')
    with pytest.raises(Exception): ask(dead, stream=stream, aio=aio)   # outside a replay, the spy sees the attempt
    assert connects, 'the socket spy records connections'
    connects.clear()
    path = '/v1/chat/completions' if prov == 'openai' else '/v1/messages'
    with pytest.raises(ReplayMissError, match=f'POST {path} \\(body [0-9a-f]{{8}}\\) is not in the recording') as ei:
        with replay(tmp_path): ask(dead, 'the edited question', stream=stream, aio=aio)
    assert connects == []
    e = ei.value
    assert (e.method, e.path, len(e.digest)) == ('POST', path, 8)
    assert "replay(path, mode='record')" in str(e) and not [p for p in PARTS if p in str(e)]

def test_chat_raises_the_miss_itself(fx, tmp_path):
    "Chat turns litellm's connection error back into the miss beneath it; the block still fails at its end."
    fx.push(ok('recorded'))
    with replay(tmp_path, 'record'): ask(model('openai', fx.url))
    kw = model('openai', f'http://127.0.0.1:{closed_port()}')
    with pytest.raises(ReplayMissError):
        with replay(tmp_path) as rec:
            c = Chat(**kw)
            with pytest.raises(ReplayMissError): c('not recorded')
            assert c.hist == [] and len(rec.misses) == 1

def test_other_hosts_refused(tmp_path, connects):
    (tmp_path/'cachy.jsonl').write_text('')
    for get in (httpx.get, requests.get):
        with pytest.raises(ReplayMissError, match='GET api.openai.com/v1/models: this replay serves only 127.0.0.1, localhost'):
            with replay(tmp_path): get('https://api.openai.com/v1/models?key=AIzaSECRETSECRET')
    assert connects == []

@pytest.mark.parametrize('prov', ['openai', 'anthropic'])
def test_keys_ignore_tool_call_ids(fx, tmp_path, prov):
    "A history with a tool call, made afresh for the replay: its random tool-call id differs, the key doesn't."
    def add(a:int, b:int) -> int:
        "Add a and b."
        return a + b
    def hist():
        tc = mk_tc('add', {'a': 2, 'b': 3})   # a fresh random id each time
        return [mk_msg('add 2 and 3'), mk_tc_req('', [tc]), mk_tc_result(tc, '5')]
    h1,h2 = hist(),hist()
    assert h1[2]['tool_call_id'] != h2[2]['tool_call_id']
    fx.push(ok('It is 5.'))
    with replay(tmp_path, 'record'): Chat(**model(prov, fx.url), tools=[add], hist=h1)('So?')
    with replay(tmp_path) as rec:
        c = Chat(**model(prov, f'http://127.0.0.1:{closed_port()}'), tools=[add], hist=h2)
        assert contents(c('So?')) == 'It is 5.'
    assert len(fx.requests) == 1 and rec.misses == []

def sends() -> list:
    "Each patched class's own `send`."
    return [vars(c)['send'] for c,_ in _clients()]

def test_restores_everything(fx, tmp_path):
    "After blocks that pass, miss, or fail otherwise: the same `send`s, cachy off, its pattern lists as they were."
    fx.push(ok('x'))
    before,pats,rpats = sends(),list(cachy.norm_pats),list(cachy.resp_norm_pats)
    with replay(tmp_path, 'record'): ask(model('openai', fx.url))
    with pytest.raises(ReplayMissError):
        with replay(tmp_path): ask(model('openai', fx.url), 'not recorded')
    with pytest.raises(KeyError):
        with replay(tmp_path): raise KeyError('unrelated')
    assert sends() == before and cachy._cfg is None
    assert (cachy.norm_pats, cachy.resp_norm_pats) == (pats, rpats)
    for c,_ in _clients(): assert vars(c)['_orig_send'] is vars(c)['send']   # the network, not a refusal

def test_restores_an_outer_cachy(tmp_path):
    outer = tmp_path/'outer'; outer.mkdir()
    (tmp_path/'cachy.jsonl').write_text('')
    cachy.enable_cachy(outer, doms=('example.invalid',))
    try:
        cfg = cachy._cfg
        with replay(tmp_path): pass
        assert cachy._cfg == cfg and httpx.Client.send is not httpx.Client._orig_send
    finally: cachy.disable_cachy()
    assert httpx.Client.send is httpx.Client._orig_send

def test_modes_checked(tmp_path):
    with pytest.raises(ConfigValueError, match="mode: expected one of 'record', 'replay', 'live'"):
        with replay(tmp_path, 'replya'): pass
    with pytest.raises(ConfigValueError, match='there is no recording at'):
        with replay(tmp_path/'nothing'): pass
    with replay(tmp_path/'nothing', 'live') as rec: assert rec.mode == 'live'
    assert not (tmp_path/'nothing').exists()

def test_live_server_conversation_replays(live, tmp_path, connects):
    "A tool loop over the OpenAI format and a streamed turn over the Anthropic one, recorded live and replayed offline."
    def add(a:int, b:int) -> int:
        "Add a and b."
        return a + b
    def run(oa, an):
        c = Chat(**oa, tools=[add], max_tokens=24)
        c('What is 2+3? Use the add tool.', max_steps=2)
        return [(m['role'] if isinstance(m, dict) else m.role) for m in c.hist], ask(dict(an, max_tokens=8), 'Say hi', stream=True)
    with replay(tmp_path, 'record'): rec = run(live['openai'], live['anthropic'])
    connects.clear()
    dead = f'http://127.0.0.1:{closed_port()}'
    with replay(tmp_path): again = run(dict(live['openai'], api_base=f'{dead}/v1'), dict(live['anthropic'], api_base=dead))
    assert again == rec and connects == []
    assert 'tool' in rec[0]

def test_repeated_request_replays_each_answer_in_turn(fx, tmp_path):
    "The same request twice gets two answers recorded, replayed in the same order; a third time is a miss"
    fx.push(ok('first'), ok('second'))
    kw = model('openai', fx.url)
    with replay(tmp_path, 'record'): assert [ask(kw), ask(kw)] == ['first', 'second']
    assert len(stored(tmp_path).splitlines()) == 2 and len(fx.requests) == 2
    with replay(tmp_path): assert [ask(kw), ask(kw)] == ['first', 'second']
    with pytest.raises(ReplayMissError), replay(tmp_path): [ask(kw) for _ in range(3)]

@pytest.mark.parametrize('keep', [False, True])
@pytest.mark.parametrize('code', [500, 429])
def test_server_errors_are_recorded_only_when_asked(fx, tmp_path, keep, code):
    "A 500 or a 429 joins the recording with `server_errors=True` (and replays as the same error), and is left out by default"
    fx.push(status(code, 'the test server broke'))
    kw = model('openai', fx.url)
    with pytest.raises(Exception, match='the test server broke'), replay(tmp_path, 'record', server_errors=keep): ask(kw)
    assert len(stored(tmp_path).splitlines()) == int(keep)
    if keep:
        with pytest.raises(Exception, match='the test server broke'), replay(tmp_path): ask(kw)
    else:
        with pytest.raises(ReplayMissError), replay(tmp_path): ask(kw)

def test_live_hosts_go_to_the_network_in_replay(tmp_path):
    "A host in `live` is sent to for real in a replay (an in-process fixture), and never recorded"
    from lisette.fixtures import FIXTURE_HOST, OpenAIFixture
    (tmp_path/'cachy.jsonl').write_text('')
    with OpenAIFixture() as f:
        with replay(tmp_path, hosts=('127.0.0.1',), live=(FIXTURE_HOST,)):
            url = f.url
            r = httpx.post(f'{url}/v1/chat/completions', json={'model': 'm', 'messages': []})
    assert url.startswith(f'http://{FIXTURE_HOST}:') and r.status_code == 500 and f.requests == [{'model': 'm', 'messages': []}]
    assert stored(tmp_path) == ''

def test_committed_recordings_hold_no_key():
    "The notebooks' recordings (recordings/, made by `tools/run_nbs.py --record`) hold no key, auth header or request header"
    from pathlib import Path
    files = sorted((Path(__file__).parent.parent/'recordings').glob('*/cachy.jsonl'))
    assert len(files) >= 10, files
    for f in files:
        text = f.read_text()
        for word in ('sk-local-placeholder', 'sk-x"', 'sk-fixture', 'authorization', 'x-api-key', 'bearer '):
            assert word not in text.lower(), (f, word)
        assert not re.search(r'\bsk-(?!\[redacted\])[\w.\-]{6,}', text), f
        assert {h for l in text.splitlines() for h in json.loads(l)['headers']} <= {'content-type'}, f
