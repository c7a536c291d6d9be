"""Property tests of `lisette.jsonstream` against `json.loads`, plus one example test per error path.

Random JSON is dumped with varied `json.dumps` options, cut into chunks at random places (inside escapes, inside
`\\uXXXX`, inside surrogate pairs and numbers, down to single characters), and parsed three ways: `.value`,
incremental walking, and walking part-way then `.value` (auto-drain). Each property runs at least 1,000 examples.
"""
import json, asyncio, random, atexit
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from lisette.jsonstream import *
from lisette.jsonstream import JsonStreamError

N = 1000
prop = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- strategies ---------------------------------------------------------------------------------------------------
tricky = st.sampled_from(['"', '\\', '/', '\n', '\t', '\x00', '\x1f', '\x7f', '\u2028', 'é', '😀', '𝄞', '\ud83d', '\ude00'])
texts = st.text(st.one_of(st.characters(), tricky), max_size=20)
floats = st.floats(allow_nan=False, allow_infinity=False)
ints = st.one_of(st.integers(-1000, 1000), st.integers(-10**40, 10**40))
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=5),
                                                      st.dictionaries(texts, kids, max_size=5)), max_leaves=25)
small = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                     st.dictionaries(texts, kids, max_size=3)), max_leaves=6)
containers = st.one_of(st.lists(small, max_size=4), st.dictionaries(texts, small, max_size=4))
dump_opts = st.fixed_dictionaries(dict(ensure_ascii=st.booleans(), indent=st.sampled_from([None, 0, 2]),
                                       separators=st.sampled_from([None, (',', ':'), (', ', ': '), (' ,', ' : ')])))

@st.composite
def split_json(draw, vals=values):
    "A JSON text and the chunks it is cut into."
    text = json.dumps(draw(vals), **draw(dump_opts))
    if draw(st.integers(0, 9)) == 0: return text, list(text)        # one character per chunk
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=12)))
    return text, [text[a:b] for a,b in zip([0]+cuts, cuts+[len(text)])]   # includes empty chunks

def cut(text, r:random.Random, most=8):
    cuts = sorted(r.sample(range(len(text)+1), min(most, len(text)+1)))
    return [text[a:b] for a,b in zip([0]+cuts, cuts+[len(text)])]

# --- helpers ------------------------------------------------------------------------------------------------------
def value(x): return x.value if isinstance(x, (JsonStrStream, JsonArrStream, JsonDictStream)) else x
async def avalue(x): return await x.value if isinstance(x, (AsyncJsonStrStream, AsyncJsonArrStream, AsyncJsonDictStream)) else x

def walk(x):
    "Rebuild a value by iterating every stream in it, piece by piece."
    if isinstance(x, JsonStrStream):
        pieces = list(x)
        assert all(pieces), pieces                     # never an empty piece
        return ''.join(pieces)
    if isinstance(x, JsonArrStream): return [walk(v) for v in x]
    if isinstance(x, JsonDictStream): return {k:walk(v) for k,v in x.items()}
    return x

async def awalk(x):
    if isinstance(x, AsyncJsonStrStream):
        pieces = [p async for p in x]
        assert all(pieces), pieces
        return ''.join(pieces)
    if isinstance(x, AsyncJsonArrStream): return [await awalk(v) async for v in x]
    if isinstance(x, AsyncJsonDictStream): return {k:await awalk(v) async for k,v in x.items()}
    return x

def nibble(x, r:random.Random):
    "Walk `x` part of the way, at random depths and lengths, leaving the rest for the parents' auto-drain."
    if not isinstance(x, (JsonStrStream, JsonArrStream, JsonDictStream)): return
    for item in x:
        if isinstance(x, JsonDictStream): item = item[1]
        if r.random() < 0.5: nibble(item, r)
        if r.random() < 0.2: return

loop = asyncio.new_event_loop()     # one loop for every async example: creating one each time costs more than the parse
run = loop.run_until_complete
atexit.register(loop.close)

async def agen(chunks):
    for c in chunks:
        await asyncio.sleep(0)
        yield c

