#!/usr/bin/env python3
"""One-shot preparation of the Synapse volumes, run by the `synapse-init` service.

Synapse reads no environment variables in its config, but the stack keeps its secrets and server
name in compose/.env. So at every `docker compose up` this script:
  1. renders /compose/synapse/homeserver.yaml (${NAME} placeholders) into
     /config/homeserver.yaml with the values from the environment; a missing or empty variable is
     an error, and values are substituted into parsed YAML strings (never spliced into YAML text),
     so no character of a secret can change the document's structure;
  2. creates /config/signing.key once (the server's federation identity: never regenerated);
  3. hands /config and /media to Synapse's user (UID/GID 991, the image's default).

It runs in the Synapse image (Python 3 + PyYAML + signedjson); tests/compose/check_stack.py
imports render() to check the template against .env.example.
"""

from __future__ import annotations

import os
import re
import secrets
import string
import sys
from pathlib import Path

import yaml

PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


class RenderError(Exception):
    pass


def _substitute(value, env: dict[str, str], used: set[str]):
    if isinstance(value, dict):
        return {k: _substitute(v, env, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, used) for v in value]
    if isinstance(value, str):

        def one(m: re.Match) -> str:
            name = m.group(1)
            if not env.get(name):
                raise RenderError(f"{name} is not set (copy compose/.env.example to compose/.env)")
            used.add(name)
            return env[name]

        return PLACEHOLDER.sub(one, value)
    return value


def render(template_text: str, env: dict[str, str]) -> tuple[dict, set[str]]:
    """Returns the config with every ${NAME} replaced, and the names used."""
    doc = yaml.safe_load(template_text)
    if not isinstance(doc, dict):
        raise RenderError("homeserver.yaml template is not a mapping")
    used: set[str] = set()
    return _substitute(doc, env, used), used


def _new_signing_key() -> str:
    from signedjson.key import encode_signing_key_base64, generate_signing_key

    alphabet = string.ascii_letters + string.digits
    key_id = "a_" + "".join(secrets.choice(alphabet) for _ in range(4))
    key = generate_signing_key(key_id)
    return f"{key.alg} {key.version} {encode_signing_key_base64(key)}\n"


def main() -> int:
    template = Path("/compose/synapse/homeserver.yaml")
    config_dir, media_dir = Path("/config"), Path("/media")
    uid = gid = 991
    try:
        doc, _ = render(template.read_text(encoding="utf-8"), dict(os.environ))
    except (OSError, yaml.YAMLError, RenderError) as e:
        print(f"synapse-init: {e}", file=sys.stderr)
        return 1
    out = config_dir / "homeserver.yaml"
    tmp = config_dir / "homeserver.yaml.tmp"
    # 0640: the file holds the database password and the replication secret.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# Rendered by compose/synapse/init.py from compose/synapse/homeserver.yaml.\n")
        yaml.safe_dump(doc, f, sort_keys=False)
    os.chown(tmp, uid, gid)
    os.replace(tmp, out)
    key = config_dir / "signing.key"
    if not key.exists():
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(_new_signing_key())
        print("synapse-init: created a new signing key", file=sys.stderr)
    os.chown(key, uid, gid)
    os.chown(config_dir, uid, gid)
    os.chown(media_dir, uid, gid)
    print(f"synapse-init: wrote {out} for {doc.get('server_name')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
