"""The name of the release a checkout makes (run on the controller by the edge_release role).

`<commit>`: the checkout's commit, 12 hex digits (`git rev-parse --short=12 HEAD`), when the
tree is the commit's; `<commit>-dirty-<hash>` when it is not (files changed, added or
removed that git does not ignore), <hash> being 8 hex digits of a hash of those differences:
a tree changed again is another release, never the same name with other contents.

    python release_name.py CHECKOUT     prints the name; exit 3 with a message when
                                        CHECKOUT is no git checkout with a commit
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys


def git(src: str, *args: str) -> bytes:
    # safe.directory: the checkout may belong to another user than the one running Ansible
    cmd = ["git", "-c", "safe.directory=*", "-c", "core.quotePath=false", "-C", src, *args]
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def release_name(src: str) -> str:
    head = git(src, "rev-parse", "--short=12", "--verify", "HEAD").decode().strip()
    if not git(src, "status", "--porcelain", "--untracked-files=all"):
        return head
    digest = hashlib.sha256()
    digest.update(git(src, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv"))
    for path in sorted(p for p in git(src, "ls-files", "-z", "--others", "--exclude-standard").split(b"\0") if p):
        full = os.path.join(os.fsencode(src), path)
        digest.update(b"\0" + path + b"\0")
        if os.path.islink(full):
            digest.update(b"link:" + os.readlink(full))
        elif os.path.isfile(full):
            with open(full, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return f"{head}-dirty-{digest.hexdigest()[:8]}"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} CHECKOUT", file=sys.stderr)
        return 2
    try:
        print(release_name(argv[1]))
    except (OSError, subprocess.CalledProcessError) as exc:
        err = getattr(exc, "stderr", b"") or b""
        print(
            f"{argv[1]} is not a git checkout with a commit ({err.decode(errors='replace').strip() or exc}):"
            " set edge_release_id to name the release",
            file=sys.stderr,
        )
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
