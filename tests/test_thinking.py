"""Property tests of inline-reasoning splitting (`lisette.thinking`), alone and through a `Chat` stream.

A reply is built from random text and the start/end tokens, cut into pieces at random places (inside the tokens
too), and fed piece by piece: the result must equal splitting the whole reply at once, and, for replies whose
structure we know, the reasoning and answer we put in. Each pure property runs 1,000 examples; the chat property
sends its pieces as real SSE chunks through litellm to a loopback server.
"""
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from conftest import _stream_head, _chunk, _end_chunks, sse, oai_chat
from lisette.thinking import ThinkTokens, ThinkSplitter, as_think_tokens
from lisette.errors import ConfigTypeError, ConfigValueError

N = 1000
prop = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])

toks = st.sampled_from([ThinkTokens(), ThinkTokens('<<plan>>', '<</plan>>'), ThinkTokens('[T]', '[/T]'),
                        ThinkTokens('<', '>'), ThinkTokens('<think>', '</think>', open=True), ThinkTokens('ab', 'aab')])
# text made mostly of the tokens' own characters, so near-misses and overlaps are common
chars = st.sampled_from(list('<>/[]Tthinkplab ') + ['\n', 'é', '😀'])
def reply_of(tk): return st.lists(st.one_of(st.text(chars, max_size=6), st.just(tk.start), st.just(tk.end)), max_size=12).map(''.join)

def cut(text, points):
    "`text` cut at `points` (sorted positions), empty pieces included."
    ps = [0] + sorted(p % (len(text)+1) for p in points) + [len(text)]
    return [text[a:b] for a,b in zip(ps, ps[1:])]

def fed(tk, pieces):
    sp,r,a = ThinkSplitter(tk),'',''
    for p in pieces:
        x,y = sp.feed(p); r += x; a += y
    x,y = sp.flush()
    return r+x,a+y

@st.composite
def cases(draw):
    tk = draw(toks)
    return tk, draw(reply_of(tk)), draw(st.lists(st.integers(0, 10**6), max_size=20))

@prop
@given(cases())
def test_pieces_split_like_the_whole(c):
    tk,text,points = c
    assert fed(tk, cut(text, points)) == ThinkSplitter(tk).split(text)

@prop
@given(cases())
def test_single_characters_split_like_the_whole(c):
    tk,text,_ = c
    assert fed(tk, list(text)) == ThinkSplitter(tk).split(text)

plain = st.text(st.sampled_from(list('abc .é😀\n')), max_size=15)

@prop
@given(toks, plain, plain, st.lists(st.integers(0, 10**6), max_size=20))
def test_known_reasoning_and_answer_come_back(tk, r, a, points):
    "`start + r + end + a` (neither part holding a token) splits into `r` and `a` without its leading white space."
    if any(t in s for s in (r, a) for t in (tk.start, tk.end)) or tk.end in tk.start + r: return
    text = ('' if tk.open else tk.start) + r + tk.end + a
    assert fed(tk, cut(text, points)) == (r, a.lstrip())

@prop
@given(toks, st.text(chars, max_size=30))
def test_nothing_is_lost_without_tokens(tk, text):
    "Text with no token in it is all answer (or all reasoning, for a reply that starts inside it)."
    if tk.start in text or tk.end in text: return
    r,a = ThinkSplitter(tk).split(text)
    assert (r, a) == ((text, '') if tk.open else ('', text))

def test_bad_tokens_are_named():
    for bad,msg in [('<think>', 'think_tokens: expected'), (('<t>',), 'think_tokens: expected'), (('', '</t>'), 'start must be'),
                    (('<t>', 3), 'end must be'), (('x', 'x'), 'must differ'), (('<t>', '</t>', 1), 'open must be')]:
        with pytest.raises((ConfigTypeError, ConfigValueError), match=msg): as_think_tokens(bad)

# --- through a Chat: real SSE chunks, litellm's parsing, our splitting ------------------------------------------------
def pieces_reply(pieces):
    "Stream `pieces` as one OpenAI content delta each, then finish and usage."
    def mk(d, fr=None): return dict(id='chatcmpl-fx', object='chat.completion.chunk', created=0, model='fixture-model',
                                    choices=[dict(index=0, delta=d, finish_reason=fr)])
    def act(h, body):
        _stream_head(h)
        for d in [dict(role='assistant', content='')] + [dict(content=p) for p in pieces]: _chunk(h, sse(mk(d)))
        _chunk(h, sse(mk({}, 'stop')))
        _chunk(h, sse(dict(mk({}), choices=[], usage=dict(prompt_tokens=5, completion_tokens=5, total_tokens=10))))
        _chunk(h, sse('[DONE]')); _end_chunks(h)
    return act

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cases())
def test_chat_stream_splits_like_the_whole(fx, c):
    tk,text,points = c
    pieces = [p for p in cut(text, points) if p]
    if not pieces: return
    fx.push(pieces_reply(pieces))
    chat = oai_chat(fx, think_tokens=tk)
    items = list(chat('hi', stream=True))
    want = ThinkSplitter(tk).split(text)
    ds = [o.choices[0].delta for o in items[:-1] if o.choices]
    got = (''.join(getattr(d, 'reasoning_content', None) or '' for d in ds), ''.join(d.content or '' for d in ds))
    assert got == want
    msg = chat.hist[-1]
    assert ((getattr(msg, 'reasoning_content', None) or ''), msg.content or '') == want

def test_prefill_opens_reasoning(fx):
    "A prefill holding the start token: the stream and the stored message agree on what is reasoning."
    fx.push(pieces_reply(['I should', ' greet.</th', 'ink>\n', 'Hello!']))
    chat = oai_chat(fx, think_tokens=True)
    items = list(chat('hi', prefill='<think>', stream=True))
    ds = [o.choices[0].delta for o in items[:-1] if o.choices]
    assert ''.join(getattr(d, 'reasoning_content', None) or '' for d in ds) == 'I should greet.'
    assert ''.join(d.content or '' for d in ds) == 'Hello!'
    assert (chat.hist[-1].reasoning_content, chat.hist[-1].content) == ('I should greet.', 'Hello!')
