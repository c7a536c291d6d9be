"""lisette's own stream reader (`lisette.fastpath`) against litellm's, on the same bytes from a real HTTP server:
random OpenAI and Anthropic streams give the same chunks and the same complete response through both readers."""
import json, os, asyncio
import pytest, litellm
from hypothesis import given, settings, HealthCheck, strategies as st
from lisette.chat import stream_with_complete, Chat, delta_text
from lisette.async_chat import AsyncChat
from lisette.fastpath import fast_stream, litellm_reason
from conftest import FaultServer, sse, _stream_head, _chunk, _end_chunks, NO_RETRY

@pytest.fixture(scope='module')
def srv():
    s = FaultServer()
    yield s
    s.stop()

@pytest.fixture(autouse=True)
def _lisette_reads(monkeypatch):
    "These tests compare the two readers, so nothing may force one of them (the suite runs some files with LISETTE_STREAM=litellm)."
    monkeypatch.delenv('LISETTE_STREAM', raising=False)

def stream_of(events):
    "A scripted action answering with SSE `events` (a list of (event name or None, data))."
    def act(h, body):
        _stream_head(h)
        for e,d in events: _chunk(h, sse(d, e))
        _end_chunks(h)
    return act

def run(g):
    cs = []
    while True:
        try: cs.append(next(g))
        except StopIteration as e: return cs,e.value

def view(cs):
    "What each chunk says, for the chunks that say something."
    res = []
    for c in cs:
        d,fr = c.choices[0].delta,c.choices[0].finish_reason
        tcs = [(t.index, t.id, t.function.name, t.function.arguments) for t in d.tool_calls or []]
        if d.content or getattr(d, 'reasoning_content', None) or tcs or fr:
            res.append((d.content, getattr(d, 'reasoning_content', None), tcs, fr, c.id, c.model))
    return res

def both(srv, kw, events):
    "Chunks and response of the same scripted stream read by litellm, then by lisette."
    srv.push(stream_of(events), stream_of(events))
    kw = dict(kw, messages=[{'role': 'user', 'content': 'hi'}], stream=True, **NO_RETRY)
    assert litellm_reason(kw) is None
    return run(stream_with_complete(litellm.completion(**kw))),run(fast_stream(litellm.completion(**kw), kw))

def check(a, b):
    (ca,ra),(cb,rb) = a,b
    assert view(ca) == [v[:4] + (ra.id, v[5]) for v in view(ca)]          # litellm: every chunk has the response id
    assert [v[:4] + (v[5],) for v in view(ca)] == [v[:4] + (v[5],) for v in view(cb)]
    assert {c.id for c in cb} == {rb.id}
    ex = {'id', 'created'}
    assert ra.model_dump(exclude=ex) == rb.model_dump(exclude=ex)

text = st.lists(st.text(min_size=1, max_size=6), max_size=6)
calls = st.lists(st.tuples(st.sampled_from(['add', 'lookup', 'f_x']), st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4)),
                 max_size=3)

def oai_events(reasoning, content, tcs, finish, usage):
    def mk(d, fr=None): return dict(id='chatcmpl-fx', object='chat.completion.chunk', created=7, model='fx-model',
                                    system_fingerprint='fp_1', choices=[dict(index=0, delta=d, finish_reason=fr)])
    ds = [dict(role='assistant', content='')] + [dict(reasoning_content=r) for r in reasoning] + [dict(content=c) for c in content]
    for i,(name,pieces) in enumerate(tcs):
        ds.append(dict(tool_calls=[dict(index=i, id=f'call_{i}', type='function', function=dict(name=name, arguments=pieces[0]))]))
        ds += [dict(tool_calls=[dict(index=i, function=dict(arguments=p))]) for p in pieces[1:]]
    evs = [mk(d) for d in ds] + [mk({}, finish)]
    evs.append(dict(mk({}), choices=[], usage=dict(prompt_tokens=usage[0], completion_tokens=usage[1], total_tokens=sum(usage))))
    return [(None, e) for e in evs] + [(None, '[DONE]')]

@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(reasoning=text, content=text, tcs=calls, finish=st.sampled_from(['stop', 'length', 'tool_calls']),
       usage=st.tuples(st.integers(0, 999), st.integers(0, 999)))
def test_openai_streams_read_the_same(srv, reasoning, content, tcs, finish, usage):
    kw = dict(model='openai/fx-model', api_base=srv.base, api_key='sk-test', stream_options={'include_usage': True})
    check(*both(srv, kw, oai_events(reasoning, content, tcs, finish, usage)))

def anth_events(blocks, stop, usage):
    msg = dict(id='msg_fx', type='message', role='assistant', model='claude-fx', content=[], stop_reason=None,
               stop_sequence=None, usage=dict(input_tokens=usage[0], output_tokens=1, cache_read_input_tokens=usage[2]))
    evs = [('message_start', dict(message=msg)), ('ping', {})]
    for i,(kind,pieces) in enumerate(blocks):
        if kind == 'text':
            evs.append(('content_block_start', dict(index=i, content_block=dict(type='text', text=''))))
            evs += [('content_block_delta', dict(index=i, delta=dict(type='text_delta', text=p))) for p in pieces]
        else:
            evs.append(('content_block_start', dict(index=i, content_block=dict(type='tool_use', id=f'toolu_{i}', name=kind, input={}))))
            evs += [('content_block_delta', dict(index=i, delta=dict(type='input_json_delta', partial_json=p))) for p in pieces]
        evs.append(('content_block_stop', dict(index=i)))
    evs += [('message_delta', dict(delta=dict(stop_reason=stop, stop_sequence=None), usage=dict(output_tokens=usage[1]))),
            ('message_stop', {})]
    return [(e, dict(type=e) | d) for e,d in evs]

