"""Secrets for `docker compose up`: random passwords, the MongoDB replica-set keyfile, and the values made
from them (each service's MongoDB URL, the web UI's Kafka login), written once into ./secrets/ (not in
git; the folder is private to the user, the files readable by the containers' own users).

    python -m infra.compose_secrets [FOLDER]     (make secrets)

Existing files are kept, so running it again only adds what is missing. To rotate a password, change it
in Kafka (kafka-configs.sh) or MongoDB (db.changeUserPassword) and in its file, then restart the service.
"""

from __future__ import annotations

import base64
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from clinic.access import ADMIN, ROLES, user
from clinic.asyncapi import SERVICES

ROOT = Path(__file__).resolve().parent.parent
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"


def _password() -> str:
    return secrets.token_urlsafe(24)


def recipes() -> dict[str, Callable[[dict[str, str]], str]]:
    """File name -> how to make its content (from the files made before it)."""
    made: dict[str, Callable[[dict[str, str]], str]] = {}
    for role in (ADMIN, *ROLES):
        made[f"kafka_{role}_password"] = lambda _: _password()
    made["kafka_controller_password"] = lambda _: _password()
    made["mongo_root_password"] = lambda _: _password()
    made["mongo_keyfile"] = lambda _: base64.b64encode(secrets.token_bytes(756)).decode()
    made["mongo_operator_password"] = lambda _: _password()
    for service in SERVICES:
        made[f"mongo_{service}_password"] = lambda _: _password()
        made[f"mongo_{service}_url"] = lambda files, s=service: (
            f"mongodb://{user(s)}:{files[f'mongo_{s}_password']}@mongo:27017/clinic_{s}?replicaSet=rs0&authSource=clinic_{s}"
        )
    made["kafka_ui_password"] = lambda _: _password()
    made["kafka_ui_jaas"] = lambda files: f'{SCRAM} required username="{user("viewer")}" password="{files["kafka_viewer_password"]}";'
    return made


def generate(folder: Path) -> list[str]:
    """Write the missing secret files; returns their names."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    files = {path.name: path.read_text().strip() for path in folder.iterdir() if path.is_file()}
    written = []
    for name, make in recipes().items():
        if name in files:
            continue
        files[name] = make(files)
        path = folder / name
        path.write_text(files[name] + "\n")
        path.chmod(0o644)  # the folder keeps other users out; the containers' users must read the file
        written.append(name)
    return written


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT / "secrets"
    written = generate(folder)
    print(f"wrote {len(written)} secret(s) to {folder}" + (f": {', '.join(written)}" if written else " (all there already)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