# --- the parser ---------------------------------------------------------------------------------------------------
@prop
@given(split_json(), st.sampled_from([' ', '\n', '\t ']), st.randoms(use_true_random=False))
def test_parser_matches_json_loads(tc, sep, r):
    "Each way of reading gives what `json.loads` gives: `.value`, a full walk, a partial walk then `.value`, and a second value after it."
    text, chunks = tc
    want = json.loads(text)
    assert value(streaming_parse_json(iter(chunks))) == want
    got = walk(streaming_parse_json(iter(chunks)))
    assert got == want and json.dumps(got) == json.dumps(want)     # also tells -0.0 from 0.0 and 1 from 1.0
    x = streaming_parse_json(iter(chunks))
    nibble(x, r)
    assert value(x) == want
    src = ChunkSource(cut(text + sep + text + sep, r))
    assert value(streaming_parse_json(src)) == want and walk(streaming_parse_json(src)) == want

@prop
@given(split_json(), st.randoms(use_true_random=False))
def test_async_parser_matches_json_loads(tc, r):
    text, chunks = tc
    async def both():
        return (await avalue(await astreaming_parse_json(agen(chunks))),
                await awalk(await astreaming_parse_json(agen(cut(text, r)))))
    assert run(both()) == (json.loads(text),)*2

# --- trash_skipper ------------------------------------------------------------------------------------------------
words = st.sampled_from(['Sure', 'here', 'is', 'the', 'JSON', 'you', 'asked', 'for', ':', '.', ',', '!', '\n',
    '```json\n', '```\n', '```', '{curly}', '[sic]', '[link](http://x.io)', '{ see', '{{', 'truthfully',
    '-', '- item', 'v3.5.2', 'mp3', 'nullable', 'falsey', '{x: 1}', '[1 2]', '"quoted', "it's", '😀', 'é', '{"a"}', '[,'])
prose = st.lists(words, max_size=12).map(' '.join)

@prop
@given(containers, dump_opts, prose, prose,
       st.randoms(use_true_random=False))
def test_trash_skipper_finds_the_json(v, opts, before, after, r):
    text = json.dumps(v, **opts)
    chunks = cut(before + ' ' + text + after, r)
    assert ''.join(trash_skipper(iter(chunks))) == text
    assert value(streaming_parse_json(trash_skipper(iter(chunks), look_for=(dict, list)))) == json.loads(text)
    async def go(): return await avalue(await astreaming_parse_json(atrash_skipper(agen(chunks))))
    assert run(go()) == json.loads(text)

plain = st.lists(st.sampled_from(['the', 'answer', 'is', ':', '\n', '(', ')', 'v3.5.2', 'mp3', 'nullable',
                                  'truthfully', '- x', '-', '{curly}', '[sic]', 'x-1', '.5']), max_size=8).map(' '.join)

@prop
@given(st.one_of(st.none(), st.booleans(), ints, floats, texts), plain, st.sampled_from(['', ' ', '.', '. Done', '\n']),
       st.randoms(use_true_random=False))
def test_trash_skipper_scalars(v, before, after, r):
    text = json.dumps(v)
    kinds = (str, int, float, bool, None)
    got = ''.join(trash_skipper(cut(before + ' ' + text + after, r), look_for=kinds))
    assert got == text and json.loads(got) == v

# --- examples -----------------------------------------------------------------------------------------------------
def test_toki_example():
    def chunks():
        yield '{"city": "Par'
        yield 'is", "items": ["a"'
        yield ', "b"], "n": 42}'
    d = streaming_parse_json(chunks())
    city = d.items().__next__()
    assert city[0] == 'city' and list(city[1]) == ['Par', 'is']
    assert d.value == {'city': 'Paris', 'items': ['a', 'b'], 'n': 42}

def test_surrogate_split_inside_escape():
    s = '"\\ud83d\\ude00"'
    for i in range(len(s)+1):
        for j in range(i, len(s)+1):
            assert streaming_parse_json([s[:i], s[i:j], s[j:]]).value == '😀'

def test_numbers_split_everywhere():
    for s in ['-12.5e+3', '0', '-0', '1E9', '123456789012345678901234567890', '0.000001']:
        for i in range(len(s)+1):
            assert value(streaming_parse_json(iter([s[:i], s[i:]]))) == json.loads(s)
            assert streaming_parse_json(['[', s[:i], s[i:], ']']).value == [json.loads(s)]

