"""Streamed tool-call arguments (`lisette.toolstream`) through real SSE chunks and litellm's parsing.

The fault server streams tool calls whose argument text is cut at chosen or random places (inside escapes,
`\\uXXXX` sequences and multi-byte characters), two calls at once, calls cut short, and calls read after the
chat's stream was abandoned. Every test checks what a reader of the `ToolCallStream` gets against `json.loads`
of the same arguments.
"""
import json, asyncio
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from conftest import _stream_head, _chunk, _end_chunks, sse, oai_chat, ok, tool_reply
from lisette.toolstream import stream_args, ToolCallStream, AsyncToolCallStream
from lisette.async_chat import AsyncChat
from lisette.errors import ToolError
from lisette.jsonstream import JsonStreamError

@stream_args
def note(title:str, body:str) -> str:
    "Save a note"
    return f'{title}: {len(body)}'

def calls_reply(calls, finish='tool_calls'):
    "Stream tool `calls`, each `(name, [argument pieces])`, one argument piece a chunk, the first with id and name."
    def mk(d, fr=None): return dict(id='chatcmpl-fx', object='chat.completion.chunk', created=0, model='fixture-model',
                                    choices=[dict(index=0, delta=d, finish_reason=fr)])
    def act(h, body):
        _stream_head(h)
        _chunk(h, sse(mk(dict(role='assistant', content=None))))
        for i,(name,pieces) in enumerate(calls):
            _chunk(h, sse(mk(dict(tool_calls=[dict(index=i, id=f'call_{i}', type='function', function=dict(name=name, arguments=''))]))))
            for p in pieces: _chunk(h, sse(mk(dict(tool_calls=[dict(index=i, function=dict(arguments=p))]))))
        _chunk(h, sse(mk({}, finish)))
        _chunk(h, sse(dict(mk({}), choices=[], usage=dict(prompt_tokens=5, completion_tokens=5, total_tokens=10))))
        _chunk(h, sse('[DONE]')); _end_chunks(h)
    return act

def cut(text, points):
    ps = [0] + sorted(p % (len(text)+1) for p in points) + [len(text)]
    return [text[a:b] for a,b in zip(ps, ps[1:]) if text[a:b]]

texts = st.text(st.one_of(st.characters(blacklist_categories=['Cs']), st.sampled_from(['"', '\\', '\n', 'é', '😀', '\u2028'])), max_size=25)

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(texts, texts, st.booleans(), st.lists(st.integers(0, 10**6), max_size=25))
def test_arguments_cut_anywhere(fx, title, body, ascii, points):
    "Whatever the cut, expect_arg's pieces join to the decoded value, in either order, and `.arguments` is json.loads."
    args = json.dumps({'title': title, 'body': body}, ensure_ascii=ascii)
    fx.push(calls_reply([('note', cut(args, points))]), ok('done'))
    got = []
    for o in oai_chat(fx, tools=[note])('go', stream=True):
        if isinstance(o, ToolCallStream):
            got += [''.join(o.expect_arg('body')), ''.join(o.expect_arg('title')), o.arguments]
    assert got == [body, title, json.loads(args)]

def test_two_calls_each_get_their_own_text(fx):
    "Two calls in one reply: the first, read as soon as it appears, stops at its own end; the second gets only its text."
    a,b = json.dumps({'title': 'A', 'body': 'first body'}),json.dumps({'title': 'B', 'body': 'second'})
    fx.push(calls_reply([('note', cut(a, range(0, 60, 3))), ('note', cut(b, range(0, 60, 2)))]), ok('done'))
    chat = oai_chat(fx, tools=[note])
    seen,early = [],None
    for o in chat('go', stream=True):
        if not isinstance(o, ToolCallStream): continue
        seen.append(o)
        if len(seen) == 1: early = (''.join(o.expect_arg('body')), o.arguments, o.ended)
    assert early == ('first body', json.loads(a), False)   # read while the model was still streaming
    assert [s.id for s in seen] == ['call_0', 'call_1']
    assert seen[1].arguments == json.loads(b) and ''.join(seen[1].texts) == b
    assert [m['content'] for m in chat.hist if isinstance(m, dict) and m.get('role') == 'tool'] == ['A: 10', 'B: 6']

