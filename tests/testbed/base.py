"""The boards' operating system: a Debian trixie root (Python 3.13, as on the Uno Q) with
systemd, sshd, sudo and python3, made once by debootstrap and kept as a tarball under
`.run/cache/` (its name carries a digest of the recipe: a changed recipe makes a new one).

Nothing of the project is in it: the playbook installs everything else (mosquitto,
python3-venv, the project), as on a freshly flashed board. The only user is `arduino`, the
Uno Q's, with password-less sudo, reached by SSH with a key.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "python3",
    "iproute2",
    "ca-certificates",
    "procps",
)
USER = "arduino"
# Run inside the fresh root (chroot): the board's user, its sudo, and a quiet boot.
SETUP = f"""set -eu
useradd --create-home --shell /bin/bash {USER}
echo '{USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{USER}
chmod 0440 /etc/sudoers.d/{USER}
passwd --lock root
systemctl enable ssh.service
systemctl mask apt-daily.timer apt-daily-upgrade.timer console-getty.service
rm -f /etc/ssh/ssh_host_*
apt-get clean
rm -rf /var/lib/apt/lists/*
"""
RECIPE = "\n".join([SUITE, MIRROR, *PACKAGES, SETUP])


def digest() -> str:
    return hashlib.sha256(RECIPE.encode()).hexdigest()[:12]


def tarball(cache: Path) -> Path:
    """The cached base, built first when it is not there (about 90 s)."""
    path = cache / f"debian-{SUITE}-{digest()}.tar"
    if path.exists():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        root = Path(tmp) / "root"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, str(root), MIRROR],
            check=True,
            capture_output=True,
        )
        subprocess.run(["chroot", str(root), "sh", "-c", SETUP], check=True, capture_output=True)
        partial = path.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], check=True)
        partial.rename(path)
    return path


def unpack(base: Path, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-xf", str(base)], check=True)