def test_rest_is_left_unread():
    src = ChunkSource(['{"a": 1} [2', ', 3] 4', '5 "x"  '])
    assert streaming_parse_json(src).value == {'a': 1}
    assert streaming_parse_json(src).value == [2, 3]
    assert streaming_parse_json(src) == 45
    s = streaming_parse_json(src)
    assert isinstance(s, JsonStrStream) and s.value == 'x'
    with pytest.raises(JsonStreamError, match='the input ended before a JSON value began'): streaming_parse_json(src)

def test_next_value_drains_unfinished_previous():
    src = ChunkSource(['[[1, 2], ', '"long"] {"b": ', 'null}'])
    a = streaming_parse_json(src)
    first = next(iter(a))
    assert isinstance(first, JsonArrStream)
    assert streaming_parse_json(src).value == {'b': None}
    assert a.done and a.value == [[1, 2], 'long'] and first.value == [1, 2]

def test_value_after_partial_iteration_has_everything():
    s = streaming_parse_json(['"ab', 'cd', 'ef"'])
    assert next(iter(s)) == 'ab'
    assert s.value == 'abcdef' and list(s) == [] and s.value == 'abcdef'

def test_reads_just_enough():
    it = iter(['{"a"', ': 1}', 'NEVER READ'])
    d = streaming_parse_json(it)
    assert isinstance(d, JsonDictStream) and not d.done
    assert d.value == {'a': 1} and next(it) == 'NEVER READ'

def test_a_number_needs_a_delimiter():
    it = iter(['12', '3', ' tail'])
    assert streaming_parse_json(it) == 123

def test_lone_surrogates_as_json_loads():
    for s in ['"\\ud83d"', '"\\ud83dx"', '"\\ud83d\\u0041"', '"\\ude00\\ud83d"', '"\\ud83d\\ud83d\\ude00"']:
        assert streaming_parse_json(s).value == json.loads(s)

def test_repr():
    d = streaming_parse_json(['{"a": "x', 'y"}'])
    assert repr(d) == 'JsonDictStream({}, …)'
    k, v = next(d.items())
    assert repr(d) == "JsonDictStream({'a': ''}, …)"
    d.value
    assert repr(d) == "JsonDictStream({'a': 'xy'})" and repr(v) == "JsonStrStream('xy')"

@pytest.mark.parametrize('text,msg', [
    ('x', "expected a JSON value, got 'x' at position 0"),
    ('[1,]', "expected a JSON value, got ']' at position 3"),
    ('[,', "expected a JSON value or ']', got ',' at position 1"),
    ('{"a": }', "expected a JSON value, got '}' at position 6"),
    ('[1 2]', "expected ',' or ']', got '2' at position 3"),
    ('{"a": 1 "b": 2}', "expected ',' or '}', got '\"' at position 8"),
    ('{1: 2}', "expected a string key or '}', got '1' at position 1"),
    ('{"a": 1,}', "expected a string key, got '}' at position 8"),
    ('{"a" 1}', "expected ':', got '1' at position 5"),
    ('"a\nb"', "control character '\\n' inside a string at position 2"),
    ('"\\x"', "expected an escape (one of \"\\/bfnrtu), got 'x' at position 2"),
    ('"\\u12g4"', "expected a hex digit of a \\u escape, got 'g' at position 5"),
    ('[01]', "invalid number '01' at position 1"),
    ('[1.]', "invalid number '1.' at position 1"),
    ('[-]', "invalid number '-' at position 1"),
    ('[1e]', "invalid number '1e' at position 1"),
    ('[--1]', "invalid number '--1' at position 1"),
    ('[1-2]', "invalid number '1-2' at position 1"),
    ('truthfully', "expected 'e' of 'true', got 't' at position 3"),
    ('[nul]', "expected 'l' of 'null', got ']' at position 4"),
    ('', 'the input ended before a JSON value began at position 0'),
    ('  \n', 'the input ended before a JSON value began at position 3'),
    ('[1, ', 'the input ended inside an array at position 4'),
    ('{"a": [1], ', 'the input ended inside an object at position 11'),
    ('{"a', 'the input ended inside a string at position 3'),
    ('"abc', 'the input ended inside a string at position 4'),
    ('-', "invalid number '-' at position 0"),
    ('tru', "the input ended inside 'true' at position 3"),
    ('[tru', "the input ended inside 'true' at position 4"),
])
def test_errors(text, msg):
    with pytest.raises(JsonStreamError) as e: value(streaming_parse_json(list(text)))
    assert str(e.value) == msg and isinstance(e.value, ValueError)

