"""The `lisette` command under conditions a notebook can't show: an interrupt that lands mid-stream, every time, and
the local model daemon's life: started once and reused, stopped, killed, idle, raced, failing to load, on a terminal."""
import os, sys, signal, subprocess
from conftest import stall

def test_ctrl_c_in_cli_mid_stream(fx):
    "SIGINT while the CLI streams prints one line and exits 130, no traceback"
    fx.push(stall(2))   # the answer starts, then the server sends nothing more: the interrupt always lands mid-stream
    env = dict(os.environ, OPENAI_API_BASE=fx.base, OPENAI_API_KEY='sk-test', LITELLM_LOCAL_MODEL_COST_MAP='True')
    p = subprocess.Popen([sys.executable, '-c', 'import sys; from lisette.cli import main; sys.exit(main())',
                          '-m', 'openai/fixture-model', 'Count from 1 to 300.'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = p.stdout.read(1)                   # the answer has started streaming
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert first == 't' and p.returncode == 130
    assert 'Traceback' not in err and err.strip().splitlines()[-1] == 'lisette: interrupted'
    assert len(fx.requests) == 1 and fx.requests[0]['body']['stream']

# --- the model daemon: live, real processes, the cached local model -----------------------------------------------
# Each test has its own run folder (LISETTE_RUN_DIR) and stops, by pid, every daemon that started in it.
import json, shutil, tempfile, time
from pathlib import Path
import pytest

CLI = [sys.executable, '-c', 'import sys; from lisette.cli import main; sys.exit(main())']

def alive(pid):
    try: os.kill(pid, 0); return True
    except ProcessLookupError: return False

def wait_for(cond, what, timeout=300):
    "Poll `cond()` until it is true, failing after a generous deadline (no sleeps as synchronisation)"
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f'timed out waiting for {what}'
        time.sleep(0.05)

class Runs:
    "Runs of the `lisette` command in run folder `d`, remembering every daemon pid seen there"
    def __init__(self):
        self.d = Path(tempfile.mkdtemp(prefix='lzt'))
        self.env = dict(os.environ, LISETTE_RUN_DIR=str(self.d), LITELLM_LOCAL_MODEL_COST_MAP='True')
        self.env.pop('LISETTE_KEEP_ALIVE', None); self.env.pop('LISETTE_MODEL', None)
        self.pids = set()
    def __call__(self, *args, stdin='', **env):
        r = subprocess.run(CLI + list(args), input=stdin, capture_output=True, text=True, timeout=900, env=self.env | env)
        self.pid(); return r
    def pid(self):
        "The pid of the daemon whose pid file is in the folder (None if none)"
        ps = [int(p.read_text()) for p in self.d.glob('*.pid')]
        self.pids.update(ps)
        return ps[0] if len(ps)==1 else (None if not ps else ps)
    def sockets(self): return sorted(self.d.glob('*.sock'))
    def log(self): return ''.join(p.read_text() for p in self.d.glob('*.log'))
    def cleanup(self):
        self.pid()
        for p in self.pids:
            if alive(p): os.kill(p, signal.SIGTERM)
        for p in self.pids: wait_for(lambda: not alive(p), f'daemon {p} to exit', 60)
        shutil.rmtree(self.d, ignore_errors=True)

@pytest.fixture
def runs():
    r = Runs()
    yield r
    r.cleanup()

def test_daemon_starts_once_is_reused_survives_ctrl_c_and_stops(runs):
    "The first run starts a daemon; later runs reuse it (same pid, one load); Ctrl-C leaves it up; --stop ends it"
    r1 = runs('--max-tokens', '12', 'What is the capital of France?')
    pid = runs.pid()
    assert (r1.returncode, r1.stdout, r1.stderr) == (0, 'The capital of France is Paris.\n', '') and alive(pid)
    r2 = runs('--max-tokens', '12', 'What is the capital of France?')
    assert (r2.returncode, r2.stdout, r2.stderr) == (0, r1.stdout, '') and runs.pid() == pid
    assert runs.log().count('ready:') == 1
    p = subprocess.Popen(CLI + ['Count from 1 to 300.'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=runs.env)
    first = p.stdout.read(1)                   # the answer has started streaming
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert first and p.returncode == 130 and err.strip().splitlines()[-1] == 'lisette: interrupted'
    r3 = runs('--max-tokens', '12', 'What is the capital of France?')
    assert (r3.returncode, r3.stdout, runs.pid()) == (0, r1.stdout, pid)
    r4 = runs('--stop')
    assert (r4.returncode, r4.stdout) == (0, f'lisette: stopped the daemon for local/gemma3-270m (pid {pid})\n')
    with pytest.raises(ProcessLookupError): os.kill(pid, 0)
    assert runs.sockets() == [] and runs.pid() is None
    assert runs('--stop').stdout == 'lisette: no model daemon was running\n'

def test_same_answer_in_process_and_daemon_errors_are_one_line(runs):
    "LISETTE_KEEP_ALIVE=0 answers in-process (no daemon) with the daemon's very bytes; a turn's error is one line, exit 1"
    q = ['--max-tokens', '24', 'Say hi']
    r0 = runs(*q, LISETTE_KEEP_ALIVE='0')
    assert r0.returncode == 0 and r0.stdout.strip() and runs.sockets() == [] and runs.pid() is None
    r1 = runs(*q)
    pid = runs.pid()
    assert (r1.returncode, r1.stdout, r1.stderr) == (0, r0.stdout, '') and pid
    e = runs('--max-tokens', '-1', 'hi')
    assert (e.returncode, e.stdout, e.stderr.count('\n')) == (1, '', 1) and e.stderr.startswith('lisette: ')
    assert 'max_new_tokens' in e.stderr and 'Traceback' not in e.stderr and runs.pid() == pid

def test_stale_socket_is_replaced(runs):
    "A daemon killed without cleaning up leaves its socket; the next run notices and starts a new daemon"
    assert runs('--max-tokens', '4', 'hi').returncode == 0
    old, sock = runs.pid(), runs.sockets()
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: not alive(old), 'the killed daemon to go')
    assert runs.sockets() == sock              # the stale socket is still there
    r = runs('--max-tokens', '12', 'What is the capital of France?')
    new = runs.pid()
    assert (r.returncode, r.stdout, r.stderr) == (0, 'The capital of France is Paris.\n', '')
    assert new != old and alive(new) and runs.sockets() == sock

def test_daemon_that_cannot_load_reports_its_error(runs):
    "A model that does not exist: the daemon dies with the in-process error line, and leaves no socket"
    r = runs('-m', 'local/no/such-model', 'hi', HF_HUB_OFFLINE='1')
    assert r.returncode == 1 and r.stderr.count('\n') == 1, r.stderr
    assert r.stderr.startswith('lisette: ConfigValueError: model: local/no/such-model')
    assert runs.sockets() == [] and runs.pid() is None

def test_idle_daemon_exits(runs):
    "A daemon exits by itself after LISETTE_KEEP_ALIVE idle seconds, removing its socket"
    assert runs('--max-tokens', '4', 'hi', LISETTE_KEEP_ALIVE='1').returncode == 0
    pid = runs.pid()
    wait_for(lambda: not alive(pid), 'the idle daemon to exit')
    assert runs.sockets() == [] and 'idle for 1 s: exiting' in runs.log()

def test_two_commands_at_once_start_one_daemon(runs):
    "Two commands that both find no daemon start one between them (the lock file), and both get the answer"
    ps = [subprocess.Popen(CLI + ['--max-tokens', '12', 'What is the capital of France?'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=runs.env) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in ps]
    assert [p.returncode for p in ps] == [0, 0] and outs[0] == outs[1] == ('The capital of France is Paris.\n', '')
    assert isinstance(runs.pid(), int) and runs.log().count('ready:') == 1

def test_repl_through_the_daemon_keeps_the_history(runs):
    "The REPL on a terminal sends each question to the daemon with the history so far; Ctrl-D leaves, exit 0"
    import pty, select
    m, s = pty.openpty()
    p = subprocess.Popen(CLI + ['--max-tokens', '12'], stdin=s, stdout=s, stderr=s, env=runs.env, close_fds=True)
    os.close(s)
    buf = b''
    def prompts(n):
        "Read the terminal until the REPL has shown its prompt `n` times"
        nonlocal buf
        end = time.monotonic() + 600
        while buf.count(b'> ') < n:
            assert time.monotonic() < end and p.poll() is None, buf
            if select.select([m], [], [], 1)[0]: buf += os.read(m, 4096)
    try:
        prompts(1); os.write(m, b'What is the capital of France?\n')
        prompts(2); os.write(m, b'And of Italy?\n')
        prompts(3); os.write(m, b'\x04')                  # Ctrl-D at the prompt
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None: p.kill()
        os.close(m)
    text = buf.decode().replace('\r\n', '\n')
    assert 'The capital of France is Paris.\n> And of Italy?\nYes, of Italy.\n> ' in text, text
    assert isinstance(runs.pid(), int) and runs.log().count('ready:') == 1
