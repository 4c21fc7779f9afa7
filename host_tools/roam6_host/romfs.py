"""A bundle's modules as a ROMFS image (MicroPython 1.25+ `vfs.VfsRom`).

On a board whose firmware has a ROMFS partition, `mpremote romfs deploy` writes such an image to
flash and the firmware mounts it at /rom: imports from it run their bytecode in place, so the
modules' code, constants and most qstrs stay out of the heap (about 40% of what the MN holds after
registration on a 32-bit port, `roam6 bench footprint`). The image holds every .mpy of the bundle
(roam6/**, link.mpy, the native module); main.py and config.json stay on the board's filesystem,
which is where a board looks for main.py.
"""
import os

IMAGE = "roam6.romfs"          # `roam6 build --romfs` writes it beside the bundle's files


def module_files(bundle_dir):
    """{path in the image: local path} -- every .mpy of the bundle, paths with '/'."""
    out = {}
    for root, dirs, names in os.walk(bundle_dir):
        dirs.sort()
        for n in sorted(names):
            if n.endswith(".mpy"):
                full = os.path.join(root, n)
                out[os.path.relpath(full, bundle_dir).replace(os.sep, "/")] = full
    return out


def image(files):
    """The ROMFS image (bytes) of {path: local path}, folders nested as the paths say."""
    from mpremote.romfs import VfsRomWriter      # mpremote is a dependency (deploy uses it)

    tree = {}
    for rel, local in files.items():
        node = tree
        parts = rel.split("/")
        for d in parts[:-1]:
            node = node.setdefault(d + "/", {})
        node[parts[-1]] = local
    w = VfsRomWriter()

    def add(node):
        for name in sorted(node):
            if name.endswith("/"):
                w.opendir(name[:-1])
                add(node[name])
                w.closedir()
            else:
                with open(node[name], "rb") as f:
                    w.mkfile(name, f.read())
    add(tree)
    return w.finalise()


def write_image(bundle_dir, path=None):
    """The bundle's image written to path (default DIR/roam6.romfs); returns (path, size)."""
    data = image(module_files(bundle_dir))
    path = path or os.path.join(bundle_dir, IMAGE)
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.replace(path + ".part", path)
    return path, len(data)