def test_error_after_pieces_and_sticky():
    s = streaming_parse_json(['"ok so far', '\\q"'])
    it = iter(s)
    assert next(it) == 'ok so far'
    with pytest.raises(JsonStreamError, match='expected an escape'): next(it)
    with pytest.raises(JsonStreamError, match='expected an escape'): s.value

def test_bad_chunk_type():
    with pytest.raises(TypeError, match='JSON chunks must be str, got bytes'): streaming_parse_json([b'{}'])

def test_async_errors():
    async def go(): return await (await astreaming_parse_json(agen(['[1, ', '2 3]']))).value
    with pytest.raises(JsonStreamError, match="expected ',' or ']', got '3'"): run(go())

def test_trash_skipper_examples():
    r = 'Sure, here\'s your data:\n```json\n{"key": "value", "n": 42}\n```\nLet me know if you need anything else.'
    assert ''.join(trash_skipper(iter([r]), look_for=dict)) == '{"key": "value", "n": 42}'
    assert list(trash_skipper('It is 42. Or 3.5.2', look_for=int)) == ['42']
    assert list(trash_skipper('truthfully, nullable: true.', look_for=(bool, None))) == ['true']
    assert list(trash_skipper('a - b, then -7', look_for=int)) == ['-7']
    assert list(trash_skipper('pi is 3.14', look_for=float)) == ['3.14']
    assert list(trash_skipper('pi is 3.14 or 3', look_for=int)) == ['3']
    assert list(trash_skipper('say "hi"', look_for=str)) == ['"hi"']

def test_trash_skipper_streams_once_committed():
    chunks = ['Here: {"a"', ': "lo', 'ng"', ', "b": 1}', ' bye']
    assert list(trash_skipper(chunks)) == ['{"a": "lo', 'ng"', ', "b": 1}']
    assert list(trash_skipper(['x [', '1', ',', ' 2', ']'])) == ['[1,', ' 2', ']']

def test_trash_skipper_leaves_the_rest():
    src = ChunkSource(['a {"x": 1} b [2] c'])
    assert ''.join(trash_skipper(src)) == '{"x": 1}'
    assert ''.join(trash_skipper(src)) == '[2]'
    with pytest.raises(JsonStreamError, match='no JSON object or array found'): list(trash_skipper(src))

def test_trash_skipper_errors():
    with pytest.raises(JsonStreamError, match="expected ',' or '}', got 'o'"): list(trash_skipper('x {"a": 1 oops} y'))
    with pytest.raises(JsonStreamError, match='the input ended inside an array'): list(trash_skipper('x {"a": [1, 2'))
    with pytest.raises(TypeError, match='look_for'): list(trash_skipper('{}', look_for=set))
    with pytest.raises(TypeError, match='look_for'): list(trash_skipper('{}', look_for=()))

def test_trash_skipper_backtracks_into_a_failed_candidate():
    assert ''.join(trash_skipper('{see ["a"] and {"b": 1}}')) == '["a"]'
    assert ''.join(trash_skipper('{"note [1,2] is a list\nok')) == '[1,2]'      # found inside the failed key
    assert ''.join(trash_skipper('[[[[x {"ok": true}', look_for=dict)) == '{"ok": true}'
    assert ''.join(trash_skipper('[[ [] and more')) == '[]'       # `[[` never got its first element in place
    with pytest.raises(JsonStreamError, match='no JSON object or string found'):
        list(trash_skipper(['{"unclosed key', ' and no end'], look_for=(dict, str)))

def test_linear_time():
    "Parsing and skipping are linear: no re-scan of the buffer per chunk."
    import time
    def t(n):
        text = json.dumps({'s': 'x\\"é😀'*n, 'a': list(range(n)), 'd': [{'k': i} for i in range(n//10)]})
        chunks = [text[i:i+20] for i in range(0, len(text), 20)]
        t0 = time.perf_counter(); streaming_parse_json(chunks).value; ''.join(trash_skipper(chunks))
        return time.perf_counter() - t0
    small, big = min(t(1000) for _ in range(3)), min(t(10000) for _ in range(3))
    assert big < 25 * small, (small, big)     # 10x the text: ~10x the time, never ~100x
