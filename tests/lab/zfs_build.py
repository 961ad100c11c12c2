"""OpenZFS for the lab guest: kernel modules built against the guest's
kernel, and the userland, cached by ZFS and kernel version.

Debian 12's own contrib has OpenZFS 2.1 (no `zpool status -j`); its
bookworm-backports contrib has 2.3. The packages are fetched with a private
apt state (sources, lists and archives under the cache), so the host's apt
configuration is not changed. The module is built from the zfs-dkms source
with the guest kernel's headers (`make -C module`, about 3.5 min on two
cores), stripped of debug info (94 MB -> 9 MB), and kept with `zpool`,
`zfs` and their libraries under `<cache>/zfs-<version>-<kernel>/`. A later
run finds `done` there and skips all of it.

The cache lives outside the checkout (CI builds from a clean clone):
`$SWAPGUARD_LAB_CACHE`, else /var/cache/swapguard-lab. Run alone to fill
it: `python3 tests/lab/zfs_build.py [CACHE_DIR [KERNEL_VERSION]]`.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ZFS_VERSION = "2.3.2-2~bpo12+2"
ZFS_SOURCE = "zfs-2.3.2"
PACKAGES = ["zfs-dkms", "zfsutils-linux", "libzfs6linux", "libnvpair3linux",
            "libuutil3linux", "libzpool6linux"]
BACKPORTS = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: contrib main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
# Programs the guest gets, relative to the unpacked packages.
PROGRAMS = ["sbin/zpool", "sbin/zfs"]


DEFAULT_CACHE = os.environ.get("SWAPGUARD_LAB_CACHE", "/var/cache/swapguard-lab")


class BuildError(Exception):
    pass


def run(argv, **kw):
    done = subprocess.run(argv, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise BuildError(f"`{' '.join(argv)}` exited {done.returncode}:\n"
                         f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return done.stdout


def fetch_packages(tmp):
    """Download the OpenZFS packages and unpack them under `tmp/root`."""
    apt = private_apt(tmp / "apt")
    run(["apt-get", *apt, "update"])
    debs = tmp / "debs"
    debs.mkdir()
    run(["apt-get", *apt, "download", *[f"{p}={ZFS_VERSION}" for p in PACKAGES]], cwd=debs)
    root = tmp / "root"
    for deb in sorted(debs.glob("*.deb")):
        run(["dpkg-deb", "-x", str(deb), str(root)])
    return root


def cache_dir(cache_root, kernel_version):
    return Path(cache_root) / f"zfs-{ZFS_VERSION}-{kernel_version}"


def private_apt(state):
    """apt-get options that keep sources, lists and archives under `state`."""
    parts = state / "sources.list.d"
    for d in [parts, state / "lists/partial", state / "archives/partial"]:
        d.mkdir(parents=True, exist_ok=True)
    (parts / "backports.sources").write_text(BACKPORTS)
    return ["-o", "Dir::Etc::SourceList=/dev/null",
            "-o", f"Dir::Etc::SourceParts={parts}",
            "-o", f"Dir::State::Lists={state / 'lists'}",
            "-o", f"Dir::Cache::Archives={state / 'archives'}",
            "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="]


def ensure_headers(kernel_version):
    common = Path(f"/usr/src/linux-headers-{kernel_version}")
    if common.exists():
        return
    package = f"linux-headers-{kernel_version}"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        run(["apt-get", "install", "-y", "--no-install-recommends", package], env=env)
    except BuildError:
        run(["apt-get", "update"], env=env)
        run(["apt-get", "install", "-y", "--no-install-recommends", package], env=env)
    for tool in ["gcc", "make"]:
        if shutil.which(tool) is None:
            run(["apt-get", "install", "-y", "--no-install-recommends", tool], env=env)


def userland(root, staged):
    """`zpool`, `zfs` and the OpenZFS libraries from the unpacked packages
    at `root` into `staged/bin` and `staged/lib`."""
    (staged / "bin").mkdir(exist_ok=True)
    for program in PROGRAMS:
        candidates = [root / program, root / "usr" / program]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise BuildError(f"`{program}` not in the zfsutils-linux package")
        shutil.copy2(path, staged / "bin" / path.name)
    (staged / "lib").mkdir(exist_ok=True)
    libs = [lib for d in ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"]
            for lib in (root / d).glob("lib*.so*")]
    for lib in libs:
        shutil.copy2(lib, staged / "lib" / lib.name, follow_symlinks=True)
    names = {lib.name.split(".so")[0] for lib in libs}
    missing = {"libzfs", "libnvpair", "libuutil", "libzpool"} - names
    if missing:
        raise BuildError(f"the packages have no {sorted(missing)}")


def complete(out):
    """A finished cache entry: the marker, both modules and the libraries
    (an entry from before the libraries were kept counts as unfinished)."""
    return ((out / "done").exists()
            and all((out / "modules" / m).exists() for m in ["spl.ko", "zfs.ko"])
            and any((out / "lib").glob("libzfs.so*")))


def build(cache_root, kernel_version, log=print):
    """The cache directory with `modules/{spl,zfs}.ko`, `bin/` and `lib/`,
    built when missing. Raises BuildError with the failing command's output."""
    cache_root = Path(cache_root).resolve()
    out = cache_dir(cache_root, kernel_version)
    if complete(out):
        return out
    if (out / "modules/zfs.ko").exists() and (out / "done").exists():
        # Modules built, libraries missing: fetch the userland only.
        log("zfs: fetching the OpenZFS userland")
        with tempfile.TemporaryDirectory(dir=cache_root, prefix="zfs-userland-") as tmp:
            root = fetch_packages(Path(tmp))
            userland(root, out)
        return out
    log(f"zfs: building OpenZFS {ZFS_VERSION} for {kernel_version} into {out}")
    ensure_headers(kernel_version)
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_root, prefix="zfs-build-") as tmp:
        tmp = Path(tmp)
        root = fetch_packages(tmp)
        src = root / "usr/src" / ZFS_SOURCE
        if not (src / "configure").exists():
            raise BuildError(f"`{src}/configure` missing: the zfs-dkms package changed shape")
        headers = f"/usr/src/linux-headers-{kernel_version}"
        common = headers.replace("-amd64", "-common")
        log("zfs: configure")
        run(["./configure", "--with-config=kernel", f"--with-linux={common}",
             f"--with-linux-obj={headers}"], cwd=src)
        log("zfs: make -C module (a few minutes)")
        run(["make", f"-j{os.cpu_count() or 2}", "-C", "module"], cwd=src)
        staged = tmp / "out"
        (staged / "modules").mkdir(parents=True)
        for name in ["spl.ko", "zfs.ko"]:
            found = list(src.glob(f"module/**/{name}"))
            if len(found) != 1:
                raise BuildError(f"expected one `{name}` under `{src}/module`, found {found}")
            dest = staged / "modules" / name
            shutil.copy2(found[0], dest)
            run(["strip", "--strip-debug", str(dest)])
        userland(root, staged)
        (staged / "done").write_text(f"OpenZFS {ZFS_VERSION} for {kernel_version}\n")
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return out


if __name__ == "__main__":
    cache = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CACHE
    kernel = sys.argv[2] if len(sys.argv) > 2 else None
    if kernel is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from machine import find_kernel  # noqa: E402
        found = find_kernel()
        if found is None:
            sys.exit("zfs: no Debian kernel with modules under /boot")
        kernel = found[1]
    try:
        print(build(cache, kernel))
    except BuildError as err:
        sys.exit(f"zfs: {err}")
