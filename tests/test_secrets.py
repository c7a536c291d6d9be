"""The API key never shows: not in a Chat's repr/str, not in the text (or traceback) of an exception from a failing call,
not in log output with litellm's debug logging on (records via caplog, and what litellm prints via capfd)."""
import logging, asyncio, traceback
import pytest
import litellm, openai
from lisette.chat import Chat
from lisette.async_chat import AsyncChat
from conftest import FaultServer, ok, status, tool_reply, oai_chat, anth_chat, closed_port, snapshot, same, NO_RETRY

KEY = 'sk-SECRET-abc123'
PARTS = ('SECRET-abc123', 'sk-SECRET')   # long pieces of the key that would identify it too

def leaks(text:str) -> list:
    "The parts of the key found in `text` (empty if none)."
    return [p for p in (KEY, *PARTS) if p in text]

def exc_text(e:BaseException) -> str:
    "Everything a user could see of exception `e`: str, repr, the full chained traceback, and its public attributes."
    attrs = ' '.join(repr(v) for k,v in vars(e).items() if not k.startswith('_') and k not in ('request', 'response'))
    return '\n'.join([str(e), repr(e), ''.join(traceback.format_exception(e)), attrs])

def test_repr_and_str_hide_key(fx):
    for cls in (Chat, AsyncChat):
        c = oai_chat(fx, cls, api_key=KEY)
        for s in (repr(c), str(c), f'{c}', f'{c!r}'):
            assert not leaks(s), s
            assert '[secure]' in s
    assert not leaks(repr(oai_chat(fx, api_key=KEY).__dict__.get('kw')))

def test_key_is_sent_to_the_server(fx):
    "Sanity check that the key is really used (so its absence elsewhere means something)."
    fx.push(ok('x'))
    oai_chat(fx, api_key=KEY)('hi')
    assert fx.requests[0]['headers']['Authorization'] == f'Bearer {KEY}'
    fx.push(ok('x'))
    anth_chat(fx, api_key=KEY)('hi')
    assert fx.requests[1]['headers']['x-api-key'] == KEY

def _failing_chats(fx):
    "(name, chat, exception type) for calls that fail in different places: HTTP errors, no server, no such provider."
    dead = f'http://127.0.0.1:{closed_port()}'
    return [
        ('401',          oai_chat(fx, api_key=KEY), status(401, 'Incorrect API key provided', 'invalid_api_key'), openai.AuthenticationError),
        ('500',          oai_chat(fx, api_key=KEY), status(500, 'boom'), openai.InternalServerError),
        ('anthropic401', anth_chat(fx, api_key=KEY), status(401, 'invalid x-api-key', 'authentication_error'), openai.AuthenticationError),
        ('anthropic500', anth_chat(fx, api_key=KEY), status(500, 'boom', 'api_error'), openai.InternalServerError),
        ('refused',      Chat('openai/m', api_base=dead + '/v1', api_key=KEY, **NO_RETRY), None, openai.APIError),
        ('refused-anth', Chat('anthropic/m', api_base=dead, api_key=KEY, **NO_RETRY), None, openai.APIError),
        ('bad-model',    Chat('no-such-provider/m', api_key=KEY, **NO_RETRY), None, openai.BadRequestError),
        ('bad-model2',   Chat('openai', api_key=KEY, **NO_RETRY), None, Exception),
    ]

@pytest.mark.parametrize('mode', ['sync', 'stream', 'async', 'astream'])
def test_failing_calls_hide_key(fx, mode):
    for name,c,act,exc in _failing_chats(fx):
        if act: fx.push(act)
        snap = snapshot(c)
        with pytest.raises(exc) as ei:
            if mode == 'sync': c('hi')
            elif mode == 'stream': list(c('hi', stream=True))
            else:
                async def go():
                    a = AsyncChat(c.model, api_base=c.api_base, api_key=KEY, **c.kw)
                    r = await a('hi', stream=mode == 'astream')
                    if mode == 'astream': [o async for o in r]
                asyncio.run(go())
        assert not leaks(exc_text(ei.value)), f'{mode}/{name}: key in exception: {exc_text(ei.value)}'
        assert same(c, snap)

