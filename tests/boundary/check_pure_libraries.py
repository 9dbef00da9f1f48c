#!/usr/bin/env python3
"""no_asio_in_pure_libraries: fails when a pure library reaches past the sans-I/O boundary.

    check_pure_libraries.py MANIFEST [--src DIR]

MANIFEST is written by tests/boundary/CMakeLists.txt at generate time:
    library <name> <folder> <target> <alias>     a pure library to check
    sources <target> <source dir> <a|b|c>        the target's evaluated sources
    links <target> <property> <a|b|c>            the target's evaluated link items
    allowed <item> ...                           non-pure items a pure target may link
    build <dir>                                  the build tree (generated sources live there)
--src DIR reads each library's folder as DIR/<name> instead (to prove the check on a scratch copy
of src/ without touching the real one).

Checks (every failure is listed, then the exit status is 1):
  (a) includes: no file in a pure folder includes Asio, Beast, Boost.Redis, prometheus-cpp,
      hiredis, or any agent/ header, with <> or "";
  (b) links: every item a pure target links is another pure target or an allowed one;
  (c) sources: every source a pure target compiles lies in a pure folder or is generated in the
      build tree (and is then scanned as in (a)).
"""

import argparse
import pathlib
import re
import sys

SOURCE_SUFFIXES = {".hpp", ".cpp", ".h", ".hh", ".cc", ".ipp", ".inl", ".tpp"}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
# What a pure library must never include, matched against the include's path.
FORBIDDEN = [
    (re.compile(r"^boost/asio(\.hpp|/)"), "Boost.Asio"),
    (re.compile(r"^asio(\.hpp|/)"), "Asio"),
    (re.compile(r"^boost/beast(\.hpp|/)"), "Boost.Beast"),
    (re.compile(r"^boost/redis(\.hpp|/)"), "Boost.Redis"),
    (re.compile(r"^prometheus/"), "prometheus-cpp"),
    (re.compile(r"^(hiredis/|hiredis\.h$)"), "hiredis"),
    (re.compile(r"^(\.\./)*(src/)?agent/"), "the agent (Asio shell)"),
]


def read_manifest(path):
    libraries, links, allowed = [], {}, set()
    sources, build = {}, None
    for line in pathlib.Path(path).read_text().splitlines():
        parts = line.split(" ", 3)
        kind = parts[0]
        if kind == "library":
            name, folder, target, alias = line.split(" ")[1:5]
            libraries.append((name, pathlib.Path(folder), target, alias))
        elif kind == "links":
            items = parts[3].split("|") if len(parts) > 3 else []
            links.setdefault(parts[1], []).extend((parts[2], i) for i in items if i)
        elif kind == "sources":
            items = parts[3].split("|") if len(parts) > 3 else []
            base = pathlib.Path(parts[2])
            sources[parts[1]] = [(base / i).resolve() for i in items if i]
        elif kind == "allowed":
            allowed.update(line.split(" ")[1:])
        elif kind == "build":
            build = pathlib.Path(parts[1]).resolve()
        elif line:
            raise SystemExit(f"{path}: unexpected line {line!r}")
    return libraries, links, allowed, sources, build


def scan_file(name, f):
    failures = []
    for lineno, text in enumerate(f.read_text(errors="replace").splitlines(), 1):
        m = INCLUDE.match(text)
        if not m:
            continue
        header = m.group(2).strip()
        for pattern, what in FORBIDDEN:
            if pattern.search(header):
                close = ">" if m.group(1) == "<" else '"'
                failures.append(f"{f}:{lineno}: includes {m.group(1)}{header}{close} ({what}): "
                                f"{name} is a pure library")
    return failures


def check_includes(name, folder):
    failures, files = [], 0
    if not folder.is_dir():
        return [f"{name}: folder {folder} does not exist"], 0
    for f in sorted(folder.rglob("*")):
        if f.suffix not in SOURCE_SUFFIXES or not f.is_file():
            continue
        files += 1
        failures += scan_file(name, f)
    return failures, files


def inside(path, folder):
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def check_sources(name, target, srcs, pure_folders, build):
    """(c): sources outside every pure folder fail, except generated ones (scanned here)."""
    failures = []
    for f in srcs:
        if any(inside(f, d) for d in pure_folders):
            continue
        if build and inside(f, build):
            if f.is_file():
                failures += scan_file(name, f)
            continue
        failures.append(f"{target} compiles {f}: outside the pure folders")
    return failures


def check_links(target, items, pure_names, allowed):
    failures = []
    for prop, item in items:
        if "$<" in item:
            failures.append(f"{target} {prop}: cannot evaluate {item!r}")
        elif item not in pure_names and item not in allowed:
            failures.append(f"{target} links {item} ({prop}): a pure library may link only other "
                            f"pure libraries and {', '.join(sorted(allowed))}")
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("--src", type=pathlib.Path, help="read folders as SRC/<name>")
    args = ap.parse_args()
    libraries, links, allowed, sources, build = read_manifest(args.manifest)
    if not libraries:
        raise SystemExit(f"{args.manifest}: no pure library listed")
    pure_names = set()
    for _name, _folder, target, alias in libraries:
        pure_names.update((target, alias))

    # Sources are where CMake says, not where --src points: check (c) against the real folders.
    pure_folders = [folder.resolve() for _n, folder, _t, _a in libraries]

    failures = []
    for name, folder, target, _alias in libraries:
        if args.src:
            folder = args.src / name
        inc_failures, files = check_includes(name, folder)
        inc_failures += check_sources(name, target, sources.get(target, []), pure_folders, build)
        link_failures = check_links(target, links.get(target, []), pure_names, allowed)
        linked = sorted({i for _p, i in links.get(target, [])})
        status = "FAIL" if inc_failures or link_failures else "ok"
        print(f"checked {name}: {folder} ({files} files), target {target} links "
              f"[{', '.join(linked)}]: {status}")
        failures += inc_failures + link_failures
    for f in failures:
        print(f"FAIL {f}")
    print(f"{len(libraries)} pure libraries checked, {len(failures)} violations")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