def test_reading_ahead_loses_no_chunk(fx):
    "Chunks a call pulls early are still yielded by the chat, in order, and the response is built from all of them."
    args = json.dumps({'title': 'T', 'body': 'x' * 40})
    fx.push(calls_reply([('note', cut(args, range(0, 80, 4)))]), ok('done'))
    out,order = [],[]
    for o in oai_chat(fx, tools=[note])('go', stream=True, max_steps=1, return_all=True):
        order.append(type(o).__name__)
        if isinstance(o, ToolCallStream): o.arguments   # drain the whole call before the chat yields its chunks
        elif hasattr(o, 'choices') and o.choices and hasattr(o.choices[0], 'delta'):
            out += [tc.function.arguments or '' for tc in o.choices[0].delta.tool_calls or []]
    assert ''.join(out) == args
    assert order.index('ToolCallStream') < order.index('ModelResponse')

def test_cut_short_call(fx):
    "A call cut off by the token limit: its text so far comes through, then a clear JSON error, and the loop goes on."
    fx.push(calls_reply([('note', ['{"title": "T", "bo', 'dy": "unfinish'])], finish='length'), ok('done'))
    chat = oai_chat(fx, tools=[note])
    for o in chat('go', stream=True):
        if isinstance(o, ToolCallStream):
            assert ''.join(o.expect_arg('title')) == 'T'
            with pytest.raises(JsonStreamError): list(o.expect_arg('body'))
    assert 'not valid JSON' in [m['content'] for m in chat.hist if isinstance(m, dict) and m.get('role') == 'tool'][0]

def test_missing_argument_is_named(fx):
    fx.push(calls_reply([('note', ['{"title": "T"}'])]), ok('done'))
    for o in oai_chat(fx, tools=[note])('go', stream=True):
        if isinstance(o, ToolCallStream):
            with pytest.raises(ToolError, match="note: call call_0 has no argument 'body' \\(it has \\['title'\\]\\)"): o.expect_arg('body')

def test_abandoned_stream_ends_the_call(fx):
    "A call read after its chat stream was closed ends instead of hanging; what arrived is kept."
    fx.push(calls_reply([('note', ['{"title": "T", ', '"body": "b"}'])]))
    g = oai_chat(fx, tools=[note])('go', stream=True, max_steps=1)
    call = next(o for o in g if isinstance(o, ToolCallStream))
    g.close()
    with pytest.raises(JsonStreamError): call.arguments    # not mistaken for a call without arguments
    assert call.ended and '{"title": "T", "body": "b"}'.startswith(''.join(call.texts))

def test_unmarked_tools_and_blocking_calls(fx):
    "Unmarked tools never come as streams; a blocking call returns marked ones already drained."
    def plain(title:str) -> str: return title
    fx.push(calls_reply([('plain', ['{"title": "x"}'])]), ok('done'))
    assert not any(isinstance(o, ToolCallStream) for o in oai_chat(fx, tools=[plain])('go', stream=True))
    fx.push(tool_reply(('note', {'title': 'T', 'body': 'b'})), ok('done'))
    res = oai_chat(fx, tools=[note])('go', return_all=True)
    calls = [o for o in res if isinstance(o, ToolCallStream)]
    assert len(calls) == 1 and calls[0].ended and calls[0].arguments == {'title': 'T', 'body': 'b'}

def test_async_chat_streams_arguments(fx):
    args = json.dumps({'title': 'Ünï', 'body': 'line\nnext "q"'}, ensure_ascii=True)
    fx.push(calls_reply([('note', list(args))]), ok('done'))
    async def run():
        got = []
        async for o in await oai_chat(fx, AsyncChat, tools=[note])('go', stream=True):
            if isinstance(o, AsyncToolCallStream):
                got += [[p async for p in o.expect_arg('body')], await o.arguments]
        return got
    pieces,final = asyncio.run(run())
    assert ''.join(pieces) == 'line\nnext "q"' and len(pieces) > 1 and final == json.loads(args)