blocks = st.lists(st.tuples(st.sampled_from(['text', 'add', 'lookup']), st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4)),
                  max_size=4)

@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(blocks=blocks, stop=st.sampled_from(['end_turn', 'tool_use', 'max_tokens', 'stop_sequence']),
       usage=st.tuples(st.integers(0, 999), st.integers(1, 999), st.integers(0, 99)))   # a real reply has >= 1 output token
def test_anthropic_streams_read_the_same(srv, blocks, stop, usage):
    kw = dict(model='anthropic/claude-fx', api_base=srv.url, api_key='sk-test')
    check(*both(srv, kw, anth_events(blocks, stop, usage)))

def test_chat_hist_is_the_same_both_ways(srv, monkeypatch):
    "A streamed tool loop through `Chat` leaves the same history and usage through either reader."
    def add(a:int, b:int) -> int:
        "Add `a` and `b`"
        return a + b
    tc = oai_events([], ['Let me add.'], [('add', ['{"a": 1,', ' "b": 2}'])], 'tool_calls', (10, 5))
    res = []
    for mode in ('litellm', 'fast'):
        monkeypatch.setenv('LISETTE_STREAM', mode)
        srv.push(stream_of(tc), stream_of(oai_events([], ['It is 3.'], [], 'stop', (20, 3))))
        c = Chat('openai/fx-model', api_base=srv.base, api_key='sk-test', tools=[add], **NO_RETRY)
        list(c('1+2?', stream=True))
        res.append(([m if isinstance(m, dict) else m.model_dump() for m in c.hist], c.use.input, c.use.output, c.use.calls))
    assert res[0] == res[1]
    assert res[0][0][-1]['content'] == 'It is 3.' and res[0][1:] == (30, 8, 2)

async def _achunks(c, msg):
    return [o async for o in await c(msg, stream=True) if isinstance(o, litellm.ModelResponseStream)]

@pytest.mark.parametrize('aio', [False, True], ids=['sync', 'async'])
@pytest.mark.parametrize('model', ['openai/fx-model', 'anthropic/claude-fx'])
def test_streams_give_their_connection_back(srv, model, aio):
    """A chat's streamed calls share one connection, not one each, sync and async. For sync streams that takes reading
    each response to its end after the provider's end of stream (litellm's reader, closing early, opens one a call)."""
    evs = oai_events([], ['Hi', ' there'], [], 'stop', (5, 2)) if model.startswith('openai') else anth_events([('text', ['Hi', ' there'])], 'end_turn', (5, 2, 0))
    srv.push(*[stream_of(evs)] * 3)
    kw = dict(api_base=srv.base if model.startswith('openai') else srv.url, api_key='sk-test', **NO_RETRY)
    async def calls(): return [await _achunks(AsyncChat(model, **kw), 'hi') for _ in range(3)]
    res = asyncio.run(calls()) if aio else [[c for c in Chat(model, **kw)('hi', stream=True) if isinstance(c, litellm.ModelResponseStream)] for _ in range(3)]
    assert [''.join(delta_text(c) or '' for c in cs) for cs in res] == ['Hi there'] * 3
    assert len({r['port'] for r in srv.requests[-3:]}) == 1

def test_unknown_anthropic_block_is_an_error_not_a_gap(srv):
    "A block the reader does not know raises an error naming it (and how to read the stream anyway), never drops it."
    evs = anth_events([], 'end_turn', (1, 1, 0))
    evs.insert(2, ('content_block_start', dict(type='content_block_start', index=0, content_block=dict(type='server_tool_use', id='s', name='web_search', input={}))))
    srv.push(stream_of(evs))
    kw = dict(model='anthropic/claude-fx', api_base=srv.url, api_key='sk-test', messages=[{'role': 'user', 'content': 'hi'}],
              stream=True, **NO_RETRY)
    with pytest.raises(Exception, match="server_tool_use.*LISETTE_STREAM=litellm"): run(fast_stream(litellm.completion(**kw), kw))

@pytest.mark.parametrize('model', ['openai/gpt-4o-mini', 'anthropic/claude-sonnet-4-5'])
def test_a_stream_is_priced_once_as_the_chat_prices_it(srv, model, monkeypatch):
    "lisette's reader hands `Chat` litellm's price for the chat's model, so it isn't priced twice: the cost litellm's reader leads to."
    anth = model.startswith('anthropic')
    evs = anth_events([('text', ['Hi'])], 'end_turn', (1000, 50, 0)) if anth else oai_events([], ['Hi'], [], 'stop', (1000, 50))
    costs = []
    for reader in ('litellm', 'fast'):
        monkeypatch.setenv('LISETTE_STREAM', reader)
        srv.push(stream_of(evs))
        c = Chat(model, api_base=srv.url if anth else srv.base, api_key='sk-test', **NO_RETRY)
        r = list(c('hi', stream=True))[-1]
        costs.append(c.use.cost)
    assert costs[0] == costs[1] > 0
    assert r._hidden_params['litellm_model_name'] == model
    assert r._hidden_params['response_cost'] == litellm.completion_cost(completion_response=r, model=model)