def test_tool_error_results_hide_key(fx):
    "A tool that fails while the model's request carried the key: nothing of the key in hist or the follow-up request."
    def add(a:int, b:int) -> int:
        "Add"
        return a + b
    c = oai_chat(fx, api_key=KEY, tools=[add])
    fx.push(tool_reply(('add', '{"a": "x"}'), ('nope', {})), ok('done'))
    c('hi')
    assert not leaks(repr(c.hist)) and not leaks(repr(fx.requests[1]['body']))

@pytest.fixture
def debug_logs(caplog):
    "litellm's verbose/debug logging on (restored afterwards), every logger's records at DEBUG into caplog."
    loggers = [logging.getLogger(n) for n in ('LiteLLM', 'LiteLLM Router', 'LiteLLM Proxy', 'openai', 'httpx', 'httpcore')]
    levels,verbose,suppress = [l.level for l in loggers],litellm.set_verbose,litellm.suppress_debug_info
    litellm._turn_on_debug()
    litellm.set_verbose,litellm.suppress_debug_info = True,False
    caplog.set_level(logging.DEBUG)
    for l in loggers: l.setLevel(logging.DEBUG)
    yield caplog
    litellm.set_verbose,litellm.suppress_debug_info = verbose,suppress
    for l,lv in zip(loggers, levels): l.setLevel(lv)

def _log_text(caplog, capfd):
    out,err = capfd.readouterr()
    recs = '\n'.join(f'{r.name}: {r.getMessage()} {r.args!r} {r.__dict__.get("exc_text") or ""}' for r in caplog.records)
    return recs, out, err

def _exercise(fx):
    "Successful, streamed, tool-using and failing calls, sync and async, over both wire formats."
    def add(a:int, b:int) -> int:
        "Add"
        return a + b
    fx.push(ok('a'), ok('b'), tool_reply(('add', {'a': 1, 'b': 2})), ok('c'), status(401, 'bad key', 'invalid_api_key'),
            status(500, 'boom'))
    c = oai_chat(fx, api_key=KEY, tools=[add])
    c('hi'); list(c('hi', stream=True)); c('add')
    for _ in range(2):
        with pytest.raises(openai.APIError): c('fail')
    a = oai_chat(fx, AsyncChat, api_key=KEY)
    fx.push(ok('d'), ok('e'), status(500, 'boom'))
    async def go():
        await a('hi'); [o async for o in await a('hi', stream=True)]
        with pytest.raises(openai.APIError): await a('fail')
    asyncio.run(go())
    fx.push(ok('f'), ok('g'), status(401, 'bad', 'authentication_error'))
    an = anth_chat(fx, api_key=KEY)
    an('hi'); list(an('hi', stream=True))
    with pytest.raises(openai.APIError): an('fail')
    with pytest.raises(Exception): Chat('openai/m', api_base=f'http://127.0.0.1:{closed_port()}/v1', api_key=KEY, **NO_RETRY)('hi')
    with pytest.raises(Exception): Chat('no-such-provider/m', api_key=KEY, **NO_RETRY)('hi')

def test_debug_logging_hides_key(fx, debug_logs, capfd):
    _exercise(fx)
    recs,out,err = _log_text(debug_logs, capfd)
    assert len(debug_logs.records) > 20 and len(out + err) > 1000, 'debug logging was really on'
    where = {n: leaks(t) for n,t in [('logging records (caplog)', recs), ('stdout', out), ('stderr', err)] if leaks(t)}
    if where:
        ctx = [ln for t in (recs, out, err) for ln in t.splitlines() if leaks(ln)][:5]
        pytest.fail(f'API key leaked in {where}; first lines:\n' + '\n'.join(ctx))

def test_live_server_debug_logging_hides_key(live, debug_logs, capfd):
    "Against the real llama-server (OpenAI and Anthropic wire formats), with debug logging on."
    for proto in ('openai', 'anthropic'):
        c = Chat(**{**live[proto], 'api_key': KEY}, max_tokens=4)
        c('Say hi'); list(c('Again', stream=True))
        assert not leaks(repr(c)) and not leaks(repr(c.hist))
    recs,out,err = _log_text(debug_logs, capfd)
    assert not leaks(recs) and not leaks(out) and not leaks(err)
