"""The kernel as Jupyter sees it: jupyter_client talks to `webaccel kernel` over ZeroMQ with
HMAC-signed messages, started from the kernelspec that `webaccel install` wrote."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import jupyter_kernel_test
import pytest
from jupyter_client.manager import start_new_kernel

import reference
from conftest import browser_pids, execute, of_type, is_descendant, profiles_of, wait_gone

TIMEOUT = 600


def test_kernelspec_is_written_where_jupyter_looks(jupyter_env, binary, tmp_path):
    spec = json.loads((Path(jupyter_env["JUPYTER_DATA_DIR"]) / "kernels/webaccel/kernel.json").read_text())
    assert spec["display_name"] == "WebAccel (Rhai)" and spec["language"] == "rhai"
    assert spec["argv"][1:] == ["kernel", "--connection-file", "{connection_file}"]
    assert Path(spec["argv"][0]).samefile(binary)
    # --prefix wins, as with `jupyter kernelspec install --prefix`.
    subprocess.run([binary, "install", "--prefix", str(tmp_path)], check=True, env=jupyter_env, capture_output=True)
    assert (tmp_path / "share/jupyter/kernels/webaccel/kernel.json").is_file()
    # A kernelspec earlier on JUPYTER_PATH would shadow this one: the user is told.
    shadow = tmp_path / "jp" / "kernels" / "webaccel"
    shadow.mkdir(parents=True)
    (shadow / "kernel.json").write_text("{}")
    env = dict(jupyter_env, JUPYTER_PATH=str(tmp_path / "jp"))
    out = subprocess.run([binary, "install"], check=True, env=env, capture_output=True, text=True)
    assert "JUPYTER_PATH" in out.stderr and str(shadow) in out.stderr


def test_kernel_info_print_result_and_errors(kernel):
    km, kc = kernel
    info = kc.kernel_info(reply=True, timeout=60)["content"]
    assert info["language_info"]["name"] == "rhai" and info["implementation"] == "webaccel"

    reply, outputs = execute(kc, 'print("hello"); 40 + 2')
    assert reply["status"] == "ok"
    assert "hello" in "".join(s["text"] for s in of_type(outputs, "stream"))
    assert of_type(outputs, "execute_result")[0]["data"]["text/plain"] == "42"
    states = [s["execution_state"] for s in of_type(outputs, "status")]
    assert states[0] == "busy" and states[-1] == "idle"
    assert of_type(outputs, "execute_input")[0]["code"] == 'print("hello"); 40 + 2'

    reply, outputs = execute(kc, "let = ;")
    assert reply["status"] == "error" and reply["ename"] == "ParseError"
    assert of_type(outputs, "error")[0]["ename"] == "ParseError"

    reply, outputs = execute(kc, 'accelerate("gpt-17", "hi")')
    assert reply["status"] == "error"
    assert "unknown model 'gpt-17'" in reply["evalue"] and "all-minilm-l6-v2" in reply["evalue"]


def test_scope_persists_across_cells(kernel):
    _, kc = kernel
    assert execute(kc, "let x = 20;")[0]["status"] == "ok"
    assert execute(kc, "fn double(v) { v * 2 }")[0]["status"] == "ok"
    reply, outputs = execute(kc, "double(x) + 2")
    assert reply["status"] == "ok"
    assert of_type(outputs, "execute_result")[0]["data"]["text/plain"] == "42"
    # Statements of earlier cells do not run again.
    reply, outputs = execute(kc, 'print("once");')
    reply, outputs = execute(kc, "x")
    assert "once" not in "".join(s["text"] for s in of_type(outputs, "stream"))


def test_run_all_stops_at_the_first_error(kernel):
    """Cells queued behind a failing one (as Run All queues them, with stop_on_error) are
    answered `aborted` without running, as ipykernel does; one sent with stop_on_error false, or
    sent after the failure was answered, runs."""
    _, kc = kernel
    failing = kc.execute('let t = timestamp(); while t.elapsed < 1.0 {} throw "stop here";')
    queued = [kc.execute('print("ran 1"); let ran = 1;'), kc.execute('print("ran 2");')]
    replies = {}
    while len(replies) < 3:
        reply = kc.get_shell_msg(timeout=60)
        replies[reply["parent_header"]["msg_id"]] = reply["content"]
    assert replies[failing]["status"] == "error" and "stop here" in replies[failing]["evalue"]
    assert [replies[q]["status"] for q in queued] == ["aborted", "aborted"]

    reply, outputs = execute(kc, "ran")
    assert reply["status"] == "error", "the aborted cells did not run"
    assert not any("ran " in s["text"] for s in of_type(outputs, "stream"))
    # Without stop_on_error the next cell keeps its turn.
    failing = kc.execute('let t = timestamp(); while t.elapsed < 1.0 {} throw "again";', stop_on_error=False)
    kept = kc.execute("let kept = 2; kept")
    replies = {}
    while len(replies) < 2:
        reply = kc.get_shell_msg(timeout=60)
        replies[reply["parent_header"]["msg_id"]] = reply["content"]
    assert replies[failing]["status"] == "error" and replies[kept]["status"] == "ok"


def test_completion_and_inspection_know_the_session(kernel):
    _, kc = kernel
    assert execute(kc, "let latency_budget = 12.5; fn latency_of(r) { r.latency_ms }")[0]["status"] == "ok"
    # Variables and functions of earlier cells complete, with the replaced range in characters.
    code = "let é = late"
    reply = kc.complete(code, len(code), reply=True, timeout=60)["content"]
    assert set(reply["matches"]) == {"latency_budget", "latency_of"}
    assert (reply["cursor_start"], reply["cursor_end"]) == (len("let é = "), len(code))
    # After a dot: the members of webaccel's values.
    assert "latency_ms" in kc.complete("r.lat", 5, reply=True, timeout=60)["content"]["matches"]
    # Inspection shows an API function's options and a variable's value.
    help = kc.inspect("compare", 3, reply=True, timeout=60)["content"]
    assert help["found"] and "profile_ops" in help["data"]["text/plain"]
    help = kc.inspect("latency_budget + 1", 2, reply=True, timeout=60)["content"]
    assert help["found"] and help["data"]["text/plain"] == "variable latency_budget: f64\n\n12.5"
    assert not kc.inspect("1 + 1", 1, reply=True, timeout=60)["content"]["found"]
    # A block left open asks for more lines, with an indent.
    msg_id = kc.is_complete("for x in [1, 2] {")
    reply = kc.get_shell_msg(timeout=60)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert (reply["content"]["status"], reply["content"]["indent"]) == ("incomplete", "    ")
    # print and debug go to stdout and stderr.
    _, outputs = execute(kc, 'print("out"); debug("err");')
    streams = {s["name"]: s["text"] for s in of_type(outputs, "stream")}
    assert streams["stdout"] == "out\n" and "err" in streams["stderr"]


def test_display_shows_values_mid_cell(kernel, run_script):
    _, kc = kernel
    reply, outputs = execute(kc, 'for n in [1, 2] { display(sql(`SELECT ${n} AS n`)); } "done"')
    assert reply["status"] == "ok"
    shown = of_type(outputs, "display_data")
    assert len(shown) == 2 and all("<table" in d["data"]["text/html"] for d in shown)
    assert of_type(outputs, "execute_result")[0]["data"]["text/plain"] == "\"done\""
    # A table redrawn in place: each turn clears (when its new output arrives) and displays.
    reply, outputs = execute(kc, 'for n in [1, 2, 3] { clear_output(true); display(sql(`SELECT ${n} AS n`)); }')
    assert reply["status"] == "ok"
    kinds = [(m["msg_type"], m["content"].get("wait")) for m in outputs if m["msg_type"] in ("clear_output", "display_data")]
    assert kinds == [("clear_output", True), ("display_data", None)] * 3, kinds
    # Outside a notebook, display prints the value's text and clear_output does nothing.
    out = run_script('display(6 * 7); clear_output(); print("after");').stdout
    assert out.splitlines()[:2] == ["42", "after"]


def test_interrupt_stops_a_running_cell(kernel):
    km, kc = kernel
    timer = threading.Timer(1.5, km.interrupt_kernel)
    timer.start()
    started = time.monotonic()
    reply, _ = execute(kc, "let t = timestamp(); while t.elapsed < 60.0 {}", timeout=90)
    timer.join()
    assert reply["status"] == "error" and reply["evalue"] == "interrupted by the user"
    assert time.monotonic() - started < 30
    # The kernel is still usable, and the scope survived.
    reply, outputs = execute(kc, "40 + 2")
    assert of_type(outputs, "execute_result")[0]["data"]["text/plain"] == "42"


def test_accelerate_and_detect_in_cells_render_html_and_match_reference(kernel):
    _, kc = kernel
    reply, outputs = execute(kc, 'let r = accelerate("all-minilm-l6-v2", "A man is eating food.", #{platform: "wasm", runs: 3}); r')
    assert reply["status"] == "ok", reply
    data = of_type(outputs, "execute_result")[0]["data"]
    assert "<table" in data["text/html"] and "latency_ms" in data["text/plain"]
    # detect() as a cell's value: a table per browser in the notebook, still a map to index.
    reply, outputs = execute(kc, "let caps = detect(); caps")
    assert reply["status"] == "ok", reply
    data = of_type(outputs, "execute_result")[0]["data"]
    assert "<td>firefox</td><td>Firefox/" in data["text/html"] and "<td>chromium</td><td>Chrome/" in data["text/html"], data["text/html"]
    assert "firefox: Firefox/" in data["text/plain"] and "webnn   none (navigator.ml is undefined)" in data["text/plain"], data["text/plain"]
    reply, outputs = execute(kc, "caps.firefox.webgpu.available")
    assert of_type(outputs, "execute_result")[0]["data"]["text/plain"] == "true"
    reply, outputs = execute(kc, "#{v: r.output}.to_json()")
    assert reply["status"] == "ok", reply
    # The cell's value is a string, shown as its literal: the JSON text in quotes.
    vector = json.loads(json.loads(of_type(outputs, "execute_result")[0]["data"]["text/plain"]))["v"]
    expected = reference.embed("all-minilm-l6-v2", ["A man is eating food."])[0]
    assert len(vector) == 384
    assert max(abs(a - b) for a, b in zip(vector, expected)) < 1e-3


def test_browser_killed_mid_run_gives_error_then_fresh_browser(kernel, kernel_env):
    km, kc = kernel
    assert execute(kc, 'accelerate("all-minilm-l6-v2", "warm up", #{platform: "wasm", runs: 1});')[0]["status"] == "ok"
    kernel_pid = km.provisioner.process.pid
    before = [p for p in browser_pids() if is_descendant(p, kernel_pid)]
    assert before, "the kernel's Chromium was not found"

    # Thousands of runs keep the page busy for minutes; kill the browser a few seconds in.
    def kill_soon():
        time.sleep(4)
        for pid in before:
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    started = time.monotonic()
    reply, _ = execute(kc, 'accelerate("all-minilm-l6-v2", "long run", #{platform: "wasm", runs: 20000});', timeout=120)
    killer.join()
    assert reply["status"] == "error"
    assert "exited or its page crashed" in reply["evalue"], reply["evalue"]
    assert time.monotonic() - started < 60, "the crash was not noticed promptly"

    reply, outputs = execute(kc, 'accelerate("all-minilm-l6-v2", "after the crash", #{platform: "wasm", runs: 1}).runs')
    assert reply["status"] == "ok", reply
    after = [p for p in browser_pids() if is_descendant(p, kernel_pid)]
    assert after and not set(after) & set(before)


def test_shutdown_leaves_no_browser_or_profile(kernel_env):
    km, kc = start_new_kernel(kernel_name="webaccel", startup_timeout=60)
    try:
        reply, _ = execute(kc, 'accelerate("all-minilm-l6-v2", "x", #{platform: "wasm", runs: 1});')
        assert reply["status"] == "ok"
        kernel_pid = km.provisioner.process.pid
        pids = [p for p in browser_pids() if is_descendant(p, kernel_pid)]
        profiles = profiles_of(pids)
        assert pids and profiles
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    assert wait_gone(pids, 20), "a Chromium process outlived the kernel"
    assert not any(Path(p).exists() for p in profiles), "a profile directory outlived the kernel"


class WebAccelKernelTests(jupyter_kernel_test.KernelTests):
    """The generic protocol conformance checks of jupyter_kernel_test."""

    kernel_name = "webaccel"
    language_name = "rhai"
    file_extension = ".rhai"
    code_hello_world = 'print("hello, world")'
    code_execute_result = [{"code": "6 * 7", "result": "42"}]
    code_stderr = 'debug("to stderr")'
    code_generate_error = 'throw "a deliberate error"'
    completion_samples = [
        {"text": "accel", "matches": {"accelerate"}},
        {"text": "ipfs::f", "matches": {"ipfs::fetch"}},
        {"text": "det", "matches": {"detect"}},
    ]
    complete_code_samples = ["1 + 1", "let x = 1;", "fn twice(a) { 2 * a }"]
    incomplete_code_samples = ["fn f() {", "let xs = [1, 2,", 'accelerate("all-minilm-l6-v2",']
    invalid_code_samples = ["let = 5;", "1 +* 2"]
    code_inspect_sample = "accelerate"
    supported_history_operations = ("tail", "range", "search")
    # test_pager is skipped: this kernel sends no pager payloads (help is inspect_request's).
    code_history_pattern = "6 *"
    code_clear_output = "clear_output()"
    code_display_data = [
        {"code": "display(6 * 7)", "mime": "text/plain"},
        {"code": 'display(sql("SELECT 1 AS x"))', "mime": "text/html"},
    ]


@pytest.fixture(autouse=True, scope="module")
def _kernel_env_for_unittest(kernel_env):
    yield


def test_frames_and_plots_render_as_tables_and_svg(kernel):
    """A query comes back as a Frame: an HTML table in the notebook, a text table in plain
    text; a plot of it is an image/svg+xml output."""
    _, kc = kernel
    reply, outputs = execute(kc, 'let f = sql("select * from (values (1, 2.5), (2, 4.0), (3, 3.5)) t(x, y)"); f')
    assert reply["status"] == "ok", reply
    data = of_type(outputs, "execute_result")[0]["data"]
    assert "<table" in data["text/html"] and ">2.5</td>" in data["text/html"] and "3 rows" in data["text/html"], data["text/html"]
    assert "| x " in data["text/plain"] and "3.5" in data["text/plain"] and "3 rows" in data["text/plain"]
    reply, outputs = execute(kc, 'plot(f, #{x: "x", y: "y", kind: "line", title: "y by x"})')
    assert reply["status"] == "ok", reply
    data = of_type(outputs, "execute_result")[0]["data"]
    assert data["image/svg+xml"].lstrip().startswith("<svg") and "y by x" in data["image/svg+xml"]
