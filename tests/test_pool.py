"""The warm-browser pool: idle browsers close, max_connections bounds them, and nothing is left
behind when a script ends."""

import glob
import tempfile
from pathlib import Path

from conftest import browser_pids

WAIT = """
fn wait_s(s) { let t = timestamp(); while t.elapsed < s {} }
"""


def test_idle_browsers_close_and_the_next_call_relaunches(run_script):
    proc = run_script(
        WAIT
        + """
        configure_browsers(#{idle_timeout_s: 1.0});
        accelerate("all-minilm-l6-v2", "a", #{platform: "wasm", browser: "chromium", runs: 1});
        print(browsers().running);
        wait_s(4.0);
        print(browsers().running);
        let r = accelerate("all-minilm-l6-v2", "b", #{platform: "wasm", browser: "chromium", runs: 1});
        print(r.session_reused);
        """
    )
    lines = proc.stdout.strip().splitlines()
    assert lines[-3] == '["chromium"]'
    assert lines[-2] == "[]"
    # A fresh browser means a fresh page: the model session is created again, not reused.
    assert lines[-1] == "false"


def test_max_connections_bounds_running_browsers(run_script):
    proc = run_script(
        """
        configure_browsers(#{max_connections: 1});
        accelerate("all-minilm-l6-v2", "a", #{platform: "wasm", browser: "chromium", runs: 1});
        print(browsers().running);
        accelerate("all-minilm-l6-v2", "a", #{platform: "wasm", browser: "headless-shell", runs: 1});
        print(browsers().running);
        """
    )
    lines = proc.stdout.strip().splitlines()
    assert lines[-2:] == ['["chromium"]', '["headless-shell"]']


def test_extra_flags_get_their_own_browser(run_script):
    proc = run_script(
        """
        accelerate("all-minilm-l6-v2", "a", #{platform: "wasm", browser: "chromium", runs: 1});
        accelerate("all-minilm-l6-v2", "a", #{platform: "wasm", browser: "chromium", runs: 1, flags: ["--js-flags=--expose-gc"]});
        print(browsers().running);
        """
    )
    assert proc.stdout.strip().splitlines()[-1] == '["chromium", "chromium --js-flags=--expose-gc"]'


def test_a_finished_script_leaves_no_browser_or_profile(run_script):
    before = set(glob.glob(str(Path(tempfile.gettempdir()) / "webaccel-profile-*")))
    run_script('accelerate("all-minilm-l6-v2", "a", #{platform: "webnn", runs: 1}); detect();')
    assert browser_pids() == []
    assert set(glob.glob(str(Path(tempfile.gettempdir()) / "webaccel-profile-*"))) - before == set()
