"""The test server's process life (`lisette.testing`), on real `llama-server` processes.

`nbs/90_testing.ipynb` shows the server at work; these are the checks about processes themselves (stopped by PID,
a failed start reported with its log, `lisette-llama run` passing on the exit code, a dead server named), which a
replay of the notebook, starting no process, cannot make.
"""
import io, os, sys, contextlib
import httpx, pytest
from lisette.testing import LlamaServer, _healthy, free_port, main, server_base

@pytest.fixture(autouse=True)
def live(monkeypatch):
    "These tests start real processes: never in a replay."
    monkeypatch.delenv('LISETTE_REPLAY', raising=False)

def test_server_stops_by_pid():
    with LlamaServer() as srv:
        pid = srv.proc.pid
        assert _healthy(srv.base)
        assert httpx.get(f'{srv.base}/v1/models').json()['data'][0]['id'] == 'gemma3-270m'
    assert srv.proc.returncode is not None
    with pytest.raises(ProcessLookupError): os.kill(pid, 0)
    assert not _healthy(srv.base)

def test_failed_start_names_the_model_file():
    with pytest.raises(RuntimeError) as e: LlamaServer(model='/nonexistent.gguf').start(timeout=20)
    msg = str(e.value)
    assert msg.startswith('llama-server did not become healthy on http://127.0.0.1:')
    assert 'Log tail' in msg and "failed to open GGUF file '/nonexistent.gguf'" in msg

def test_dead_server_is_named(monkeypatch):
    monkeypatch.setenv('LISETTE_TEST_API_BASE', f'http://127.0.0.1:{free_port()}')
    with pytest.raises(RuntimeError, match="is not answering /health.*lisette-llama run"): server_base()
    monkeypatch.delenv('LISETTE_TEST_API_BASE')
    with pytest.raises(RuntimeError, match='LISETTE_TEST_API_BASE is not set'): server_base()

def test_run_passes_on_exit_code():
    out = io.StringIO()
    with contextlib.redirect_stdout(out): rc = main(['run', '--', sys.executable, '-c', 'raise SystemExit(3)'])
    assert rc == 3 and out.getvalue().startswith('LISETTE_TEST_API_BASE=http://127.0.0.1:')
    check = 'import sys; from lisette.testing import server_base; sys.exit(0 if server_base() else 1)'
    with contextlib.redirect_stdout(io.StringIO()): assert main(['run', '--', sys.executable, '-c', check]) == 0
